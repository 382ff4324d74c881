#!/usr/bin/env bash
# `make run`: migrate, then run the scheduler and the web app (gunicorn) side by side.
# The scheduler is its own process, never inside gunicorn workers. Ctrl-C (or SIGTERM) stops both
# gracefully and exits 0; if either one dies by itself, the other is stopped and its status kept.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLASK_APP=wsgi
.venv/bin/flask db upgrade
# Both run in the background, each in a session of its own, so Ctrl-C (which the terminal sends
# to its whole foreground group) reaches only this script, which then sends each one SIGTERM:
# their graceful stop. Python and gunicorn install their own SIGINT handlers, so the "background
# jobs ignore SIGINT" rule does not hold for them; gunicorn's workers, given the terminal's INT
# and then their master's signals at once, could be left unreaped for its whole 30 s timeout.
setsid .venv/bin/flask scheduler &
scheduler=$!
setsid .venv/bin/gunicorn -c config/gunicorn.conf.py wsgi:app &
web=$!
stopping=0
stop() {
    stopping=1
    kill -TERM "$web" "$scheduler" 2>/dev/null || true
}
trap stop INT TERM HUP
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
