#!/bin/sh
# Restore a backup made by deploy/backup.sh: deploy/restore.sh FILE
#
# Into the database DATABASE_URL names, which must exist and be empty (a new database:
# `createdb -O motcua motcua_restored`); all in one transaction, stopping at the first error,
# so a failed restore leaves it empty. Then point the instances' DATABASE_URL at it, or rename
# it in place of the old one while the instances are stopped (README, Production).
set -eu

file=${1:?usage: restore.sh FILE}
url=${DATABASE_URL:?DATABASE_URL is not set}
case $url in
  postgresql+*://*) url="postgresql://${url#*://}" ;;
  postgresql://* | postgres://*) ;;
  *) echo "restore.sh: DATABASE_URL is not a PostgreSQL database" >&2; exit 2 ;;
esac

tables=$(psql --dbname="$url" --no-psqlrc --tuples-only --no-align \
  --command="SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
if [ "$tables" != 0 ]; then
  echo "restore.sh: the database already has $tables tables; restore into a new, empty one" >&2
  exit 1
fi
pg_restore --no-owner --no-privileges --exit-on-error --single-transaction --dbname="$url" "$file"
echo "restored $file"
