"""停车 · Parking: the parking family's dashboard (events of ``city.parking.v1``).

Totals and trends per subdistrict from ``metric_daily``, the latest events and the
corrections from the ``events`` ledger (see :mod:`dashboards.domain`).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.domain import build_domain

UID = "citystream-parking"


def build() -> db.Dashboard:
    return build_domain(
        "parking",
        uid=UID,
        title_zh="停车",
        title_en="Parking",
        description=(
            "临时与固定停车位、新建停车场，按街道 · Temporary and permanent parking "
            "spaces and car parks opened, per subdistrict."
        ),
    )
