"""``citystream``: the one command line for operators, departments and auditors.

One module per command group, click only; the work is done by the packages they call:

- ``stack``: ``citystream stack up/down/status`` (services/stack/);
- ``setup``: ``migrate`` (streams/db/), ``topics`` (services/kafka/);
- ``access``: the Kafka principals' ACLs and passwords;
- ``departments``: ``emit``, ``import`` (services/ledger_import/), ``receipts``,
  ``receipts-rebuild`` (services/receipts/);
- ``jobs``: ``worker`` (streams/), ``demo``, ``simulate`` (services/simulator/);
- ``pledges``: ``pledges load/status``, ``report`` (services/pledges/);
- ``dashboards``: ``dashboards build/push`` (dashboards/);
- ``audit``, ``audit_history``: ``audit keygen/checkpoint/verify``, ``audit replay/as-of/explain``
  (services/audit/).

Errors become messages and exit codes in one place (:mod:`services.cli.errors`). Every
command reads :class:`streams.settings.Settings` (env prefix ``CITYSTREAM_``).
"""

from __future__ import annotations

# Its commands join the audit group as it is imported.
from services.cli import (
    access,
    audit,
    audit_history,  # noqa: F401
    dashboards,
    departments,
    jobs,
    pledges,
    setup,
    stack,
)
from services.cli.errors import group


@group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """CityStream: the district's pledges, measured while the year runs."""


for command in (
    stack.stack,
    setup.migrate,
    setup.topics,
    access.access,
    departments.emit,
    departments.import_,
    departments.receipts,
    departments.receipts_rebuild,
    jobs.worker,
    jobs.demo,
    pledges.report,
    pledges.pledges,
    jobs.simulate,
    dashboards.dashboards,
    audit.audit,
):
    main.add_command(command)
