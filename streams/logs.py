"""Structured JSON log lines for the worker's own logger (``citystream.*``), one object per
line on stderr: ``ts``, ``level``, ``logger``, ``msg`` and whatever the call passed in
``extra=`` (topic, partition, offset, event_id, reason, …)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("citystream")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # faust configures the root logger its own way; ours stays JSON and separate.
    root.propagate = False
