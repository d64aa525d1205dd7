"""Errors → messages and exit codes, in one place.

Commands let the project's errors (:class:`schemas.errors.CityStreamError` and its kin)
rise; the group that runs them (:class:`Commands`) prints one line, ``error: <what to
do>``, and exits with the code below. Anything else is a bug and keeps its traceback.

Exit codes: **0** done; **1** failed, or (audit) something does not hold; **2** wrong usage
(Click), or some records refused; **3** the audit could not run (PostgreSQL or Kafka
unreachable: nothing was checked), or no receipt came in time; **4** Kafka holds a record
this installation cannot decode (audit replay).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import click
from rich.markup import escape

from schemas.errors import CityStreamError
from services.cli.output import err_console

EXIT_FAILED = 1
EXIT_UNAVAILABLE = 3
EXIT_UNDECODABLE = 4


class Failure(CityStreamError):
    """A command's own refusal, with its exit code (:func:`fail`)."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    raise Failure(message, code)


def _outcome(exc: CityStreamError, *, unavailable: bool) -> tuple[int, str]:
    """The exit code and message for ``exc``; ``unavailable``: the audit's groups, where a
    source that cannot be read means nothing was checked (3), not that something is wrong.
    Imported here, on failure only, so that starting a command loads no client library."""
    from schemas.catalogue import CatalogueError
    from services.kafka.client import DeliveryError, KafkaAuthenticationError
    from services.kafka.reader import KafkaReadError, UndecodableRecordError
    from streams.db import DatabaseError, DatabaseUnavailable
    from streams.settings import MissingCredentials

    if isinstance(exc, Failure):
        return exc.code, str(exc)
    if isinstance(exc, UndecodableRecordError):
        return EXIT_UNDECODABLE, f"{exc} (nothing was checked)"
    unreadable = (DatabaseError, KafkaReadError, KafkaAuthenticationError, MissingCredentials)
    if unavailable and isinstance(exc, (*unreadable, DeliveryError)):
        return EXIT_UNAVAILABLE, f"{exc} (nothing was checked)"
    if isinstance(exc, CatalogueError):
        return EXIT_FAILED, f"the catalogue is invalid: {exc} (fix seeds/, see seeds/README.md)"
    if isinstance(exc, DatabaseUnavailable):
        return EXIT_FAILED, f"{exc} (is the stack up? `citystream stack status`)"
    return EXIT_FAILED, str(exc)


class Commands(click.Group):
    """A click group whose commands' errors are reported by :func:`_outcome`.

    ``unavailable=True`` (the audit): unreadable sources exit 3. Groups nest; the innermost
    one that sees the error reports it."""

    def __init__(self, *args: Any, unavailable: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unavailable = unavailable

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CityStreamError as exc:
            code, message = _outcome(exc, unavailable=self.unavailable)
            # Messages quote what the user sent and name reason codes in brackets: never
            # markup. soft_wrap: a long path stays whole, so it can be copied (and grepped).
            err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
            raise SystemExit(code) from None


def group(**kwargs: Any) -> Callable[[Callable[..., Any]], Commands]:
    """``@group()``: a :class:`Commands` group."""
    return click.group(cls=Commands, **kwargs)
