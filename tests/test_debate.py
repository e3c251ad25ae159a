"""The debate with a sparse judge (verify.debate): the game's rules, determinism under a seed,
and the exact questions (a lie exists / the honest side can always answer) against brute force
on tiny judges."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from verify.debate import (DEBATERS, JudgeOnDigit, all_sets, honest_can_answer, liar_can_answer,
                           lie_exists, play, precommit_accuracy, random_views, random_wrong_labels,
                           runner_up_labels)
from verify.errors import InvalidInputError
from test_evidence import numpy_logits, tiny_image, tiny_judge


@pytest.fixture(scope="module")
def judge():
    from verify.models import load_model

    return load_model("judge-6px")


def test_random_views_keep_k_nonzero_pixels(digits):
    images = digits[0][:50]
    views = random_views(images, 6, np.random.default_rng(3))
    flat = images.reshape(50, -1)
    assert np.all(np.count_nonzero(views, axis=1) == 6)
    shown = views != 0
    np.testing.assert_array_equal(views[shown], flat[shown])
    np.testing.assert_array_equal(views, random_views(images, 6, np.random.default_rng(3)))
    assert not np.array_equal(views, random_views(images, 6, np.random.default_rng(4)))


def test_precommit_helpers():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 500)
    wrong = random_wrong_labels(labels, rng)
    assert np.all(wrong != labels) and set(wrong) == set(range(10))
    probs = rng.random((500, 10))
    runner = runner_up_labels(probs, labels)
    assert np.all(runner != labels)
    masked = probs.copy()
    masked[np.arange(500), labels] = -1
    np.testing.assert_array_equal(runner, masked.argmax(axis=1))
    logits = rng.normal(size=(500, 10))
    assert precommit_accuracy(logits, labels, None) == np.mean(logits.argmax(axis=1) == labels)
    # the judge's favourite wrong label is the hardest precommit: as hard as the judge alone
    fav = runner_up_labels(logits, labels)
    assert precommit_accuracy(logits, labels, fav) == precommit_accuracy(logits, labels, None)


@pytest.mark.parametrize("honest,liar", [("random", "random"), ("greedy", "exact-final"),
                                         ("exact-final", "random")])
def test_debate_is_deterministic_under_a_seed(judge, digits, honest, liar):
    image, label = digits[0][3], int(digits[1][3])
    games = [play(judge, image, label, (label + 4) % 10, honest, liar, first, seed=seed).moves
             for first in ("liar", "honest") for seed in (7, 7, 8)]
    assert games[0] == games[1] and games[3] == games[4]
    if "random" in (honest, liar):
        assert games[0] != games[2]


def test_debate_rules_and_the_exact_final_move(judge, digits):
    image, label = digits[0][5], int(digits[1][5])
    liar_label = (label + 1) % 10
    flat = image.ravel()
    for first, honest, liar in (("liar", "greedy", "exact-final"), ("honest", "exact-final", "random")):
        r = play(judge, image, label, liar_label, honest, liar, first, pixels=6, seed=1)
        roles = [m[0] for m in r.moves]
        second = "honest" if first == "liar" else "liar"
        assert roles == [first, second] * 3
        pixels = [m[1] for m in r.moves]
        assert len(set(pixels)) == 6 and np.all(flat[pixels] > 0)
        # the judge's verdict is on exactly these pixels
        view = np.zeros_like(flat)
        view[pixels] = flat[pixels]
        z = judge.network.forward(view)[0]
        assert r.honest_wins == (z[label] > z[liar_label])
        np.testing.assert_allclose(r.logits, z, atol=1e-9)
        # the exact-final debater's last reveal is the best single pixel for its side
        exact_role = "liar" if liar == "exact-final" else "honest"
        last = max(i for i, m in enumerate(r.moves) if m[0] == exact_role)
        own, other = (liar_label, label) if exact_role == "liar" else (label, liar_label)
        before = pixels[:last]
        scores = {}
        for p in np.flatnonzero(flat):
            if p in before:
                continue
            v = np.zeros_like(flat)
            v[before + [p]] = flat[before + [p]]
            zz = judge.network.forward(v)[0]
            scores[p] = zz[own] - zz[other]
        assert scores[pixels[last]] == pytest.approx(max(scores.values()), abs=1e-9)


def test_debate_bad_input(judge, digits):
    image, label = digits[0][0], int(digits[1][0])
    for kwargs in (dict(honest="clever"), dict(first="judge"), dict(pixels=5), dict(pixels=0),
                   dict(liar_label=label)):
        args = dict(true_label=label, liar_label=(label + 1) % 10)
        args.update(kwargs)
        with pytest.raises(InvalidInputError) as e:
            play(judge, image, **args)
        assert "\n" not in str(e.value)
    assert set(DEBATERS) == {"random", "greedy", "exact-final"}


def test_judge_on_digit_matches_the_network(judge, digits):
    image = digits[0][2]
    j = JudgeOnDigit(judge.network, image)
    sets = all_sets(j.size, 2)[::97]
    views = np.array([j.view(s) for s in sets])
    np.testing.assert_allclose(j.logits(sets), judge.network.forward(views), atol=1e-9)


# -- the exact questions against brute force ------------------------------------------------------------

def _views(image, sets):
    out = np.zeros((len(sets), image.size))
    for row, s in zip(out, sets):
        row[list(s)] = image[list(s)]
    return out


def _subsets(items, k):
    return [c for s in range(k + 1) for c in itertools.combinations(items, s)]


def brute_lie(keras_model, image, label, k) -> bool:
    z = numpy_logits(keras_model, _views(image, _subsets(np.flatnonzero(image), k)))
    return bool((np.delete(z, label, axis=1) > z[:, [label]]).any())


def brute_answer(keras_model, image, label, kl, kh) -> bool:
    """For every wrong label and every liar set, some honest set wins (z_label > z_w)."""
    pixels = list(np.flatnonzero(image))
    classes = keras_model.output_shape[-1]
    for L in _subsets(pixels, kl):
        rest = [p for p in pixels if p not in L]
        Hs = _subsets(rest, kh)
        z = numpy_logits(keras_model, _views(image, [tuple(L) + H for H in Hs]))
        for w in range(classes):
            if w != label and not np.any(z[:, label] > z[:, w]):
                return False
    return True


def brute_liar_answer(keras_model, image, label, kh, kl) -> bool:
    """For every honest set, some liar set makes some wrong label beat the true one."""
    pixels = list(np.flatnonzero(image))
    for H in _subsets(pixels, kh):
        rest = [p for p in pixels if p not in H]
        z = numpy_logits(keras_model, _views(image, [tuple(H) + L for L in _subsets(rest, kl)]))
        if not (np.delete(z, label, axis=1) > z[:, [label]]).any():
            return False
    return True


@pytest.mark.parametrize("enumerate_up_to", [None, 0])
def test_lie_exists_and_honest_answer_agree_with_brute_force(monkeypatch, enumerate_up_to):
    """``enumerate_up_to=0``: lie_exists without enumeration (greedy, then a MIP per label)."""
    from verify.models import load_model

    if enumerate_up_to is not None:
        monkeypatch.setattr("verify.tasks.evidence.ENUMERATION_LIMIT", enumerate_up_to)

    lies, answers, replies = set(), set(), set()
    for seed in range(12):
        keras_model = tiny_judge(20 + seed, inputs=9, hidden=5, classes=3)
        label = seed % 3
        weights = keras_model.get_weights()
        weights[3][label] += 0.5 * (seed % 4)      # a judge leaning to the truth: fewer lies
        keras_model.set_weights(weights)
        model = load_model(keras_model)
        image = tiny_image(seed, inputs=9, zeros=2)
        for k in (1, 2):
            expected = brute_lie(keras_model, image, label, k)
            got = lie_exists(model, image, label, k)
            assert got.verdict == ("yes" if expected else "no"), (seed, k)
            lies.add(got.verdict)
            if got.verdict == "yes":
                v = _views(image, [tuple(got.liar_pixels)])
                z = numpy_logits(keras_model, v)[0]
                assert z[got.label] > z[label]
        expected = brute_answer(keras_model, image, label, 2, 2)
        got = honest_can_answer(model, image, label, 2, 2)
        assert got.verdict == ("yes" if expected else "no"), seed
        answers.add(got.verdict)
        if got.verdict == "no":          # the witness: a liar set no honest answer beats
            L = tuple(got.liar_pixels)
            rest = [p for p in np.flatnonzero(image) if p not in L]
            z = numpy_logits(keras_model, _views(image, [L + H for H in _subsets(rest, 2)]))
            assert not np.any(z[:, label] > z[:, got.label])
        expected = brute_liar_answer(keras_model, image, label, 2, 2)
        got = liar_can_answer(model, image, label, 2, 2)
        assert got.verdict == ("yes" if expected else "no"), seed
        replies.add(got.verdict)
    assert lies == {"yes", "no"} and answers == {"yes", "no"} and replies == {"yes", "no"}
