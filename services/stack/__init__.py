"""The local stack: a Kafka broker and a PostgreSQL cluster that the project starts itself.

Everything lives under ``.stack/`` (ignored by git): jars, broker data, the database
cluster, logs, ``state.json`` (what runs, where, under which PID) and ``stack.env``
(addresses and generated passwords, read by :class:`streams.settings.Settings`).
"""

from __future__ import annotations

from services.stack.state import Component, StackError

__all__ = ["Component", "StackError"]
