#!/usr/bin/env python
"""Train the seed models shipped with ``verify`` (``verify/assets/models/``).

Usage::

    python models/train.py [NAME ...] [--out verify/assets/models] [--examples DIR]

Trains the named models (default: all), writes ``<out>/<name>.keras`` and merges an entry per
model into ``<out>/index.json``. Everything is trained on the bundled 8,000-digit training split
of real MNIST (``verify.data.load_mnist("bundled")``) and evaluated on the bundled 2,000-digit
test split, with a fixed seed per model, so a retrain reproduces the shipped files.

``--examples DIR`` additionally writes ``DIR/digit-0.png`` ... ``digit-9.png`` (and
``digit-7.npy``): for each class the first test digit that every shipped model classifies
correctly (twoclass only for the digits 1 and 3).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

os.environ.setdefault("KERAS_BACKEND", "jax")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import keras  # noqa: E402
from keras import layers  # noqa: E402

from verify.data import load_mnist, write_png  # noqa: E402
from verify.ensembles import build_mixture, train_mixture  # noqa: E402
from verify.layers import BinarizeInput, BinaryDense, IntegerInput, Sign  # noqa: E402

DEFAULT_OUT = ROOT / "verify" / "assets" / "models"
BATCH_SIZE = 64


# --------------------------------------------------------------------------------------------
# Model definitions
# --------------------------------------------------------------------------------------------

def build_twoclass() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1), name="image"),
            layers.Flatten(name="flatten"),
            layers.Dense(20, activation="relu", name="dense_1"),
            layers.Dense(1, activation="sigmoid", name="dense_2"),
        ],
        name="twoclass",
    )


def dense_classifier(hidden: tuple[int, ...], name: str) -> keras.Model:
    """784-hidden...-10 with ReLU hidden layers and a softmax output (layers dense_1, ...)."""
    return keras.Sequential(
        [keras.Input(shape=(28, 28, 1), name="image"), layers.Flatten(name="flatten")]
        + [layers.Dense(units, activation="relu", name=f"dense_{i + 1}") for i, units in enumerate(hidden)]
        + [layers.Dense(10, activation="softmax", name=f"dense_{len(hidden) + 1}")],
        name=name,
    )


def build_multiclass() -> keras.Model:
    return dense_classifier((10, 10), "multiclass")


def build_cnn() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1), name="image"),
            layers.Conv2D(10, (3, 3), activation="linear", padding="valid", name="conv_1"),
            layers.AveragePooling2D(pool_size=(6, 6), name="avgpool_1"),
            layers.ReLU(name="relu_1"),
            layers.Flatten(name="flatten"),
            layers.Dense(10, activation="softmax", name="dense_1"),
        ],
        name="cnn",
    )


def build_multiclass_large() -> keras.Model:
    return dense_classifier((64, 32), "multiclass_large")


def build_mlp_256x2() -> keras.Model:
    """The VNN-COMP ``mnist_fc`` shape (784-256-256-10), for the ONNX / VNN-LIB benchmark;
    trained with interval bounds (:func:`fit_interval_bounds`)."""
    return dense_classifier((256, 256), "mlp_256x2")


def fit_interval_bounds(eps: float, robust_weight: float):
    """A Spec.fit for a Sequential of Dense layers (ReLU hidden layers): interval bound
    propagation (IBP) training, after Gowal et al. 2018, "On the effectiveness of interval
    bound propagation for training verifiably robust models".

    The loss is ``(1 − w)·CE(logits) + w·CE(worst-case logit differences)``: the second term
    takes, per example, interval bounds of every hidden neuron over the box
    ``[x − ε', x + ε'] ∩ [0, 1]`` and the upper bound of each ``z_j − z_label`` from the last
    layer's difference rows, so it pushes the network to make the label provably win within
    the box. ``ε'`` and ``w`` ramp linearly from 0 over the first half of the epochs to ``eps``
    and ``robust_weight``. Stable neurons over a box are what makes exact verification fast
    (no binary variable, tight bounds); this trains for them. Adam in plain JAX on the model's
    own weights, batch 64, shuffled with the spec's seed.
    """
    def fit(spec: Spec, x: np.ndarray, y: np.ndarray) -> keras.Model:
        import jax
        import jax.numpy as jnp

        model = spec.build()
        dense = [l for l in model.layers if isinstance(l, layers.Dense)]
        params = [jnp.asarray(w) for l in dense for w in l.get_weights()]
        pairs = len(dense)

        def logits(p, v):
            for i in range(pairs - 1):
                v = jax.nn.relu(v @ p[2 * i] + p[2 * i + 1])
            return v @ p[-2] + p[-1]

        def worst_differences(p, v, labels, radius):
            lo, hi = jnp.clip(v - radius, 0, 1), jnp.clip(v + radius, 0, 1)
            for i in range(pairs - 1):
                mid, rad = (hi + lo) / 2, (hi - lo) / 2
                mid, rad = mid @ p[2 * i] + p[2 * i + 1], rad @ jnp.abs(p[2 * i])
                lo, hi = jax.nn.relu(mid - rad), jax.nn.relu(mid + rad)
            mid, rad = (hi + lo) / 2, (hi - lo) / 2
            w, b = p[-2], p[-1]
            diff = w[None, :, :] - w[:, labels].T[:, :, None]       # (batch, hidden, classes)
            centre = jnp.einsum("bh,bhj->bj", mid, diff) + b[None, :] - b[labels][:, None]
            return centre + jnp.einsum("bh,bhj->bj", rad, jnp.abs(diff))

        def cross_entropy(z, labels):
            picked = jnp.take_along_axis(z, labels[:, None], axis=1)[:, 0]
            return jnp.mean(jax.nn.logsumexp(z, axis=1) - picked)

        def loss(p, v, labels, radius, weight):
            return ((1 - weight) * cross_entropy(logits(p, v), labels)
                    + weight * cross_entropy(worst_differences(p, v, labels, radius), labels))

        @jax.jit
        def adam_step(p, m, s, t, v, labels, radius, weight):
            g = jax.grad(loss)(p, v, labels, radius, weight)
            m = [0.9 * a + 0.1 * b for a, b in zip(m, g)]
            s = [0.999 * a + 0.001 * b * b for a, b in zip(s, g)]
            lr = spec.learning_rate * jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            return [w - lr * a / (jnp.sqrt(b) + 1e-8) for w, a, b in zip(p, m, s)], m, s

        flat = jnp.asarray(x.reshape(len(x), -1))
        labels = jnp.asarray(y)
        m = [jnp.zeros_like(w) for w in params]
        s = [jnp.zeros_like(w) for w in params]
        rng = np.random.default_rng(spec.seed)
        step = 0
        for epoch in range(spec.epochs):
            ramp = min(1.0, epoch / max(1, spec.epochs // 2))
            order = rng.permutation(len(x))
            for start in range(0, len(order), BATCH_SIZE):
                batch = order[start:start + BATCH_SIZE]
                step += 1
                params, m, s = adam_step(params, m, s, step, flat[batch], labels[batch],
                                         eps * ramp, robust_weight * ramp)
        for i, layer in enumerate(dense):
            layer.set_weights([np.asarray(params[2 * i]), np.asarray(params[2 * i + 1])])
        return model
    return fit


class MarginPenalty(layers.Layer):
    """Training only (between a batch norm and its Sign): a loss that pushes each neuron's
    sum at least ``flips`` flipped inputs away from its threshold.

    A flipped ±1 input moves a BinaryDense sum by 2, and the batch norm scales sums by
    ``|gamma| / sqrt(variance + eps)``; so ``|y| / scale / 2`` is the number of flips the
    neuron is from changing sign. Penalising ``relu(flips - that)`` keeps neurons stable
    under small flip budgets, which is what makes exact verification fast (cf. the
    cardinality-bound decay of Jia & Rinard, NeurIPS 2020). It has no weights, so the model
    without it (the one saved) takes the trained weights unchanged.
    """

    def __init__(self, batchnorm, flips: float, weight: float, unit: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.batchnorm, self.flips, self.weight = batchnorm, float(flips), float(weight)
        self.unit = float(unit)     # how far one unit of the budget moves the sum (a flip: 2)

    def call(self, y):
        bn = self.batchnorm
        scale = keras.ops.abs(bn.gamma) / keras.ops.sqrt(bn.moving_variance + bn.epsilon)
        distance = keras.ops.abs(y) / (self.unit * scale + 1e-6)
        self.add_loss(self.weight * keras.ops.mean(keras.ops.relu(self.flips - distance)))
        return y


def build_bnn(hidden: tuple[int, ...], name: str, margins: tuple[float, ...] | None = None,
              margin_weight: float = 0.0, integer: bool = False) -> keras.Model:
    """Binarized net (seed architecture): binarised input, then per hidden layer
    BinaryDense -> BatchNormalization -> Sign, then a BinaryDense output of integer logits.
    With ``margins`` (flips per hidden layer), the training model also has a MarginPenalty
    after each batch norm. ``integer``: the first block reads the 8-bit pixel values 0..255
    (IntegerInput) instead of binarised pixels, as the seed's BNN did; its first margin is
    then in grey levels on every pixel at once (one level moves a sum by up to 784)."""
    x = inputs = keras.Input(shape=(28, 28, 1), name="image")
    first = IntegerInput(name="integer_input") if integer else BinarizeInput(name="binarize")
    x = first(layers.Flatten(name="flatten")(x))
    for k, units in enumerate(hidden, start=1):
        norm = layers.BatchNormalization(name=f"batchnorm_{k}")
        x = norm(BinaryDense(units, name=f"binary_dense_{k}")(x))
        if margins:
            unit = 28.0 * 28.0 if integer and k == 1 else 2.0
            x = MarginPenalty(norm, margins[k - 1], margin_weight, unit, name=f"margin_{k}")(x)
        x = Sign(name=f"sign_{k}")(x)
    return keras.Model(inputs, BinaryDense(10, name="binary_dense_out")(x), name=name)


class ScaledLogitsLoss(keras.losses.Loss):
    """Cross-entropy on ``scale * logits``: a BNN's integer logits (up to ± the width of the
    last hidden layer) are too steep for softmax training; scaling them in the loss keeps the
    model itself exactly integer."""

    def __init__(self, scale: float, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, y_true, y_pred):
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred * self.scale,
                                                            from_logits=True)


@dataclass(frozen=True)
class Spec:
    name: str
    build: Callable[[], keras.Model]
    architecture: str
    classes: tuple[int, ...]
    epochs: int
    seed: int
    learning_rate: float = 1e-3  # Adam
    logit_scale: float | None = None   # BNNs: train on scale * logits (ScaledLogitsLoss)
    flip_noise: float = 0.0            # BNNs: each epoch, flip this fraction of input pixels
    level_noise: int = 0               # integer BNNs: each epoch, move each pixel by up to this
                                       # many grey levels (uniform), within 0..255
    build_train: Callable[[], keras.Model] | None = None   # training model, if it differs
    # custom training (spec, images, labels) -> the trained inference model, replacing the
    # compile-and-fit below (mixtures: members trained independently, verify.ensembles)
    fit: Callable[["Spec", np.ndarray, np.ndarray], keras.Model] | None = None
    # custom index entry (spec, model, x_train, x_test, y_test) -> dict (the debate judge:
    # its accuracy on a few revealed pixels), replacing evaluate() below
    evaluate: Callable[..., dict] | None = None

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    @property
    def task(self) -> str:
        if self.binary:
            return f"digits {self.classes[0]} vs {self.classes[1]}"
        return f"digits {self.classes[0]}-{self.classes[-1]}"


def fit_mixture(n_members: int, hidden: tuple[int, ...], name: str):
    """A Spec.fit that trains a mixture's members independently (verify.ensembles)."""
    def fit(spec: Spec, x: np.ndarray, y: np.ndarray) -> keras.Model:
        return train_mixture(n_members, hidden, spec.epochs, spec.seed, n_classes=len(spec.classes),
                             data=(x, y), learning_rate=spec.learning_rate,
                             batch_size=BATCH_SIZE, name=name)
    return fit


