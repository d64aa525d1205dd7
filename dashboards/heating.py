"""供热 · Heating: the heating family's dashboard (events of ``city.heating.v1``).

Totals and trends per subdistrict from ``metric_daily``, the latest events and the
corrections from the ``events`` ledger (see :mod:`dashboards.domain`).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.domain import build_domain

UID = "citystream-heating"


def build() -> db.Dashboard:
    return build_domain(
        "heating",
        uid=UID,
        title_zh="供热",
        title_en="Heating",
        description=(
            "新增供热面积与供热管网，按街道 · Heating area connected and heating network "
            "laid, per subdistrict."
        ),
    )
