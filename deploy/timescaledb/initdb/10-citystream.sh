#!/usr/bin/env bash
# Creates the application's login role `citystream` and its database `citystream`.
#
# The postgres image runs this once, on the first start of an empty data volume, after the
# timescaledb image's own 000_/001_ scripts (extension, tuning). Changing
# CITYSTREAM_DB_PASSWORD later does not reach an existing volume: use ALTER ROLE then.
# Tables come from `citystream migrate`; so does the read-only role `grafana_reader` that
# Grafana's data source logs in as (migration 0005): roles created by migrations also
# reach databases that were initialised before the role existed, this script never would.
set -Eeo pipefail

: "${CITYSTREAM_DB_PASSWORD:?CITYSTREAM_DB_PASSWORD must be set (see .env.example)}"

# The password travels as an environment variable into a psql variable (not argv, not the
# SQL text), is quoted by psql (:'...') and again by format(%L) for the dynamic statement.
# `citystream migrate` (as the superuser) then hands the database, its schema and every
# table to the owner role citystream_owner and grants `citystream` only what the workers
# need (streams/db/roles.py): the workers' role owns nothing.
psql --no-psqlrc --set ON_ERROR_STOP=1 \
    --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" <<'SQL'
\getenv app_password CITYSTREAM_DB_PASSWORD
SELECT format('CREATE ROLE citystream LOGIN PASSWORD %L', :'app_password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'citystream')
\gexec
SELECT 'CREATE DATABASE citystream OWNER citystream'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'citystream')
\gexec
SQL
