"""Ctrl-C (SIGINT) and SIGTERM that stop the work and keep what it found.

A signal does not kill a run. It *requests a stop*: a process-wide flag is set and every
native solve that is running is cancelled through the solver's own mechanism (HiGHS: the
user-interrupt callback behind ``Highs.cancelSolve``; SCIP: ``Model.interruptSolve``; CPLEX:
an ``Aborter``; python-sat: ``Solver.interrupt``). Each solve then returns at once with status
``interrupted`` and whatever it had (incumbent, proven bound), and the tasks check
:func:`stop_requested` between their stages (heuristic, bounds, each descent round, each
explanation batch, each VNN-LIB case) and return their best result so far with status
``interrupted`` — min-adv: the best example and the proven lower bound; explain: the sound
partial explanation (freed pixels were proven harmless; undecided ones stay in it); certify:
``interrupted`` unless already decided; ``certify --vnnlib``: the VNN-COMP verdict
(``timeout``/``unknown``) with ``interrupted: true``.

**Why solves run in a worker thread.** Python runs signal handlers only in the main thread,
between bytecodes, so a handler cannot run while the main thread sits in a long native call.
:func:`call_cancellable` therefore runs the native call (only that call: the model is built
and read in the caller's thread) in a worker thread while the main thread waits in short
steps, ready to run the handler, which cancels the solve. Measured: highspy's ``run``, SCIP's
``optimizeNogil``, CPLEX's ``solve`` and python-sat's ``solve_limited`` release the GIL, so
the waiting main thread is not starved; HiGHS's interrupt callback costs about 1 % of a MIP's
time. SCIP's and CPLEX's own Ctrl-C handlers (which would swallow the signal and stop only
the current solve) are switched off (``misc/catchctrlc``, ``CPLEX_PY_DISABLE_SIGHANDLER``);
a solve that reports a user abort anyway is taken as a stop request.

**The command line** (``verify ...``) wraps every command in :func:`install_handlers`: the
first SIGINT or SIGTERM requests the stop (one line on stderr says so), the command prints
and saves its result as usual, and exits with code 130. A second signal quits at once
(exit 130, nothing saved) — for a stage that does not check the flag.

**The Python API.** Each task (``min_adversarial``, ``certify``, ``explain``,
``certify_vnnlib``) and each ``Backend.solve`` runs inside :func:`scope`. When it is called
from the main thread and SIGINT still has Python's default handler, the outermost scope
installs the same first-stop-then-quit handler for its duration: the first Ctrl-C makes the
call return its best result so far with status ``interrupted``; a second raises
``KeyboardInterrupt`` as usual. The stop request is cleared when that outermost call returns,
so the next call starts afresh — a loop over many calls should check
``result.status == "interrupted"`` and stop. Where the handler cannot be installed (another
thread, a host that set its own SIGINT handler), a ``KeyboardInterrupt`` that reaches a
waiting solve still cancels it and becomes a stop request; one raised in pure-Python code
propagates as usual (that work is lost). Code of your own can stop a run with
:func:`request_stop`, e.g. from a GUI button or another thread.
"""
from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: Seconds between the waiting main thread's checks (and re-sent cancels) during a solve.
POLL_S = 0.05
#: Exit code of a command stopped by a signal (128 + SIGINT, the shell's convention).
EXIT_CODE = 130

_stop = threading.Event()
_reason: list[str] = []
#: Cancel functions of the native solves now running, by ticket.
_cancels: dict[int, Callable[[], None]] = {}
_tickets = iter(range(1, 1 << 62))
#: How the installed handler ends a run on the second signal: "exit" (the command line:
#: os._exit, nothing saved) or "raise" (the Python API: KeyboardInterrupt).
_force_mode: list[str] = []
#: Nesting depth of :func:`scope`, per thread.
_local = threading.local()


# -- the flag ------------------------------------------------------------------------------

def stop_requested() -> bool:
    """Whether a stop was requested (by a signal, a ``KeyboardInterrupt`` during a solve, or
    :func:`request_stop`): tasks then return their best result so far as ``interrupted``."""
    return _stop.is_set()


def stop_reason() -> str | None:
    """What requested the stop (``"SIGINT"``, ``"SIGTERM"``, ...), or None."""
    return _reason[0] if _stop.is_set() and _reason else None


def request_stop(reason: str = "stop requested") -> None:
    """Request a stop: set the flag and cancel every native solve that is running.
    Safe to call from any thread and from a signal handler."""
    if not _stop.is_set():
        _reason[:] = [reason]
        _stop.set()
    for cancel in list(_cancels.values()):
        _safe_cancel(cancel)


def clear() -> None:
    """Forget a stop request (the command line and :func:`scope` do this themselves)."""
    _stop.clear()
    _reason.clear()


def _safe_cancel(cancel: Callable[[], None]) -> None:
    try:
        cancel()
    except Exception:  # noqa: BLE001 - a solver that already finished may refuse the cancel
        pass


