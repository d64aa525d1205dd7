-- Level pledges: a rate a department measures from time to time (schemas/indicators.py),
-- whose value on a day is the latest report measured by then, net of that report's
-- corrections. Level metrics never enter metric_daily (streams/rollup.py), so their pledges
-- read the ledger. The definitions are in services/pledges/rules.py; tests hold the two
-- equal. The function keeps its signature, so the pledge_progress view and the grants on
-- both stay as they are.

ALTER TABLE pledges DROP CONSTRAINT pledges_progress_from_check;
ALTER TABLE pledges ADD CONSTRAINT pledges_progress_from_check
    CHECK (progress_from IN ('metric', 'items', 'level'));

-- Progress of the latest version of every pledge at the end of local day d.
CREATE OR REPLACE FUNCTION pledge_progress_at(d date)
RETURNS TABLE (
    pledge_id             text,
    version               integer,
    year                  integer,
    title_zh              text,
    title_en              text,
    metric                text,
    unit                  text,
    district              text,
    target                numeric,
    start                 date,
    deadline              date,
    on_day                date,
    expected_to_date      numeric,
    actual_to_date        numeric,
    gap_units             numeric,
    gap_days              integer,
    projected_completion  date,
    status                text
)
LANGUAGE sql STABLE AS $$
WITH latest AS (
    SELECT DISTINCT ON (p.id) p.*
    FROM pledges p
    ORDER BY p.id, p.version DESC
),
-- Each report of a level pledge's metric measured from start to d, in scope, at its level
-- net of its corrections up to d.
readings AS (
    SELECT
        l.id,
        ev.occurred_at,
        ev.reported_at,
        ev.event_id,
        (ev.occurred_at AT TIME ZONE 'Asia/Shanghai')::date AS day,
        (ev.measures ->> l.metric)::numeric + coalesce((
            SELECT sum((c.measures ->> l.metric)::numeric)
            FROM events c
            WHERE c.corrects = ev.event_id
              AND (c.occurred_at AT TIME ZONE 'Asia/Shanghai')::date <= d
        ), 0) AS level
    FROM latest l
    JOIN events ev ON ev.event_type = ANY (l.event_types)
    WHERE l.progress_from = 'level'
      AND l.measurable
      AND ev.measures ? l.metric
      AND (ev.occurred_at AT TIME ZONE 'Asia/Shanghai')::date BETWEEN l.start AND d
      AND (l.district IS NULL OR ev.district = l.district)
),
-- The first and the latest reading: measured last wins, then reported last, then the
-- greater event id (services/pledges/rules.py orders them the same way).
trend AS (
    SELECT
        r.id,
        (array_agg(r.day ORDER BY r.occurred_at, r.reported_at, r.event_id))[1] AS first_day,
        (array_agg(r.level ORDER BY r.occurred_at, r.reported_at, r.event_id))[1] AS first_level,
        (array_agg(r.day ORDER BY r.occurred_at DESC, r.reported_at DESC, r.event_id DESC))[1]
            AS last_day,
        (array_agg(r.level ORDER BY r.occurred_at DESC, r.reported_at DESC, r.event_id DESC))[1]
            AS last_level
    FROM readings r
    GROUP BY r.id
),
measured AS (
    SELECT
        l.*,
        t.first_day,
        t.first_level,
        t.last_day,
        t.last_level,
        -- the curve's last value on or before d: 0 before start, the target after deadline
        coalesce((
            SELECT s.expected
            FROM pledge_schedule s
            WHERE s.pledge_id = l.id AND s.version = l.version AND s.day <= d
            ORDER BY s.day DESC
            LIMIT 1
        ), 0) AS expected,
        CASE
            WHEN NOT l.measurable THEN NULL
            -- a level: its latest reading, 0 before the first
            WHEN l.progress_from = 'level' THEN coalesce(t.last_level, 0)
            WHEN l.progress_from = 'metric' THEN coalesce((
                SELECT sum(m.total)
                FROM metric_daily m
                WHERE m.metric = l.metric
                  AND m.day BETWEEN l.start AND d
                  AND (l.district IS NULL OR m.district = l.district)
            ), 0)
            -- an item is done when its events (of the metric's event types, naming the item
            -- in project, from start to d), net of their corrections up to d, add up to > 0
            ELSE (
                SELECT count(*)::numeric
                FROM (
                    SELECT ev.project
                    FROM events ev
                    LEFT JOIN LATERAL (
                        SELECT sum((c.measures ->> l.metric)::numeric) AS delta
                        FROM events c
                        WHERE c.corrects = ev.event_id
                          AND (c.occurred_at AT TIME ZONE 'Asia/Shanghai')::date <= d
                    ) corr ON true
                    WHERE ev.event_type = ANY (l.event_types)
                      AND ev.project = ANY (l.items)
                      AND (ev.occurred_at AT TIME ZONE 'Asia/Shanghai')::date
                          BETWEEN l.start AND d
                      AND (l.district IS NULL OR ev.district = l.district)
                    GROUP BY ev.project
                    HAVING sum(
                        coalesce((ev.measures ->> l.metric)::numeric, 0)
                        + coalesce(corr.delta, 0)
                    ) > 0
                ) done
            )
        END AS actual
    FROM latest l
    LEFT JOIN trend t ON t.id = l.id
),
reached AS (
    SELECT
        me.*,
        -- the last day whose expected amount the actual covers (start - 1 if none; d once the
        -- whole curve is covered and d is past the deadline)
        CASE WHEN me.actual IS NOT NULL THEN (
            SELECT CASE
                WHEN max(s.day) IS NULL THEN me.start - 1
                WHEN max(s.day) = me.deadline AND d > me.deadline THEN d
                ELSE max(s.day)
            END
            FROM pledge_schedule s
            WHERE s.pledge_id = me.id AND s.version = me.version AND s.expected <= me.actual
        ) END AS reach_day,
        -- days at the average rate since start until the target is reached:
        -- ceil(target * elapsed / actual), computed exactly with div and mod (levels: below)
        CASE WHEN me.progress_from <> 'level' AND me.actual > 0 AND d >= me.start THEN
            div(me.target * (d - me.start + 1), me.actual)
            + CASE WHEN mod(me.target * (d - me.start + 1), me.actual) > 0 THEN 1 ELSE 0 END
        END AS days_needed
    FROM measured me
),
projected AS (
    SELECT
        r.*,
        -- (least() skips NULLs: no progress must stay NULL, not become the cap)
        CASE
            WHEN r.days_needed IS NOT NULL THEN
                r.start + least(r.days_needed - 1, date '9999-12-31' - r.start)::integer
            -- a level: the trend from its first reading to its latest, extended to the target
            WHEN r.progress_from = 'level' AND r.last_level >= r.target THEN r.last_day
            WHEN r.progress_from = 'level' AND r.last_level > r.first_level
                AND r.last_day > r.first_day THEN
                r.last_day + least(
                    div((r.target - r.last_level) * (r.last_day - r.first_day),
                        r.last_level - r.first_level)
                    + CASE WHEN mod((r.target - r.last_level) * (r.last_day - r.first_day),
                                    r.last_level - r.first_level) > 0 THEN 1 ELSE 0 END,
                    date '9999-12-31' - r.last_day
                )::integer
        END AS projected
    FROM reached r
)
SELECT
    f.id,
    f.version,
    f.year,
    f.title_zh,
    f.title_en,
    f.metric,
    f.unit,
    f.district,
    f.target,
    f.start,
    f.deadline,
    d,
    f.expected,
    f.actual,
    f.actual - f.expected,
    f.reach_day - d,
    f.projected,
    pledge_status(
        f.measurable, f.actual, f.expected, f.target, f.reach_day - d, f.projected,
        f.deadline, d
    )
FROM projected f
ORDER BY f.id COLLATE "C"
$$;

