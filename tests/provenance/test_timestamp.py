"""provenance.timestamp: RFC 3161 tokens of a checkpoint from real TSAs on loopback.

The TSAs are OpenSSL's ``ts -reply`` behind HTTP (tests/provenance/tsa.py), each with its own
throwaway root; refusals are served by a scripted TSA answering with chosen bytes.
"""

from __future__ import annotations

import datetime
import socket
import subprocess
import time

import pytest

from provenance import note
from provenance.errors import TimestampError
from provenance.log import LogWriter
from provenance.timestamp import MAX_TOKEN_BYTES, check_tsa_url, request_timestamps, verify_timestamp
from tests.provenance.tsa import ScriptedTSA, openssl_binary

ORIGIN = "samizdat.example/log"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> bytes:
    """The exact bytes of a real signed checkpoint over three entries."""
    signer = note.Ed25519Signer.generate(ORIGIN)
    with LogWriter(tmp_path_factory.mktemp("log"), signer) as writer:
        writer.append([b"capture 1", b"capture 2", b"decision 1"])
        return writer.publish()


@pytest.fixture(scope="module")
def token(tsa, checkpoint) -> bytes:
    """A real token for ``checkpoint`` from the trusted TSA."""
    results = request_timestamps(checkpoint, [tsa.url], [tsa.root])
    assert results.failures == ()
    return results.timestamps[0].token


