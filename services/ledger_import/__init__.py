"""``citystream import``: a department's spreadsheet ledger (台账) → validated events → Kafka.

Reads CSV (UTF-8 with or without BOM, or a GB18030/GBK export from Excel), XLSX (streamed
with openpyxl's read-only mode) or JSONL (one event object per line); maps the clerk's
Chinese headers (项目名称, 所属街道, 完成日期, 面积（㎡）, …) onto event fields; turns each row
into the event dict and judges it with the real :func:`schemas.validation.decode`; sends the
valid rows through :class:`services.kafka.producer.Producer` (topics ``city.<family>.v1``) and
writes every rejected row, with its sheet row number, column, value, reason and bilingual
message, to ``<stem>.rejects.csv`` beside the ledger.

Event ids are ``ledger_event_id(department, normalise_text(source_ref))``: importing the same
ledger again sends the same ids and the sink counts nothing twice. A row without a
reporting date is reported as of its own ``occurred_at``, so the same row always becomes
byte-for-byte the same event (with "now" a re-import would be a different record under a
known id, which the sink dead-letters as ``duplicate_event_id``).

One module per stage, each readable and tested without a socket
(``tests/unit/ledger_import/test_<stage>.py``):

1. :mod:`~services.ledger_import.files`: open the file, find the header row;
2. :mod:`~services.ledger_import.headers`: headers → fields and units, notes columns;
   :mod:`~services.ledger_import.layout`: one- or two-row headers, the event type;
3. :mod:`~services.ledger_import.cells`: one cell → its field's value; refusals said in the
   column's unit;
4. :mod:`~services.ledger_import.plan`: rows → events and rejections; total rows skipped
   (:mod:`~services.ledger_import.totals` recognises them);
5. :mod:`~services.ledger_import.state`: each row against what the ledger holds (from the
   department's receipts): already imported, new, or changed → a correction or a refusal;
6. :mod:`~services.ledger_import.send`: events → the producer, every acknowledgement checked;
7. :mod:`~services.ledger_import.wait`: ``--wait``, the worker's receipt of each row sent;
8. :mod:`~services.ledger_import.run`: the stages wired to Kafka and the console;

and :mod:`~services.ledger_import.report`: the rejects file, the progress bars, the summary.

No database is touched: what the ledger holds comes from the department's receipts topic
``city.receipts.<department>.v1`` (:mod:`services.receipts`). Env: what
:class:`streams.settings.Settings` reads, in particular ``CITYSTREAM_KAFKA_BOOTSTRAP``,
``CITYSTREAM_TOPIC_NAMESPACE``, ``CITYSTREAM_PRODUCER_TIMEOUT_S``.
"""

from services.ledger_import.base import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_UNCONFIRMED,
    REJECTS_COLUMNS,
    LedgerError,
    RowRejection,
)
from services.ledger_import.cells import CellError, convert, derived_ref, parse_datetime
from services.ledger_import.files import Ledger, detect_encoding, is_rejects_file, open_ledger
from services.ledger_import.headers import (
    BY_FIELD,
    FIELDS,
    Column,
    FieldSpec,
    Match,
    header_key,
    match_header,
    model_fields,
    read_mapping,
    resolve_columns,
)
from services.ledger_import.layout import Layout, Options, infer_event_type, ledger_columns
from services.ledger_import.plan import Entry, Plan, plan_import
from services.ledger_import.report import default_rejects_path, write_rejects
from services.ledger_import.run import ImportReport, ImportRequest, run_import, sender
from services.ledger_import.send import SEND_BATCH, EventSink, send_plan
from services.ledger_import.state import Approval, compare

__all__ = [
    "BY_FIELD",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_UNCONFIRMED",
    "FIELDS",
    "REJECTS_COLUMNS",
    "SEND_BATCH",
    "Approval",
    "CellError",
    "Column",
    "Entry",
    "EventSink",
    "FieldSpec",
    "ImportReport",
    "ImportRequest",
    "Layout",
    "Ledger",
    "LedgerError",
    "Match",
    "Options",
    "Plan",
    "RowRejection",
    "compare",
    "convert",
    "default_rejects_path",
    "derived_ref",
    "detect_encoding",
    "header_key",
    "infer_event_type",
    "is_rejects_file",
    "ledger_columns",
    "match_header",
    "model_fields",
    "open_ledger",
    "parse_datetime",
    "plan_import",
    "read_mapping",
    "resolve_columns",
    "run_import",
    "send_plan",
    "sender",
    "write_rejects",
]
