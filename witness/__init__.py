"""A C2SP tlog-witness: cosigns other logs' checkpoints that extend what it saw before.

``service.py`` (the protocol, no Flask), ``logs.py`` (which logs it witnesses), ``state.py`` (the
last checkpoint it cosigned per log), ``routes.py`` (``POST /witness/add-checkpoint``) and
``cli.py`` (``flask witness``). See docs/provenance.md, "Witnesses".
"""
