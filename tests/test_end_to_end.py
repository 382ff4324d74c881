"""The walking skeleton as an operator runs it: CLI processes, gunicorn, real S3 and IPFS."""

import subprocess
import sys

import requests

from tests.services import ROOT, free_port, settings_env, stop_process, wait_for_http
from tests.sites import seed_names, seed_text


def flask(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )


def test_blocked_url_to_random_fragment(settings, site, s3_server, ipfs_node):
    port = free_port()
    env = settings_env(settings, SAMIZDAT_BIND=f"127.0.0.1:{port}", SAMIZDAT_WEB_WORKERS="1")
    assert flask(env, "db", "upgrade").returncode == 0
    for name in seed_names():
        added = flask(env, "sources", "add", site.url(f"/articles/{name}.html"), "--country", "VN")
        assert added.returncode == 0, added.stderr
    refused = flask(env, "sources", "add", "gopher://example.org/")
    assert refused.returncode != 0 and "unsupported scheme" in refused.stderr
    run = flask(env, "mirror", "run", "--all")
    assert run.returncode == 0, run.stderr
    assert f"{len(seed_names())} captured, 0 unchanged, 0 failed" in run.stdout
    # Fragments wait for review; nothing is served to supporters until an archivist approves.
    approved = flask(env, "fragments", "approve", "--all")
    assert approved.returncode == 0 and " fragments approved" in approved.stdout, approved.stderr
    # An approval is public once the provenance log holds it (the scheduler appends every 30 s).
    logged = flask(env, "log", "append")
    assert logged.returncode == 0, logged.stderr

    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", 30, web)
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10).json()["status"] == "ready"
        fragment = requests.get(f"http://127.0.0.1:{port}/api/fragments/random", timeout=10).json()
    finally:
        stop_process(web)
    texts = {name: " ".join(seed_text(name).split()) for name in seed_names()}
    origin = fragment["source_url"].rsplit("/", 1)[1].removesuffix(".html")
    assert fragment["text"].rstrip("…") in texts[origin]
    # The fragment's attribution leads back to bytes that are really in S3 and on IPFS.
    from mirror.storage import IpfsStore, S3Store

    s3_bytes = S3Store(settings.s3_bucket, settings.s3_endpoint_url).get(
        f"blobs/sha256/{fragment['sha256']}"
    )
    assert IpfsStore(settings.ipfs_api).get(f"{fragment['cid']}/index.html") == s3_bytes
