"""Prometheus metrics: request counters kept by every worker, archive state read at scrape time.

Under gunicorn (``PROMETHEUS_MULTIPROC_DIR`` set by config/gunicorn.conf.py) each worker counts into
its own files and a scrape adds them up (prometheus_client's multiprocess mode); anywhere else
(`flask run`, tests) one in-process registry per app. The archive's state (captures, replicas,
jobs, fragments, packs, the scheduler) comes from the database and the published files through a
custom collector with a short cache, so every worker and every machine reports the same figures.
Flask-free: ops/routes.py feeds the counters and serves :meth:`AppMetrics.render`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from fragments.models import STATUSES
from mirror.jobs import JOB_STATES
from ops.state import ArchiveState, quantiles, read_state
from samizdat.runtime import Runtime

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The random fragment's endpoint: its fast path counts under the same name as the view.
RANDOM_ENDPOINT = "embed.random_fragment"
EMBED_BLUEPRINTS = frozenset({"embed", "embed_public", "embed_builder"})
JOB_WAIT_QUANTILES = (0.5, 0.9, 0.99, 1.0)

# Rooms by URL (docs/architecture.md): a handful of classes, never the URL itself (cardinality).
_CLASS_BY_PATH = (
    ("/api/fragments/random", "embed"),
    ("/api/", "api"),
    ("/healthz", "ops"), ("/readyz", "ops"), ("/metrics", "ops"),
    ("/manage", "manage"), ("/login", "manage"), ("/logout", "manage"),
    ("/embed", "embed"), ("/oembed", "embed"), ("/fragments/", "embed"), ("/collections/", "embed"),
    ("/static/", "static"),
    ("/archive", "reader"), ("/captures/", "reader"), ("/timegate/", "reader"), ("/timemap/", "reader"),
)


def multiprocess_dir() -> str | None:
    """The directory workers count into, when running under gunicorn's configuration."""
    return os.environ.get(MULTIPROC_ENV) or None


def endpoint_class(path: str) -> str:
    """The room a request path belongs to: reader, embed, api, manage, ops, static or other."""
    if path == "/":
        return "reader"
    for prefix, name in _CLASS_BY_PATH:
        if path.startswith(prefix):
            return name
    return "other"


class AppMetrics:
    """One app's counters, its archive-state collector, and the text a scrape gets."""

    def __init__(self, runtime: Runtime, cache_seconds: float):
        self.multiprocess = multiprocess_dir()
        # No *_created series: multiprocess mode has none, and single-process should read the same.
        disable_created_metrics()
        # Multiprocess counters live in the directory's files, collected from there on scrape.
        self.registry = None if self.multiprocess else CollectorRegistry()
        # Supporters' requests (the embed room) are also labelled with their endpoint, a short
        # fixed list; one counter, so the fast path pays a single increment.
        self.http_requests = Counter(
            "samizdat_http_requests",
            "HTTP requests answered, by endpoint class and status code (embed requests also by endpoint).",
            ["endpoint_class", "endpoint", "status"], registry=self.registry,
        )
        self.state = ArchiveStateCollector(runtime, cache_seconds)
        if self.registry is not None:
            self.registry.register(self.state)
        # Bound once: the fast path pays one increment, no label lookup.
        self._fast_random = self.http_requests.labels("embed", RANDOM_ENDPOINT, "200")

    def count_request(self, path: str, status: int, blueprint: str | None, endpoint: str | None) -> None:
        """Count one answered request (by Flask)."""
        room = endpoint_class(path)
        named = endpoint if room == "embed" and blueprint in EMBED_BLUEPRINTS and endpoint else ""
        self.http_requests.labels(room, named, str(status)).inc()

    def count_fast_random(self) -> None:
        """Count one random fragment answered by the fast path (embed/fastpath.py)."""
        self._fast_random.inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text of every metric, and its content type."""
        if self.registry is not None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess)
        registry.register(self.state)
        return generate_latest(registry), CONTENT_TYPE_LATEST


class ArchiveStateCollector:
    """A prometheus_client collector of the archive's state, re-read at most every ``cache_seconds``."""

    def __init__(self, runtime: Runtime, cache_seconds: float):
        self.runtime = runtime
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._state: ArchiveState | None = None

    def describe(self) -> list:
        """Nothing up front: registering must not query the database."""
        return []

    def _current(self) -> ArchiveState | None:
        """The cached reading, refreshed when stale; None while the database cannot be read."""
        with self._lock:
            if time.monotonic() - self._read_at >= self.cache_seconds:
                try:
                    self._state = read_state(self.runtime)
                except Exception:  # the scrape still answers: samizdat_database_up says why
                    log.warning("metrics: the archive's state could not be read", exc_info=True)
                    self._state = None
                self._read_at = time.monotonic()
            return self._state

    def collect(self) -> Iterator[Metric]:
        """Every state metric (only ``samizdat_database_up`` when the database cannot be read)."""
        state = self._current()
        yield GaugeMetricFamily("samizdat_database_up", "Whether the last reading of the database succeeded.",
                                value=0 if state is None else 1)
        if state is None:
            return
        yield from _state_metrics(state, self.runtime)


