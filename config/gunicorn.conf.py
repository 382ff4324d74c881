"""gunicorn settings for the Samizdat web app (the scheduler is a separate process)."""

import os

bind = os.environ.get("SAMIZDAT_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("SAMIZDAT_WEB_WORKERS", "2"))
threads = 4
timeout = 60
# Readers and supporters leave no trace: no access log, so no IP addresses are written anywhere.
accesslog = None
errorlog = "-"
loglevel = "info"
# The web app never captures by itself, so nothing here starts the scheduler.
