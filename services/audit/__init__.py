"""``citystream audit``: what lets an auditor trust a figure without trusting the operators.

- :mod:`services.audit.verify` walks the ledger's hash chains (``audit verify``);
- :mod:`services.audit.replay` recomputes every rollup from Kafka or from the ledger with
  the workers' own code and diffs it against ``metric_daily`` (``audit replay``);
- :mod:`services.audit.as_of` gives pledge progress as it stood at a past moment
  (``audit as-of``);
- :mod:`services.audit.explain` lists the events behind a pledge's figure
  (``audit explain``);
- :mod:`services.audit.checkpoint` signs chain heads and judges the signed ones
  (``audit keygen``, ``audit checkpoint``, ``verify --trust``).

The SQL they need is :mod:`streams.db.audit` (ledger rows as
:class:`streams.db.ledger_row.LedgerRow`, the rollups) and :mod:`streams.db.cursors` (chain
heads, incarnations); only :mod:`services.kafka.reader` reads Kafka; everything here is
computation on what they return (:mod:`services.audit.rejudge` judges a replayed history).
The commands themselves are in :mod:`services.cli.audit` and :mod:`services.cli.audit_history`.
"""
