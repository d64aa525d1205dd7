"""The generated Grafana files, checked without Grafana (layers 2 and 4 of DESIGN.md's
"Grafana without Grafana"): committed == fresh build; the JSON Schema of the 11.6 line;
cross-checks of data source uids, variables and alert rule queries against provisioning;
the layout; the push plan and its dry run. Opens no socket.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft7Validator

from dashboards import alerts, build, pledges, push
from dashboards.macros import variable_names
from dashboards.panels import FOLDER_TITLE, FOLDER_UID
from dashboards.query import DATASOURCE_TYPE
from dashboards.sqlparts import EVENT_LABELS, displays, family_metrics, milestone_event_types
from schemas.catalogue import EVENT_FAMILIES, EVENT_METRICS, LEVEL_METRICS
from schemas.milestones import ProjectMilestone
from schemas.seeds import load_catalogue
from schemas.topics import FAMILIES
from services.cli import main

ROOT = Path(__file__).resolve().parents[2]
# Read in place, never copied into the repository; CI always has ../shared/reference.
REFERENCE = ROOT.parent / "shared/reference/grafana"
PROVISIONING = ROOT / "deploy/grafana/provisioning"
# The overview, pipeline and audit, and one board per event family (from its declaration).
EXPECTED_UIDS = {
    "citystream-pledges",
    "citystream-pipeline",
    "citystream-audit",
    *(family.dashboard_uid for family in FAMILIES),
}
# Grafana's own variables, and the ones it sets for data links and field names.
BUILTIN = re.compile(r"^__")


def committed_dashboards() -> list[dict[str, Any]]:
    files = sorted((ROOT / build.DASHBOARD_DIR).glob("*.json"))
    return [json.loads(path.read_text(encoding="utf-8")) for path in files]


@pytest.fixture(scope="module")
def boards() -> list[dict[str, Any]]:
    return committed_dashboards()


@pytest.fixture(scope="module")
def alerting() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / build.ALERTING_FILE).read_text("utf-8"))
    return loaded


@pytest.fixture(scope="module")
def provisioned_uids() -> set[str]:
    sources = yaml.safe_load((PROVISIONING / "datasources/citystream.yaml").read_text("utf-8"))
    return {source["uid"] for source in sources["datasources"]}


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows and the panels of collapsed rows included."""
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def reference(name: str) -> dict[str, Any]:
    path = REFERENCE / name
    assert path.is_file(), f"{path} is missing: the reference schemas live in ../shared/reference"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def errors(validator: Draft7Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
        for e in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


# --- layer 2: the committed JSON -----------------------------------------------------------------


def test_committed_files_equal_a_fresh_build() -> None:
    stale = build.differing()
    assert not stale, f"run `citystream dashboards build` and commit: {stale}"


def test_every_dashboard_is_committed_once_with_a_stable_uid(boards: list[dict[str, Any]]) -> None:
    assert {board["uid"] for board in boards} == EXPECTED_UIDS
    assert len(boards) == len(EXPECTED_UIDS) == 3 + len(FAMILIES)
    # the first five families keep the addresses operations staff bookmarked
    assert {f"citystream-{name}" for name in ("housing", "education", "heating")} < EXPECTED_UIDS
    for board in boards:
        assert (ROOT / build.DASHBOARD_DIR / f"{board['uid']}.json").is_file()


def test_every_dashboard_follows_the_grafana_11_6_schema(boards: list[dict[str, Any]]) -> None:
    schema = reference("dashboard.jsonschema.json")
    Draft7Validator.check_schema(schema)
    validator = Draft7Validator(schema)
    for board in boards:
        assert not errors(validator, board), board["uid"]


def test_time_series_panels_follow_the_panel_schema(boards: list[dict[str, Any]]) -> None:
    schema = reference("timeseries.jsonschema.json")
    definitions = schema["definitions"]
    options = Draft7Validator({"$ref": "#/definitions/Options", "definitions": definitions})
    custom = Draft7Validator({"$ref": "#/definitions/FieldConfig", "definitions": definitions})
    checked = 0
    for board in boards:
        for panel in panels(board):
            if panel["type"] != "timeseries":
                continue
            checked += 1
            assert not errors(options, panel["options"]), (board["uid"], panel["title"])
            field_custom = panel["fieldConfig"]["defaults"].get("custom", {})
            assert not errors(custom, field_custom), (board["uid"], panel["title"])
    assert checked >= 10


def test_json_is_sorted_and_stable() -> None:
    for path in sorted((ROOT / build.DASHBOARD_DIR).glob("*.json")):
        text = path.read_text(encoding="utf-8")
        assert text == build.render_json(json.loads(text)), path.name


# --- layer 4: cross-checks -----------------------------------------------------------------------


def test_every_datasource_uid_a_dashboard_names_is_provisioned(
    boards: list[dict[str, Any]], provisioned_uids: set[str]
) -> None:
    used = set()
    for board in boards:
        for variable in board.get("templating", {}).get("list", []):
            if "datasource" in variable:
                used.add(variable["datasource"]["uid"])
        for panel in panels(board):
            if "datasource" in panel:
                used.add(panel["datasource"]["uid"])
                assert panel["datasource"]["type"] == DATASOURCE_TYPE
            for target in panel.get("targets", []):
                used.add(target["datasource"]["uid"])
    assert used, "no data source named at all"
    assert used <= provisioned_uids, f"not provisioned: {used - provisioned_uids}"


def _text_with_variables(panel: dict[str, Any]) -> list[str]:
    texts = [panel.get("title", "")]
    texts += [target["rawSql"] for target in panel.get("targets", [])]
    texts += [
        link.get("url", "")
        for link in panel.get("fieldConfig", {}).get("defaults", {}).get("links", [])
    ]
    return texts


def test_every_variable_used_is_defined_before_it_is_used(boards: list[dict[str, Any]]) -> None:
    for board in boards:
        defined: list[str] = []
        for variable in board.get("templating", {}).get("list", []):
            used = variable_names(variable["query"])
            assert used <= set(defined), (board["uid"], variable["name"], used - set(defined))
            defined.append(variable["name"])
        for panel in panels(board):
            for text in _text_with_variables(panel):
                used = {name for name in variable_names(text) if not BUILTIN.match(name)}
                assert used <= set(defined), (board["uid"], panel.get("title"), used)
            if panel.get("repeat"):
                assert panel["repeat"] in defined


def test_panel_sql_avoids_time_group_whose_sql_differs_with_timescaledb(
    boards: list[dict[str, Any]],
) -> None:
    # With the data source in TimescaleDB mode, $__timeGroup becomes time_bucket(), which the
    # plain PostgreSQL of the tests lacks: a panel using it would run SQL no test ran.
    for board in boards:
        for panel in panels(board):
            for target in panel.get("targets", []):
                assert "$__timeGroup" not in target["rawSql"], (board["uid"], panel["title"])


def test_column_names_fit_postgresqls_identifier_length(boards: list[dict[str, Any]]) -> None:
    # PostgreSQL cuts identifiers at 63 bytes: a longer column name would reach Grafana cut.
    queries = [t["rawSql"] for b in boards for p in panels(b) for t in p.get("targets", [])]
    queries += [
        q["model"]["rawSql"] for r in alerts.rules() for q in r["data"] if "rawSql" in q["model"]
    ]
    for query in queries:
        for name in re.findall(r'"([^"]+)"', query):
            assert len(name.encode()) <= 63, name


def test_time_series_queries_use_the_time_series_format(boards: list[dict[str, Any]]) -> None:
    for board in boards:
        for panel in panels(board):
            for target in panel.get("targets", []):
                assert target["format"] in ("table", "time_series")
                if panel["type"] == "timeseries":
                    assert target["format"] == "time_series", (board["uid"], panel["title"])


def test_panel_ids_are_unique_and_panels_do_not_overlap(boards: list[dict[str, Any]]) -> None:
    for board in boards:
        ids = [panel["id"] for panel in panels(board)]
        assert len(ids) == len(set(ids)), board["uid"]
        cells: dict[tuple[int, int], str] = {}
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, (board["uid"], panel["title"])
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in cells, (board["uid"], panel["title"], cells[(x, y)])
                    cells[(x, y)] = panel["title"]


def test_titles_are_chinese_first_then_english(boards: list[dict[str, Any]]) -> None:
    cjk = re.compile(r"[\u4e00-\u9fff]")
    for board in boards:
        assert " · " in board["title"] and cjk.match(board["title"]), board["title"]
        for panel in panels(board):
            if panel.get("repeat"):
                continue  # the pledge's own bilingual title
            zh, _, en = panel["title"].partition(" · ")
            # English after the Chinese (it may quote a Chinese term, as in "moved back (回迁)")
            assert cjk.search(zh) and re.match(r"[A-Z]", en), panel["title"]


def test_dashboard_provider_matches_the_folder_the_code_uses() -> None:
    loaded = yaml.safe_load((PROVISIONING / "dashboards/citystream.yaml").read_text("utf-8"))
    (provider,) = loaded["providers"]
    assert provider["folder"] == FOLDER_TITLE
    assert provider["folderUid"] == FOLDER_UID


def test_every_event_type_and_family_metric_has_a_label() -> None:
    assert set(EVENT_METRICS) <= set(EVENT_LABELS)
    for family in EVENT_FAMILIES:
        metrics = family_metrics(family)
        assert metrics and all(" · " in display.title for display in metrics), family


def _board(boards: list[dict[str, Any]], uid: str) -> dict[str, Any]:
    return next(board for board in boards if board["uid"] == uid)


def _sql(panel: dict[str, Any]) -> str:
    return "\n".join(target["rawSql"] for target in panel.get("targets", []))


def test_level_metrics_are_read_from_the_ledger_never_from_metric_daily(
    boards: list[dict[str, Any]],
) -> None:
    # metric_daily has no row of a level (streams/rollup.py skips them): a panel summing it
    # there would show 0 for ever.
    assert LEVEL_METRICS, "no level metric declared"
    summed = re.compile(r"metric = '([^']+)'")
    for board in boards:
        for panel in panels(board):
            query = _sql(panel)
            if "metric_daily" in query:
                read = set(summed.findall(query))
                assert read and not read & LEVEL_METRICS, (board["uid"], panel["title"])
    catalogue = load_catalogue()
    for metric in LEVEL_METRICS:
        display = displays()[metric]
        assert display.level and display.unit == catalogue.metric(metric).display_unit == "%"
        board = _board(boards, f"citystream-{metric.split('.')[0]}")
        shown = [p for p in panels(board) if display.label_zh in p["title"] and p["type"] != "row"]
        # the latest level, its reports over time and per subdistrict, the report table
        assert len(shown) == 4, [p["title"] for p in shown]
        for panel in shown:
            assert f"r.measures ->> '{metric}'" in _sql(panel), panel["title"]
            assert "FROM events" in _sql(panel), panel["title"]
        (latest,) = [p for p in panels(board) if p["title"].endswith("(latest report)")]
        assert latest["type"] == "stat"
        assert latest["fieldConfig"]["defaults"]["unit"] == "percent"
        (reports,) = [p for p in panels(board) if p["title"].endswith(": reports")]
        assert "numerator" in _sql(reports) and "denominator" in _sql(reports)
        # the order the pledge rules pick the latest report in
        assert "occurred_at DESC, reported_at DESC, event_id DESC" in _sql(latest)


def test_milestone_metrics_count_whole_projects_in_the_seeds_units(
    boards: list[dict[str, Any]],
) -> None:
    catalogue = load_catalogue()
    checked = 0
    for family in FAMILIES:
        board = _board(boards, family.dashboard_uid)
        by_title = {panel["title"]: panel for panel in panels(board)}
        for kind in family.events:
            if not issubclass(kind.model, ProjectMilestone):
                continue
            for metric in kind.metrics:
                display = displays()[metric]
                stat = by_title[display.title]
                defaults = stat["fieldConfig"]["defaults"]
                assert defaults["decimals"] == 0, display.title
                assert defaults["unit"] == f"suffix: {catalogue.metric(metric).display_unit}"
                checked += 1
        tables = [p for p in panels(board) if p["title"] == "项目节点 · Project milestones"]
        if milestone_event_types(family.name):
            (table,) = tables
            query = _sql(table)
            for column in ("项目 · Project", "节点 · Milestone", "日期 · Date"):
                assert f'"{column}"' in query, (family.name, column)
            for event_type in milestone_event_types(family.name):
                assert f"'{event_type}'" in query
        else:
            assert not tables, family.name
    assert checked >= 10


def test_level_pledges_show_percent_and_gaps_in_percentage_points(
    boards: list[dict[str, Any]],
) -> None:
    overview = _board(boards, pledges.UID)
    by_title = {panel["title"]: _sql(panel) for panel in panels(overview)}
    assert "个百分点" in by_title["承诺一览 · All pledges"]
    assert "个百分点" in by_title["差距 · Gap"]
    audit_board = _board(boards, "citystream-audit")
    definition = _sql(next(p for p in panels(audit_board) if p["title"].startswith("承诺定义")))
    for code in ("metric", "items", "level"):
        assert f"WHEN '{code}' THEN '" in definition, code
    check = _sql(next(p for p in panels(audit_board) if p["title"] == "账本核对 · Ledger check"))
    assert "WHEN 'level' THEN" in check


# --- alert rules ---------------------------------------------------------------------------------


def test_alert_file_is_in_the_file_provisioning_format(alerting: dict[str, Any]) -> None:
    assert alerting["apiVersion"] == 1
    uids = []
    for group in alerting["groups"]:
        assert {"orgId", "name", "folder", "interval", "rules"} <= set(group)
        assert group["folder"] == FOLDER_TITLE
        assert re.fullmatch(r"\d+[smh]", group["interval"])
        for rule in group["rules"]:
            assert {"uid", "title", "condition", "data", "for", "noDataState"} <= set(rule)
            uids.append(rule["uid"])
    assert len(uids) == len(set(uids)) == len(alerts.SPECS) == 5


def test_every_alert_rule_references_existing_queries(
    alerting: dict[str, Any], provisioned_uids: set[str], boards: list[dict[str, Any]]
) -> None:
    panel_ids = {board["uid"]: {panel["id"] for panel in panels(board)} for board in boards}
    for group in alerting["groups"]:
        for rule in group["rules"]:
            ref_ids = [query["refId"] for query in rule["data"]]
            assert len(ref_ids) == len(set(ref_ids)), rule["uid"]
            assert rule["condition"] in ref_ids, rule["uid"]
            for query in rule["data"]:
                assert query["refId"] == query["model"]["refId"]
                if query["datasourceUid"] == alerts.EXPRESSION_UID:
                    # an expression names the query it reads
                    assert query["model"]["expression"] in ref_ids, rule["uid"]
                    assert query["model"]["expression"] != query["refId"]
                else:
                    assert query["datasourceUid"] in provisioned_uids, rule["uid"]
                    assert query["model"]["format"] == "table"
                    # alert queries run without a dashboard: no template variables
                    assert not variable_names(query["model"]["rawSql"]), rule["uid"]
                    assert query["relativeTimeRange"]["from"] > 0
            assert rule["panelId"] in panel_ids[rule["dashboardUid"]], rule["uid"]


def test_api_rules_and_file_rules_are_the_same_rules(alerting: dict[str, Any]) -> None:
    in_file = {rule["uid"]: rule for group in alerting["groups"] for rule in group["rules"]}
    for rule in alerts.rules():
        assert rule["folderUID"] == FOLDER_UID
        assert rule["data"] == in_file[rule["uid"]]["data"]
        assert rule["condition"] == in_file[rule["uid"]]["condition"]


# --- the mock picture ----------------------------------------------------------------------------


def test_layout_mock_is_labelled_and_shows_every_overview_panel() -> None:
    svg = (ROOT / build.MOCK_FILE).read_text(encoding="utf-8")
    assert "MOCK, not a screenshot" in svg
    board = json.loads((ROOT / build.DASHBOARD_DIR / f"{pledges.UID}.json").read_text("utf-8"))
    for panel in board["panels"]:
        if not panel.get("repeat"):
            shown = panel["title"][:6]
            assert shown in svg, panel["title"]


# --- push ----------------------------------------------------------------------------------------


def test_dry_run_prints_every_call_and_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYSTREAM_GRAFANA_DB_PASSWORD", "s3cret-value")
    from streams.settings import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            main, ["dashboards", "push", "--url", "http://grafana.invalid:3000", "--dry-run"]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    out = result.output
    assert "s3cret-value" not in out
    expected = [
        "GET /api/folders/citystream",
        "POST /api/folders",
        "PUT /api/folders/citystream",
        "GET /api/datasources/uid/citystream-pg",
        "POST /api/datasources",
        "PUT /api/datasources/uid/citystream-pg",
    ]
    for uid in EXPECTED_UIDS:
        expected.append(f"POST /api/dashboards/db  # dashboard {uid}")
    for spec in alerts.SPECS:
        expected += [
            f"GET /api/v1/provisioning/alert-rules/{spec.uid}",
            f"PUT /api/v1/provisioning/alert-rules/{spec.uid}",
        ]
    for group in alerts.GROUPS:
        expected.append(f"PUT /api/v1/provisioning/folder/citystream/rule-groups/{group.name}")
    for line in expected:
        assert line in out, line
    # every call of the plan is printed, and nothing else but the heading
    found = push.resources(db_password="x")  # noqa: S106
    assert len(out.strip().splitlines()) == 1 + len(push.describe(found))


class MemoryGrafana:
    """Grafana's look-up / create / update answers, kept in a dict: tests the push's decisions
    (create when absent, update when present), not Grafana."""

    CREATED_AT: ClassVar[dict[str, str]] = {
        "/folders": "/folders/{uid}",
        "/datasources": "/datasources/uid/{uid}",
        "/v1/provisioning/alert-rules": "/v1/provisioning/alert-rules/{uid}",
    }

    def __init__(self) -> None:
        self.store: dict[str, dict[str, Any]] = {}

    def request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        if method == "GET":
            if path not in self.store:
                raise push.NotFound(path)
            return self.store[path]
        assert body is not None
        if method == "POST" and path in self.CREATED_AT:
            key = self.CREATED_AT[path].format(uid=body["uid"])
            assert key not in self.store, f"created twice: {key}"
        else:
            key = path
            if method == "PUT" and any(path.startswith(k + "/") for k in self.CREATED_AT):
                assert key in self.store, f"updated before it was created: {key}"
                # "overwrite" asks for the update; it is not part of what is stored
                body = {k: v for k, v in body.items() if k != "overwrite"}
        self.store[key] = {**self.store.get(key, {}), **body}
        return {}


def test_push_creates_then_updates_and_changes_nothing_the_second_time() -> None:
    grafana = MemoryGrafana()
    found = push.resources(db_host="db.internal:5432", db_password="pw")  # noqa: S106
    first = push.push(grafana, found)
    snapshot = json.dumps(grafana.store, sort_keys=True)
    second = push.push(grafana, found)
    creates = {
        "POST /api/folders",
        "POST /api/datasources",
        "POST /api/v1/provisioning/alert-rules",
    }
    assert creates <= set(first)
    assert sum(line == "POST /api/v1/provisioning/alert-rules" for line in first) == len(
        alerts.SPECS
    )
    assert not creates & set(second), second
    assert json.dumps(grafana.store, sort_keys=True) == snapshot
    source = grafana.store["/datasources/uid/citystream-pg"]
    assert source["url"] == "db.internal:5432" and source["user"] == "grafana_reader"
    assert source["secureJsonData"] == {"password": "pw"}
    saved = grafana.store["/dashboards/db"]
    assert saved["overwrite"] is True and saved["folderUid"] == FOLDER_UID


def test_pushed_dashboards_are_the_committed_ones(boards: list[dict[str, Any]]) -> None:
    pushed = [
        resource.create.body["dashboard"]
        for resource in push.resources()
        if resource.create.path == "/dashboards/db" and resource.create.body is not None
    ]
    assert sorted(pushed, key=lambda b: b["uid"]) == sorted(boards, key=lambda b: b["uid"])
