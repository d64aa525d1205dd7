"""安置房 · Resettlement housing: the housing family's dashboard (events of ``city.housing.v1``).

Totals and trends per subdistrict from ``metric_daily``, the latest events and the
corrections from the ``events`` ledger (see :mod:`dashboards.domain`).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.domain import build_domain

UID = "citystream-housing"


def build() -> db.Dashboard:
    return build_domain(
        "housing",
        uid=UID,
        title_zh="安置房",
        title_en="Resettlement housing",
        description=(
            "安置房新开工、竣工交付与回迁，按街道 · Resettlement housing started, "
            "completed and delivered, and households moved back, per subdistrict."
        ),
    )
