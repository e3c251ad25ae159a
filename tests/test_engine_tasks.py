"""Minimal distances and explanations on the bound engine (issue 19): ``engine="bab"`` against
brute force on tiny networks (every norm, untargeted and targeted), engine and MIP agreeing
on a bundled seed network, time-limited runs that keep a validated example and a proven
bound, explanations that a fresh exact solve proves sound, and hitting-set lower bounds."""
from __future__ import annotations

import json

import numpy as np
import pytest

from brute_force import brute_force_min
from model_zoo import tiny_dense
from verify.backends import SolveOptions, Status, get_backend
from verify.encodings.query import build_query
from verify.engine.radius import BoundsCache, min_radius
from verify.engine import Spec
from verify.errors import InvalidInputError
from verify.models import load_model
from verify.regions import Box, LinfBall
from verify.tasks.adversarial import min_adversarial
from verify.tasks.common import VERIFY_MARGIN
from verify.tasks.explain import explain

NORMS = ["card", "linf", "l1", "l2"]


def _close(a, b):
    return abs(a - b) <= 2e-4 * max(1.0, abs(b)) + 1e-6


@pytest.fixture(scope="module")
def tiny():
    """Tiny dense nets (4 inputs, 3 logits; 4 inputs, 1 logit) with two inputs each, and two
    5-input cases whose minimal changed pixels are 4 and 2 (the card descent has work)."""
    rng = np.random.default_rng(11)
    nets = [(load_model(tiny_dense(4, [3, 3], 3, seed=3)), rng.random((2, 4))),
            (load_model(tiny_dense(4, [4], 1, seed=3)), rng.random((2, 4)))]
    card = []
    for seed, row in ((1, 0), (2, 1)):
        model = load_model(tiny_dense(5, [3, 3], 3, seed=seed))
        card.append((model, np.random.default_rng(seed).random((3, 5))[row]))
    return nets, card


def _check(model, x, got, want, label, target=None):
    if np.isinf(want):
        assert got.status == "infeasible" and got.adversarial is None
        return
    assert got.status == "optimal" and got.minimal, (got.status, got.stats.get("engine_radius"))
    assert _close(got.objective, want), (got.norm, target, got.objective, want)
    assert got.bound <= got.objective + 1e-9 and got.bound >= want * (1 - 2e-4) - 1e-6
    got_label = int(model.reference_labels(got.adversarial.ravel())[0])
    assert got_label != label and (target is None or got_label == target)
    assert got.backend == "engine" and got.stats["engine"] == "bab"


@pytest.mark.parametrize("norm", NORMS)
def test_bab_untargeted_matches_brute_force(tiny, norm):
    nets, card = tiny
    cases = [(m, x) for m, xs in nets for x in xs] + (card if norm == "card" else [])
    for model, x in cases:
        label = model.label(x)
        want = brute_force_min(model.keras.get_weights(), x, norm, label)
        _check(model, x, min_adversarial(model, x, norm=norm, engine="bab"), want, label)


@pytest.mark.parametrize("norm", NORMS)
def test_bab_targeted_matches_brute_force(tiny, norm):
    nets, card = tiny
    model, xs = nets[0]
    cases = [(model, xs[0])] + (card[1:] if norm == "card" else [])
    for model, x in cases:
        label = model.label(x)
        for target in (t for t in range(3) if t != label):
            want = brute_force_min(model.keras.get_weights(), x, norm, label, target)
            got = min_adversarial(model, x, norm=norm, target=target, engine="bab")
            _check(model, x, got, want, label, target)


def test_bab_all_targets_share_bounds_and_match_untargeted(tiny):
    """Every target in one call (the CLI's --all-targets makes this call): each result is
    handed to on_result as it finishes, in order; the best target is the untargeted answer."""
    model, xs = tiny[0][0]
    seen = []
    results = min_adversarial(model, xs[1], norm="linf", target="all", engine="bab",
                              on_result=seen.append)
    label = model.label(xs[1])
    assert [r.target for r in results] == [t for t in range(3) if t != label]
    assert [id(r) for r in seen] == [id(r) for r in results]
    untargeted = min_adversarial(model, xs[1], norm="linf", engine="bab")
    feasible = [r.objective for r in results if r.objective is not None]
    assert _close(min(feasible), untargeted.objective)