JUDGE_PIXELS = 6          # the debate judge sees this many revealed pixels
JUDGE_BATCH = 100
JUDGE_REPETITIONS = 10    # its accuracy: mean and variance over this many random reveals


def fit_sparse_judge(pixels: int):
    """A Spec.fit for the debate judge (:mod:`verify.debate`): a classifier that sees only
    ``pixels`` of a digit's non-zero pixels, every other pixel 0.

    Each batch gets *fresh* random reveals (``pixels`` non-zero pixels per digit, uniformly
    without replacement): a random key per pixel, 0-valued pixels ranked last, the ``pixels``
    largest keys kept. Adam on the cross-entropy, in plain JAX on the model's own weights
    (initialised by Keras under the spec's seed), batch 100, the training digits shuffled every
    epoch; one ``jax.lax.scan`` per epoch. Deterministic under the seed (JAX's counter-based
    PRNG on CPU).
    """
    def fit(spec: Spec, x: np.ndarray, y: np.ndarray) -> keras.Model:
        import jax
        import jax.numpy as jnp

        model = spec.build()
        dense = [l for l in model.layers if isinstance(l, layers.Dense)]
        params = [jnp.asarray(w) for l in dense for w in l.get_weights()]
        pairs = len(dense)
        flat = jnp.asarray(x.reshape(len(x), -1))
        labels = jnp.asarray(y)
        steps = len(x) // JUDGE_BATCH

        def logits(p, v):
            for i in range(pairs - 1):
                v = jax.nn.relu(v @ p[2 * i] + p[2 * i + 1])
            return v @ p[-2] + p[-1]

        def reveal(key, v):
            # keep the `pixels` largest keys; non-zero pixels get keys in [1, 2), zeros [0, 1).
            # (pixels - 1 rounds of "drop the row maximum": ~10x faster than top_k on CPU)
            score = jax.random.uniform(key, v.shape) + (v > 0)
            rest = score
            for _ in range(pixels - 1):
                rest = jnp.where(rest >= rest.max(axis=1, keepdims=True), -1.0, rest)
            return jnp.where(score >= rest.max(axis=1, keepdims=True), v, 0.0)

        def loss(p, v, target):
            z = logits(p, v)
            picked = jnp.take_along_axis(z, target[:, None], axis=1)[:, 0]
            return jnp.mean(jax.nn.logsumexp(z, axis=1) - picked)

        def step(carry, batch):
            p, m, s, t, key = carry
            key, sub = jax.random.split(key)
            g = jax.grad(loss)(p, reveal(sub, flat[batch]), labels[batch])
            t = t + 1.0
            m = [0.9 * a + 0.1 * b for a, b in zip(m, g)]
            s = [0.999 * a + 0.001 * b * b for a, b in zip(s, g)]
            lr = spec.learning_rate * jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            p = [w - lr * a / (jnp.sqrt(b) + 1e-8) for w, a, b in zip(p, m, s)]
            return (p, m, s, t, key), None

        @jax.jit
        def epoch(carry):
            p, m, s, t, key = carry
            key, sub = jax.random.split(key)
            order = jax.random.permutation(sub, len(x))[: steps * JUDGE_BATCH]
            carry, _ = jax.lax.scan(step, (p, m, s, t, key), order.reshape(steps, JUDGE_BATCH))
            return carry

        carry = (params, [jnp.zeros_like(w) for w in params], [jnp.zeros_like(w) for w in params],
                 jnp.float32(0.0), jax.random.PRNGKey(spec.seed))
        for _ in range(spec.epochs):
            carry = epoch(carry)
        for i, layer in enumerate(dense):
            layer.set_weights([np.asarray(carry[0][2 * i]), np.asarray(carry[0][2 * i + 1])])
        return model
    return fit


