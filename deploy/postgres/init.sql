-- Runs once, when the postgres service first starts on an empty volume.
-- Each service logs in as its own role to its own database, so one service's credentials
-- open no other service's data. Passwords come from the secret files compose mounts (psql
-- reads them with backquotes), so none is written here.
\set ON_ERROR_STOP on
\set catalog_password `cat /run/secrets/catalog_db_password`
\set ledger_password `cat /run/secrets/ledger_db_password`
\set notifier_password `cat /run/secrets/notifier_db_password`

CREATE ROLE catalog LOGIN PASSWORD :'catalog_password';
CREATE DATABASE catalog OWNER catalog;
REVOKE ALL ON DATABASE catalog FROM PUBLIC;

CREATE ROLE ledger LOGIN PASSWORD :'ledger_password';
CREATE DATABASE ledger OWNER ledger;
REVOKE ALL ON DATABASE ledger FROM PUBLIC;

CREATE ROLE notifier LOGIN PASSWORD :'notifier_password';
CREATE DATABASE notifier OWNER notifier;
REVOKE ALL ON DATABASE notifier FROM PUBLIC;
