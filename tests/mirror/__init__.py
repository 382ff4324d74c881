"""Tests of the mirror: URLs, fetcher, storage, pipeline, CLI and scheduler."""
