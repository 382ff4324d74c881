"""Run every benchmark module in bench/ (files named bench_*.py) and print their reports.

Each module exposes ``run() -> str`` returning a Markdown section for docs/benchmarks.md; results are
ratios against a peer measured in the same run, because this machine is noisy.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Run the named benchmarks (all when none are named)."""
    here = Path(__file__).resolve().parent
    names = argv or sorted(p.stem for p in here.glob("bench_*.py"))
    if not names:
        print("no benchmarks yet (bench/bench_*.py)")
        return 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(module.run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
