"""`make run` (scripts/run.sh): Ctrl-C stops the web app and the scheduler cleanly and exits 0."""

import os
import signal
import subprocess
import time

import requests
from sqlalchemy import create_engine

from mirror.leader import LeaderLock
from tests.conftest import make_settings
from tests.services import ROOT, free_port, settings_env


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen) -> None:
    """Poll ``predicate`` until true; fail with the script's output if it exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"run.sh exited early ({proc.returncode}):\n{proc.communicate()[0].decode()}")
        if predicate():
            return
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"{what} did not happen within {timeout} s:\n{proc.communicate()[0].decode()}")


def test_ctrl_c_stops_web_and_scheduler_and_exits_zero(tmp_path, sqlite_url):
    settings = make_settings(tmp_path, sqlite_url)
    port = free_port()
    env = settings_env(settings, SAMIZDAT_BIND=f"127.0.0.1:{port}", SAMIZDAT_WEB_WORKERS="1")
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "run.sh")], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        # As in a terminal: Ctrl-C sends SIGINT to the whole foreground process group.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )

    def web_answers() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code < 500
        except requests.RequestException:
            return False

    engine = create_engine(sqlite_url)
    lock = LeaderLock(settings, engine)

    def scheduler_active() -> bool:
        if lock.acquire():  # free: the scheduler has not taken it yet
            lock.release()
            return False
        return True

    wait_for(web_answers, 60, "the web app answering", proc)
    wait_for(scheduler_active, 60, "the scheduler becoming active", proc)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
    try:
        output = proc.communicate(timeout=60)[0].decode()
    finally:
        engine.dispose()
    left = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert proc.returncode == 0, output
    assert left == [], f"processes left running: {left}\n{output}"
    assert "scheduler stopped" in output
    assert "Traceback" not in output
