"""排水防涝 · Drainage: the drainage family's dashboard (events of ``city.drainage.v1``).

Totals and trends per subdistrict from ``metric_daily``, the latest events and the
corrections from the ``events`` ledger (see :mod:`dashboards.domain`).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.domain import build_domain

UID = "citystream-drainage"


def build() -> db.Dashboard:
    return build_domain(
        "drainage",
        uid=UID,
        title_zh="排水防涝",
        title_en="Drainage",
        description=("积水点改造，按街道 · Waterlogging points repaired, per subdistrict."),
    )
