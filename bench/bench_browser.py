"""Browser capture benchmark: pages/min and CPU seconds per page for http, browser and auto.

The loopback fixture site of the tests (tests/browser_pages.py) serves a script-built article
(its words arrive by fetch after load) and a plain page (its words in the HTML). Each mode
captures ``BENCH_BROWSER_PAGES`` distinct URLs of each kind, one at a time, on SQLite and the
local store alone (no S3 or IPFS: the browser's cost, not replication's), processing included.
CPU is this process's and every descendant's (Playwright's driver, Chromium and the renderers it
reaped), read from /proc while the browser is still open. The peer is the http mode in the same
run: the ratios say what the browser costs per page.

Run: `.venv/bin/python -m bench bench_browser` (or `make bench`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from config.settings import Settings
from mirror.models import Capture
from mirror.pipeline import capture_source
from mirror.sources import add_source
from samizdat import migrate
from samizdat.runtime import build_runtime
from tests.browser_pages import BrowserPagesSite

PAGES = int(os.environ.get("BENCH_BROWSER_PAGES", "10"))
CHROMIUM = "/usr/bin/chromium"
_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(root: int) -> float:
    """utime + stime (+ those of reaped children) of ``root`` and all its live descendants."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        fields = stats.get(pid)
        if fields:
            # fields[11:15]: utime, stime, cutime, cstime (stat fields 14-17).
            total += sum(int(v) for v in fields[11:15])
        todo += children.get(pid, [])
    return total / _TICKS


def _measure(runtime, site, mode: str, kind: str, path: str) -> tuple[float, float, list[str]]:
    """Capture PAGES distinct URLs of ``path`` in ``mode``: (wall s, CPU s, methods used)."""
    ids = []
    with runtime.Session() as session:
        for n in range(PAGES):
            url = site.url(f"{path}?bench={mode}-{kind}-{n}")
            ids.append(add_source(session, url, 60, capture_mode=mode).source.id)
        session.commit()
    outcomes = []
    cpu0, wall0 = _cpu_seconds(os.getpid()), time.monotonic()
    for source_id in ids:
        outcome = capture_source(runtime, source_id)
        if outcome.status != "ok":
            raise RuntimeError(f"{mode} {kind}: {outcome.reason}: {outcome.message}")
        outcomes.append(outcome)
    wall, cpu = time.monotonic() - wall0, _cpu_seconds(os.getpid()) - cpu0
    with runtime.Session() as session:
        used = sorted({session.get(Capture, o.capture_id).capture_method for o in outcomes})
    return wall, cpu, used


def run() -> str:
    """Run the benchmark and return its Markdown report."""
    work = Path(tempfile.mkdtemp(prefix="samizdat-bench-browser-"))
    site = BrowserPagesSite()
    settings = Settings(
        data_dir=work, database_url=f"sqlite:///{work / 'bench.db'}",
        fetch_allow_hosts=f"127.0.0.1:{site.server.server_port}", chromium=CHROMIUM,
    )
    migrate.upgrade(settings.sqlalchemy_url)
    runtime = build_runtime(settings)
    rows = []
    try:
        # A page of each method first: Chromium's launch (and the first HTTP fetch's imports and
        # connections) is paid once per process, not per page.
        for mode in ("browser", "http"):
            with runtime.Session() as session:
                warm = add_source(session, site.url(f"/article?warm={mode}"), 60, capture_mode=mode)
                session.commit()
                warm_id = warm.source.id
            capture_source(runtime, warm_id)
        for mode in ("http", "browser", "auto"):
            for kind, path in (("plain", "/redirect/end"), ("script-built", "/article")):
                wall, cpu, used = _measure(runtime, site, mode, kind, path)
                rows.append((mode, kind, wall, cpu, used))
    finally:
        runtime.dispose()
        site.close()
        shutil.rmtree(work, ignore_errors=True)
    peer = {kind: (wall, cpu) for mode, kind, wall, cpu, _ in rows if mode == "http"}
    lines = [
        "## Browser capture: http, browser and auto",
        "",
        f"`.venv/bin/python -m bench bench_browser` ({PAGES} pages of each kind per mode, one at a "
        "time, SQLite and the local store, processing included; CPU of the process and its "
        "descendants). Peer: the http mode on the same pages in the same run.",
        "",
        "| mode | page | method kept | pages/min | CPU s/page | wall × http | CPU × http |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode, kind, wall, cpu, used in rows:
        pwall, pcpu = peer[kind]
        lines.append(
            f"| {mode} | {kind} | {', '.join(used)} | {60 * PAGES / wall:.1f} | {cpu / PAGES:.3f} "
            f"| {wall / pwall:.1f} | {cpu / max(pcpu, 1e-9):.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
