"""Real services for the test suite, each a real process on a free loopback port.

- moto's standalone S3 server (boto3 talks to it over HTTP),
- a js-ipfs daemon exposing the Kubo RPC API (ipfshttpclient talks to it over HTTP),
- PostgreSQL databases created and dropped per test session.

A service that cannot start raises ServiceError with the reason: the suite fails loudly, nothing is
skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
JSIPFS = ROOT / "tests" / "ipfs" / "node_modules" / ".bin" / "jsipfs"
POSTGRES_ADMIN_URL = os.environ.get(
    "SAMIZDAT_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "samizdat-test",
    "AWS_SECRET_ACCESS_KEY": "samizdat-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class ServiceError(RuntimeError):
    """A real service needed by the tests could not be started or reached."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers at all, or raise ServiceError."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"process for {url} exited with {proc.returncode}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException as exc:
            last = exc
            time.sleep(0.1)
    raise ServiceError(f"{url} did not answer within {timeout:g} s: {last}")


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Terminate a process group politely, then kill it."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@dataclass
class S3Server:
    """moto's S3 server process."""

    proc: subprocess.Popen
    endpoint_url: str
    port: int

    def pause(self) -> None:
        """SIGSTOP the server: connections hang, state in memory is kept."""
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused server."""
        os.killpg(self.proc.pid, signal.SIGCONT)


def start_s3_server(port: int | None = None) -> S3Server:
    """Start ``moto_server`` on ``port`` (a free one by default) and wait until it answers.

    Restarted on its old port, moto starts empty: it keeps buckets and objects in memory only.
    """
    port = port or free_port()
    log = open(tempfile.mktemp(prefix="moto-", suffix=".log"), "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url, 30, proc)
    except ServiceError as exc:
        stop_process(proc)
        raise ServiceError(f"moto S3 server did not start ({exc}); see {log.name}") from None
    return S3Server(proc, url, port)


@dataclass
class IpfsNode:
    """A js-ipfs daemon with its own repository."""

    proc: subprocess.Popen
    api_multiaddr: str
    api_port: int
    repo: Path
    gateway_url: str = ""  # the daemon's HTTP gateway: /ipfs/<cid>/… and /ipns/<name>/…


def start_ipfs_node() -> IpfsNode:
    """Init a js-ipfs repository in a temp dir, bind it to free loopback ports, start the daemon."""
    if not JSIPFS.exists():
        raise ServiceError(
            f"{JSIPFS} is missing: run `make test` (it runs `npm install` in tests/ipfs) first"
        )
    repo = Path(tempfile.mkdtemp(prefix="samizdat-ipfs-"))
    env = {**os.environ, "IPFS_PATH": str(repo)}
    init = subprocess.run(
        [str(JSIPFS), "init", "--profile", "test"], env=env, capture_output=True, timeout=120
    )
    if init.returncode != 0:
        raise ServiceError(f"jsipfs init failed: {init.stderr.decode(errors='replace')[-2000:]}")
    api_port, gw_port, swarm_port, rpc_port = (free_port() for _ in range(4))
    config_path = repo / "config"
    config = json.loads(config_path.read_text())
    config["Addresses"]["API"] = f"/ip4/127.0.0.1/tcp/{api_port}"
    config["Addresses"]["Gateway"] = f"/ip4/127.0.0.1/tcp/{gw_port}"
    config["Addresses"]["RPC"] = f"/ip4/127.0.0.1/tcp/{rpc_port}"
    config["Addresses"]["Swarm"] = [f"/ip4/127.0.0.1/tcp/{swarm_port}"]
    config["Addresses"]["Delegates"] = []
    config["Bootstrap"] = []
    config_path.write_text(json.dumps(config, indent=2))
    proc = _run_ipfs_daemon(repo)
    return IpfsNode(proc, f"/ip4/127.0.0.1/tcp/{api_port}/http", api_port, repo,
                    f"http://127.0.0.1:{gw_port}")


def _run_ipfs_daemon(repo: Path) -> subprocess.Popen:
    """Start `jsipfs daemon` on an initialised repository and wait until it is ready."""
    env = {**os.environ, "IPFS_PATH": str(repo)}
    log_path = repo / "daemon.log"
    log = open(log_path, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(JSIPFS), "daemon"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if "Daemon is ready" in text:
            return proc
        if proc.poll() is not None:
            raise ServiceError(f"jsipfs daemon exited with {proc.returncode}: {text[-2000:]}")
        time.sleep(0.2)
    stop_process(proc)
    raise ServiceError(f"jsipfs daemon not ready after 90 s: {log_path.read_text()[-2000:]}")


def restart_ipfs_node(node: IpfsNode) -> None:
    """Start a stopped node's daemon again on its repository (kept on disk) and ports."""
    if node.proc.poll() is None:
        raise ServiceError("the IPFS daemon is still running")
    # A killed daemon leaves its repository lock behind, and js-ipfs refuses to start until it
    # goes stale; its holder is dead, so it is removed, as an operator does after a crash.
    lock = node.repo / "repo.lock"
    if lock.is_dir():
        shutil.rmtree(lock)
    elif lock.exists():
        lock.unlink()
    node.proc = _run_ipfs_daemon(node.repo)