def evaluate_sparse_judge(pixels: int):
    """A Spec.evaluate for the debate judge: ``test_accuracy`` is its accuracy on ``pixels``
    random non-zero pixels of each test digit, the mean over :data:`JUDGE_REPETITIONS` random
    reveals (seeds 0, 1, ...; :func:`verify.debate.random_views`), with their variance; the
    accuracy on whole digits is recorded beside it."""
    from verify.debate import random_views

    def judge_entry(spec: Spec, model: keras.Model, x_train, x_test, y_test) -> dict:
        entry = evaluate(spec, model, x_train, x_test, y_test)
        runs = []
        for rep in range(JUDGE_REPETITIONS):
            views = random_views(x_test, pixels, np.random.default_rng(rep))
            runs.append(float(np.mean(predict_classes(model, views, False) == y_test)))
        entry.update({
            "task": f"digits 0-9 from {pixels} revealed pixels",
            "test_accuracy": round(float(np.mean(runs)), 4),
            "full_image_accuracy": entry["test_accuracy"],
            "revealed_pixels": pixels,
            "accuracy_runs": [round(r, 4) for r in runs],
            "accuracy_variance": float(f"{np.var(runs):.3g}"),
            "steps": spec.epochs * (len(x_train) // JUDGE_BATCH),
            "batch_size": JUDGE_BATCH,
        })
        return entry
    return judge_entry


DIGITS = tuple(range(10))
SPECS: dict[str, Spec] = {
    s.name: s
    for s in (
        Spec("twoclass", build_twoclass, "784-20-1 ReLU, sigmoid output", (1, 3), 20, 1013, 1e-2),
        Spec("multiclass", build_multiclass, "784-10-10-10 ReLU, softmax output", DIGITS, 30, 2024),
        Spec("cnn", build_cnn,
             "Conv2D 10@3x3 (linear, valid) - AvgPool 6x6 - ReLU - 160-10, softmax output",
             DIGITS, 30, 3035, 1e-2),
        Spec("multiclass-large", build_multiclass_large, "784-64-32-10 ReLU, softmax output",
             DIGITS, 20, 4046),
        Spec("bnn", lambda: build_bnn((200, 100), "bnn"),
             "784-200-100-10 binarized (input > 0.5 -> ±1; BinaryDense-BatchNorm-Sign x2; "
             "BinaryDense integer logits); trained with 3 % input flips and a margin penalty "
             "(8 / 4 flips)", DIGITS, 30, 5057, 1e-3, logit_scale=0.1, flip_noise=0.03,
             build_train=lambda: build_bnn((200, 100), "bnn", (8.0, 4.0), 1.0)),
        Spec("bnn-int8", lambda: build_bnn((200, 100), "bnn_int8", integer=True),
             "784-200-100-10 binarized with 8-bit integer inputs (pixel -> round(255 x) in "
             "0..255; BinaryDense-BatchNorm-Sign x2; BinaryDense integer logits), the seed's BNN; "
             "trained with ±8 grey levels of noise and a margin penalty (6 grey levels / 8 flips)",
             DIGITS, 30, 5158, 1e-3, logit_scale=0.1, level_noise=8,
             build_train=lambda: build_bnn((200, 100), "bnn_int8", (6.0, 8.0), 1.0, integer=True)),
        Spec("bnn-small", lambda: build_bnn((32, 16), "bnn_small"),
             "784-32-16-10 binarized (as bnn, smaller, for tests)", DIGITS, 20, 6068, 1e-3,
             logit_scale=0.25),
        Spec("mlp-256x2", build_mlp_256x2,
             "784-256-256-10 ReLU, softmax output; interval-bound (IBP) training at eps 0.1",
             DIGITS, 40, 8090, fit=fit_interval_bounds(0.1, 0.5)),
        Spec("mixture-10", lambda: build_mixture(10, (16,), seed=7079, name="mixture_10"),
             "mixture of 10 independently trained 784-16-10 ReLU nets, averaged logits, "
             "softmax output", DIGITS, 20, 7079, fit=fit_mixture(10, (16,), "mixture_10")),
        Spec("resnet-small", lambda: build_resnet_small(),
             "Conv2D 6@3x3/2 ReLU - residual block (Conv2D 6@3x3 ReLU - Conv2D 6@3x3 - Add - "
             "ReLU) - 1014-10, softmax output (3,042 ReLUs; Keras functional API)",
             DIGITS, 12, 9202, 2e-3),
        Spec("judge-6px", lambda: dense_classifier((32,), "judge_6px"),
             "784-32-10 ReLU, softmax output; debate judge, trained on 6 random pixels",
             DIGITS, 500, 9101,
             fit=fit_sparse_judge(JUDGE_PIXELS), evaluate=evaluate_sparse_judge(JUDGE_PIXELS)),
    )
}
#: Other names accepted on the command line (``models/train.py judge``).
ALIASES = {"judge": "judge-6px"}


def build_resnet_small() -> keras.Model:
    """A small residual CNN (Keras functional API), the bundled graph-shaped model:
    Conv2D 6@3x3 stride 2 (valid, ReLU; 13x13x6 = 1,014 ReLUs) -> residual block [Conv2D
    6@3x3 same, ReLU (1,014) -> Conv2D 6@3x3 same, linear -> Add with the block input -> ReLU
    (1,014)] -> Flatten -> Dense(10, softmax): 3,042 ReLUs."""
    image = keras.Input(shape=(28, 28, 1), name="image")
    h = layers.Conv2D(6, (3, 3), strides=2, padding="valid", activation="relu", name="conv_1")(image)
    r = layers.Conv2D(6, (3, 3), padding="same", activation="relu", name="block_conv_1")(h)
    r = layers.Conv2D(6, (3, 3), padding="same", activation="linear", name="block_conv_2")(r)
    h = layers.Add(name="block_add")([h, r])
    h = layers.ReLU(name="block_relu")(h)
    h = layers.Flatten(name="flatten")(h)
    out = layers.Dense(10, activation="softmax", name="dense_1")(h)
    return keras.Model(image, out, name="resnet_small")


def build_natural_cnn() -> keras.Model:
    """A small ReLU CNN for the engine benchmark: Conv2D 8@3x3 stride 2 (valid, ReLU;
    13x13x8 = 1,352 ReLUs) -> Conv2D 16@3x3 stride 2 (valid, ReLU; 6x6x16 = 576) -> Flatten ->
    Dense(100, ReLU) -> Dense(10, softmax): 2,028 ReLUs."""
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1), name="image"),
            layers.Conv2D(8, (3, 3), strides=2, padding="valid", activation="relu", name="conv_1"),
            layers.Conv2D(16, (3, 3), strides=2, padding="valid", activation="relu", name="conv_2"),
            layers.Flatten(name="flatten"),
            layers.Dense(100, activation="relu", name="dense_1"),
            layers.Dense(10, activation="softmax", name="dense_2"),
        ],
        name="natural_cnn",
    )


