"""Samizdat's neutral core: the app factory, the shared database base, errors and CLI glue.

Kept import-free so that ``samizdat.db`` and ``samizdat.errors`` can be used by every capability
without pulling in the web app.
"""