def _labelled(family: GaugeMetricFamily | CounterMetricFamily, values: dict) -> GaugeMetricFamily | CounterMetricFamily:
    for key, value in sorted(values.items()):
        family.add_metric(list(key) if isinstance(key, tuple) else [key], value)
    return family


def _state_metrics(state: ArchiveState, runtime: Runtime) -> Iterator[Metric]:
    """The metric families of one reading."""
    outcomes = {"ok": 0, "unchanged": 0, "failed": 0, **state.captures}
    yield _labelled(CounterMetricFamily("samizdat_captures", "Capture attempts recorded, by outcome.",
                                        labels=["outcome"]), outcomes)
    yield GaugeMetricFamily("samizdat_sources_active", "Sources being mirrored (active, not deleted).",
                            value=state.sources_active)
    yield _labelled(GaugeMetricFamily("samizdat_replicas", "Replica rows by back-end and state.",
                                      labels=["backend", "state"]), state.replicas)
    backends = sorted({b for b, _ in state.replicas} | {n for n in runtime.stores if n != "local"})
    yield _labelled(GaugeMetricFamily("samizdat_replica_backlog", "Replicas not stored yet (pending or failed), by back-end.",
                                      labels=["backend"]), {b: state.replica_backlog(b) for b in backends})
    yield _labelled(GaugeMetricFamily("samizdat_replica_backlog_oldest_seconds",
                                      "Age of the oldest replica not stored yet, by back-end (0: none).",
                                      labels=["backend"]),
                    {b: state.age(state.oldest_unstored.get(b)) or 0.0 for b in backends})
    yield GaugeMetricFamily("samizdat_processing_backlog", "Captures waiting to be split and replicated.",
                            value=state.processing_backlog)
    yield GaugeMetricFamily("samizdat_processing_backlog_oldest_seconds",
                            "Age of the oldest capture waiting to be processed (0: none).",
                            value=state.age(state.oldest_unprocessed) or 0.0)
    yield _labelled(GaugeMetricFamily("samizdat_fragments", "Fragments by curation status.", labels=["status"]),
                    {**dict.fromkeys(STATUSES, 0), **state.fragments})
    yield _labelled(GaugeMetricFamily("samizdat_jobs", "Capture jobs by state.", labels=["state"]),
                    {**dict.fromkeys(JOB_STATES, 0), **state.jobs})
    yield GaugeMetricFamily("samizdat_job_queue_oldest_seconds", "How long the oldest queued job has waited (0: none).",
                            value=state.age(state.oldest_queued) or 0.0)
    yield GaugeMetricFamily("samizdat_jobs_stale", "Running jobs whose heartbeat is older than the job lease.",
                            value=state.stale_running)
    waits = GaugeMetricFamily(
        "samizdat_job_wait_seconds",
        "Time from queued to started of jobs started in the last hour (at most the last 1,000 jobs), by quantile.",
        labels=["quantile"],
    )
    for q, value in quantiles(state.job_waits, JOB_WAIT_QUANTILES).items():
        waits.add_metric([f"{q:g}"], value)
    yield waits
    yield GaugeMetricFamily("samizdat_job_wait_jobs", "Jobs the job wait quantiles were computed from.",
                            value=len(state.job_waits))
    yield GaugeMetricFamily("samizdat_scheduler_leader", "Whether a scheduler holds the leader lock (1) or none does (0).",
                            value=1 if state.leader else 0)
    for name, doc, when in (
        ("samizdat_embed_pack_age_seconds", "Seconds since the embed packs were last published.",
         state.packs_published_at),
        ("samizdat_static_copy_age_seconds", "Seconds since the reader archive's static copy was last exported.",
         state.static_exported_at),
    ):
        if when is not None:  # never published: no sample (alert with absent())
            yield GaugeMetricFamily(name, doc, value=state.age(when))
