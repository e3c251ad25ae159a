"""Racing solver runs on one question: the first proof wins (the ``portfolio`` backend).

* :func:`race` runs :class:`Entrant` s (a ``solve`` and a ``stop``) in threads (the solvers
  release the GIL, so on 2 cores they really run at once); the first *decided* answer stops
  the others, which are joined before it returns, so no search outlives the call. A stop
  request (Ctrl-C) stops them all; an entrant still running :data:`LATE_S` past the time
  limit is stopped too (HiGHS can overrun its limit in presolve).
* Its entrants are often :class:`~verify.backends.base.ProblemRun` s (``solve``, ``stop``):
  the same build-run-extract-settle run as :meth:`~verify.backends.base.Backend.solve`.

Measured with HiGHS: a cancel is not honoured everywhere. Inside its root-node heuristics a
run can go on for seconds after the cancel (RENS sub-MIPs: 12 s on ``bnn-int8``), so racing
two HiGHS runs of one MIP waits for the loser; the portfolio races HiGHS against CP-SAT,
whose stop is prompt.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .. import interrupts
from .base import SolveResult, Status

__all__ = ["DECIDED", "Entrant", "race"]

#: Answers that end a race (the question is settled, with proof).
DECIDED = (Status.OPTIMAL, Status.INFEASIBLE, Status.CUTOFF, Status.UNBOUNDED)
#: Seconds past a race's time limit after which entrants still running are stopped.
LATE_S = 0.1


@dataclass
class Entrant:
    """One contestant: ``solve()`` answers the question, ``stop()`` (from another thread, any
    number of times, also before ``solve`` started) makes it return soon."""

    name: str
    solve: Callable[[], SolveResult]
    stop: Callable[[], None]


def race(entrants: Sequence[Entrant], time_limit: float | None,
         decided: tuple[Status, ...] = DECIDED) -> list[tuple[int, SolveResult]]:
    """Run every entrant in its own thread until the first answer whose status is in
    ``decided`` (the others are then stopped), all have answered, or ``time_limit`` (plus
    :data:`LATE_S`) passed. Returns ``(entrant index, result)`` in the order they finished;
    an entrant that raised answers ``error``."""
    finished: list[tuple[int, SolveResult]] = []
    lock = threading.Lock()
    settled = threading.Event()
    done = threading.Semaphore(0)
    t0 = time.perf_counter()

    def stop_others(winner: int | None) -> None:
        with lock:
            ended = {i for i, _ in finished}
        for j, other in enumerate(entrants):
            if j != winner and j not in ended:
                other.stop()

    def work(i: int) -> None:
        try:
            res = entrants[i].solve()
        except BaseException as exc:  # noqa: BLE001 - reported as that entrant's error
            res = SolveResult(Status.ERROR, entrants[i].name, message=str(exc))
        with lock:
            finished.append((i, res))
            first = res.status in decided and not settled.is_set()
            if first:
                settled.set()
        if first:
            stop_others(i)
        done.release()

    threads = [threading.Thread(target=work, args=(i,), name=f"race-{e.name}", daemon=True)
               for i, e in enumerate(entrants)]
    for t in threads:
        t.start()

    def wait_all() -> None:
        # after the first proof (or past the limit), stop the others again at every step: a
        # stop sent before an entrant's search had started would be forgotten
        left = len(threads)
        while left:
            if done.acquire(timeout=0.05):
                left -= 1
            elif settled.is_set() or (time_limit is not None
                                      and time.perf_counter() - t0 > time_limit + LATE_S):
                stop_others(None)

    interrupts.call_cancellable(wait_all, lambda: stop_others(None))
    for t in threads:
        t.join()
    return finished