#: Networks of the engine benchmark (``benchmarks/engine.py``, issue 18): naturally trained
#: (plain Adam on the cross-entropy, no robust training), *not* bundled with the package.
#: ``models/train.py NAME`` writes them to ``benchmarks/engine/NAME/NAME.keras`` (no
#: index.json) unless ``--out`` is given; training all models (no NAME) never includes them.
BENCHMARK_SPECS: dict[str, Spec] = {
    s.name: s
    for s in (
        Spec("natural-256x2", lambda: dense_classifier((256,) * 2, "natural_256x2"),
             "784-256-256-10 ReLU, softmax output; natural training", DIGITS, 20, 8191),
        Spec("natural-256x4", lambda: dense_classifier((256,) * 4, "natural_256x4"),
             "784-256x4-10 ReLU, softmax output; natural training", DIGITS, 20, 8292),
        Spec("natural-256x6", lambda: dense_classifier((256,) * 6, "natural_256x6"),
             "784-256x6-10 ReLU, softmax output; natural training", DIGITS, 20, 8393),
        Spec("natural-cnn", build_natural_cnn,
             "Conv2D 8@3x3/2 ReLU - Conv2D 16@3x3/2 ReLU - 576-100 ReLU - 10, softmax output "
             "(2,028 ReLUs); natural training", DIGITS, 20, 8494),
    )
}
BENCHMARK_OUT = ROOT / "benchmarks" / "engine"


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

