#!/bin/sh
# Runs in the image rootfs after postgresql-15 is installed: drop the cluster Debian's postinst created
# (the entrypoint runs initdb at first start) and prepare an empty data directory owned by postgres.
set -eu
rm -rf /var/lib/postgresql/15 /etc/postgresql/15
mkdir -p /var/lib/postgresql/data
chown -R postgres:postgres /var/lib/postgresql
