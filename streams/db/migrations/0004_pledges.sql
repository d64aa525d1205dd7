-- Pledges and their progress.
--
-- `pledges` and `pledge_schedule` are reference data written by `citystream pledges load`
-- (services/pledges.py) from seeds/pledges/<year>.yaml. A pledge is never changed in place:
-- a changed definition is a new row with the next `version`, and everything below reads the
-- latest version. `pledge_schedule` is the schedule curve materialised by the loader from
-- the Python schedule (Pledge.expected_by, rounded to 4 decimal places), one row per day
-- from start to deadline, so SQL and Python read the same curve.
--
-- The definitions (actual, gap in days, run-rate projection) and the status thresholds are
-- documented once, in services/pledges.py; pledge_status() repeats the thresholds here and
-- tests hold both to the same answers.

CREATE TABLE pledges (
    id             text        NOT NULL,
    version        integer     NOT NULL CHECK (version >= 1),
    year           integer     NOT NULL,
    title_zh       text        NOT NULL,
    title_en       text        NOT NULL,
    metric         text        NOT NULL,
    target         numeric     NOT NULL CHECK (target > 0),
    unit           text        NOT NULL,
    start          date        NOT NULL,
    deadline       date        NOT NULL,
    department     text        NOT NULL,
    -- one subdistrict, or NULL for the whole zone
    district       text,
    schedule       jsonb       NOT NULL,
    -- metric: the sum of metric_daily; items: named items, each done or not (events ledger)
    progress_from  text        NOT NULL CHECK (progress_from IN ('metric', 'items')),
    items          text[]      NOT NULL,
    -- the event types that produce the metric (what an item's event must be)
    event_types    text[]      NOT NULL,
    source_file    text        NOT NULL,
    source_quote   text        NOT NULL,
    measurable     boolean     NOT NULL,
    -- sha256 of everything above and the schedule rows: equal hash, nothing to load
    content_hash   text        NOT NULL,
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, version),
    CHECK (start < deadline)
);

CREATE TABLE pledge_schedule (
    pledge_id  text    NOT NULL,
    version    integer NOT NULL,
    day        date    NOT NULL,
    -- cumulative amount the schedule expects done by the end of `day`
    expected   numeric NOT NULL CHECK (expected >= 0),
    PRIMARY KEY (pledge_id, version, day),
    FOREIGN KEY (pledge_id, version) REFERENCES pledges (id, version)
);

CREATE FUNCTION pledges_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are never updated or deleted; load a new pledge version instead',
        TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE TRIGGER pledges_immutable BEFORE UPDATE OR DELETE ON pledges
    FOR EACH ROW EXECUTE FUNCTION pledges_refuse_change();
CREATE TRIGGER pledge_schedule_immutable BEFORE UPDATE OR DELETE ON pledge_schedule
    FOR EACH ROW EXECUTE FUNCTION pledges_refuse_change();

-- The status rules of services/pledges.py (first match wins); keep the thresholds equal to
-- BEHIND_GAP_DAYS, BEHIND_SHARE and AT_RISK_SHARE there.
CREATE FUNCTION pledge_status(
    measurable boolean,
    actual numeric,
    expected numeric,
    target numeric,
    gap_days integer,
    projected date,
    deadline date,
    d date
) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN NOT measurable THEN 'not_measurable'
        WHEN actual >= target THEN 'achieved'
        WHEN d > deadline THEN 'overdue'
        WHEN gap_days <= -30 OR actual < expected * 0.80 THEN 'behind'
        WHEN projected > deadline OR actual < expected * 0.95 THEN 'at_risk'
        ELSE 'on_track'
    END
$$;

-- Progress of the latest version of every pledge at the end of local day d.
CREATE FUNCTION pledge_progress_at(d date)
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
measured AS (
    SELECT
        l.*,
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
        -- ceil(target * elapsed / actual), computed exactly with div and mod
        CASE WHEN me.actual > 0 AND d >= me.start THEN
            div(me.target * (d - me.start + 1), me.actual)
            + CASE WHEN mod(me.target * (d - me.start + 1), me.actual) > 0 THEN 1 ELSE 0 END
        END AS days_needed
    FROM measured me
),
projected AS (
    SELECT
        r.*,
        -- (least() skips NULLs: no progress must stay NULL, not become the cap)
        CASE WHEN r.days_needed IS NOT NULL THEN
            r.start + least(r.days_needed - 1, date '9999-12-31' - r.start)::integer
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

-- Today's progress: the local (Asia/Shanghai) calendar day, as the rollups count days.
CREATE VIEW pledge_progress AS
SELECT * FROM pledge_progress_at((now() AT TIME ZONE 'Asia/Shanghai')::date);
