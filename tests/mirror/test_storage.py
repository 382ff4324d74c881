"""Every storage back-end behind the one interface, against real servers."""

import pytest

from mirror.storage import IpfsStore, LocalStore, S3Store, sha256_hex
from samizdat.errors import BlobNotFoundError, StorageError, StorageUnavailableError
from tests.services import TcpProxy, free_port

PAYLOAD = "Người dân Việt Nam có quyền tự do ngôn luận.".encode()


@pytest.fixture(params=["local", "s3", "ipfs"])
def store(request, tmp_path, bucket):
    """Each back-end in turn, on a real service."""
    if request.param == "local":
        return LocalStore(tmp_path / "blobs")
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        return S3Store(bucket, server.endpoint_url)
    node = request.getfixturevalue("ipfs_node")
    return IpfsStore(node.api_multiaddr, timeout=10)


def test_put_then_get_returns_the_same_bytes(store):
    blob = store.put(PAYLOAD)
    assert blob.sha256 == sha256_hex(PAYLOAD)
    assert blob.size == len(PAYLOAD)
    assert store.exists(blob.locator)
    assert store.get(blob.locator) == PAYLOAD
    assert store.check().ok


def test_url_names_the_backend(store):
    blob = store.put(PAYLOAD)
    assert store.url(blob.locator).split(":", 1)[0] in {"file", "s3", "ipfs"}


def test_locators_are_content_addresses(store):
    first = store.put(b"one")
    second = store.put(b"two")
    assert first.locator != second.locator
    assert store.put(b"one").locator == first.locator


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_storing_bytes_already_there_uploads_nothing(kind, tmp_path, bucket, request):
    if kind == "local":
        store = LocalStore(tmp_path / "blobs")
    else:
        store = S3Store(bucket, request.getfixturevalue("s3_server").endpoint_url)
    assert store.put(PAYLOAD).uploaded is True
    assert store.put(PAYLOAD).uploaded is False


def test_s3_creates_the_bucket_and_uses_sha256_keys(s3_server, bucket):
    store = S3Store(bucket, s3_server.endpoint_url)
    blob = store.put(PAYLOAD)
    assert blob.locator == f"blobs/sha256/{sha256_hex(PAYLOAD)}"
    listed = store.client.list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in listed] == [blob.locator]


def test_ipfs_pins_what_it_adds(ipfs_node):
    store = IpfsStore(ipfs_node.api_multiaddr)
    blob = store.put(b"pinned for good")
    assert blob.locator.startswith(("Qm", "bafy"))
    assert store.exists(blob.locator)


def test_missing_objects_raise_not_found(tmp_path, s3_server, bucket):
    local = LocalStore(tmp_path / "blobs")
    with pytest.raises(BlobNotFoundError):
        local.get(sha256_hex(b"never stored"))
    s3 = S3Store(bucket, s3_server.endpoint_url)
    s3.put(b"make the bucket")
    with pytest.raises(BlobNotFoundError):
        s3.get("blobs/sha256/" + sha256_hex(b"never stored"))
    assert not s3.exists("blobs/sha256/" + sha256_hex(b"never stored"))
    # BlobNotFoundError is also a FileNotFoundError, so callers need not know Samizdat's types.
    assert issubclass(BlobNotFoundError, FileNotFoundError)


def test_unreachable_s3_is_a_samizdat_error(bucket):
    store = S3Store(bucket, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StorageUnavailableError):
        store.put(PAYLOAD)
    health = store.check()
    assert not health.ok and "unreachable" in health.detail


def test_unreachable_ipfs_is_a_samizdat_error():
    store = IpfsStore(f"/ip4/127.0.0.1/tcp/{free_port()}/http", timeout=2)
    with pytest.raises(StorageUnavailableError):
        store.put(PAYLOAD)
    assert not store.check().ok


def test_s3_cut_mid_session_fails_then_recovers(s3_server, bucket):
    proxy = TcpProxy(s3_server.port)
    try:
        # No cooldown: the next call probes at once, finds S3 back and closes the breaker.
        store = S3Store(bucket, f"http://127.0.0.1:{proxy.port}", cooldown=0)
        store.put(b"before the outage")
        proxy.cut()
        with pytest.raises(StorageError):
            store.put(b"during the outage")
        proxy.restore()
        assert store.put(b"after the outage").uploaded
    finally:
        proxy.close()


def test_bad_ipfs_address_is_a_clear_error():
    store = IpfsStore("/not/a/multiaddr")
    with pytest.raises(StorageError, match="bad IPFS API address"):
        store.put(PAYLOAD)


def test_local_store_rejects_non_hash_locators(tmp_path):
    store = LocalStore(tmp_path)
    with pytest.raises(BlobNotFoundError):
        store.get("../../etc/passwd")
    assert store.exists("../../etc/passwd") is False
