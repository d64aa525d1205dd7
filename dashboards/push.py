"""``citystream dashboards push``: the same folder, data source, dashboards and alert rules that
``deploy/grafana/provisioning/`` provisions from files, sent to a running Grafana over its
HTTP API with grafana-client — for a Grafana that is not started from this repository.

Idempotent: each resource is looked up by its uid first, then created (HTTP 404) or
updated; dashboards are saved with ``overwrite: true``, so pushing twice changes nothing.
:func:`describe` lists every call a push can make (``--dry-run``) without a connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import yaml

from dashboards import alerts
from dashboards.build import REPO_ROOT, dashboards
from dashboards.panels import FOLDER_TITLE, FOLDER_UID
from dashboards.query import DATASOURCE_UID
from schemas.errors import CityStreamError

DATASOURCE_FILE = Path("deploy/grafana/provisioning/datasources/citystream.yaml")
PUSH_MESSAGE = "citystream dashboards push"


class NotFound(Exception):
    """Grafana answered 404 for a look-up."""


class PushError(CityStreamError):
    """Grafana refused a call; the message names the call and Grafana's answer."""


class Transport(Protocol):
    def request(self, method: str, path: str, body: dict[str, Any] | None) -> Any: ...


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # under /api
    body: dict[str, Any] | None = None

    def line(self) -> str:
        return f"{self.method} /api{self.path}"


@dataclass(frozen=True)
class Resource:
    """One thing to create or update: looked up with ``lookup`` (None: write blindly)."""

    what: str
    lookup: str | None
    create: Call
    update: Call | None = None

    def updater(self) -> Call:
        if self.update is None:
            raise PushError(f"{self.what}: looked up, but no call updates it")
        return self.update


class GrafanaClientTransport:
    """grafana-client's HTTP client (token auth, Grafana's errors as exceptions)."""

    def __init__(self, url: str, token: str, *, timeout_s: float = 10.0) -> None:
        from grafana_client.api import GrafanaApi

        self.api = GrafanaApi.from_url(url, credential=token, timeout=timeout_s)

    def request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        from grafana_client.client import GrafanaClientError, GrafanaException

        send: Callable[..., Any] = getattr(self.api.client, method)
        try:
            return send(path, json=body) if body is not None else send(path)
        except GrafanaClientError as exc:
            if exc.status_code == 404 and method == "GET":
                raise NotFound(path) from exc
            raise PushError(f"{method} /api{path}: {exc.message}") from exc
        except GrafanaException as exc:
            raise PushError(f"{method} /api{path}: {exc.message}") from exc


def datasource_body(*, db_host: str | None, password: str | None) -> dict[str, Any]:
    """The provisioned data source, as the data source API takes it."""
    provisioned = yaml.safe_load((REPO_ROOT / DATASOURCE_FILE).read_text(encoding="utf-8"))
    (source,) = provisioned["datasources"]
    if source["uid"] != DATASOURCE_UID:
        raise PushError(f"{DATASOURCE_FILE} provisions {source['uid']}, not {DATASOURCE_UID}")
    body: dict[str, Any] = {
        "name": source["name"],
        "type": source["type"],
        "uid": source["uid"],
        "access": source["access"],
        "url": db_host or source["url"],
        "user": source["user"],
        "isDefault": source["isDefault"],
        "jsonData": dict(source["jsonData"]),
    }
    if password is not None:
        body["secureJsonData"] = {"password": password}
    return body


def resources(*, db_host: str | None = None, db_password: str | None = None) -> list[Resource]:
    """Everything a push writes, in order: folder, data source, dashboards, alert rules."""
    found: list[Resource] = [
        Resource(
            f"folder {FOLDER_UID}",
            f"/folders/{FOLDER_UID}",
            Call("POST", "/folders", {"uid": FOLDER_UID, "title": FOLDER_TITLE}),
            Call("PUT", f"/folders/{FOLDER_UID}", {"title": FOLDER_TITLE, "overwrite": True}),
        )
    ]
    source = datasource_body(db_host=db_host, password=db_password)
    found.append(
        Resource(
            f"data source {DATASOURCE_UID}",
            f"/datasources/uid/{DATASOURCE_UID}",
            Call("POST", "/datasources", source),
            Call("PUT", f"/datasources/uid/{DATASOURCE_UID}", source),
        )
    )
    for board in dashboards():
        found.append(
            Resource(
                f"dashboard {board['uid']}",
                None,
                Call(
                    "POST",
                    "/dashboards/db",
                    {
                        "dashboard": board,
                        "folderUid": FOLDER_UID,
                        "overwrite": True,
                        "message": PUSH_MESSAGE,
                    },
                ),
            )
        )
    rules = alerts.rules()
    for rule in rules:
        found.append(
            Resource(
                f"alert rule {rule['uid']}",
                f"/v1/provisioning/alert-rules/{rule['uid']}",
                Call("POST", "/v1/provisioning/alert-rules", rule),
                Call("PUT", f"/v1/provisioning/alert-rules/{rule['uid']}", rule),
            )
        )
    for group in alerts.GROUPS:
        members = [rule for rule in rules if rule["ruleGroup"] == group.name]
        # The evaluation interval belongs to the group, not to a rule.
        found.append(
            Resource(
                f"rule group {group.name}",
                None,
                Call(
                    "PUT",
                    f"/v1/provisioning/folder/{FOLDER_UID}/rule-groups/"
                    + quote(group.name, safe=""),
                    {
                        "title": group.name,
                        "folderUid": FOLDER_UID,
                        "interval": alerts.group_interval_s(group),
                        "rules": members,
                    },
                ),
            )
        )
    return found


def describe(found: list[Resource]) -> list[str]:
    """Every call a push can make, one line each (``--dry-run``); bodies (and the password)
    are not printed."""
    lines = []
    for resource in found:
        if resource.lookup is None:
            lines.append(f"{resource.create.line()}  # {resource.what}: create or replace")
            continue
        lines.append(f"GET /api{resource.lookup}  # {resource.what}: look it up")
        lines.append(f"  {resource.create.line()}  # if absent (404): create")
        lines.append(f"  {resource.updater().line()}  # if present: update")
    return lines


def push(transport: Transport, found: list[Resource]) -> list[str]:
    """Create or update each resource; return the calls made, in order."""
    made = []
    for resource in found:
        call = resource.create
        if resource.lookup is not None:
            made.append(f"GET /api{resource.lookup}")
            try:
                transport.request("GET", resource.lookup, None)
            except NotFound:
                pass
            else:
                call = resource.updater()
        transport.request(call.method, call.path, call.body)
        made.append(call.line())
    return made
