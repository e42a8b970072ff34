#!/bin/sh
# A backup of the motcua database: deploy/backup.sh DIRECTORY
#
# Writes DIRECTORY/motcua-<UTC time>.dump (pg_dump's custom format, compressed; restore it with
# deploy/restore.sh) and deletes the backups there older than BACKUP_KEEP_DAYS days (14).
# DATABASE_URL names the database as the server does (postgresql://user:password@host/db; a
# "+asyncpg" or "+psycopg" driver suffix is dropped). Prints the new file's path.
set -eu

dir=${1:?usage: backup.sh DIRECTORY}
url=${DATABASE_URL:?DATABASE_URL is not set}
keep=${BACKUP_KEEP_DAYS:-14}
case $keep in
  '' | *[!0-9]* | 0) echo "backup.sh: BACKUP_KEEP_DAYS must be a whole number of days, 1 or more" >&2
                     exit 2 ;;
esac
case $url in
  postgresql+*://*) url="postgresql://${url#*://}" ;;
  postgresql://* | postgres://*) ;;
  *) echo "backup.sh: DATABASE_URL is not a PostgreSQL database" >&2; exit 2 ;;
esac

umask 077  # the dump holds citizens' names, phone numbers and messages
mkdir -p "$dir"
name="motcua-$(date -u +%Y%m%dT%H%M%SZ).dump"
# Written under another name first: a failed or interrupted dump never looks like a backup.
pg_dump --format=custom --no-owner --no-privileges --dbname="$url" --file="$dir/$name.part"
mv "$dir/$name.part" "$dir/$name"
find "$dir" -maxdepth 1 -type f \( -name 'motcua-*.dump' -o -name 'motcua-*.dump.part' \) \
  -mmin +$((keep * 1440)) -delete
echo "$dir/$name"
