"""Medical insurance (``schemas/medical_insurance.py``): comprehensive service stations
opened by the zone's Medical Insurance Centre, one station per event, through the year.
"""

from __future__ import annotations

from schemas import medical_insurance
from services.simulator.milestones import Counted, counted
from services.simulator.names import Names
from services.simulator.scenario import Achieved, Amount, Day, FamilySimulator, Step


def stations(total: Amount, spread: tuple[tuple[Day, Day, str], ...]) -> Counted:
    return Counted(
        medical_insurance.MedicalInsuranceStationOpened,
        "opened",
        total,
        spread,
        rotation="medical_insurance.stations",
        name=Names.insurance_station,
    )


SIMULATOR = FamilySimulator(
    family="medical_insurance",
    years={
        # Three stations, one in each part of the year.
        2022: (
            Step(
                order=15,
                make=counted,
                spec=stations(
                    Achieved(medical_insurance.STATIONS_OPENED),
                    (
                        ((3, 1), (5, 31), "0.34"),
                        ((6, 1), (9, 30), "0.33"),
                        ((10, 1), (12, 20), "0.33"),
                    ),
                ),
            ),
        ),
        # No pledge behind it: two more stations.
        2024: (
            Step(
                order=26,
                make=counted,
                spec=stations("2", (((4, 1), (6, 28), "0.5"), ((9, 2), (11, 29), "0.5"))),
            ),
        ),
    },
    officials=("医保中心 邓洁", "医保中心 韩斌"),
)