@pytest.fixture
def scripted():
    """A TSA answering with whatever bytes a test sets."""
    servers = []

    def start(**kwargs) -> ScriptedTSA:
        servers.append(ScriptedTSA(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _closed_port_url() -> str:
    """An http URL on loopback where nothing listens (the port was just released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/tsr"


def _only_failure(results) -> str:
    assert results.timestamps == ()
    assert len(results.failures) == 1
    return results.failures[0].reason


def test_token_for_checkpoint_verifies_with_gentime_near_now(tsa, checkpoint):
    before = datetime.datetime.now(datetime.timezone.utc)
    results = request_timestamps(checkpoint, [tsa.url], [tsa.root])
    assert results.failures == ()
    [stamp] = results.timestamps
    assert stamp.tsa_url == tsa.url
    # The TSA's clock has one-second resolution; allow that and a little scheduling slack.
    assert before - datetime.timedelta(seconds=2) <= stamp.gen_time <= \
        datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
    # The stored token verifies on its own later, without the nonce, as a reader would check it.
    assert verify_timestamp(stamp.token, checkpoint, [tsa.root]) == stamp.gen_time


def test_token_for_other_bytes_is_refused(tsa, checkpoint, token):
    altered = checkpoint.replace(b"\n3\n", b"\n4\n", 1)
    assert altered != checkpoint
    with pytest.raises(TimestampError, match="for other bytes"):
        verify_timestamp(token, altered, [tsa.root])
    with pytest.raises(TimestampError, match="for other bytes"):
        verify_timestamp(token, checkpoint + b"\n", [tsa.root])


def test_tsa_answering_for_other_bytes_is_a_failure(tsa, checkpoint, scripted):
    foreign = request_timestamps(b"some other checkpoint\n", [tsa.url], [tsa.root]).timestamps[0].token
    liar = scripted(body=foreign)
    assert "for other bytes" in _only_failure(request_timestamps(checkpoint, [liar.url], [tsa.root]))


def test_replayed_token_fails_the_nonce_check(tsa, checkpoint, token, scripted):
    replay = scripted(body=token)  # a genuine token for these bytes, but not an answer to this query
    assert "nonce" in _only_failure(request_timestamps(checkpoint, [replay.url], [tsa.root]))


def test_token_of_untrusted_tsa_is_refused(tsa, other_tsa, checkpoint):
    reason = _only_failure(request_timestamps(checkpoint, [other_tsa.url], [tsa.root]))
    assert "not signed by a trusted TSA" in reason
    untrusted = request_timestamps(checkpoint, [other_tsa.url], [other_tsa.root]).timestamps[0].token
    with pytest.raises(TimestampError, match="not signed by a trusted TSA"):
        verify_timestamp(untrusted, checkpoint, [tsa.root])
    # Trusting both roots accepts either token.
    assert verify_timestamp(untrusted, checkpoint, [tsa.root, other_tsa.root])


@pytest.mark.parametrize("cut", [1, 100, -1])
def test_truncated_token_is_refused(tsa, checkpoint, token, scripted, cut):
    with pytest.raises(TimestampError, match="not an RFC 3161 time-stamp response"):
        verify_timestamp(token[:cut], checkpoint, [tsa.root])
    truncated = scripted(body=token[:cut])
    assert "not an RFC 3161" in _only_failure(request_timestamps(checkpoint, [truncated.url], [tsa.root]))


def test_reply_cut_short_of_its_content_length_is_a_failure(tsa, checkpoint, token, scripted):
    cut = scripted(body=token[:100], announce=len(token))  # the connection closes after 100 bytes
    reason = _only_failure(request_timestamps(checkpoint, [cut.url], [tsa.root]))
    assert reason == f"the reply was cut short: 100 of {len(token)} bytes"


def test_tsa_refusal_is_reported_with_its_reason(tsa, checkpoint, tmp_path, scripted):
    # A query for SHA-1, which the TSA's openssl.cnf does not accept: OpenSSL answers "rejection".
    (tmp_path / "checkpoint").write_bytes(checkpoint)
    query = subprocess.run([openssl_binary(), "ts", "-query", "-data", str(tmp_path / "checkpoint"),
                            "-sha1", "-cert"], capture_output=True, check=True).stdout
    rejection = tsa.reply(query)
    expected = "the TSA refused: status 2 (Message digest algorithm is not supported.)"
    with pytest.raises(TimestampError) as refused:
        verify_timestamp(rejection, checkpoint, [tsa.root])
    assert str(refused.value) == expected
    refusing = scripted(body=rejection)
    assert _only_failure(request_timestamps(checkpoint, [refusing.url], [tsa.root])) == expected


def test_garbage_reply_is_refused(tsa, checkpoint, scripted):
    garbage = scripted(body=b"<html>502 Bad Gateway</html>")
    assert "not an RFC 3161" in _only_failure(request_timestamps(checkpoint, [garbage.url], [tsa.root]))
    with pytest.raises(TimestampError, match="not an RFC 3161"):
        verify_timestamp(b"", checkpoint, [tsa.root])


def test_announced_oversized_reply_is_refused_before_reading(tsa, checkpoint, scripted):
    big = scripted(body=b"\x30" * (MAX_TOKEN_BYTES + 1))
    reason = _only_failure(request_timestamps(checkpoint, [big.url], [tsa.root]))
    assert f"announces {MAX_TOKEN_BYTES + 1} bytes" in reason
    with pytest.raises(TimestampError, match="larger than"):
        verify_timestamp(b"\x30" * (MAX_TOKEN_BYTES + 1), checkpoint, [tsa.root])


def test_endless_reply_is_cut_off_without_reading_it_whole(tsa, checkpoint, scripted):
    endless = scripted(endless=1 << 30)  # 1 GiB, no Content-Length
    started = time.monotonic()
    reason = _only_failure(request_timestamps(checkpoint, [endless.url], [tsa.root]))
    assert f"larger than {MAX_TOKEN_BYTES} bytes" in reason
    assert time.monotonic() - started < 5
    # The client hung up after max + 1 bytes; what the server managed to push is socket buffers.
    deadline = time.monotonic() + 5
    while endless.sent < 1 << 30 and time.monotonic() < deadline:
        before = endless.sent
        time.sleep(0.2)
        if endless.sent == before:
            break
    assert endless.sent < 32 << 20


def test_silent_tsa_times_out(tsa, checkpoint):
    with socket.socket() as silent:  # accepts connections in the kernel, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/tsr"
        started = time.monotonic()
        reason = _only_failure(request_timestamps(checkpoint, [url], [tsa.root], timeout=0.5))
        assert time.monotonic() - started < 3
    assert "timed out" in reason


def test_dripping_tsa_is_cut_off_at_the_timeout(tsa, checkpoint, scripted):
    dripping = scripted(drip=0.05)  # 1000 bytes at 20 a second: 50 s if waited for
    started = time.monotonic()
    reason = _only_failure(request_timestamps(checkpoint, [dripping.url], [tsa.root], timeout=0.5))
    assert time.monotonic() - started < 1.5
    assert reason == "the reply took longer than the timeout"


def test_one_tsa_down_gives_one_token_and_one_reported_failure(tsa, checkpoint):
    down = _closed_port_url()
    results = request_timestamps(checkpoint, [down, tsa.url], [tsa.root])
    [stamp] = results.timestamps
    assert stamp.tsa_url == tsa.url
    [failure] = results.failures
    assert failure.tsa_url == down
    assert "no reply" in failure.reason and "refused" in failure.reason.lower()
    assert verify_timestamp(stamp.token, checkpoint, [tsa.root]) == stamp.gen_time


def test_two_tsas_each_give_a_token(tsa, other_tsa, checkpoint):
    results = request_timestamps(checkpoint, [tsa.url, other_tsa.url], [tsa.root, other_tsa.root])
    assert results.failures == ()
    assert [s.tsa_url for s in results.timestamps] == [tsa.url, other_tsa.url]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/tsr", "127.0.0.1:318",
                                 "http:///tsr", "http://127.0.0.1:99999/tsr", "javascript:alert(1)"])
def test_only_http_urls_are_asked(tsa, checkpoint, url):
    with pytest.raises(TimestampError, match="not"):
        check_tsa_url(url)
    results = request_timestamps(checkpoint, [url, tsa.url], [tsa.root])
    assert [f.tsa_url for f in results.failures] == [url]
    assert len(results.timestamps) == 1


def test_http_error_and_redirect_are_failures(tsa, checkpoint, scripted):
    broken = scripted(status=500)
    assert _only_failure(request_timestamps(checkpoint, [broken.url], [tsa.root])) == "HTTP 500"
    # A TSA answers where it was asked: even a redirect to a working TSA is not followed.
    redirect = scripted(status=302, location=tsa.url)
    assert _only_failure(request_timestamps(checkpoint, [redirect.url], [tsa.root])) == "HTTP 302"


def test_verify_needs_a_trusted_root(checkpoint, token):
    with pytest.raises(TimestampError, match="no trusted TSA root"):
        verify_timestamp(token, checkpoint, [])
