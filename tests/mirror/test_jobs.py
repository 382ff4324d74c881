"""Capture jobs: queued, claimed once, finished with timings; interrupted ones re-queued."""

import time

from sqlalchemy import select

from mirror.jobs import enqueue, requeue_stale_jobs, run_job, run_queued_jobs
from mirror.leader import LeaderLock
from mirror.models import Job
from mirror.sources import add_source
from samizdat.errors import SamizdatError
from samizdat.runtime import build_runtime
from tests.sites import seed_names

import pytest


def source(runtime, url):
    with runtime.Session() as session:
        s = add_source(session, url, 60).source
        session.commit()
        return s.id


def queue(runtime, source_id, trigger="request"):
    with runtime.Session() as session:
        job = enqueue(session, source_id, trigger, requested_by="ada")
        session.commit()
        return job.id


def test_a_source_has_at_most_one_queued_job(runtime, site):
    sid = source(runtime, site.url("/empty.html"))
    assert queue(runtime, sid) == queue(runtime, sid)


def test_enqueue_refuses_unknown_sources(runtime):
    with runtime.Session() as session, pytest.raises(SamizdatError, match="no source"):
        enqueue(session, 999, "request")


def test_job_states_follow_the_capture(runtime, site):
    good = source(runtime, site.url(f"/articles/{seed_names()[0]}.html"))
    bad = source(runtime, site.url("/status/500"))
    first, failing = queue(runtime, good), queue(runtime, bad)
    assert run_queued_jobs(runtime) == 2
    again = queue(runtime, good)
    run_job(runtime, again)
    with runtime.Session() as session:
        jobs = {j.id: j for j in session.scalars(select(Job))}
    assert jobs[first].state == "succeeded" and jobs[first].bytes > 0 and jobs[first].capture_id
    assert jobs[first].started_at <= jobs[first].finished_at
    assert jobs[failing].state == "failed" and "HTTP 500" in jobs[failing].reason
    assert jobs[again].state == "unchanged"
    assert jobs[first].requested_by == "ada"


def test_a_job_is_claimed_only_once(runtime, site):
    job_id = queue(runtime, source(runtime, site.url("/empty.html")))
    assert run_job(runtime, job_id) is not None
    assert run_job(runtime, job_id) is None  # already taken: nothing runs twice


def test_interrupted_jobs_are_marked_and_requeued(runtime, site):
    sid = source(runtime, site.url("/empty.html"))
    job_id = queue(runtime, sid)
    with runtime.Session() as session:
        session.get(Job, job_id).state = "running"  # as a scheduler killed mid-job leaves it
        session.commit()
    assert requeue_stale_jobs(runtime) == 1
    with runtime.Session() as session:
        jobs = list(session.scalars(select(Job).order_by(Job.id)))
    assert [(j.state, j.trigger) for j in jobs] == [("interrupted", "request"), ("queued", "retry")]
    assert jobs[0].reason and jobs[1].requested_by == "ada"


def test_only_one_leader_lock_per_database(runtime):
    first, second = LeaderLock(runtime.settings, runtime.engine), LeaderLock(runtime.settings, runtime.engine)
    assert first.acquire() is True
    assert second.acquire() is False
    assert first.still_held()
    first.release()
    assert second.acquire() is True
    second.release()


def test_a_heartbeat_does_not_keep_a_trickled_capture_alive(local_settings, trickler):
    # The lease is renewed all along, so only the fetch's own wall clock can end the job.
    settings = local_settings.replace(job_lease_seconds=1.0)
    rt = build_runtime(settings)
    try:
        job_id = queue(rt, source(rt, trickler.url("/length")))
        started = time.monotonic()
        run_job(rt, job_id)
        elapsed = time.monotonic() - started
        with rt.Session() as session:
            job = session.get(Job, job_id)
        assert job.state == "failed" and "time limit" in job.reason
        # Slack for a loaded CI machine; without the deadline the trickler holds the job for 15 s.
        assert elapsed < settings.fetch_timeout + 5.0
    finally:
        rt.dispose()
