"""Receipts, as a department sees them: what the worker decided about each record it sent
(``city.receipts.<department>.v1``; the format is :mod:`schemas.receipts`, the worker's side
:mod:`streams.receipts`).

- :mod:`~services.kafka.receipts` — reads a department's receipts topic (kafka-python).
- :mod:`~services.receipts.view` — what the receipts say, pure: records settled, ledger held.
- :mod:`~services.receipts.report` — ``citystream receipts``: table, CSV, XLSX.
- :mod:`~services.receipts.rebuild` — ``citystream receipts-rebuild``: publish them again
  from PostgreSQL.
"""