# -- native solves -------------------------------------------------------------------------

def call_cancellable(run: Callable[[], T], cancel: Callable[[], None],
                     deadline_s: float | None = None) -> T:
    """``run()`` — one native solver call — such that a stop request cancels it with
    ``cancel()`` (the solver's own interrupt; it must be safe to call from another thread, at
    any time, more than once). Returns what ``run()`` returns (the solver then reports that
    it was interrupted) and re-raises what it raises.

    ``run()`` goes to a worker thread and the calling thread waits in steps of
    :data:`POLL_S` — in the main thread, that is where signal handlers run. While a stop is
    requested, ``cancel()`` is sent again at every step (a cancel that arrives before the
    solver has started is forgotten by some solvers: SCIP). A ``KeyboardInterrupt`` while
    waiting (Python's own SIGINT handler) cancels the solve and becomes a stop request; the
    solve's result is still returned (a second one is re-raised).

    ``deadline_s``: seconds after which ``cancel()`` is sent too, as a watchdog for solvers
    whose own time limit is not checked in every phase (HiGHS's MIP presolve and root LP can
    run many seconds past it). That is not a stop request: the caller labels the result.
    """
    ticket = next(_tickets)
    _cancels[ticket] = cancel
    try:
        box: dict = {}
        # an Event, not Thread.join: a KeyboardInterrupt that lands inside join() can leave
        # the thread's is_alive() wrong (seen here: the loop ended before the solve did)
        finished = threading.Event()

        def work() -> None:
            try:
                box["value"] = run()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                box["error"] = exc
            finally:
                finished.set()

        worker = threading.Thread(target=work, name="verify-solver", daemon=True)
        worker.start()
        overdue = None if deadline_s is None else time.perf_counter() + deadline_s
        while not finished.is_set():
            try:
                if not finished.wait(POLL_S) and (
                        _stop.is_set() or (overdue is not None and time.perf_counter() > overdue)):
                    _safe_cancel(cancel)
            except KeyboardInterrupt:
                _safe_cancel(cancel)
                if _stop.is_set():
                    raise       # a second Ctrl-C: quit as Python would
                request_stop("KeyboardInterrupt")
        if "error" in box:
            raise box["error"]
        return box["value"]
    finally:
        _cancels.pop(ticket, None)


# -- signal handlers -----------------------------------------------------------------------

def _message(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _on_signal(signum: int, frame) -> None:  # noqa: ARG001 - the signal module's signature
    name = signal.Signals(signum).name
    if _stop.is_set():
        if _force_mode == ["exit"]:
            _message(f"verify: {name} again: quitting at once, without saving")
            os._exit(EXIT_CODE)
        raise KeyboardInterrupt
    if _force_mode == ["exit"]:
        _message(f"verify: {name}: stopping; the best result so far will be printed and saved "
                 "(interrupt again to quit at once, without saving)")
    request_stop(name)


def _disable_solver_handlers() -> None:
    """CPLEX's Python API installs its own SIGINT handler around each solve (it would stop
    that one solve and swallow the signal); the variable turns it off when set before
    ``cplex`` is imported. (SCIP's is turned off per model: ``misc/catchctrlc``.)"""
    os.environ.setdefault("CPLEX_PY_DISABLE_SIGHANDLER", "1")


@contextmanager
def install_handlers() -> Iterator[None]:
    """For a command-line run: within the block, the first SIGINT or SIGTERM requests a stop
    (see the module docs) and a second one quits at once with exit code 130. Handlers and
    the flag are restored/cleared when the block ends. Outside the main thread it only
    clears the flag."""
    clear()
    if threading.current_thread() is not threading.main_thread():
        try:
            yield
        finally:
            clear()
        return
    _disable_solver_handlers()
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    old_mode = list(_force_mode)
    _force_mode[:] = ["exit"]
    for s in previous:
        signal.signal(s, _on_signal)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        _force_mode[:] = old_mode
        clear()


@contextmanager
def scope() -> Iterator[None]:
    """Around one task or solve called through the Python API (see the module docs): the
    outermost scope, in the main thread, with Python's default SIGINT handler in place,
    installs the stop-then-raise handler and clears the stop request when it ends. Inside
    :func:`install_handlers` (the command line) it does nothing."""
    depth = getattr(_local, "depth", 0)
    outermost = depth == 0 and _force_mode != ["exit"]
    installed = False
    if outermost:
        clear()
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            _disable_solver_handlers()
            signal.signal(signal.SIGINT, _on_signal)
            _force_mode[:] = ["raise"]
            installed = True
    _local.depth = depth + 1
    try:
        yield
    finally:
        _local.depth = depth
        if installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            _force_mode.clear()
        if outermost:
            clear()


def scoped(fn: F) -> F:
    """Decorator: each call of ``fn`` (a task of the Python API) runs inside :func:`scope`."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with scope():
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]
