"""The project's own PostgreSQL query type for panels and alert rules.

grafana-foundation-sdk has no builder for Grafana's PostgreSQL data source, so this module
defines one: a raw SQL query (``rawSql``) with its ``format`` (``table`` or
``time_series``), its ``refId`` and the data source it runs on (uid ``citystream-pg``,
provisioned in ``deploy/grafana/provisioning/datasources/citystream.yaml``). It serialises
to the same JSON the data source's code editor saves.
"""

from __future__ import annotations

from typing import Literal

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as dm

# The one data source every panel and alert rule names (tests check it is provisioned).
DATASOURCE_UID = "citystream-pg"
DATASOURCE_TYPE = "grafana-postgresql-datasource"

Format = Literal["table", "time_series"]
FORMATS: tuple[Format, ...] = ("table", "time_series")


def datasource_ref() -> dm.DataSourceRef:
    return dm.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


class PostgresQuery(cogvariants.Dataquery):
    """One SQL query, as Grafana stores it in a panel's ``targets`` or an alert rule."""

    def __init__(
        self,
        raw_sql: str,
        *,
        ref_id: str = "A",
        format: Format = "table",
        datasource_uid: str = DATASOURCE_UID,
    ) -> None:
        if format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, not {format!r}")
        if not raw_sql.strip():
            raise ValueError(f"query {ref_id}: rawSql is empty")
        self.raw_sql = raw_sql
        self.ref_id = ref_id
        self.format = format
        self.datasource_uid = datasource_uid

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": {"type": DATASOURCE_TYPE, "uid": self.datasource_uid},
            # Code mode: the SQL is ours, not the visual builder's.
            "editorMode": "code",
            "format": self.format,
            "rawQuery": True,
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
        }


class SQL(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder for :class:`PostgresQuery`, to pass to a panel's ``with_target``."""

    def __init__(self, raw_sql: str, *, ref_id: str = "A", format: Format = "table") -> None:
        self._internal = PostgresQuery(raw_sql, ref_id=ref_id, format=format)

    def build(self) -> PostgresQuery:
        return self._internal
