"""The task context (verify.tasks.context.prepare) and the task table (verify.tasks.table):
option and image checks before any work, a frozen options object, the ReLU-or-BNN choice made
once, and table rows that run the public functions."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from model_zoo import tiny_dense
from verify.errors import InvalidInputError
from verify.layers import bnn_from_arrays
from verify.models import load_model
from verify.tasks.context import TaskContext, TaskOptions, prepare
from verify.tasks.table import TASKS, bench_tasks, encode_tasks, task


@pytest.fixture(scope="module")
def relu():
    return load_model(tiny_dense(4, [3, 3], 3, seed=3))


@pytest.fixture(scope="module")
def bnn():
    rng = np.random.default_rng(5)
    block = {"weight": rng.normal(size=(6, 4)), "gamma": np.ones(4), "beta": np.zeros(4),
             "mean": np.zeros(4), "variance": np.ones(4)}
    return load_model(bnn_from_arrays([block], {"weight": rng.normal(size=(4, 3))},
                                      input_shape=(6,), name="tiny-bnn"))


@pytest.mark.parametrize("overrides,message", [
    ({"time_limit": 0}, "time_limit must be a finite number > 0, not 0"),
    ({"time_limit": math.nan}, "time_limit .* not nan"),
    ({"threads": 0}, "threads must be a whole number ≥ 1"),
    ({"margin": -1}, "margin must be a finite number ≥ 0, not -1"),
    ({"levels": 1}, "pixel_levels must be a whole number ≥ 2"),
    ({"engine": "magic"}, "engine must be one of auto, bab, mip"),
])
def test_bad_options_are_refused_before_the_model_is_loaded(tmp_path, overrides, message):
    missing = tmp_path / "no-such-model.keras"        # loading it would be a ModelLoadError
    with pytest.raises(InvalidInputError, match=message):
        prepare(missing, np.zeros(4), **overrides)
    with pytest.raises(InvalidInputError, match=message):
        prepare(missing, np.zeros(4), TaskOptions(**overrides))


def test_bad_images_are_refused_with_the_tasks_messages(relu):
    with pytest.raises(InvalidInputError, match="image has 5 values; model .* takes 4"):
        prepare(relu, np.zeros(5))
    with pytest.raises(InvalidInputError, match=r"image values must lie in \[0, 1\]"):
        prepare(relu, np.array([0.0, 0.5, 1.5, 0.0]))
    with pytest.raises(InvalidInputError, match=r"image values must lie in \[0, 1\]"):
        prepare(relu, np.array([0.0, np.nan, 0.5, 0.0]))


def test_options_are_frozen_and_variants_are_checked_copies(relu):
    options = TaskOptions(time_limit=5.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.time_limit = 1.0  # type: ignore[misc]
    ctx = prepare(relu, np.full(4, 0.5), options, threads=2)
    assert ctx.options == TaskOptions(time_limit=5.0, threads=2) and options.threads is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.binarized = True  # type: ignore[misc]
    shorter = ctx.with_options(time_limit=1.0)
    assert shorter.options.time_limit == 1.0 and ctx.options.time_limit == 5.0
    assert shorter.started >= ctx.started and shorter.label == ctx.label
    with pytest.raises(InvalidInputError, match="time_limit"):
        ctx.with_options(time_limit=-1)
    deadline = ctx.deadline()
    assert deadline.seconds == 5.0 and deadline.start == ctx.started
    assert 0 < deadline.remaining() <= 5.0 and 0 < ctx.remaining() <= 5.0


def test_relu_or_bnn_is_decided_once(relu, bnn):
    x = np.array([0.1, 0.9, 0.4, 0.7])
    ctx = prepare(relu, x)
    assert isinstance(ctx, TaskContext) and not ctx.binarized
    assert ctx.label == int(relu.reference_labels(x)[0]) and ctx.image.shape == (4,)
    assert ctx.shaped(ctx.image).shape == tuple(relu.input_shape)
    with pytest.raises(InvalidInputError, match="encoding 'cnf' is for binarized networks"):
        prepare(relu, x, encoding="cnf")
    assert prepare(relu, x, encoding="mip").options.encoding == "mip"
    b = prepare(bnn, np.linspace(0, 1, 6), encoding="cnf")
    assert b.binarized and b.label == int(bnn.reference_labels(np.linspace(0, 1, 6))[0])


def test_the_task_table_runs_the_public_functions(relu):
    from verify.tasks.adversarial import min_adversarial

    assert set(bench_tasks()) == {"min-adv-card", "min-adv-l1", "min-adv-l2", "min-adv-linf",
                                  "certify", "explain", "attack"}
    assert all(spec.record is not None for spec in TASKS.values() if spec.bench)
    assert task("min-adv-sum") is TASKS["min-adv-l2"] is encode_tasks()["min-adv-sum"]
    assert set(encode_tasks()) == {"min-adv-card", "min-adv-l1", "min-adv-l2", "min-adv-sum",
                                   "min-adv-linf", "certify"}
    with pytest.raises(InvalidInputError, match="unknown task 'min-adv-l3'"):
        task("min-adv-l3")
    x = np.array([0.1, 0.9, 0.4, 0.7])
    via_table = TASKS["min-adv-linf"](relu, x)
    direct = min_adversarial(relu, x, norm="linf")
    assert TASKS["min-adv-linf"].record(via_table.to_dict())["status"] == "optimal"
    assert via_table.status == direct.status == "optimal"
    assert via_table.objective == pytest.approx(direct.objective, rel=1e-4)
    with pytest.raises(InvalidInputError, match="fixes norm"):
        TASKS["min-adv-linf"](relu, x, norm="l1")
    query = encode_tasks()["min-adv-l1"].encode(relu, x)
    assert query.problem.num_cols > 0