def test_radius_search_reuses_bounds_of_larger_balls(tiny):
    """min_radius on its own: the proven bound and the example bracket the brute-force
    minimum, and the cache holds bounds for the balls it bounded."""
    model, xs = tiny[0][0]
    x = xs[0]
    label = model.label(x)
    want = brute_force_min(model.keras.get_weights(), x, "linf", label)
    net = model.network.merged_affine()
    spec = Spec.label_change(3, label)
    far = np.where(x > 0.5, 0.0, 1.0)          # the farthest corner: the search's first example
    assert int(model.reference_labels(far)[0]) != label, "the fixture's corner must be adversarial"
    cache = BoundsCache()
    r = min_radius(net, lambda e: LinfBall(x, e), spec, lambda y: float(np.abs(y - x).max()),
                   lambda y: int(model.reference_labels(y)[0]) != label, far,
                   float(np.abs(far - x).max()), margin=1e-3, cache=cache)
    assert r.status == "optimal" and r.d_lb <= want + 1e-9 <= r.d_ub + 2e-4
    assert cache.entries and all(cache.best_for(q) is cache.entries[q] for q in cache.entries)
    assert cache.best_for(max(cache.entries) + 1) is None


def test_radius_seed_proves_lower_bounds_with_bounds_alone(tiny):
    """The bounds-only seed of min_radius: every radius it verifies lies below the
    brute-force minimum, the search keeps that bound, and the seed never branches."""
    model, xs = tiny[0][0]
    net = model.network.merged_affine()
    for x in xs:
        label = model.label(x)
        want = brute_force_min(model.keras.get_weights(), x, "linf", label)
        far = np.where(x > 0.5, 0.0, 1.0)
        if int(model.reference_labels(far)[0]) == label:
            continue
        r = min_radius(net, lambda e: LinfBall(x, e), Spec.label_change(3, label),
                       lambda y: float(np.abs(y - x).max()),
                       lambda y: int(model.reference_labels(y)[0]) != label, far,
                       float(np.abs(far - x).max()), margin=1e-3)
        seeds = [s for s in r.steps if s.get("seed")]
        assert seeds and all(s["stage"] in ("crown", "alpha-crown", "bounds") for s in seeds)
        proven = [s["radius"] for s in seeds if s["status"] == "verified"]
        assert all(p < want for p in proven)
        assert r.d_lb >= max(proven, default=0.0) and r.d_lb <= want + 1e-9


def test_decide_without_branching_stops_after_alpha_crown(tiny):
    from verify.engine import EngineOptions, decide
    model, xs = tiny[0][0]
    x = xs[0]
    spec = Spec.label_change(3, model.label(x))
    quick = EngineOptions(attack_restarts=0, branch=False)
    for eps in (0.01, 0.2, 0.5):
        res = decide(model.network, LinfBall(x, eps), spec, options=quick)
        assert res.status in ("verified", "unknown", "counterexample")
        assert res.subdomains == 0 and res.stage != "bab"


@pytest.mark.parametrize("norm", ["linf", "card"])
def test_engine_and_mip_agree_on_bundled_seed_network(bundled, digits, norm):
    model = bundled["twoclass"]
    for i in (0, 2):
        x = digits[0][i]
        mip = min_adversarial(model, x, norm=norm, engine="mip")
        bab = min_adversarial(model, x, norm=norm, engine="bab", time_limit=120)
        assert mip.status == bab.status == "optimal", (mip.status, bab.status)
        assert _close(bab.objective, mip.objective), (i, bab.objective, mip.objective)
        assert bab.stats["settled_by"] in ("engine", "heuristic (one pixel)")


def test_time_limit_returns_validated_example_and_proven_bound(bundled, digits):
    model = bundled["multiclass-large"]
    x = digits[0][3]
    for engine in ("bab", "auto"):
        r = min_adversarial(model, x, norm="linf", engine=engine, time_limit=3)
        assert r.status in ("time_limit", "optimal")
        assert r.adversarial is not None
        assert model.reference_labels(r.adversarial)[0] != r.original_label
        assert r.bound is not None and 0 <= r.bound <= r.objective + 1e-12
        assert r.minimal == (r.status == "optimal")
        assert r.stats["engine"] == engine


def test_engine_option_errors(bundled, digits):
    with pytest.raises(InvalidInputError, match="engine"):
        min_adversarial(bundled["twoclass"], digits[0][0], norm="linf", engine="nope")
    with pytest.raises(InvalidInputError, match="pixel_levels"):
        min_adversarial(bundled["twoclass"], digits[0][0], norm="linf", engine="bab",
                        pixel_levels=256)
    with pytest.raises(InvalidInputError, match="engine"):
        explain(bundled["twoclass"], digits[0][0], engine="nope")


