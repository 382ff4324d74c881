"""Samizdat's own exception types, raised at every boundary so callers never see library errors."""


class SamizdatError(Exception):
    """Base class of every error Samizdat raises on purpose."""


class InvalidURLError(SamizdatError, ValueError):
    """A URL is malformed, empty, or uses a scheme other than http/https."""


class FetchError(SamizdatError):
    """A page could not be fetched; ``reason`` is a short machine-readable cause."""

    def __init__(self, reason: str, message: str, status: int | None = None, final_url: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.status = status  # the HTTP status, when the server answered with an error
        self.final_url = final_url


class StorageError(SamizdatError):
    """A storage back-end failed (unreachable, refused, corrupt)."""


class StorageFullError(StorageError):
    """A back-end has no room left (disk full, quota or file-size limit reached)."""


class StorageUnavailableError(StorageError):
    """A storage back-end cannot be reached right now."""


class BlobNotFoundError(StorageError, FileNotFoundError):
    """The requested object is not in the store."""


class UnsafePathError(StorageError):
    """A file name would put a write outside the root it belongs under (``..``, absolute, …)."""
