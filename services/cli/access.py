"""``citystream access``: the Kafka principals — their ACLs and passwords (services/kafka/)."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from services.cli.errors import fail, group
from services.cli.output import console
from streams.settings import get_settings


@group()
def access() -> None:
    """Kafka principals: what each may do, their passwords (admin only)."""


@access.command("show")
def access_show() -> None:
    """List every ACL the principals hold on this installation's topics and group."""
    from services.kafka.access import SUPER_USERS, grants

    settings = get_settings()
    table = Table("principal", "resource", "name", "operation")
    for grant in grants(settings):
        table.add_row(grant.principal, grant.resource, grant.name, grant.operation)
    console.print(table)
    console.print(
        f"super users (everything): {', '.join(SUPER_USERS)}; anything else is refused "
        "(allow.everyone.if.no.acl.found=false)"
    )


@access.command("users")
def access_users() -> None:
    """Set the SCRAM password of every principal whose password this process holds (as the
    admin). Compose's migrate step runs it, so a password changed in .env takes effect."""
    from services.kafka.acls import set_passwords
    from streams.settings import PRINCIPALS

    settings = get_settings()
    held = {
        principal: settings.kafka_password(principal).get_secret_value()
        for principal in PRINCIPALS
        if principal != "admin" and settings.has_kafka_credentials(principal)
    }
    set_passwords(settings, held)
    console.print("passwords set: " + (", ".join(sorted(held)) or "none held"))


@access.command("rotate")
@click.argument("principal")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the new password from standard input instead of generating one.",
)
def access_rotate(principal: str, password_stdin: bool) -> None:
    """Give PRINCIPAL (a department, worker, auditor, admin) a new Kafka password, as the admin.

    Its open connections stay logged in; new ones need the new password. On the local stack
    the new password is written to .stack/stack.env; otherwise it is printed once, to hand
    to the principal's owner (and to put in compose's .env).
    """
    import secrets

    from services.kafka.acls import set_passwords
    from services.stack import state
    from streams.settings import (
        PRINCIPALS,
        STACK_ENV_FILE,
        password_variable,
        user_overrides,
    )

    if principal not in PRINCIPALS:
        fail(f"{principal!r} is not a Kafka principal; one of {', '.join(PRINCIPALS)}")
    password = sys.stdin.readline().strip() if password_stdin else secrets.token_urlsafe(24)
    if len(password) < 16:
        fail("the new password must have at least 16 characters")
    set_passwords(get_settings(), {principal: password})
    variable = password_variable(principal)
    if "kafka_bootstrap" not in user_overrides() and STACK_ENV_FILE.exists():
        state.write_env({variable: password})
        console.print(f"{principal}: new password set and written to {STACK_ENV_FILE}")
    elif password_stdin:
        console.print(f"{principal}: new password set; give it to its owner as {variable}")
    else:
        console.print(f"{principal}: new password set; give it to its owner as {variable}:")
        console.print(password, markup=False, highlight=False)
