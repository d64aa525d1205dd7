"""What every stage of the import shares: the file-level error, the exit codes, and a
rejected row as the rejects file and the summary show it."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.errors import CityStreamError
from schemas.rejections import Rejection

# Exit codes of `citystream import`.
EXIT_OK = 0  # every row sent (or, with --dry-run, every row valid)
EXIT_FAILED = 1  # file-level error: unreadable, unknown columns, Kafka unreachable
EXIT_REJECTED = 2  # some rows rejected (by the import, or with --wait by the worker)
EXIT_UNCONFIRMED = 3  # --wait: some rows sent had no receipt from the worker in time

REJECTS_COLUMNS = ("row", "column", "value", "reason", "rule", "message_zh", "message_en")


class LedgerError(CityStreamError):
    """The ledger as a whole cannot be imported; the message says what to do. Nothing sent."""


@dataclass(frozen=True)
class RowRejection:
    row: int  # sheet row number (CSV record, JSONL line), the header being row 1
    column: str  # the ledger's own header for the offending field ("" for the whole row)
    value: str  # the cell as written
    reason: str
    rule: str
    message_zh: str
    message_en: str
    cells: tuple[str, ...]  # the original row

    @classmethod
    def of(
        cls, row: int, rejection: Rejection, *, column: str, value: str, cells: tuple[str, ...]
    ) -> RowRejection:
        zh, en = rejection.message_zh, rejection.message_en
        if column and rejection.field and column != rejection.field:
            # Name the column as the clerk wrote it: 所属街道：… rather than district：…
            zh = zh.replace(f"{rejection.field}：", f"{column}：", 1)
            en = en.replace(f"{rejection.field}: ", f"{column} ({rejection.field}): ", 1)
        return cls(
            row=row,
            column=column,
            value=value if value else (rejection.value or ""),
            reason=rejection.reason,
            rule=rejection.rule,
            message_zh=zh,
            message_en=en,
            cells=cells,
        )
