#!/usr/bin/env bash
# `make run`: migrate, then run the scheduler and the web app (gunicorn) side by side.
# The scheduler is its own process, never inside gunicorn workers; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLASK_APP=wsgi
.venv/bin/flask db upgrade
.venv/bin/flask scheduler &
scheduler=$!
trap 'kill $scheduler 2>/dev/null; wait $scheduler 2>/dev/null' EXIT INT TERM
echo "Samizdat on http://${SAMIZDAT_BIND:-127.0.0.1:8000} (scheduler pid $scheduler)"
.venv/bin/gunicorn -c config/gunicorn.conf.py wsgi:app
