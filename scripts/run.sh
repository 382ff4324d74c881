#!/usr/bin/env bash
# `make run`: migrate, then run the scheduler and the web app (gunicorn) side by side.
# The scheduler is its own process, never inside gunicorn workers. Ctrl-C (or SIGTERM) stops both
# gracefully and exits 0; if either one dies by itself, the other is stopped and its status kept.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLASK_APP=wsgi
.venv/bin/flask db upgrade
# Both run in the background, so Ctrl-C reaches only this script (a non-interactive shell's
# background jobs ignore SIGINT), which then sends each a SIGTERM: their graceful stop.
.venv/bin/flask scheduler &
scheduler=$!
.venv/bin/gunicorn -c config/gunicorn.conf.py wsgi:app &
web=$!
stopping=0
stop() {
    stopping=1
    kill -TERM "$web" "$scheduler" 2>/dev/null || true
}
trap stop INT TERM
echo "Samizdat on http://${SAMIZDAT_BIND:-127.0.0.1:8000} (scheduler pid $scheduler, web pid $web)"
status=0
wait -n "$web" "$scheduler" || status=$?
asked=$stopping
stop
wait "$web" 2>/dev/null || true
wait "$scheduler" 2>/dev/null || true
if [ "$asked" = 1 ]; then
    exit 0
fi
exit "$status"
