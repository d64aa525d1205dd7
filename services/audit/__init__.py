"""``citystream audit``: what lets an auditor trust a figure without trusting the operators.

- :mod:`services.audit.verify` walks the ledger's hash chains (``audit verify``);
- :mod:`services.audit.replay` recomputes every rollup from Kafka or from the ledger with
  the workers' own code and diffs it against ``metric_daily`` (``audit replay``);
- :mod:`services.audit.as_of` gives pledge progress as it stood at a past moment
  (``audit as-of``);
- :mod:`services.audit.explain` lists the events behind a pledge's figure
  (``audit explain``).

Only :mod:`services.audit.store` speaks SQL and only :mod:`services.kafka.reader` reads
Kafka; everything else here is computation on what they return. The commands themselves
are in :mod:`services.audit.commands`.
"""
