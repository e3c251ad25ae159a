"""Progress of long tasks as short lines of text, for people watching a run.

Tasks call :func:`report` at their milestones (heuristic found an example, bounds computed,
solver started, each descent round, each attack, each ε trial, ...). Nothing is printed
unless a receiver was installed for the block with :func:`reporting`, so the Python API stays
silent by default and :func:`report` costs almost nothing then::

    from verify.progress import reporting
    with reporting(print):                     # any callable taking one line of text
        verify.min_adversarial("cnn", image)

The command line installs :func:`stderr_reporter` (unless ``--quiet``): each line goes to
**stderr** with the seconds since the command started; stdout carries results only.

Lines state facts (what is running, the best example and the proven bound so far, how much of
a time limit is left); they give an estimate of the time remaining only where the work is a
known number of similar items (images of a batch), and say "about" then.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: A receiver of progress lines.
Progress = Callable[[str], None]

_receiver: ContextVar[Progress | None] = ContextVar("verify_progress", default=None)


def report(message: str) -> None:
    """Send one line to the receiver installed by :func:`reporting` (none: do nothing)."""
    receiver = _receiver.get()
    if receiver is not None:
        receiver(message)


def active() -> bool:
    """Whether anyone listens (to skip building costly messages)."""
    return _receiver.get() is not None


@contextmanager
def reporting(receiver: Progress | None) -> Iterator[None]:
    """Within the block, :func:`report` sends lines to ``receiver``. ``None`` keeps the
    receiver already installed (so nested tasks report to whoever listens outside)."""
    if receiver is None:
        yield
        return
    token = _receiver.set(receiver)
    try:
        yield
    finally:
        _receiver.reset(token)


def stderr_reporter(prefix: str = "verify") -> Progress:
    """A receiver that writes ``prefix [  12.3 s] message`` lines to stderr, with the time
    since it was made."""
    t0 = time.perf_counter()

    def emit(message: str) -> None:
        print(f"{prefix} [{time.perf_counter() - t0:7.1f} s] {message}", file=sys.stderr, flush=True)

    return emit


def seconds(value: float | None) -> str:
    """A duration for a progress line: ``"12.3 s"``; ``"no limit"`` for None."""
    return "no limit" if value is None else f"{value:.1f} s"


def items_left(done: int, total: int, elapsed: float) -> str:
    """``"3/10 done, about 14 s left"``: an estimate from the mean time per item so far
    (only once at least one item is done)."""
    if done <= 0 or done >= total:
        return f"{done}/{total} done"
    return f"{done}/{total} done, about {elapsed / done * (total - done):.0f} s left"


def describe_query(query) -> str:
    """One line on an exact query (:class:`verify.encodings.query.Query`): unstable ReLUs
    after the last bound stage and the size of the problem handed to the solver."""
    stages = query.bounds.report()
    size = query.problem.summary()
    head = (f"bounds: {stages[-1]['unstable']} of {stages[-1]['relus']} ReLUs unstable after "
            f"{stages[-1]['stage']}" if stages else "bounds: none")
    return (f"{head}; {size['kind']} with {size['columns']} columns "
            f"({size['integer_columns']} integer), {size['rows']} rows")