def _forces_label(model, center, kept: np.ndarray, eps) -> bool:
    """A fresh exact MIP (not explain's narrowed query): with the kept pixels held and the
    others free (within ±eps), can another label lead by 1e-6? False: the kept pixels force
    the label."""
    lo = np.zeros_like(center) if eps is None else np.clip(center - eps, 0, 1)
    hi = np.ones_like(center) if eps is None else np.clip(center + eps, 0, 1)
    net = model.network.merged_affine()
    label = int(model.reference_labels(center)[0])
    q = build_query(net, center, None, None, label, Box(center, lo, hi, free=~kept),
                    margin=VERIFY_MARGIN)
    if q.property.proven_infeasible:
        return True
    res = get_backend("highs").solve(q.problem, SolveOptions())
    assert res.status in (Status.INFEASIBLE, Status.OPTIMAL), res.status
    return res.status == Status.INFEASIBLE


@pytest.mark.parametrize("engine", ["bab", "auto"])
def test_engine_explanations_are_sound_and_witnessed(engine):
    rng = np.random.default_rng(7)
    for seed, eps in ((1, None), (5, 0.35)):
        model = load_model(tiny_dense(6, [5, 4], 3, seed=seed))
        center = rng.random(6)
        r = explain(model, center, eps=eps, engine=engine, minimum=True)
        kept = np.zeros(6, dtype=bool)
        kept[r.pixels] = True
        assert _forces_label(model, center, kept, eps)
        assert r.stats["engine"] == engine
        for p, w in r.witnesses.items():
            assert int(model.reference_labels(w)[0]) != r.original_label
            outside = (w != center) & kept
            outside[p] = False
            assert not outside.any()
        m = r.minimum
        assert m["lower_bound"] <= m["size"] <= r.size
        mask = np.zeros(6, dtype=bool)
        mask[m["pixels"]] = True
        assert _forces_label(model, center, mask, eps)
        if m["status"] == "minimum":
            assert m["lower_bound"] == m["size"]


def test_engine_explanation_on_bundled_network_is_sound(bundled, digits):
    """On ``multiclass`` (30 ReLUs) ``bab`` settles checks with the engine and ``auto`` sends
    them to the MIP (few unstable ReLUs); both explanations force the label."""
    model = bundled["multiclass"]
    x = digits[0][1]
    for engine in ("bab", "auto"):
        r = explain(model, x, eps=0.05, engine=engine, time_limit=120)
        kept = np.zeros(x.size, dtype=bool)
        kept[r.pixels] = True
        assert _forces_label(model, x.ravel(), kept, 0.05)
        assert set(r.witnesses) <= set(r.pixels)
        engine_checks = r.checks["alpha-crown"] + r.checks["bab"]
        assert engine_checks > 0 if engine == "bab" else engine_checks == 0, (engine, r.checks)


def test_auto_explanation_checks_go_to_the_cheaper_stage_first():
    """``StageCosts``: the engine goes first until it has cost more per hard check than the
    MIP; then the MIP does, with an engine try every ``probe_every()``-th check (every
    ``PROBE_EVERY``-th, rarer when the engine costs over ``PROBE_EVERY / PROBE_RATIO`` times
    the MIP), and a cheap engine try hands the first place back."""
    import math

    from verify.tasks.explain import PROBE_EVERY, PROBE_RATIO, StageCosts

    costs = StageCosts()
    assert costs.engine_first()                     # nothing measured yet
    costs.record(2.0, 0.5)                          # engine open after 1.5 s, MIP 0.5 s
    assert costs.engine is not None and costs.mip is not None and costs.engine > costs.mip
    every = costs.probe_every()
    assert every == max(PROBE_EVERY, math.ceil(PROBE_RATIO * 2.0 / 0.5)) > PROBE_EVERY
    order = [costs.engine_first() for _ in range(2 * every)]
    assert order.count(True) == 2 and order[every - 1] and order[-1], order
    assert costs.direct == 2 * (every - 1)
    assert StageCosts(engine=0.6, mip=0.5).probe_every() == PROBE_EVERY
    for _ in range(10):
        costs.record(0.05, None)                    # the engine settles checks quickly now
    assert costs.engine_first() and costs.engine_first()


