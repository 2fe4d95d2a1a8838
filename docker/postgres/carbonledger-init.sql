-- carbonledger: the ledger and MLflow databases and their roles.
--
-- Run by psql as a superuser (docker/postgres/10-carbonledger-init.sh does it on the first
-- start of an empty data volume). Names and passwords come from the environment through
-- psql's \getenv (PostgreSQL 15+), so no secret is written in this file or on a command line:
--
--   LEDGER_DB, LEDGER_ETL_USER, LEDGER_ETL_PASSWORD, LEDGER_APP_USER, LEDGER_APP_PASSWORD,
--   MLFLOW_DB, MLFLOW_DB_USER, MLFLOW_DB_PASSWORD
--
-- Roles:
--   LEDGER_ETL_USER  owns the ledger database and everything in it: it runs the migrations
--                    (carbonledger db upgrade) and the ETL (carbonledger etl).
--   LEDGER_APP_USER  read-only: CONNECT, USAGE on the schema, SELECT on every table and view,
--                    now and in the future (default privileges of the ETL role); its sessions
--                    are read-only by default as well. Used by the app and carbonledger report.
--   MLFLOW_DB_USER   owns the MLflow database (the tracking server creates its own tables).
--
-- Idempotent: running it again re-applies passwords and grants and creates nothing twice.

\set ON_ERROR_STOP on
\set QUIET on

\getenv ledger_db LEDGER_DB
\getenv etl_user LEDGER_ETL_USER
\getenv etl_password LEDGER_ETL_PASSWORD
\getenv app_user LEDGER_APP_USER
\getenv app_password LEDGER_APP_PASSWORD
\getenv mlflow_db MLFLOW_DB
\getenv mlflow_user MLFLOW_DB_USER
\getenv mlflow_password MLFLOW_DB_PASSWORD

\if :{?ledger_db}
\else
  \warn 'LEDGER_DB is not set'
  \quit
\endif
\if :{?mlflow_password}
\else
  \warn 'MLFLOW_DB_PASSWORD is not set (see docker/.env.example)'
  \quit
\endif

-- ---------------------------------------------------------------------------------------
-- Roles: plain LOGIN roles, no superuser, no CREATEDB, no CREATEROLE.
-- ---------------------------------------------------------------------------------------
SELECT format('CREATE ROLE %I', r) FROM unnest(ARRAY[:'etl_user', :'app_user', :'mlflow_user']) AS r
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) \gexec

SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD %L',
              :'etl_user', :'etl_password') \gexec
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD %L',
              :'app_user', :'app_password') \gexec
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD %L',
              :'mlflow_user', :'mlflow_password') \gexec

-- ---------------------------------------------------------------------------------------
-- Databases: the ledger belongs to the ETL role, the MLflow store to the MLflow role.
-- CREATE DATABASE cannot run inside a DO block, hence \gexec.
-- ---------------------------------------------------------------------------------------
SELECT format('CREATE DATABASE %I OWNER %I', :'ledger_db', :'etl_user')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'ledger_db') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'mlflow_db', :'mlflow_user')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'mlflow_db') \gexec

-- Nobody else may connect (PUBLIC has CONNECT and TEMPORARY on new databases by default).
REVOKE ALL ON DATABASE :"ledger_db" FROM PUBLIC;
REVOKE ALL ON DATABASE :"mlflow_db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"ledger_db" TO :"app_user";

-- ---------------------------------------------------------------------------------------
-- Inside the ledger database.
-- ---------------------------------------------------------------------------------------
\connect :"ledger_db"
\set ON_ERROR_STOP on

-- The ETL role creates every table and view (migrations), so it owns the schema.
ALTER SCHEMA public OWNER TO :"etl_user";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app_user";

-- Read-only role: SELECT on what exists now, and on every table, view, materialized view and
-- partition the ETL role creates later (the next migrations).
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"app_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"etl_user" IN SCHEMA public
    GRANT SELECT ON TABLES TO :"app_user";

-- Belt and braces: the app's sessions start read-only in this database.
ALTER ROLE :"app_user" IN DATABASE :"ledger_db" SET default_transaction_read_only = on;

-- ---------------------------------------------------------------------------------------
-- Inside the MLflow database.
-- ---------------------------------------------------------------------------------------
\connect :"mlflow_db"
\set ON_ERROR_STOP on
ALTER SCHEMA public OWNER TO :"mlflow_user";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
