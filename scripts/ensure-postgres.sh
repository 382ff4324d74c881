#!/usr/bin/env bash
# Make sure PostgreSQL answers on 127.0.0.1:5432 for the tests; start the local cluster if it can.
set -uo pipefail
ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
command -v pg_isready >/dev/null || { echo "pg_isready not found: PostgreSQL client missing" >&2; exit 0; }
ready && exit 0
if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
fi
for _ in $(seq 1 30); do ready && exit 0; sleep 1; done
# The tests themselves fail with the reason; say it here too.
echo "PostgreSQL is not answering on 127.0.0.1:5432; the PostgreSQL tests will fail" >&2
exit 0
