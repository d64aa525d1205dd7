"""Stage 1, files: open a ledger (CSV, XLSX, JSONL) and find its header row.

CSV is read as UTF-8 (with or without BOM) or GB18030 (GBK, as Excel saves it on Chinese
Windows); XLSX is streamed with openpyxl's read-only mode (a 100,000-row sheet is never in
memory at once); JSONL is one event object per line. No header is interpreted here.
"""

from __future__ import annotations

import codecs
import csv
import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from services.ledger_import.base import REJECTS_COLUMNS, LedgerError

Format = Literal["csv", "xlsx", "jsonl"]


@dataclass
class Ledger:
    """An open ledger: its headers and an iterator over (sheet row number, cells).

    For JSONL there are no headers; each row is one line, (line number, [line text]).
    """

    path: Path
    format: Format
    headers: list[str]
    rows: Iterator[tuple[int, Sequence[Any]]]
    # The (last) header row; data rows follow it.
    header_row: int = 0
    # Every header row when the header spans two (a merged group cell over sub-headers),
    # and the upper row's cells as written; set by the headers stage.
    header_rows: tuple[int, ...] = ()
    upper_headers: list[str] | None = None
    encoding: str | None = None
    sheet: str | None = None
    # Data rows expected (for the progress bar's ETA); None when the file does not say.
    total_hint: int | None = None

    def peek(self) -> tuple[int, Sequence[Any]] | None:
        """The next row, left in place for whoever reads the rows next."""
        row = next(self.rows, None)
        if row is not None:
            self.rows = itertools.chain([row], self.rows)
        return row

    def skip(self) -> None:
        """Drop the next row (a second header row, once the headers stage has read it)."""
        next(self.rows, None)


ENCODING_NAMES = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with BOM",
    "gb18030": "GB18030 (GBK, as Excel saves CSV on Chinese Windows)",
}


def detect_encoding(path: Path) -> str:
    """utf-8-sig with a BOM, utf-8 when every byte decodes, else gb18030 (a superset of
    GBK and GB2312); LedgerError when neither reads the file."""
    with path.open("rb") as fh:
        if fh.read(3) == codecs.BOM_UTF8:
            return "utf-8-sig"
    for encoding in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise LedgerError(
        f"{path} is neither UTF-8 nor GB18030/GBK text; in Excel use "
        "File → Save As → 'CSV UTF-8 (comma delimited)'"
    )


def _count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _find_header(rows: Iterator[tuple[int, Sequence[Any]]], path: Path) -> tuple[int, list[str]]:
    """The header is the first row with two or more cells filled: a title row above it
    (one merged cell, 2024年供热台账) and blank rows are skipped."""
    for number, cells in rows:
        if sum(not blank(c) for c in cells) >= 2:
            return number, ["" if c is None else str(c) for c in cells]
        if number >= 20:
            break
    raise LedgerError(
        f"{path}: no header row found in the first 20 rows (a row with the column names, "
        "e.g. 台账编号, 项目名称, 所属街道, 完成日期, 面积（㎡）)"
    )


