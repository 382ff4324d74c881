"""Archivist accounts: users, hashed passwords, API tokens, and the checks every write passes."""
