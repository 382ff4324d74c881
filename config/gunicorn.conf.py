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
# gunicorn 25+ opens a control socket for `gunicornc` at one path per user
# (~/.gunicorn/gunicorn.ctl or $XDG_RUNTIME_DIR/gunicorn.ctl): a second instance on the host
# unlinks the first one's, and whichever stops first removes the other's. Samizdat needs no
# runtime control (restart or signal the master instead), so it opens no socket at all.
control_socket_disable = True
# The web app never captures by itself, so nothing here starts the scheduler.
