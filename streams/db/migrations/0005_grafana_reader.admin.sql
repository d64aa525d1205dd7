-- The read-only role `grafana_reader` that Grafana's data source `citystream-pg` logs in as
-- (deploy/grafana/provisioning/datasources/citystream.yaml).
--
-- An `.admin` migration: run with the admin connection's own rights (CREATE ROLE and
-- ALTER ROLE need them), not as the application role. streams/db/migrate.py sets
-- `citystream.app_role` to the application role's name for this transaction. The password
-- is never in a migration: `citystream migrate` sets it (and LOGIN) from
-- CITYSTREAM_GRAFANA_DB_PASSWORD on every run; without one the role cannot log in.
--
-- Roles belong to the cluster, grants to the schema: the role is created once, and every
-- schema migrated (one per test, `public` in production) grants it SELECT — on the tables
-- that exist now and, through default privileges, on every table or view the application
-- role creates in the schema later (migrations 0006 and on need no grant of their own).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'grafana_reader') THEN
        CREATE ROLE grafana_reader NOLOGIN;
    END IF;
END
$$;

-- Belt and braces behind the grants: a session of the role cannot write even a temporary
-- table, and a runaway dashboard query is cancelled instead of holding the database.
ALTER ROLE grafana_reader SET default_transaction_read_only = on;
ALTER ROLE grafana_reader SET statement_timeout = '30s';

DO $$
DECLARE
    app_role text := current_setting('citystream.app_role');
    target   text := current_schema();
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'the schema on the search_path does not exist';
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO grafana_reader', current_database());
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO grafana_reader', target);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO grafana_reader', target);
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES TO grafana_reader',
        app_role, target);
END
$$;
