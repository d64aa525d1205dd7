"""教育 · Education: the education family's dashboard (events of ``city.education.v1``).

Totals and trends per subdistrict from ``metric_daily``, the latest events and the
corrections from the ``events`` ledger (see :mod:`dashboards.domain`).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.domain import build_domain

UID = "citystream-education"


def build() -> db.Dashboard:
    return build_domain(
        "education",
        uid=UID,
        title_zh="教育",
        title_en="Education",
        description=(
            "新投用学校与新增学位，按街道 · Schools opened and school places added, "
            "per subdistrict."
        ),
    )
