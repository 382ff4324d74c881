"""Checks that work grows with its input as it should, independent of how fast the machine is.

Speed itself is measured in bench/ (docs/benchmarks.md); a test only guards the shape of the cost,
because an absolute bound in seconds fails on a slower or busier CI machine for no fault of the code.
"""

from __future__ import annotations

import time
from typing import Callable


def cpu_seconds(work: Callable[[], object], repeat: int = 1) -> float:
    """The least CPU time of this thread over ``repeat`` runs of ``work``.

    This thread's CPU time, not wall time: the figure is about our work, not about what the machine
    (CI neighbours) or this process (other tests' servers and threads) does meanwhile.
    """
    best = float("inf")
    for _ in range(repeat):
        started = time.thread_time()
        work()
        best = min(best, time.thread_time() - started)
    return best


def assert_grows_linearly(make_input: Callable[[int], object], work: Callable[[object], object],
                          small: int, factor: int = 10, slack: float = 3.0, ceiling: float = 30.0) -> None:
    """Fail when ``work`` on an input ``factor`` times larger costs far more than ``factor`` times as much.

    Linear work grows ``factor``-fold; quadratic work grows ``factor**2``-fold, so a bound of
    ``factor * slack`` (with slack well under ``factor``) tells the two apart on any machine. The
    ``ceiling`` (CPU seconds for the large input) catches work that is linear but absurdly slow.
    """
    little, large = make_input(small), make_input(small * factor)
    work(little)  # warm up: imports, language models, caches
    base = max(cpu_seconds(lambda: work(little), repeat=3), 0.005)
    big = cpu_seconds(lambda: work(large))
    assert big < ceiling, f"{big:.1f} s of CPU for the large input"
    assert big / base < factor * slack, (
        f"{factor}× the input cost {big / base:.0f}× the CPU ({base:.3f} s → {big:.3f} s): worse than linear"
    )