def stop_ipfs_node(node: IpfsNode) -> None:
    """Stop the daemon and remove its repository."""
    stop_process(node.proc)
    shutil.rmtree(node.repo, ignore_errors=True)


def create_postgres_database(prefix: str = "samizdat_test") -> str:
    """Create a fresh, uniquely named PostgreSQL database and return its SQLAlchemy URL."""
    import psycopg

    admin = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise ServiceError(f"PostgreSQL at {admin} is not usable: {exc}") from None
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_database(url: str) -> None:
    """Drop a database made by create_postgres_database (closing stray connections first)."""
    import psycopg

    admin = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class TcpProxy:
    """A loopback TCP proxy that can be cut and restored, to take a service away mid-test."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.listener.listen(64)
        self.enabled = True
        self.bytes_up = 0  # client → service, i.e. what was uploaded through the proxy
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.enabled:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pipe, args=(a, b, up), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while data := src.recv(65536):
                if upstream:
                    with self._lock:
                        self.bytes_up += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """Refuse new connections and close open ones."""
        self.enabled = False
        with self._lock:
            for conn in self._conns:
                try:
                    conn.close()
                except OSError:
                    pass
            self._conns.clear()

    def restore(self) -> None:
        """Accept connections again."""
        self.enabled = True

    def close(self) -> None:
        """Stop listening."""
        self.cut()
        self.listener.close()


def settings_env(settings, **extra: str) -> dict[str, str]:
    """The process environment that makes a `flask`/gunicorn subprocess load ``settings``."""
    env = {
        **os.environ,
        "SAMIZDAT_DATA_DIR": str(settings.data_dir),
        "SAMIZDAT_DATABASE_URL": settings.database_url,
        "SAMIZDAT_S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "SAMIZDAT_S3_BUCKET": settings.s3_bucket,
        "SAMIZDAT_IPFS_API": settings.ipfs_api,
        "SAMIZDAT_FETCH_ALLOW_PRIVATE": "1" if settings.fetch_allow_private else "0",
    }
    env.update(extra)
    return env


POSTGRES_BIN = Path(os.environ.get("SAMIZDAT_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass
class PrivatePostgres:
    """A throwaway PostgreSQL cluster of one test module's own, which it may stop and start.

    Never the machine's server (other tests use that): its own data directory, socket directory
    and loopback port, run as the ``postgres`` OS user (initdb refuses root).
    """

    root: Path
    port: int
    url: str  # the SQLAlchemy URL of its database ``samizdat``

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _pg_ctl(self, *args: str, timeout: float = 60) -> None:
        command = [str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, timeout=timeout)
        if done.returncode != 0:
            raise ServiceError(f"pg_ctl {' '.join(args)} failed: {done.stderr.decode(errors='replace')[-2000:]}")

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        options = f"-k {self.root} -p {self.port} -c listen_addresses=127.0.0.1"
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.root / "server.log"), "-o", options)

    def stop(self, mode: str = "immediate") -> None:
        """Stop it; ``immediate`` is a crash as far as clients and recovery are concerned."""
        self._pg_ctl("stop", "-w", "-m", mode)

    def remove(self) -> None:
        """Stop it if running and delete everything it wrote."""
        try:
            self.stop()
        except ServiceError:
            pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)


def start_private_postgres() -> PrivatePostgres:
    """initdb a cluster in a temp dir, start it on a free loopback port, create ``samizdat``."""
    import psycopg

    if not (POSTGRES_BIN / "initdb").exists():
        raise ServiceError(f"no PostgreSQL binaries in {POSTGRES_BIN} (set SAMIZDAT_TEST_POSTGRES_BIN)")
    root = Path(tempfile.mkdtemp(prefix="samizdat-pg-"))
    command = [str(POSTGRES_BIN / "initdb"), "-D", str(root / "data"), "-A", "trust", "-U", "postgres",
               "--no-sync", "-E", "UTF8", "--locale", "C.UTF-8"]
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        command = ["runuser", "-u", "postgres", "--", *command]
    init = subprocess.run(command, capture_output=True, timeout=120)
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise ServiceError(f"initdb failed: {init.stderr.decode(errors='replace')[-2000:]}")
    port = free_port()
    server = PrivatePostgres(root, port, f"postgresql+psycopg://postgres@127.0.0.1:{port}/samizdat")
    try:
        server.start()
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True,
                             connect_timeout=5) as conn:
            conn.execute("CREATE DATABASE samizdat")
    except Exception:
        server.remove()
        raise
    return server
