"""Ctrl-C (SIGINT) and SIGTERM stop the solver and keep the work (verify.interrupts).

In-process: a real SIGINT to this process during a hard MIP (a market split instance, which
no MIP solver finishes in minutes) must come back at once as status ``interrupted`` on every
MIP backend, through the handler that :func:`verify.interrupts.scope` installs for the Python
API. Subprocess: the real console script, signalled mid-solve per backend (HiGHS, SCIP with
SIGTERM, CPLEX, SAT), must print one JSON document with status ``interrupted``, save
``result.json`` and exit with code 130. The time limits given are guards only: a run that
ignored the signal would end on its time limit with another status, and fail.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from verify import interrupts
from verify.backends import SolveOptions, Status
from verify.problem import ProblemBuilder

from needs import require_backend

ROOT = Path(__file__).resolve().parents[1]
DIGIT = str(ROOT / "examples" / "images" / "digit-7.png")
VERIFY = Path(sys.executable).with_name("verify")


def market_split(m: int = 5, seed: int = 0):
    """A market split instance (Cornuéjols & Dawande): ``m`` equality rows over 10(m−1)
    binaries, slack minimised. Tiny (50 columns for m = 5: within CPLEX Community Edition's
    limits) and far beyond any MIP solver's reach in minutes, so a solve ends only when
    interrupted or at its time limit."""
    rng = np.random.default_rng(seed)
    n = 10 * (m - 1)
    a = rng.integers(0, 100, size=(m, n)).astype(float)
    d = np.floor(a.sum(axis=1) / 2)
    b = ProblemBuilder("market-split")
    x = b.add_vars("x", n, 0.0, 1.0, integer=True)
    over = b.add_vars("over", m, 0.0, np.inf, cost=1.0)
    under = b.add_vars("under", m, 0.0, np.inf, cost=1.0)
    rows = np.concatenate([np.repeat(np.arange(m), n), np.arange(m), np.arange(m)])
    cols = np.concatenate([np.tile(x, m), over, under])
    vals = np.concatenate([a.ravel(), np.ones(m), -np.ones(m)])
    b.add_rows(rows, cols, vals, d, d, count=m)
    return b.build()


@pytest.fixture(autouse=True)
def _fresh_flag():
    """No stop request, and Python's own SIGINT handler in place: a process started in the
    background by a non-interactive shell inherits SIGINT *ignored*, and Python then keeps
    it so (the in-process tests below are about the package under Python's default)."""
    interrupts.clear()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
    interrupts.clear()


# -- in-process: the backends -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["highs", "scip", "cplex"])
def test_sigint_interrupts_a_running_solve(name):
    backend = require_backend(name)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        res = backend.solve(market_split(), SolveOptions(time_limit=120, threads=1))
    finally:
        timer.cancel()
    assert res.status == Status.INTERRUPTED, (res.status, res.message)
    assert res.bound is None or res.bound <= (res.objective if res.objective is not None else np.inf)
    # the Python API: the stop request ends with the call, and Python's handler is back
    assert not interrupts.stop_requested()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_keyboard_interrupt_from_a_foreign_handler_still_stops_the_solve():
    """A host with its own SIGINT handler that raises KeyboardInterrupt (verify leaves it in
    place): the waiting main thread catches it, cancels the solve and returns its result."""
    backend = require_backend("highs")

    def raising(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, raising)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        res = backend.solve(market_split(), SolveOptions(time_limit=120, threads=1))
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert res.status == Status.INTERRUPTED
    assert not interrupts.stop_requested()


def test_request_stop_from_another_thread_then_the_next_call_runs_normally():
    backend = require_backend("highs")
    timer = threading.Timer(1.0, interrupts.request_stop)
    timer.start()
    try:
        res = backend.solve(market_split(), SolveOptions(time_limit=120, threads=1))
    finally:
        timer.cancel()
    assert res.status == Status.INTERRUPTED
    easy = market_split(m=2)          # 10 binaries: solved at once
    assert backend.solve(easy, SolveOptions(time_limit=60)).status == Status.OPTIMAL


def test_no_solve_starts_after_a_stop_request():
    backend = require_backend("scip")
    with interrupts.scope():
        interrupts.request_stop("test")
        res = backend.solve(market_split(m=2), SolveOptions(time_limit=60))
        assert interrupts.stop_reason() == "test"
    assert res.status == Status.INTERRUPTED and res.x is None
    assert "not started" in res.message


def test_install_handlers_restores_the_previous_handlers():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with interrupts.install_handlers():
        assert signal.getsignal(signal.SIGINT) is not before[signal.SIGINT]
        os.kill(os.getpid(), signal.SIGTERM)       # first signal: a stop request, no exception
        deadline = time.monotonic() + 10
        while not interrupts.stop_requested() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert interrupts.stop_reason() == "SIGTERM"
    assert {s: signal.getsignal(s) for s in before} == before
    assert not interrupts.stop_requested()


# -- the console script, signalled mid-solve ---------------------------------------------------

def signalled_run(argv: list[str], waits: list[str], delay: float, sig=signal.SIGINT,
                  limit: float = 240.0) -> tuple[int, str, str]:
    """Run ``verify argv``; once the stderr lines in ``waits`` have appeared in that order,
    wait ``delay`` seconds and send ``sig``. Returns (exit code, stdout, stderr)."""
    proc = subprocess.Popen([str(VERIFY), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    err = bytearray()
    progress = {"next": 0, "from": 0}
    ready = threading.Event()

    def read_stderr():
        while chunk := os.read(proc.stderr.fileno(), 65536):
            err.extend(chunk)
            while progress["next"] < len(waits):
                at = err.find(waits[progress["next"]].encode(), progress["from"])
                if at < 0:
                    break
                progress["next"] += 1
                progress["from"] = at + 1
            if progress["next"] == len(waits):
                ready.set()
        ready.set()                     # the process ended

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        ready.wait(limit)
        assert proc.poll() is None, "the command ended before it was signalled:\n" + err.decode()[-3000:]
        time.sleep(delay)
        proc.send_signal(sig)
        out = proc.stdout.read()
        proc.wait(timeout=limit)        # a guard: an ignored signal would run to the time limit
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    return proc.returncode, out.decode(), err.decode()


def check_interrupted(code: int, out: str, err: str, folder: Path):
    assert code == interrupts.EXIT_CODE, err[-3000:]
    try:
        printed = json.loads(out)
    except json.JSONDecodeError as exc:
        pytest.fail(f"stdout is not one JSON document ({exc}): {out[:300]!r}\n{err[-2000:]}")
    saved = json.loads((folder / "result.json").read_text())
    assert saved == printed
    assert "stopping; the best result so far will be printed and saved" in err
    assert "Traceback" not in err
    return printed


def test_cli_sigint_all_targets_highs_keeps_finished_targets(tmp_path):
    """HiGHS; --all-targets: the first target ends on its time limit, the signal lands in the
    second target's solve: both are printed and saved, the run stops there."""
    out = tmp_path / "out"
    code, stdout, err = signalled_run(
        ["min-adv-card", DIGIT, "--model", "multiclass-large", "--all-targets", "--engine", "mip",
         "--time-limit", "8", "--json", "--out", str(out)],
        waits=["[2/9]", "solver highs"], delay=0.5)
    results = check_interrupted(code, stdout, err, out)
    assert isinstance(results, list) and 2 <= len(results) < 9
    assert [r["status"] for r in results][-1] == "interrupted"
    assert "interrupted" not in [r["status"] for r in results[:-1]]
    last = results[-1]
    assert last["objective"] is not None and last["bound"] >= 1      # best example, proven bound
    assert last["bound"] <= last["objective"]
    for r in results:
        assert (r["objective"] is None) != (out / f"adversarial-target{r['target']}.npy").is_file()


def test_cli_sigterm_scip_min_adv(tmp_path):
    out = tmp_path / "out"
    code, stdout, err = signalled_run(
        ["min-adv-card", DIGIT, "--model", "multiclass-large", "--backend", "scip", "--engine", "mip",
         "--time-limit", "40", "--json", "--out", str(out)],
        waits=["solver scip"], delay=2.0, sig=signal.SIGTERM)
    r = check_interrupted(code, stdout, err, out)
    assert r["status"] == "interrupted" and r["backend"] == "scip"
    assert r["objective"] is not None and 1 <= r["bound"] <= r["objective"]
    assert r["solver_status"] == "interrupted"        # the SCIP solve itself was stopped
    assert (out / "adversarial.npy").is_file()


def test_cli_sigint_cplex_explain_keeps_the_sound_partial_explanation(tmp_path):
    out = tmp_path / "out"
    code, stdout, err = signalled_run(
        ["explain", DIGIT, "--model", "multiclass", "--backend", "cplex", "--method", "seed",
         "--time-limit", "120", "--json", "--out", str(out)],
        waits=["pixels decided"], delay=4.0)
    r = check_interrupted(code, stdout, err, out)
    assert r["status"] == "interrupted" and r["backend"] == "cplex"
    assert r["checks"]["exact"] > 0                 # CPLEX was at work
    assert r["undecided_pixels"] > 0 and r["size"] >= r["undecided_pixels"]
    mask = np.load(out / "explanation_mask.npy")
    assert int(mask.sum()) == r["size"]


def test_cli_sigint_sat_bnn_min_flips(tmp_path):
    out = tmp_path / "out"
    code, stdout, err = signalled_run(
        ["min-adv-card", DIGIT, "--model", "bnn", "--encoding", "cnf", "--time-limit", "120",
         "--json", "--out", str(out)],
        waits=["SAT solver portfolio"], delay=2.0)
    r = check_interrupted(code, stdout, err, out)
    # the default backend of minimal flips on a BNN is the portfolio (CP-SAT | HiGHS IP)
    assert r["status"] == "interrupted" and r["backend"] == "portfolio"
    assert r["bound"] >= 1


# -- in-process: what each task returns once a stop is requested ---------------------------------

def test_tasks_return_their_best_so_far_once_a_stop_is_requested():
    """A stop requested before the exact stage: every task returns at once with what it has
    (min-adv: the heuristic's example and the trivial bound; explain: every pixel kept, which
    is trivially sound; certify: undecided; VNN-LIB: timeout, marked interrupted)."""
    from verify.data import read_image
    from verify.models import load_model
    from verify.tasks.adversarial import min_adversarial
    from verify.tasks.explain import explain
    from verify.tasks.robustness import certify
    from verify.tasks.vnnlib import certify_vnnlib

    model = load_model("multiclass")
    image = read_image(DIGIT)
    with interrupts.scope():
        interrupts.request_stop("test")
        adv = min_adversarial(model, image, norm="card", time_limit=60)
        assert adv.status == "interrupted" and not adv.minimal
        assert adv.adversarial is not None and adv.bound == 1.0 <= adv.objective
        assert adv.to_dict()["status"] == "interrupted"

        expl = explain(model, image, time_limit=60)
        assert expl.status == "interrupted" and not expl.minimal
        assert expl.stats["free_pixels"] == 0 and expl.size == image.size

        cert = certify(model, image, pixels=1, time_limit=60)
        assert cert.status in ("interrupted", "counterexample")   # only an attack's hit decides
        assert cert.status == "interrupted" or cert.counterexample is not None

        prop = ROOT / "benchmarks" / "vnncomp" / "mlp-256x2" / "prop_0_eps_0.030.vnnlib"
        vnn = certify_vnnlib(model, prop, time_limit=60)
        assert vnn.verdict == "timeout" and vnn.interrupted and vnn.to_dict()["interrupted"]
        assert interrupts.stop_requested()          # inner calls leave the request in place
    assert not interrupts.stop_requested()          # the outermost scope ends it


def test_watchdog_cancels_a_run_that_ignores_its_time_limit():
    """A native call that checks no time limit (as HiGHS's presolve does not) is cancelled
    once ``deadline_s`` has passed; that is not recorded as a stop request."""
    cancelled = threading.Event()
    # wait() returns True only when the event was set, i.e. the watchdog cancelled the call
    result = interrupts.call_cancellable(lambda: cancelled.wait(30.0), cancelled.set, deadline_s=0.3)
    assert result is True and cancelled.is_set()
    assert not interrupts.stop_requested()
    # without a deadline nothing cancels a call that finishes on its own
    done = threading.Event()
    assert interrupts.call_cancellable(lambda: 7, done.set) == 7 and not done.is_set()
