#!/bin/sh
# First start of the local stack's PostgreSQL (docker-entrypoint-initdb.d, empty volume
# only): creates the three roles of deploy/postgres/roles.sql and gives them the local
# passwords deploy/compose.yaml uses. Production passwords come from a secret store.
set -eu
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -f /deploy/postgres/roles.sql
for role in audit_migrator audit_service audit_maintainer; do
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
        -c "ALTER ROLE $role PASSWORD '$role'"
done
