"""Time limits that hold, and progress on stderr.

No test here measures speed (the machine may be busy): they check the *contract* of a time
limit instead. A loop stops at its first check after the deadline, with exactly what it had
(checked deterministically with a deadline that expires after a given number of checks); a
result cut short says ``time_limit``; and every part of a shared budget (the attacks inside
``compare``, the targets of ``--all-targets``) was given no more than what was left of it.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from verify.attacks import minmax as mm
from verify.attacks.api import attack
from verify.budget import MIN_PART_S, Deadline, part_limit
from verify.cli import main
from verify.errors import InvalidInputError
from verify.tasks.adversarial import min_adversarial
from verify.tasks.compare import ATTACK_SHARE, MIN_EXACT_S, compare

IMAGE = "examples/images/digit-7.png"


class AfterChecks(Deadline):
    """A deadline that expires at its ``n``-th check, whatever the clock says: it makes
    "stops at the first check past the limit" testable without timing anything."""

    def __init__(self, n: int):
        super().__init__(None)
        self.n, self.checks = n, 0

    def expired(self) -> bool:
        self.checks += 1
        if self.checks >= self.n:
            self.cut = True
            return True
        return False


@pytest.fixture(scope="module")
def batch(bundled, digits):
    """Four test digits that the multiclass model classifies correctly."""
    x, y = digits
    model = bundled["multiclass"]
    keep = np.flatnonzero(model.reference_labels(x) == y)[:4]
    return model, x[keep].reshape(len(keep), -1)


def test_minmax_stops_at_the_deadline_with_what_it_has(batch):
    """MinMax checks the clock before each of its 20 MINE warm-up steps and after each attack
    step. A deadline that expires at check 20 + j + 1 stops it after exactly j attack steps:
    the answer is then the one of a run of j steps (same step size), and no more checks ran."""
    model, x = batch
    labels = model.network.predict_label(x)
    for j in (0, 3):
        deadline = AfterChecks(mm._MINE_WARMUP + j + 1)
        cut = mm.minmax(model.network, x, labels, 0.2, steps=10_000, lr=0.01, seed=3,
                        deadline=deadline)
        short = mm.minmax(model.network, x, labels, 0.2, steps=j, lr=0.01, seed=3)
        assert deadline.cut and deadline.checks == mm._MINE_WARMUP + j + 1
        np.testing.assert_array_equal(cut, short)
        assert np.all(np.abs(cut - x) <= 0.2 + 1e-12) and cut.min() >= 0 and cut.max() <= 1
    never = AfterChecks(10**9)
    mm.minmax(model.network, x, labels, 0.2, steps=5, lr=0.01, deadline=never)
    assert not never.cut            # a run that ends on its own is not "cut short"


#: A limit that has always passed by an attack's first check (a nanosecond).
NO_TIME = 1e-9


def test_attack_time_limit_status(batch):
    """A limit already past at the first check: every iterative attack stops there and says
    so; the points it returns are still checked (no success without a real label change).
    FGSM (one step, nothing to cut) completes. Without a limit the status is ``complete``."""
    model, x = batch
    for method, norm, eps in [("pgd", "linf", 0.3), ("pgd", "linf", None), ("minmax", "linf", None),
                              ("deepfool", "l2", None), ("cw", "l2", None), ("jsma", "card", None),
                              ("greedy", "card", None)]:
        r = attack(model, x, method, norm, eps=eps, time_limit=NO_TIME)
        assert r.status == "time_limit" and r.time_limit == NO_TIME, (method, eps)
        assert np.array_equal(r.success, r.success & (model.reference_labels(r.adversarial) != r.labels))
        assert r.to_dict()["status"] == "time_limit"
    r = attack(model, x, "fgsm", "linf", eps=0.3, time_limit=NO_TIME)
    assert r.status == "complete"
    r = attack(model, x, "pgd", "linf", eps=0.3)
    assert r.status == "complete" and r.time_limit is None and r.success.all()
    for bad in (0, -1, float("nan")):
        with pytest.raises(InvalidInputError, match="time_limit"):
            attack(model, x, "pgd", "linf", eps=0.3, time_limit=bad)


def test_compare_budget_covers_the_attacks(bundled, digits):
    """``compare`` with no time to speak of: the attacks get the least part
    (:data:`MIN_PART_S`); those whose search has many steps (the ε searches of PGD and
    MinMax: a dozen trials of 50-100 gradient steps) report ``time_limit``; the exact part gets
    its minimum of MIN_EXACT_S. With a positive limit, each attack was given at most what was
    left of the attacks' share, and the exact part at most what was left of the total:
    compared with the times the parts really took, which the budgets were computed from."""
    model = bundled["multiclass"]
    x = digits[0][0]
    r = compare(model, x, norm="linf", time_limit=NO_TIME)
    status = {a.method: a.status for a in r.attacks}
    assert status["pgd"] == status["minmax"] == "time_limit", status
    assert all(a.time_limit == MIN_PART_S for a in r.attacks)
    assert r.exact_time_limit == MIN_EXACT_S and r.to_dict()["time_limit"] == NO_TIME
    assert [row["status"] for row in r.rows()] == [a.status for a in r.attacks]

    total = 4.0
    r = compare(model, x, norm="linf", time_limit=total)
    used = 0.0
    for a in r.attacks:
        assert a.time_limit is not None
        assert a.time_limit <= max(ATTACK_SHARE * total - used, MIN_PART_S) + 1e-9
        used += a.time_s
    assert r.exact_time_limit <= max(total - used, MIN_EXACT_S) + 1e-9
    assert r.exact.stats["time_limit"] == r.exact_time_limit


def test_part_limit_splits_what_is_left():
    total = Deadline(90.0)
    assert part_limit(None, Deadline(None), 3) is None
    assert part_limit(5.0, Deadline(None), 3) == 5.0
    assert 29.0 < part_limit(None, total, 3) <= 30.0
    assert part_limit(2.0, total, 3) == 2.0
    assert part_limit(None, Deadline(0.0), 3) > 0        # a spent total still gives a minimum


def test_all_targets_total_time_limit(bundled, digits, capfd):
    """Every target of ``--all-targets --total-time-limit T`` was given at most an even split
    of what was left of T (and at most ``--time-limit``), as recorded in its result."""
    model = bundled["multiclass"]
    total, per_target = 3.0, 0.5
    results = min_adversarial(model, digits[0][0], norm="card", target="all",
                              total_time_limit=total, time_limit=per_target)
    assert len(results) == model.network.num_classes - 1
    used = 0.0
    for i, r in enumerate(results):
        given = r.stats["time_limit"]
        assert given <= per_target
        assert given <= max((total - used) / (len(results) - i), MIN_PART_S) + 1e-9
        used += r.time_s

    capfd.readouterr()     # drop what the API run printed (solver banners: only the CLI guards stdout)
    assert main(["min-adv-card", IMAGE, "--all-targets", "--total-time-limit", str(total),
                 "--json", "--quiet"]) == 0
    captured = capfd.readouterr()
    payload = json.loads(captured.out)
    used = 0.0
    for i, row in enumerate(payload):
        assert row["time_limit"] <= max((total - used) / (len(payload) - i), MIN_PART_S) + 1e-9
        used += row["time_s"]
    assert "verify [" not in captured.err          # --quiet: no progress lines


def test_all_targets_help_says_per_target(capfd):
    with pytest.raises(SystemExit):
        main(["min-adv-card", "--help"])
    text = " ".join(capfd.readouterr().out.split())
    assert "--total-time-limit" in text and "per target" in text


def test_progress_goes_to_stderr_in_process(bundled, capfd):
    """compare and certify report their stages on stderr; stdout holds the JSON only."""
    assert main(["compare", IMAGE, "--norm", "card", "--time-limit", "20", "--json"]) == 0
    captured = capfd.readouterr()
    json.loads(captured.out)
    assert "compare: attack 1/2 jsma" in captured.err and "compare: exact minimum" in captured.err
    assert "verify [" not in captured.out
    assert main(["certify", IMAGE, "--pixels", "1", "--json"]) == 0
    captured = capfd.readouterr()
    assert json.loads(captured.out)["status"]
    assert "certify" in captured.err and "verify [" not in captured.out


def test_progress_on_stderr_only_and_attack_time_limit_subprocess():
    """The real console script: min-adv-card prints its progress (heuristic, descent rounds)
    on stderr and one JSON document on stdout; ``attack --time-limit`` is accepted, recorded
    and, with --quiet, prints no progress."""
    proc = subprocess.run([sys.executable, "-m", "verify.cli", "min-adv-card", IMAGE, "--json",
                           "--time-limit", "20"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["task"] == "min-adv-card"
    assert "min-adv-card: heuristic" in proc.stderr
    assert "verify [" not in proc.stdout

    proc = subprocess.run([sys.executable, "-m", "verify.cli", "attack", IMAGE, "--method", "pgd",
                           "--time-limit", "30", "--json", "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["time_limit"] == 30 and out["status"] in ("complete", "time_limit")
    assert "verify [" not in proc.stderr
