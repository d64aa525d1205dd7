"""As the admin: the broker's ACL bindings (what :mod:`services.kafka.access` grants each
principal) and its SCRAM users."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from kafka.errors import (
    KafkaError,
)

from services.kafka.access import Grant, grants
from services.kafka.client import admin_client
from streams.settings import Settings

_RESOURCE = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactional_id": ResourceType.TRANSACTIONAL_ID,
}
_PATTERN = {"literal": ACLResourcePatternType.LITERAL, "prefixed": ACLResourcePatternType.PREFIXED}
# How long ACLs just created may take to show in describe_acls (they did lag, once).
ACL_VISIBLE_S = 10.0


def _acl(grant: Grant) -> ACL:
    return ACL(
        principal=grant.kafka_principal,
        host="*",
        operation=ACLOperation[grant.operation],
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(
            _RESOURCE[grant.resource], grant.name, _PATTERN[grant.pattern]
        ),
    )


def _resource_acls(
    admin: KafkaAdminClient, resource: str, name: str, pattern: str
) -> set[tuple[str, str]]:
    """(principal, operation) of the ALLOW bindings on one resource pattern."""
    acls, _ = admin.describe_acls(
        ACLFilter(
            principal=None,
            host="*",
            operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(_RESOURCE[resource], name, _PATTERN[pattern]),
        )
    )
    return {
        (acl.principal, acl.operation.name)
        for acl in acls
        if acl.permission_type == ACLPermissionType.ALLOW
    }


def create_acls(admin: KafkaAdminClient, wanted: Sequence[Grant]) -> None:
    """Create ``wanted`` (creating an existing binding changes nothing), check each result
    (kafka-python returns errors instead of raising them), then wait until the broker's
    authorizer shows every one: a client started right after must not be refused."""
    result: dict[str, list[Any]] = admin.create_acls([_acl(grant) for grant in wanted])
    if result.get("failed"):
        raise KafkaError(f"creating ACLs failed: {result['failed']}")
    resources = sorted({(grant.resource, grant.name, grant.pattern) for grant in wanted})
    deadline = time.monotonic() + ACL_VISIBLE_S
    while True:
        seen = {
            (resource, name, pattern, principal, operation)
            for resource, name, pattern in resources
            for principal, operation in _resource_acls(admin, resource, name, pattern)
        }
        missing = [
            grant
            for grant in wanted
            if (grant.resource, grant.name, grant.pattern, grant.kafka_principal, grant.operation)
            not in seen
        ]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise KafkaError(
                f"ACLs created but not in force after {ACL_VISIBLE_S:.0f} s: {missing}"
            )
        time.sleep(0.1)


def grant_access(settings: Settings) -> list[Grant]:
    """As the admin: create the ACLs of ``grants(settings)`` (topics need not exist yet)."""
    admin = admin_client(settings)
    try:
        granted = grants(settings)
        create_acls(admin, granted)
        return granted
    finally:
        admin.close()


def remove_grants(settings: Settings) -> int:
    """Delete the ACL bindings ``grants(settings)`` made (a test's namespace when it ends);
    returns how many were deleted."""
    admin = admin_client(settings)
    try:
        filters = [
            ACLFilter(
                principal=None,
                host="*",
                operation=ACLOperation.ANY,
                permission_type=ACLPermissionType.ANY,
                resource_pattern=ResourcePatternFilter(
                    _RESOURCE[resource], name, _PATTERN[pattern]
                ),
            )
            for resource, name, pattern in sorted(
                {(g.resource, g.name, g.pattern) for g in grants(settings)}
            )
        ]
        results = admin.delete_acls(filters)
        return sum(len(matched) for _, matched, _ in results)
    finally:
        admin.close()


def set_passwords(settings: Settings, passwords: Mapping[str, str]) -> None:
    """As the admin: create or replace the SCRAM-SHA-512 credentials of these users
    (user name → password). Connections already logged in stay; new ones need the new
    password."""
    if not passwords:
        return
    admin = admin_client(settings)
    try:
        outcome: dict[str, str | None] = admin.alter_user_scram_credentials(
            [
                UserScramCredentialUpsertion(user, ScramMechanism.SCRAM_SHA_512, password)
                for user, password in sorted(passwords.items())
            ]
        )
    finally:
        admin.close()
    failed = {user: error for user, error in outcome.items() if error}
    if failed:
        raise KafkaError(f"setting SCRAM credentials failed: {failed}")


def scram_users(settings: Settings) -> set[str]:
    """The users the broker holds SCRAM credentials for."""
    admin = admin_client(settings)
    try:
        found: dict[str, Any] = admin.describe_user_scram_credentials()
    finally:
        admin.close()
    return {user for user, info in found.items() if not info.get("error")}
