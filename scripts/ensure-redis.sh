#!/usr/bin/env bash
# Make sure Redis answers on 127.0.0.1:6379 for the rate-limit tests; start it if it is installed.
set -uo pipefail
ready() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
command -v redis-cli >/dev/null || { echo "redis-cli not found: the Redis tests will fail" >&2; exit 0; }
ready && exit 0
if command -v redis-server >/dev/null; then
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/samizdat-tests.log || true
fi
for _ in $(seq 1 30); do ready && exit 0; sleep 1; done
# The tests themselves fail with the reason; say it here too.
echo "Redis is not answering on 127.0.0.1:6379; the Redis tests will fail" >&2
exit 0
