#!/bin/sh
# The local stack's post-migration step, the same sequence as in production
# (deploy/README.md, "Upgrading"): grants on what the migrations created, the partition
# maintenance function, then one maintenance run as the role the CronJob uses.
set -eu
export PGHOST=postgres PGDATABASE=audit
PGUSER=postgres PGPASSWORD=postgres psql -X -q -v ON_ERROR_STOP=1 -f /deploy/postgres/roles.sql
PGUSER=audit_migrator PGPASSWORD=audit_migrator psql -X -q -v ON_ERROR_STOP=1 -f /deploy/postgres/partitions.sql
PGUSER=audit_maintainer PGPASSWORD=audit_maintainer psql -X -v ON_ERROR_STOP=1 \
    -c 'SELECT * FROM audit_maintain_partitions()'