def select(x: np.ndarray, y: np.ndarray, classes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28, 1) float32 and labels 0..len(classes)-1 for the given digits."""
    mask = np.isin(y, classes)
    lookup = {digit: i for i, digit in enumerate(classes)}
    labels = np.array([lookup[int(d)] for d in y[mask]], dtype=np.int64)
    return x[mask][..., None].astype(np.float32), labels


def predict_classes(model: keras.Model, x: np.ndarray, binary: bool) -> np.ndarray:
    """Class indices (into the model's ``classes``) predicted for images (N, 28, 28[, 1])."""
    x = np.asarray(x, dtype=np.float32).reshape(-1, 28, 28, 1)
    out = np.asarray(model.predict(x, batch_size=512, verbose=0))
    if binary:
        return (out[:, 0] > 0.5).astype(np.int64)
    return out.argmax(axis=1)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

def train(spec: Spec, split) -> tuple[keras.Model, dict, float]:
    keras.utils.set_random_seed(spec.seed)
    x_train, y_train = select(split.x_train, split.y_train, spec.classes)
    x_test, y_test = select(split.x_test, split.y_test, spec.classes)
    if spec.fit is not None:
        start = time.perf_counter()
        model = spec.fit(spec, x_train, y_train)
        seconds = time.perf_counter() - start
        return model, (spec.evaluate or evaluate)(spec, model, x_train, x_test, y_test), seconds
    model = (spec.build_train or spec.build)()
    if spec.binary:
        loss, targets = "binary_crossentropy", y_train.astype(np.float32)[:, None]
    elif spec.logit_scale is not None:
        loss, targets = ScaledLogitsLoss(spec.logit_scale), y_train
    else:
        loss, targets = "sparse_categorical_crossentropy", y_train
    model.compile(optimizer=keras.optimizers.Adam(spec.learning_rate), loss=loss, metrics=["accuracy"])
    start = time.perf_counter()
    if spec.level_noise:            # fresh random grey-level noise every epoch
        rng = np.random.default_rng(spec.seed)
        for _ in range(spec.epochs):
            step = rng.integers(-spec.level_noise, spec.level_noise + 1, size=x_train.shape)
            noisy = np.clip(np.round(x_train * 255.0) + step, 0, 255) / 255.0
            model.fit(noisy.astype(np.float32), targets, epochs=1, batch_size=BATCH_SIZE,
                      shuffle=True, verbose=0)
    elif spec.flip_noise:           # fresh random pixel flips (x -> 1 - x) every epoch
        rng = np.random.default_rng(spec.seed)
        for _ in range(spec.epochs):
            noisy = x_train.copy()
            flip = rng.random(noisy.shape) < spec.flip_noise
            noisy[flip] = 1.0 - noisy[flip]
            model.fit(noisy, targets, epochs=1, batch_size=BATCH_SIZE, shuffle=True, verbose=0)
    else:
        model.fit(x_train, targets, epochs=spec.epochs, batch_size=BATCH_SIZE, shuffle=True,
                  verbose=0)
    seconds = time.perf_counter() - start
    return model, (spec.evaluate or evaluate)(spec, model, x_train, x_test, y_test), seconds


def evaluate(spec: Spec, model: keras.Model, x_train, x_test, y_test) -> dict:
    """The model's index.json entry, with its accuracy on the test digits."""
    accuracy = float(np.mean(predict_classes(model, x_test, spec.binary) == y_test))
    return {
        "file": f"{spec.name}.keras",
        "architecture": spec.architecture,
        "task": spec.task,
        "classes": list(spec.classes),
        "test_accuracy": round(accuracy, 4),
        "train_size": int(len(x_train)),
        "test_size": int(len(x_test)),
        "epochs": spec.epochs,
        "seed": spec.seed,
        "params": int(model.count_params()),
    }


def save_weights_only_model(spec: Spec, model: keras.Model, path: Path) -> None:
    """Save an uncompiled copy (architecture + weights, no optimizer state: ~3x smaller)."""
    inference = spec.build()
    inference.set_weights(model.get_weights())
    inference.save(path)


def check_reload(model: keras.Model, path: Path, x: np.ndarray) -> None:
    """The saved file must reload and give the same outputs as the trained model."""
    reloaded = keras.models.load_model(path)
    x = x[..., None].astype(np.float32)
    a = np.asarray(model.predict(x, batch_size=512, verbose=0))
    b = np.asarray(reloaded.predict(x, batch_size=512, verbose=0))
    if not np.allclose(a, b, rtol=0, atol=1e-6):
        raise SystemExit(f"{path}: reloaded model disagrees (max diff {np.abs(a - b).max():.3g})")


def read_index(path: Path) -> dict:
    if path.is_file():
        with open(path) as f:
            return json.load(f)
    return {}


def write_index(path: Path, index: dict) -> None:
    order = [n for n in SPECS if n in index] + sorted(n for n in index if n not in SPECS)
    text = json.dumps({n: index[n] for n in order}, indent=2)
    # keep the short integer lists ("classes") on one line
    text = re.sub(r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]",
                  lambda m: "[" + ", ".join(re.split(r",\s*", m.group(1))) + "]", text)
    with open(path, "w") as f:
        f.write(text + "\n")


