"""dashboards/macros.py against the examples in Grafana's documentation.

Sources (read through the project's documentation search, quoted here as test data):
- PostgreSQL data source, "Macros" table: the examples use the time range
  2017-04-21T05:01:17Z – 2017-04-21T05:06:17Z for ``$__timeFilter``/``$__timeFrom``/
  ``$__timeTo`` and the Unix range 1494410783 – 1494497183 (nanoseconds
  1494410783152415214 – 1494497183142514872) for the ``$__unixEpoch*`` macros.
- PostgreSQL data source, "Using Variables in Queries" and "Disabling quoting for
  multi-value variables" (server01, server02).
- "Variable syntax · Advanced variable format options" (servers = test1, test2).
- "Global variables · $__from and $__to" (1594671549254 = 2020-07-13T20:19:09.254Z).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards.macros import (
    Context,
    ExpansionError,
    TimeRange,
    Variable,
    expand,
    format_interval,
    interpolate,
    parse_duration,
    rfc3339,
    variable_names,
)

DOC_RANGE = TimeRange.of(
    datetime(2017, 4, 21, 5, 1, 17, tzinfo=UTC), datetime(2017, 4, 21, 5, 6, 17, tzinfo=UTC)
)
UNIX_RANGE = TimeRange(1494410783 * 10**9, 1494497183 * 10**9)
NANO_RANGE = TimeRange(1494410783152415214, 1494497183142514872)


def ctx(time_range: TimeRange = DOC_RANGE, **variables: Variable) -> Context:
    return Context(time_range, timedelta(minutes=5), variables)


# --- macros: the PostgreSQL data source's table of examples --------------------------------------


@pytest.mark.parametrize(
    ("sql", "documented"),
    [
        (
            "$__timeFilter(dateColumn)",
            "dateColumn BETWEEN '2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17Z'",
        ),
        ("$__timeFrom()", "'2017-04-21T05:01:17Z'"),
        ("$__timeTo()", "'2017-04-21T05:06:17Z'"),
        ("$__time(dateColumn)", "dateColumn as time"),
        ("$__timeEpoch(dateColumn)", "extract(epoch from dateColumn) as time"),
    ],
)
def test_time_macros_as_documented(sql: str, documented: str) -> None:
    assert expand(sql, ctx()) == documented


@pytest.mark.parametrize(
    ("sql", "documented"),
    [
        ("$__unixEpochFilter(dateColumn)", "dateColumn >= 1494410783 AND dateColumn <= 1494497183"),
        ("$__unixEpochFrom()", "1494410783"),
        ("$__unixEpochTo()", "1494497183"),
    ],
)
def test_unix_epoch_macros_as_documented(sql: str, documented: str) -> None:
    assert expand(sql, ctx(UNIX_RANGE)) == documented


@pytest.mark.parametrize(
    ("sql", "documented"),
    [
        (
            "$__unixEpochNanoFilter(dateColumn)",
            "dateColumn >= 1494410783152415214 AND dateColumn <= 1494497183142514872",
        ),
        ("$__unixEpochNanoFrom()", "1494410783152415214"),
        ("$__unixEpochNanoTo()", "1494497183142514872"),
    ],
)
def test_nanosecond_macros_as_documented(sql: str, documented: str) -> None:
    assert expand(sql, ctx(NANO_RANGE)) == documented


def test_time_group_as_documented() -> None:
    # The editor's help text: FLOOR(EXTRACT(EPOCH FROM dateColumn)/300)*300 (keywords in any
    # case). Older pages wrote (extract(epoch from dateColumn)/300)::bigint*300, which rounds
    # to the nearest bucket instead of the one a row falls in; we follow the later text.
    expected = "FLOOR(EXTRACT(EPOCH FROM dateColumn)/300)*300"
    assert expand("$__timeGroup(dateColumn,'5m')", ctx()).lower() == expected.lower()
    assert (
        expand("$__timeGroupAlias(dateColumn,'5m')", ctx()).lower()
        == f'{expected} AS "time"'.lower()
    )


@pytest.mark.parametrize("fill", ["0", "NULL", "previous"])
def test_time_group_fill_changes_only_what_grafana_does_afterwards(fill: str) -> None:
    # "Same as above but with a fill parameter": the fill applies to missing points in
    # Grafana, so the SQL is the same as without it.
    with_fill = expand(f"$__timeGroup(dateColumn,'5m', {fill})", ctx())
    assert with_fill == expand("$__timeGroup(dateColumn,'5m')", ctx())


def test_time_group_uses_time_bucket_with_timescaledb() -> None:
    # "If enabled, Grafana will use time_bucket in the $__timeGroup macro".
    timescale = Context(DOC_RANGE, timedelta(minutes=5), {}, timescaledb=True)
    assert expand("$__timeGroup(dateColumn,'5m')", timescale) == "time_bucket('300s',dateColumn)"
    assert expand("$__timeGroupAlias(time_col, 1h)", timescale) == (
        "time_bucket('3600s',time_col) AS \"time\""
    )


def test_unix_epoch_group_is_time_group_on_seconds() -> None:
    # "Same as $__timeGroup but for times stored as Unix timestamp".
    assert expand("$__unixEpochGroup(epoch_col,'5m')", ctx()) == "floor(epoch_col/300)*300"
    assert expand("$__unixEpochGroupAlias(epoch_col,'1h', 0)", ctx()) == (
        'floor(epoch_col/3600)*3600 AS "time"'
    )


def test_documented_table_query_expands_to_runnable_sql() -> None:
    documented = (
        'SELECT title as "Title", "user".login as "Created By", dashboard.created as '
        '"Created On" FROM dashboard INNER JOIN "user" on "user".id = dashboard.created_by '
        "WHERE $__timeFilter(dashboard.created)"
    )
    assert expand(documented, ctx()).endswith(
        "WHERE dashboard.created BETWEEN '2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17Z'"
    )


def test_interval_inside_a_macro_is_interpolated_first() -> None:
    # Grafana replaces variables ($__interval) in the browser before the server expands macros.
    sql = "SELECT $__timeGroupAlias(created, $__interval), count(*) FROM t GROUP BY 1"
    assert expand(sql, ctx()) == (
        'SELECT floor(extract(epoch from created)/300)*300 AS "time", count(*) FROM t GROUP BY 1'
    )


def test_fractional_seconds_are_printed_only_when_present() -> None:
    assert rfc3339(1494410783 * 10**9) == "2017-05-10T10:06:23Z"
    assert rfc3339(1494410783152000000) == "2017-05-10T10:06:23.152Z"


# --- template variables: the PostgreSQL data source ----------------------------------------------

HOSTS = Variable("hostname", ("server01", "server02"), multi=True)


def test_multi_value_variable_is_quoted_and_joined() -> None:
    # Documented: 'server01', 'server02' (the space after the comma is insignificant in SQL).
    documented = "'server01', 'server02'".replace(", ", ",")
    sql = "SELECT atimestamp as time FROM table WHERE hostname in($hostname)"
    assert expand(sql, ctx(hostname=HOSTS)).endswith(f"hostname in({documented})")
    assert interpolate("hostname in([[hostname]])", ctx(hostname=HOSTS)) == (
        f"hostname in({documented})"
    )


def test_single_value_variable_is_not_quoted() -> None:
    # "Template variable values are only quoted when the template variable is a multi-value."
    single = Variable("hostname", ("server01",))
    assert interpolate("hostname = '$hostname'", ctx(hostname=single)) == "hostname = 'server01'"


def test_single_value_keeps_a_quote_from_ending_the_string() -> None:
    single = Variable("name", ("O'Brien",))
    assert interpolate("'$name'", ctx(name=single)) == "'O''Brien'"


def test_include_all_is_quoted_like_multi_value() -> None:
    every = Variable("district", ("shifo", "zone"), include_all=True)
    assert interpolate("district IN ($district)", ctx(district=every)) == (
        "district IN ('shifo','zone')"
    )


def test_csv_disables_quoting() -> None:
    # Documented: ${servers:csv} instead of 'server01', 'server02'.
    servers = Variable("servers", ("server01", "server02"), multi=True)
    assert interpolate("${servers:csv}", ctx(servers=servers)) == "server01,server02"


# --- template variables: advanced format options -------------------------------------------------


@pytest.mark.parametrize(
    ("values", "template", "documented"),
    [
        (("test1", "test2"), "${servers:csv}", "test1,test2"),
        (("test1", "test2"), "${servers:doublequote}", '"test1","test2"'),
        (("test1", "test2"), "${servers:glob}", "{test1,test2}"),
        (("test1", "test2"), "${servers:json}", '["test1", "test2"]'),
        (("foo()bar BAZ", "test2"), "${servers:percentencode}", "foo%28%29bar%20BAZ%2Ctest2"),
        (("test1.", "test2"), "${servers:pipe}", "test1.|test2"),
        (("test1", "test2"), "${servers:raw}", "test1,test2"),
        (("test1.", "test2"), "${servers:regex}", "(test1\\.|test2)"),
        (("test1", "test2"), "${servers:singlequote}", "'test1','test2'"),
        (("test'1", "test2"), "${servers:sqlstring}", "'test''1','test2'"),
        (("test1", "test2"), "${servers:text}", "test1 + test2"),
        (("test1", "test2"), "${servers:queryparam}", "var-servers=test1&var-servers=test2"),
        # "If any invalid formatting option is specified, then glob is the default/fallback."
        (("test1", "test2"), "${servers:nonsense}", "{test1,test2}"),
    ],
)
def test_format_options_as_documented(
    values: tuple[str, ...], template: str, documented: str
) -> None:
    servers = Variable("servers", values, multi=True)
    assert interpolate(template, ctx(servers=servers)) == documented


def test_sqlstring_quotes_a_single_value_too() -> None:
    pledge = Variable("pledge", ("it's",))
    assert interpolate("id IN (${pledge:sqlstring})", ctx(pledge=pledge)) == "id IN ('it''s')"


def test_text_format_uses_the_display_text() -> None:
    pledge = Variable("pledge", ("2024-a",), texts=("供热 · Heating",))
    assert interpolate("${pledge:text}", ctx(pledge=pledge)) == "供热 · Heating"


# --- global variables ----------------------------------------------------------------------------

DOC_FROM = TimeRange.of(
    datetime(2020, 7, 13, 20, 19, 9, 254000, tzinfo=UTC),
    datetime(2020, 7, 14, 20, 19, 9, 254000, tzinfo=UTC),
)


@pytest.mark.parametrize(
    ("template", "documented"),
    [
        ("${__from}", "1594671549254"),
        ("${__from:date}", "2020-07-13T20:19:09.254Z"),
        ("${__from:date:iso}", "2020-07-13T20:19:09.254Z"),
        ("${__from:date:seconds}", "1594671549"),
        ("${__from:date:YYYY-MM}", "2020-07"),
        ("$__from", "1594671549254"),
        ("${__to:date:seconds}", "1594757949"),
    ],
)
def test_from_and_to_as_documented(template: str, documented: str) -> None:
    assert interpolate(template, ctx(DOC_FROM)) == documented


def test_interval_and_range_variables() -> None:
    hourly = Context(DOC_FROM, timedelta(hours=1))
    assert interpolate("$__interval $__interval_ms", hourly) == "1h 3600000"
    assert interpolate("${__interval}", Context(DOC_FROM, timedelta(milliseconds=500))) == "500ms"
    assert interpolate("$__range_s $__range_ms $__range", hourly) == "86400 86400000 86400s"


@pytest.mark.parametrize(
    ("interval", "text"),
    [
        (timedelta(days=1), "1d"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=15), "15s"),
        (timedelta(milliseconds=1500), "1500ms"),
    ],
)
def test_interval_prints_in_its_largest_whole_unit(interval: timedelta, text: str) -> None:
    assert format_interval(interval) == text
    assert parse_duration(text) == interval


# --- what Grafana would send broken is refused here, naming the culprit --------------------------


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("WHERE x IN ($missing)", r"\$missing is not defined"),
        ("$__timeFilterr(x)", r"undefined macro: \$__timeFilterr"),
        ("$__timeFilter(date_trunc('day', x))", r"no parentheses inside"),
        ("$__timeFilter()", r"exactly one argument"),
        ("$__timeFrom(x)", r"takes no arguments"),
        ("$__timeGroup(x)", r"a column, an interval"),
        ("$__timeGroup(x, '5m', sometimes)", r"fill must be"),
        ("$__timeGroup(x, 'often')", r"not a duration"),
        ("$__timeFilter(x", r"no closing parenthesis"),
    ],
)
def test_errors_name_the_variable_or_macro(sql: str, message: str) -> None:
    with pytest.raises(ExpansionError, match=message):
        expand(sql, ctx())


def test_a_variable_without_a_value_is_an_error() -> None:
    with pytest.raises(ExpansionError, match=r"\$district has no value"):
        interpolate("$district", ctx(district=Variable("district", (), multi=True)))


def test_variable_names_skip_grafanas_own() -> None:
    sql = "SELECT $__timeGroup(t, $__interval) WHERE a IN ($a) AND b = ${b:csv} AND [[c]]"
    assert variable_names(sql) == {"a", "b", "c"}


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ExpansionError, match="timezone-aware"):
        TimeRange.of(datetime(2024, 1, 1), datetime(2024, 2, 1))
