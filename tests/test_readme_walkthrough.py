"""The README's walk-through, run exactly as a new user runs it, and looked at in Chromium.

A copy of the checkout (with ../shared beside it, as in CI) is started with `make run` on its
defaults, from its own directory: relative `var/`, SQLite, no S3, no IPFS. The only variables set
are the ones the README itself exports (SAMIZDAT_FETCH_ALLOW_PRIVATE) and the listen address, so
two test runs never collide on port 8000. The shell block of the README's quick start is then read
from the README and run line by line (its ports rewritten), so the README cannot drift from what
works. Then, as a supporter would: open the snippet builder, paste each code it gives into a blog
page served from another loopback port, and look at what a reader of that blog sees. Then a reader
in Vietnamese, the first archivist, a reader taking a capture away and checking it offline against
the public log, and the static copy.

This is the test the last round lacked: 2,020 tests passed while `make run` served 404 for every
embed file, because every other test builds the app with absolute paths.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.services import ROOT, free_port, wait_for_http

# What a user's shell would not have: the test runner's own Samizdat and Flask variables.
_FOREIGN = ("SAMIZDAT_", "FLASK_", "PROMETHEUS_MULTIPROC_DIR")
_IGNORED = shutil.ignore_patterns(
    ".venv", "var", ".git", "node_modules", "__pycache__", ".pytest_cache", "results", "*.db"
)
SHADOW = """(root) => { const h = root.querySelector('.samizdat-embed');
  if (!h || !h.shadowRoot) return null;
  const q = h.shadowRoot.querySelector('blockquote');
  return {text: q.querySelector('.text').textContent,
          border: getComputedStyle(q).borderLeftStyle,
          sheets: h.shadowRoot.adoptedStyleSheets.length
                  + h.shadowRoot.querySelectorAll('style').length}; }"""


def readme_walkthrough() -> list[str]:
    """The command lines of the README's quick start (the sh block after "Try it")."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"Try it with the seed articles.*?```sh\n(.*?)```", text, re.S)
    assert block, "the README lost its quick-start walk-through"
    lines = [line.split("  #")[0].rstrip() for line in block.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


class BlogPages:
    """A supporter's blog: a plain static server on its own loopback port, pages set by the test."""

    def __init__(self) -> None:
        pages: dict[str, bytes] = {}
        self.pages = pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                body = pages.get(self.path.split("?")[0])
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body or b"not here")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def put(self, path: str, snippet: str) -> str:
        """Publish a blog post holding ``snippet`` at ``path``; its URL."""
        self.pages[path] = (
            "<!doctype html><html lang=en><meta charset=utf-8><title>My blog</title>"
            f"<h1>A post</h1><p>Words they blocked:</p>\n{snippet}\n<p>The end.</p></html>"
        ).encode()
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fresh_clone(tmp_path: Path) -> Path:
    """The checkout as a new user has it: its files, ../shared beside it, no var/ yet."""
    clone = tmp_path / "samizdat"
    shutil.copytree(ROOT, clone, ignore=_IGNORED, symlinks=True)  # copy2: make sees nothing stale
    (clone / ".venv").symlink_to((ROOT / ".venv").resolve())
    (tmp_path / "shared").symlink_to((ROOT.parent / "shared").resolve())
    assert (clone / "translations/vi/LC_MESSAGES/messages.mo").exists(), "run `make translations`"
    return clone