def print_table(index: dict, seconds: dict[str, float]) -> None:
    rows = [("model", "task", "params", "epochs", "seed", "train", "test", "test acc", "time")]
    for name, e in index.items():
        t = f"{seconds[name]:.1f} s" if name in seconds else "-"
        rows.append((name, e["task"], str(e["params"]), str(e["epochs"]), str(e["seed"]),
                     str(e["train_size"]), str(e["test_size"]),
                     f"{100 * e['test_accuracy']:.2f} %", t))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if k == 0:
            print("  ".join("-" * w for w in widths))


# --------------------------------------------------------------------------------------------
# Example digits
# --------------------------------------------------------------------------------------------

def write_examples(out_dir: Path, model_dir: Path, split) -> list[tuple[int, int]]:
    """Write digit-<d>.png for d in 0..9 (and digit-7.npy) from the bundled test split."""
    index = read_index(model_dir / "index.json")
    # the ReLU nets (not the debate judge, which sees only a few pixels)
    chosen_by = {n: s for n, s in SPECS.items() if s.logit_scale is None and s.evaluate is None}
    missing = [n for n in chosen_by if n not in index]
    if missing:
        raise SystemExit(f"--examples needs all models; missing: {', '.join(missing)}")
    correct = {}
    for name, spec in chosen_by.items():
        model = keras.models.load_model(model_dir / index[name]["file"])
        pred = np.array(spec.classes)[predict_classes(model, split.x_test, spec.binary)]
        ok = pred == split.y_test
        if spec.binary:  # only judged on its own digits
            ok = ok | ~np.isin(split.y_test, spec.classes)
        correct[name] = ok
    all_ok = np.logical_and.reduce(list(correct.values()))
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = []
    for digit in range(10):
        idx = int(np.flatnonzero(all_ok & (split.y_test == digit))[0])
        chosen.append((digit, idx))
        write_png(split.x_test[idx], out_dir / f"digit-{digit}.png")
        if digit == 7:
            np.save(out_dir / "digit-7.npy", split.x_test[idx].astype(np.float32))
    return chosen


