"""Provenance: an append-only, publicly checkable log of what Samizdat vouches for.

Self-contained: imports nothing of the web app, so the verifier can run anywhere.
"""