@pytest.fixture
def user_shell(fresh_clone):
    """The environment of the user's two terminals: theirs, with only what the README sets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
    env["SAMIZDAT_FETCH_ALLOW_PRIVATE"] = "1"
    # The verifier remembers the checkpoints it saw: this run's log is not the last run's.
    env["XDG_STATE_HOME"] = str(fresh_clone.parent / "xdg-state")
    env["SAMIZDAT_BIND"] = f"127.0.0.1:{free_port()}"
    return env


def _as_from_a_terminal() -> None:
    """In the child before exec: SIGINT at its default and no signal blocked."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _kill_processes_under(directory: Path) -> None:
    """SIGKILL every process whose working directory is ``directory`` or below (a hung run's
    leftovers), so a failed walk-through reports instead of hanging."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(proc / "cwd"))
        except OSError:
            continue
        if cwd == directory or directory in cwd.parents:
            try:
                os.kill(int(proc.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_readme_walkthrough_on_the_defaults_in_chromium(fresh_clone, user_shell, chromium):
    env, app_port = user_shell, user_shell["SAMIZDAT_BIND"].rsplit(":", 1)[1]
    base = f"http://127.0.0.1:{app_port}"
    # Terminal 1: `SAMIZDAT_FETCH_ALLOW_PRIVATE=1 make run`, stopped with Ctrl-C at the end.
    # A terminal's shell starts it with Ctrl-C's signal deliverable: default disposition, nothing
    # blocked, whatever this test process inherited.
    run = subprocess.Popen(["make", "run"], cwd=fresh_clone, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                           preexec_fn=_as_from_a_terminal)
    walk = None
    blog = BlogPages()
    try:
        wait_for_http(f"{base}/healthz", 90, run)
        # Terminal 2: the README's lines, ports moved off the defaults (tests run side by side).
        site_port = free_port()
        script = "set -e\n" + "\n".join(
            line.replace("127.0.0.1:9000", f"127.0.0.1:{site_port}")
                .replace("tests.sites 9000", f"tests.sites {site_port}")
                .replace("127.0.0.1:8000", f"127.0.0.1:{app_port}")
            for line in readme_walkthrough()
        ) + "\n"
        # Files, not pipes: the seed site the README backgrounds keeps its stdout open.
        out_path, err_path = fresh_clone.parent / "walk.out", fresh_clone.parent / "walk.err"
        with out_path.open("w") as out_file, err_path.open("w") as err_file:
            walk = subprocess.Popen(["bash", "-c", script], cwd=fresh_clone, env=env,
                                    stdout=out_file, stderr=err_file, start_new_session=True)
            walk.wait(timeout=240)
        out, err = out_path.read_text(), err_path.read_text()
        assert walk.returncode == 0, f"the README's walk-through failed:\n{out}\n{err}"
        assert "1 captured, 0 unchanged, 0 failed" in out, out
        random_fragment = json.loads(out[out.index('{"id"'):].splitlines()[0])
        # Relative defaults stay in the clone: var/ beside the code, nothing in the package.
        assert (fresh_clone / "var" / "samizdat.db").exists()
        assert (fresh_clone / "var" / "public" / "embed.js").exists()
        assert not (fresh_clone / "samizdat" / "var").exists()

        approved = json.loads(subprocess.run(
            [".venv/bin/flask", "fragments", "list", "--status", "approved", "--json"],
            cwd=fresh_clone, env=env, capture_output=True, text=True, check=True, timeout=60,
        ).stdout)
        texts = {f["text"] for f in approved}
        assert len(texts) >= 5 and random_fragment["text"] in texts

        # Every file the snippets name is served, with its type, from the default public dir.
        published = json.loads((fresh_clone / "var/public/published.json").read_text())
        for path, kind in [("embed.js", "javascript"), (published["embed_js"], "javascript"),
                           ("frame", "text/html"), ("packs/key.json", "application/json"),
                           ("packs/all/index.json", "application/json")]:
            got = requests.get(f"{base}/embed/{path}", timeout=10)
            assert got.status_code == 200 and kind in got.headers["Content-Type"], (path, got)

        context = chromium.new_context(viewport={"width": 1000, "height": 900})
        errors: list[str] = []
        try:
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            # The supporter's builder: both previews render a verified fragment, styled.
            page.goto(f"{base}/embed", wait_until="load")
            script_code = page.input_value("#code-script")
            iframe_code = page.input_value("#code-iframe")
            oembed_page = page.inner_text("#oembed-h ~ pre code")
            previews = page.locator("iframe.preview")
            assert previews.count() == 2
            preview_frame = page.frame_locator("iframe.preview").first
            preview_frame.locator(".samizdat-embed").wait_for(timeout=15000)
            shown = page.frames[1].evaluate(SHADOW, page.frames[1].evaluate_handle("document"))
            assert shown["text"] in texts and shown["border"] == "solid" and shown["sheets"] >= 1
            frame_preview = page.frame_locator("iframe.preview").nth(1)
            frame_preview.locator(".samizdat-embed").wait_for(timeout=15000)
            page.screenshot(path=str(fresh_clone.parent / "builder.png"), full_page=True)
            assert not [e for e in errors if "Refused" in e or "MIME" in e], errors

            # The script snippet on a blog elsewhere: a random verified fragment replaces the
            # written-in one, view after view.
            written_in = html.unescape(re.search(r"<p dir=\"auto\">(.*?)</p>", script_code, re.S).group(1))
            assert written_in in texts
            post = blog.put("/2026/12/post.html", script_code)
            seen = []
            for _ in range(6):
                page.goto(post, wait_until="load")
                page.locator(".samizdat-embed").wait_for(timeout=15000)
                got = page.evaluate(SHADOW, page.evaluate_handle("document"))
                assert got["text"] in texts and got["border"] == "solid"
                seen.append(got["text"])
            assert set(seen) - {written_in}, "every view showed only the written-in fragment"
            page.screenshot(path=str(fresh_clone.parent / "blog-script.png"))

            # The frame snippet, and the oEmbed of the builder's collection page.
            for path, code in [("/frame.html", iframe_code), ("/oembed.html", requests.get(
                    f"{base}/oembed", params={"url": oembed_page, "format": "json"}, timeout=10
            ).json()["html"])]:
                page.goto(blog.put(path, code), wait_until="load")
                inner = page.frame_locator("iframe")
                inner.locator(".samizdat-embed").wait_for(timeout=15000)
                frame = page.frames[1]
                got = frame.evaluate(SHADOW, frame.evaluate_handle("document"))
                assert got["text"] in texts, (path, got)
            page.screenshot(path=str(fresh_clone.parent / "blog-oembed.png"))

            # A reader whose browser speaks English chooses Vietnamese once, and keeps it.
            page.goto(f"{base}/?lang=vi", wait_until="load")
            assert page.get_attribute("html", "lang") == "vi"
            page.click("header.reader nav a")  # "Archive", in Vietnamese
            assert page.get_attribute("html", "lang") == "vi" and "lang=vi" in page.url
            page.click("header.reader a.brand")
            assert page.get_attribute("html", "lang") == "vi"
            page.goto(f"{base}/embed?lang=vi", wait_until="load")
            assert page.get_attribute("html", "lang") == "vi"
            assert "Put censored words on your site" not in page.inner_text("h1")

            # The first archivist, made as the README says, logs in and finds the work waiting.
            command = re.search(r"`\.venv/bin/flask (users create NAME --role admin)`",
                                (fresh_clone / "README.md").read_text())
            assert command, "the README no longer says how the first account is made"
            made = subprocess.run(
                [".venv/bin/flask", *command.group(1).replace("NAME", "first").split()],
                input="a long enough passphrase\na long enough passphrase\n", cwd=fresh_clone,
                env=env, capture_output=True, text=True, timeout=60)
            assert made.returncode == 0, made.stderr
            page.goto(f"{base}/login", wait_until="load")
            page.fill("#name", "first")
            page.fill("#password", "a long enough passphrase")
            page.click("button[type=submit]")
            page.goto(f"{base}/manage/sources", wait_until="load")
            assert "bbc-vietnam-internet-fear" in page.content()
            page.screenshot(path=str(fresh_clone.parent / "manage-sources.png"), full_page=True)
        finally:
            context.close()

        # A reader takes the capture away and checks it offline against the public log, with the
        # command its page prints: the scheduler logs it within 30 s; `flask log append` does it
        # now (retried while the scheduler's own pass holds the log).
        for _ in range(10):
            logged = subprocess.run([".venv/bin/flask", "log", "append"], cwd=fresh_clone, env=env,
                                    capture_output=True, text=True, timeout=60)
            if logged.returncode == 0:
                break
            time.sleep(1)
        assert logged.returncode == 0, logged.stdout + logged.stderr
        reader = requests.get(f"{base}/captures/1/", timeout=10).text
        taken = fresh_clone.parent / "taken-away"
        for path, name in set(re.findall(r'href="(/captures/1/files/([^"]+))" download', reader)):
            target = taken / html.unescape(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(requests.get(base + html.unescape(path), timeout=10).content)
        assert (taken / "manifest.json").exists() and (taken / "capture.warc.gz").exists()
        command = html.unescape(re.search(r'<pre class="command">(.*?)</pre>', reader, re.S).group(1))
        assert command.startswith("python -m provenance.verify FOLDER --log ")
        verified = subprocess.run(
            [".venv/bin/python", *command.replace("FOLDER", str(taken)).split()[1:]],
            cwd=fresh_clone, env=env, capture_output=True, text=True, timeout=60)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "ok  inclusion of entry 0" in verified.stdout, verified.stdout

        # The static copy, as the scheduler or `flask archive publish` writes it: each language
        # in its own words, and no captured file in it able to run script.
        exported = subprocess.run([".venv/bin/flask", "archive", "publish"], cwd=fresh_clone,
                                  env=env, capture_output=True, text=True, timeout=180)
        assert exported.returncode == 0, exported.stdout + exported.stderr
        site = fresh_clone / "var" / "public" / "site"
        assert '<html lang="vi">' in (site / "vi" / "index.html").read_text()
        assert '<html lang="en">' in (site / "index.html").read_text()
    finally:
        blog.close()
        if walk is not None and walk.poll() is None:
            os.killpg(walk.pid, signal.SIGKILL)
        if walk is not None:
            # The README backgrounds the seed site; it lives in the walk's process group.
            try:
                os.killpg(walk.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        # Ctrl-C, as the user stops it: the terminal signals the whole foreground group.
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGINT)
        try:
            log, _ = run.communicate(timeout=30)
            hung = False
        except subprocess.TimeoutExpired:
            hung = True
            os.killpg(run.pid, signal.SIGKILL)
            # The scheduler and gunicorn run in sessions of their own (scripts/run.sh) and hold
            # the output pipe: end them too, or this would wait for ever.
            _kill_processes_under(fresh_clone)
            log, _ = run.communicate(timeout=60)
    text = log.decode(errors="replace")
    assert not hung, f"Ctrl-C did not stop `make run` within 30 s:\n{text[-3000:]}"
    # make itself dies of the SIGINT, as at a terminal; what it ran must have stopped cleanly.
    assert run.returncode in (0, -signal.SIGINT), text[-3000:]
    assert "scheduler stopped" in text and "Shutting down: Master" in text, text[-3000:]
    assert "Traceback" not in text, text
    assert "alembic.runtime.plugins" not in text, "startup is noisy again"
    with pytest.raises(ProcessLookupError):
        os.killpg(run.pid, 0)  # nothing of `make run` is left behind