def train_benchmark_model(name: str, out: Path, split) -> tuple[Path, dict, float]:
    """Train one of :data:`BENCHMARK_SPECS` and save ``out/NAME.keras`` (checked by reloading);
    returns the path, its entry (as index.json's, with the test accuracy) and the seconds."""
    spec = BENCHMARK_SPECS[name]
    model, entry, seconds = train(spec, split)
    entry["file"] = f"{name}.keras"
    path = out / entry["file"]
    save_weights_only_model(spec, model, path)
    check_reload(model, path, split.x_test[:500])
    return path, entry, seconds


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"models to train (default: all of {', '.join(SPECS)})")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: verify/assets/models; for the benchmark "
                             f"networks {', '.join(BENCHMARK_SPECS)}: benchmarks/engine/NAME/)")
    parser.add_argument("--examples", type=Path, metavar="DIR",
                        help="also write the example digits digit-0.png ... digit-9.png to DIR")
    args = parser.parse_args(argv)
    names = [ALIASES.get(n, n) for n in args.names] or list(SPECS)
    unknown = [n for n in names if n not in SPECS and n not in BENCHMARK_SPECS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from "
                     f"{', '.join([*SPECS, *BENCHMARK_SPECS])}")

    split = load_mnist("bundled")
    benchmark = [n for n in names if n in BENCHMARK_SPECS]
    for name in benchmark:      # not bundled: their own folders, no index.json
        out = args.out if args.out is not None else BENCHMARK_OUT / name
        out.mkdir(parents=True, exist_ok=True)
        path, entry, took = train_benchmark_model(name, out, split)
        print(f"{name}: test accuracy {100 * entry['test_accuracy']:.2f} % in {took:.1f} s -> {path}",
              flush=True)
    names = [n for n in names if n in SPECS]
    if not names:
        return 0
    args.out = args.out if args.out is not None else DEFAULT_OUT
    args.out.mkdir(parents=True, exist_ok=True)
    index_path = args.out / "index.json"
    index = read_index(index_path)
    seconds: dict[str, float] = {}
    for name in names:
        spec = SPECS[name]
        print(f"training {name} ({spec.architecture}, {spec.epochs} epochs, "
              f"Adam lr {spec.learning_rate:g}, seed {spec.seed}) ...",
              flush=True)
        model, entry, seconds[name] = train(spec, split)
        path = args.out / entry["file"]
        save_weights_only_model(spec, model, path)
        check_reload(model, path, split.x_test[:500])
        index[name] = entry
        write_index(index_path, index)  # after each model, so an interrupted run keeps its work
        print(f"  test accuracy {100 * entry['test_accuracy']:.2f} % in {seconds[name]:.1f} s "
              f"-> {path}", flush=True)
    print()
    print_table(read_index(index_path), seconds)

    if args.examples:
        chosen = write_examples(args.examples, args.out, split)
        print()
        print(f"example digits in {args.examples}: " +
              ", ".join(f"{d} <- test #{i}" for d, i in chosen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