def test_auto_explanation_turns_with_tiny_caps_reach_the_mip_answer(monkeypatch):
    """Every check hard and every turn's cap tiny (1 ms, growing 4-fold a round): the engine
    (continuing its branch and bound across turns) and the MIP take turns until one settles
    each check; the explanation is the one ``engine="mip"`` finds, and it forces the label."""
    import verify.tasks.explain as explain_module

    monkeypatch.setattr(explain_module, "EXPLAIN_MIP_RELUS", -1)
    for name, value in (("ENGINE_CHECK_S", 1e-3), ("MIP_CAP_S", 1e-3), ("MIP_CAP_FACTOR", 0.0)):
        monkeypatch.setattr(explain_module, name, value)
    rng = np.random.default_rng(11)
    turns = 0
    for seed, eps in ((2, None), (3, 0.35), (4, 0.5)):
        model = load_model(tiny_dense(6, [8, 6], 3, seed=seed))
        center = rng.random(6)
        reference = explain(model, center, eps=eps, engine="mip")
        r = explain(model, center, eps=eps, engine="auto")
        assert r.status == "minimal" and r.pixels == reference.pixels, (r.checks, reference.checks)
        kept = np.zeros(6, dtype=bool)
        kept[r.pixels] = True
        assert _forces_label(model, center, kept, eps)
        turns += r.checks["exact"] + r.checks["bab"] + r.checks["alpha-crown"]
    assert turns > 0


def test_auto_explanation_checks_below_the_unstable_threshold_go_straight_to_the_mip(
        bundled, digits, monkeypatch):
    """Under ``auto``, a check whose bounds leave at most ``EXPLAIN_MIP_RELUS`` ReLUs unstable
    never asks the engine: on the bundled cnn at ε = 0.05 (its checks leave a few dozen
    unstable) the explanation equals ``engine="mip"``'s with no engine check, and with the
    threshold at −1 the engine is asked on the same digit, to the same answer."""
    import verify.tasks.explain as explain_module

    image = digits[0][2]
    reference = explain(bundled["cnn"], image, eps=0.05, engine="mip")
    r = explain(bundled["cnn"], image, eps=0.05, engine="auto")
    assert r.status == "minimal" and r.pixels == reference.pixels
    assert r.checks["alpha-crown"] == r.checks["bab"] == 0 and r.checks["exact"] > 0, r.checks
    assert r.stats["engine_time_s"] == 0.0
    monkeypatch.setattr(explain_module, "EXPLAIN_MIP_RELUS", -1)
    asked = explain(bundled["cnn"], image, eps=0.05, engine="auto")
    assert asked.pixels == reference.pixels and asked.stats["engine_time_s"] > 0.0


def test_explain_engine_help_states_the_threshold_in_force():
    """The ``explain --engine`` help writes the threshold as a literal (the CLI's argument
    module does not import the tasks at start-up); it must be the one in force."""
    from verify.cli.args import EXPLAIN_ENGINE_HELP
    from verify.tasks.explain import EXPLAIN_MIP_RELUS

    assert f"at most {EXPLAIN_MIP_RELUS} unstable ReLUs" in EXPLAIN_ENGINE_HELP


def test_minimum_explanation_seeds_many_sets(bundled, digits):
    """The hitting-set master starts from many adversarial pixel sets (the seeding on its own,
    a few seconds): every set is a real witness (inside the ±eps range, another label ahead on
    the network), and the master's proven lower bound is above the one set a witness gives."""
    from verify.attacks.gradients import margins
    from verify.tasks.context import prepare
    from verify.tasks.explain import RobustnessChecker, _hitting_set_problem, _seed_sets

    ctx = prepare(bundled["multiclass"], digits[0][0])
    lo, hi = np.clip(ctx.image - 0.05, 0, 1), np.clip(ctx.image + 0.05, 0, 1)
    checker = RobustnessChecker(ctx, lo, hi)
    added = _seed_sets(checker, seconds=4.0, max_sets=60)
    assert added > 1 and checker.changed.shape[0] == added
    for w in checker.witnesses:
        assert np.all(w >= lo) and np.all(w <= hi)
        assert margins(checker.net, w[None], ctx.label)[0] > 0
    res = get_backend("highs").solve(_hitting_set_problem(checker.changed), SolveOptions())
    assert res.status == Status.OPTIMAL and res.objective >= 2


def test_cli_min_adv_and_explain_take_engine(tmp_path, capsys):
    from verify.cli import main

    code = main(["min-adv-linf", "examples/images/digit-7.png", "--model", "twoclass",
                 "--engine", "bab", "--time-limit", "60", "--json", "--quiet",
                 "--out", str(tmp_path / "a")])
    assert code == 0
    r = json.loads(capsys.readouterr().out)
    assert r["engine"] == "bab" and r["backend"] == "engine" and r["status"] == "optimal"
    assert r["settled_by"] == "engine" and r["bound"] <= r["objective"]
    code = main(["explain", "examples/images/digit-7.png", "--model", "twoclass", "--eps", "0.05",
                 "--engine", "bab", "--json", "--quiet", "--out", str(tmp_path / "e")])
    assert code == 0
    e = json.loads(capsys.readouterr().out)
    assert e["engine"] == "bab" and e["checks"]["exact"] == 0
