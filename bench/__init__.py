"""Benchmarks (`make bench`): each compares Samizdat against a peer in the same run."""
