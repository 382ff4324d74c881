"""gunicorn settings for the Samizdat web app (the scheduler is a separate process)."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

# The project's own modules (config.logs, config.settings), whatever directory gunicorn runs from.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.logs import gunicorn_logconfig  # noqa: E402
from config.settings import load_settings  # noqa: E402

bind = load_settings().bind
workers = int(os.environ.get("SAMIZDAT_WEB_WORKERS", "2"))
threads = 4
timeout = 60
# Readers and supporters leave no trace: no access log, so no IP addresses are written anywhere.
accesslog = None
errorlog = "-"
loglevel = "info"
# gunicorn's lines and the app's in one format (SAMIZDAT_LOG_FORMAT: text or json lines).
logconfig_dict = gunicorn_logconfig(load_settings().log_format)
# gunicorn 25+ opens a control socket for `gunicornc` at one path per user
# (~/.gunicorn/gunicorn.ctl or $XDG_RUNTIME_DIR/gunicorn.ctl): a second instance on the host
# unlinks the first one's, and whichever stops first removes the other's. Samizdat needs no
# runtime control (restart or signal the master instead), so it opens no socket at all.
control_socket_disable = True
# The web app never captures by itself, so nothing here starts the scheduler.

# Prometheus metrics (docs/operations.md): every worker counts into files of its own in one
# directory, and /metrics adds them up. The directory is fresh for each server start (counters
# restart at zero, as Prometheus expects of a restarted target), and a dead worker's live gauges
# are dropped. The variable must be set before a worker imports prometheus_client.
_MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"
_made_metrics_dir = False


def on_starting(server):
    """Give this server start an empty metrics directory (the operator's, emptied, or a new one)."""
    global _made_metrics_dir
    given = os.environ.get(_MULTIPROC)
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            stale.unlink()
    else:
        os.environ[_MULTIPROC] = tempfile.mkdtemp(prefix="samizdat-metrics-")
        _made_metrics_dir = True


def child_exit(server, worker):
    """Forget a dead worker's live gauges (its counters stay in the sums)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory this server made."""
    if _made_metrics_dir:
        shutil.rmtree(os.environ[_MULTIPROC], ignore_errors=True)
