"""Fragments: a capture's own words split into short, attributed excerpts.

This package knows nothing of mirror or embed: it takes a capture's bytes and metadata and returns
fragments; its table refers to captures by key.
"""