@contextmanager
def open_ledger(path: Path, *, sheet: str | None = None) -> Iterator[Ledger]:
    if not path.is_file():
        raise LedgerError(f"{path} does not exist or is not a file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        with _open_csv(path) as ledger:
            if is_rejects_file(ledger.headers):
                # A rejects file the clerk fixed: our leading columns are not the ledger's.
                skip = len(REJECTS_COLUMNS)
                ledger.headers = ledger.headers[skip:]
                ledger.rows = ((n, cells[skip:]) for n, cells in ledger.rows)
            yield ledger
    elif suffix in (".xlsx", ".xlsm"):
        with _open_xlsx(path, sheet) as ledger:
            yield ledger
    elif suffix in (".jsonl", ".ndjson"):
        with _open_jsonl(path) as ledger:
            yield ledger
    elif suffix in (".xls", ".et", ".ods"):
        raise LedgerError(
            f"{path}: {suffix} workbooks cannot be read; in Excel or WPS save the sheet as "
            ".xlsx or as 'CSV UTF-8'"
        )
    else:
        raise LedgerError(f"{path}: unknown ledger format {suffix!r}; use .csv, .xlsx or .jsonl")


@contextmanager
def _open_csv(path: Path) -> Iterator[Ledger]:
    encoding = detect_encoding(path)
    with path.open(encoding=encoding, newline="") as fh:
        first = fh.readline()
        fh.seek(0)
        delimiter = max(",\t;", key=first.count)
        reader = csv.reader(fh, delimiter=delimiter)

        def rows() -> Iterator[tuple[int, Sequence[Any]]]:
            number = 0
            try:
                for number, cells in enumerate(reader, start=1):
                    yield number, cells
            except csv.Error as exc:
                raise LedgerError(f"{path}, row {number + 1}: not valid CSV ({exc})") from exc

        it = rows()
        header_row, headers = _find_header(it, path)
        yield Ledger(
            path=path,
            format="csv",
            headers=headers,
            rows=it,
            header_row=header_row,
            encoding=encoding,
            total_hint=max(0, _count_lines(path) - header_row),
        )


@contextmanager
def _open_xlsx(path: Path, sheet: str | None) -> Iterator[Ledger]:
    import zipfile

    from openpyxl import load_workbook

    try:
        # read_only streams the sheet's XML row by row; data_only gives a formula's last
        # computed value, as the clerk sees it.
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise LedgerError(
            f"cannot read {path} as an Excel workbook ({type(exc).__name__}: {exc}); "
            "save it again as .xlsx, or as 'CSV UTF-8'"
        ) from exc
    try:
        if sheet is None:
            worksheet = workbook.worksheets[0]
        elif sheet in workbook.sheetnames:
            worksheet = workbook[sheet]
        else:
            raise LedgerError(
                f"{path} has no sheet {sheet!r}; its sheets are {', '.join(workbook.sheetnames)}"
            )
        it: Iterator[tuple[int, Sequence[Any]]] = enumerate(
            worksheet.iter_rows(values_only=True), start=1
        )
        header_row, headers = _find_header(it, path)
        max_row = worksheet.max_row
        yield Ledger(
            path=path,
            format="xlsx",
            headers=headers,
            rows=it,
            header_row=header_row,
            sheet=str(worksheet.title),
            total_hint=max_row - header_row if isinstance(max_row, int) else None,
        )
    finally:
        workbook.close()


@contextmanager
def _open_jsonl(path: Path) -> Iterator[Ledger]:
    try:
        encoding: str | None = detect_encoding(path)
    except LedgerError:
        # JSON Lines are UTF-8 by definition: a line that is not is that line's problem
        # (reported as invalid_utf8), not a reason to refuse the lines beside it.
        encoding = None
    with path.open("rb") as fh:
        rows = (
            (n, [_jsonl_text(raw, encoding, first=n == 1)])
            for n, raw in enumerate(fh, start=1)
            if raw.strip()
        )
        yield Ledger(
            path=path,
            format="jsonl",
            headers=[],
            rows=rows,
            encoding=encoding or "utf-8",
            total_hint=_count_lines(path),
        )


def _jsonl_text(raw: bytes, encoding: str | None, *, first: bool) -> str | bytes:
    """The line as text, or its bytes when they are not UTF-8 (rejected per line)."""
    if first and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return raw.decode(encoding or "utf-8")
    except UnicodeDecodeError:
        return raw


def is_rejects_file(headers: Sequence[str]) -> bool:
    return tuple(h.strip() for h in headers[: len(REJECTS_COLUMNS)]) == REJECTS_COLUMNS


def ledger_stem(path: Path) -> str:
    """The ledger's name for derived references; a rejects file counts as its ledger."""
    return path.stem.removesuffix(".rejects")
