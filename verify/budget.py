"""Wall-clock time budgets that long loops check, and how a total budget is shared out.

A :class:`Deadline` is made from a number of seconds (``None``: no limit) when a task starts.
Loops call :meth:`Deadline.expired` between their steps (never inside one step) and stop,
keeping the best found so far, once it is true; the deadline then remembers that it cut the
work short (:attr:`Deadline.cut`), so a result can say ``time_limit`` only when the limit
really changed the answer. A limit is therefore exceeded by at most one step (plus whatever
the caller does after the loop, e.g. re-checking the answer with the model's runtime).

:meth:`Deadline.share` splits what is left among the parts still to run, so that time a part
did not use passes on to the next ones.
"""
from __future__ import annotations

import math
import time

from .errors import InvalidInputError
from .interrupts import stop_requested


def check_time_limit(value: float | None, name: str = "time_limit") -> float | None:
    """``value`` as a float, or None; a clear error for a negative or non-finite number."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number of seconds, not {value!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidInputError(f"{name} must be a finite number of seconds ≥ 0, not {value!r}")
    return seconds


class Deadline:
    """``seconds`` from now (``None``: never). ``cut`` becomes True the first time
    :meth:`expired` finds the time is up, i.e. when a loop stops early because of it."""

    def __init__(self, seconds: float | None, name: str = "time_limit"):
        self.seconds = check_time_limit(seconds, name)
        self.start = time.perf_counter()
        self.at = None if self.seconds is None else self.start + self.seconds
        self.cut = False

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float | None:
        """Seconds left (never negative), or None without a limit."""
        if self.at is None:
            return None
        return max(0.0, self.at - time.perf_counter())

    def expired(self) -> bool:
        """True once the time is up (and then :attr:`cut` is set: the caller stops early), or
        once a stop was requested (Ctrl-C, SIGTERM: :mod:`verify.interrupts`; ``cut`` stays
        False, the caller's result is labelled by the interrupt)."""
        if stop_requested():
            return True
        if self.at is not None and time.perf_counter() >= self.at:
            self.cut = True
            return True
        return False

    def share(self, parts_left: int) -> float | None:
        """The budget of the next of ``parts_left`` parts: what is left, split evenly (None
        without a limit). A part that finishes early leaves its time to the later ones."""
        left = self.remaining()
        return None if left is None else left / max(int(parts_left), 1)


def expired(deadline: Deadline | None) -> bool:
    """``deadline.expired()``, False without a deadline (for loops that take an optional one)."""
    return deadline is not None and deadline.expired()


#: The least time a part is given when a total budget is already spent: enough to return
#: what its first, unlimited steps find (the exact tasks' heuristic), labelled time_limit.
MIN_PART_S = 1e-3


def part_limit(limit: float | None, total: Deadline, parts_left: int) -> float | None:
    """The time limit of the next of ``parts_left`` parts (e.g. the targets of
    ``--all-targets``): its own ``limit`` (per part, None: none), and at most an even split
    of what is left of the ``total`` (see :meth:`Deadline.share`), whichever is smaller;
    never below :data:`MIN_PART_S`. None when neither limits it."""
    share = total.share(parts_left)
    limits = [v for v in (check_time_limit(limit), share) if v is not None]
    return max(min(limits), MIN_PART_S) if limits else None
