"""schemathesis against the live server: every described operation, generated from
/api/openapi.json, sent over real HTTP to the app with PostgreSQL (and SQLite), S3 and IPFS.

Both of schemathesis's generation modes run: valid input, and input the description rules out
(wrong types, out-of-range numbers, missing fields, unexpected methods). No answer may be a 5xx,
and every answer must be one the description lists, with its content type,
headers and body schema; an operation the description secures must refuse a request without
credentials. Requests carry an admin's token, so the writes are exercised too, on a
database seeded with sources, captures, fragments, collections and a job. The run is seeded
(derandomized, no example database), so a failure in CI reproduces on any machine; no scheduler
runs, so capture-now only queues a job.
"""

from __future__ import annotations

import copy
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from accounts.models import ApiToken
from fragments.curation import Reviewer, create_collection, review
from fragments.models import Fragment
from mirror.jobs import enqueue
from mirror.models import Job
from mirror.pipeline import capture_document
from mirror.sources import add_source
from samizdat import migrate
from samizdat.app import create_app
from samizdat.openapi import description
from tests.browser.conftest import serve
from tests.conftest import _truncate_all, issue_account_token, make_settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    # Each secured operation is sent again without the token: it must answer 401.
    ignored_auth,
]
# Generated examples per operation (on top of schemathesis's coverage cases: boundaries, wrong
# types, unexpected methods), for each of about 30 operations on each database.
MAX_EXAMPLES = 20

PAGE = """<html><head><title>{title}</title></head><body><article>
<p>{title}: the ministry ordered the paper to remove this report about the dam, and the editors
refused, so readers copied the page before it vanished from the web for good.</p>
<p>Residents of the valley said the water rose in a single night, and the officials who had
promised compensation never returned to the villages along the river.</p>
</article></body></html>"""


def seed(app) -> dict:
    """A small archive: sources (two with an uploaded capture and its fragments, some approved),
    a collection and a queued job; and the admin whose token the run sends."""
    runtime = app.extensions["samizdat"]
    token = issue_account_token(app, "boss", "admin")
    with runtime.Session() as session:
        ids = [
            add_source(session, f"https://news{i}.example/article", 60, country="VN",
                       collection="vietnam" if i % 2 else None).source.id
            for i in range(4)
        ]
        create_collection(session, "vietnam", auto_approve=False)
        session.commit()
    for source_id, title in zip(ids[:2], ("Dam report", "River report")):
        outcome = capture_document(runtime, source_id, PAGE.format(title=title).encode(), "page.html")
        assert outcome.status == "ok", outcome
    with runtime.Session() as session:
        fragment_ids = list(session.scalars(select(Fragment.id).order_by(Fragment.id)))
        assert fragment_ids, "the seed pages split into no fragments"
        review(session, fragment_ids[:2], "approved", Reviewer("seed"))
        enqueue(session, ids[2], "cli")
        token_id = session.scalar(select(ApiToken.id))
        job_ids = list(session.scalars(select(Job.id)))
        session.commit()
    # Revocable tokens of another archivist (the run's own is never revoked).
    spare = [issue_account_token(app, f"spare{i}", "archivist") for i in range(2)]
    with runtime.Session() as session:
        spare_ids = list(session.scalars(select(ApiToken.id).where(ApiToken.id != token_id)))
    assert len(spare_ids) == len(spare)
    seeded = {"source_id": ids, "fragment_id": fragment_ids, "job_id": job_ids,
              "token_id": spare_ids, "name": ["vietnam"]}
    return {"token": token, "token_id": token_id, "seeded": seeded}


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def live_api(request, tmp_path_factory, s3_server, ipfs_node):
    """The app on a loopback port, seeded; with the token and token id the run authenticates as."""
    tmp = tmp_path_factory.mktemp(f"openapi-{request.param}")
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        _truncate_all(url)
    else:
        url = f"sqlite:///{tmp / 'samizdat.db'}"
        migrate.upgrade(url)
    app = create_app(make_settings(
        tmp, url,
        s3_endpoint_url=s3_server.endpoint_url,
        s3_bucket=f"samizdat-{uuid.uuid4().hex[:16]}",
        ipfs_api=ipfs_node.api_multiaddr,
        # The run sends ~1,500 requests on one token in well under a minute: the API's limits
        # (tests/security/test_api_rate_limit.py proves them) would answer 429 and hide the rest.
        token_rate_limit="100000 per minute", api_rate_limit="100000 per minute",
        search_rate_limit="100000 per minute",
    ))
    seeded = seed(app)
    SEEDED.clear()
    SEEDED.update(seeded["seeded"])
    live = serve(app)
    yield {**seeded, "base_url": live.base_url}
    SEEDED.clear()
    live.server.shutdown()
    live.server.server_close()
    app.extensions["samizdat"].dispose()


# The document the server serves (tests/test_openapi.py proves the two are the same), loaded at
# collection so that every operation is a test of its own.
schema = schemathesis.openapi.from_dict(copy.deepcopy(description()))

# Path parameters that name a seeded row, filled in by the live_api fixture: a random id almost
# never exists, so without these the writes would only ever meet their 404.
SEEDED: dict[str, list] = {}


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Keep the generated path parameters, or swap each for a seeded row's (Hypothesis chooses)."""
    if not path_parameters:  # None for an operation without any
        return st.just(path_parameters)
    choices = {
        name: st.sampled_from([value, *SEEDED[name]]) if SEEDED.get(name) else st.just(value)
        for name, value in path_parameters.items()
    }
    return st.fixed_dictionaries(choices)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_answers_as_described(case, live_api):
    # Revoking the token this run authenticates with would turn every later answer into a 401.
    if case.method == "DELETE" and case.path.startswith("/api/tokens/"):
        if str(case.path_parameters.get("token_id")) == str(live_api["token_id"]):
            return
    # oEmbed 1.0 itself says an unsupported format is answered 501 Not Implemented, so that one
    # documented 5xx is checked by hand and every other 5xx still fails.
    oembed = case.path == "/oembed"
    response = case.call_and_validate(
        base_url=live_api["base_url"],
        headers={"Authorization": f"Bearer {live_api['token']}"},
        checks=[c for c in CHECKS if not (oembed and c is not_a_server_error)],
        timeout=30,
    )
    # Every answer is an admin's: a 401 would mean the run lost its token and proves nothing.
    assert response.status_code != 401, response.text
    if oembed and response.status_code >= 500:
        assert response.status_code == 501, response.text
        assert case.query.get("format") not in ("json", "xml", None), case.query
