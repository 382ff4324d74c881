"""Operations: liveness and readiness, Prometheus metrics, the doctor's checks (docs/operations.md).

Like the app factory, ops/ looks at every capability (their tables, their published files) and is
imported by nothing but the composition root: samizdat/app.py and the CLI wiring.
"""
