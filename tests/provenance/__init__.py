"""Tests for the provenance package: the Merkle core, tiles, notes, cosignatures and the log."""
