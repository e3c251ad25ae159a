"""Ensembles ("mixtures") of small dense ReLU networks that average their logits.

A mixture of ``N`` members computes, for an input ``x`` (flattened),

    z(x) = (1/N) * sum_i f_i(x),       f_i(x) = W_i,L relu(... relu(W_i,1 x + b_i,1) ...) + b_i,L

the average of its members' *logits*, and the Keras model ends with a softmax over ``z``:
``model.predict`` returns ``softmax(z(x))`` (not the average of the members' probabilities,
which would not be piecewise linear and so not exactly verifiable). The predicted label is
``argmax z(x)``. This is the setting of the seed project's experiments on mixtures of 1, 10
and 100 networks under FGS attacks.

The model is an ordinary functional Keras graph (Input -> Flatten -> N independent member
chains of Dense layers -> ``Average`` -> ``Activation("softmax")``), so it saves, reloads and
predicts like any other model, and :func:`verify.keras_io.network_from_keras` reads it into
ONE ordinary network (members side by side, the average folded into the last affine layer;
the final softmax is recorded and ignored as for every model): every task of ``verify``
(minimal adversarial examples, certificates, explanations, attacks) applies unchanged.

Members are trained *independently* (:func:`train_mixture`): each on its own cross-entropy,
from its own seeded initial weights.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .errors import InvalidInputError
from .keras_io import import_keras

__all__ = ["build_mixture", "train_mixture"]

MERGE_NAME = "average"


def _layer_seed(seed: int, member: int, layer: int) -> int:
    """A distinct, reproducible initialiser seed for each (model seed, member, layer)."""
    return int(np.random.SeedSequence([seed, member, layer]).generate_state(1)[0] % (2 ** 31 - 1))


def _check_args(n_members, hidden, n_classes, seed) -> tuple[int, tuple[int, ...]]:
    if isinstance(n_members, bool) or not isinstance(n_members, (int, np.integer)) or n_members < 1:
        raise InvalidInputError(f"n_members must be a positive integer, got {n_members!r}")
    hidden = tuple(hidden)
    if any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1 for h in hidden):
        raise InvalidInputError(f"hidden must be a tuple of positive layer widths, got {hidden!r}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise InvalidInputError(f"n_classes must be an integer ≥ 2, got {n_classes!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")
    return int(n_members), tuple(int(h) for h in hidden)


def build_mixture(n_members: int, hidden: tuple[int, ...] = (16,), n_classes: int = 10,
                  input_shape: Sequence[int] = (28, 28, 1), seed: int = 0,
                  name: str | None = None) -> Any:
    """An untrained mixture of ``n_members`` dense ReLU networks with averaged logits.

    The functional Keras model computes ``softmax((1/N) * sum_i f_i(x))`` where each member
    ``f_i`` is ``Flatten -> Dense(h, relu) for h in hidden -> Dense(n_classes)`` (logits):
    layers ``member{i}_dense{k}`` and ``member{i}_logits``, merged by the ``Average`` layer
    ``"average"``, followed by ``Activation("softmax")`` named ``"softmax"``. With
    ``hidden=()`` every member is linear. Each member's kernels get their own Glorot-uniform
    initialiser seeded from ``(seed, member, layer)`` (biases start at zero), so the initial
    weights depend on ``seed`` only, not on Keras' global random state. The default name is
    ``mixture_<n_members>``.
    """
    n_members, hidden = _check_args(n_members, hidden, n_classes, seed)
    keras = import_keras()
    layers = keras.layers
    inputs = keras.Input(tuple(int(d) for d in input_shape), name="image")
    flat = layers.Flatten(name="flatten")(inputs)
    logits = []
    for i in range(n_members):
        h = flat
        widths = list(hidden) + [int(n_classes)]
        for k, units in enumerate(widths, start=1):
            last = k == len(widths)
            init = keras.initializers.GlorotUniform(seed=_layer_seed(seed, i, k))
            h = layers.Dense(units, activation=None if last else "relu", kernel_initializer=init,
                             name=f"member{i}_logits" if last else f"member{i}_dense{k}")(h)
        logits.append(h)
    mean = layers.Average(name=MERGE_NAME)(logits)
    outputs = layers.Activation("softmax", name="softmax")(mean)
    return keras.Model(inputs, outputs, name=name or f"mixture_{n_members}")


def _member_logits_model(mixture) -> Any:
    """A Keras model sharing ``mixture``'s layers whose output is every member's logits side
    by side, shape ``(batch, N * n_classes)`` (member ``i`` in columns ``i*C .. i*C + C-1``)."""
    keras = import_keras()
    members = mixture.get_layer(MERGE_NAME).input
    members = list(members) if isinstance(members, (list, tuple)) else [members]
    out = members[0] if len(members) == 1 else keras.layers.Concatenate(name="members")(members)
    return keras.Model(mixture.inputs, out, name=f"{mixture.name}_members")


def _training_data(data, input_shape: tuple, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if data is None:
        from .data import load_mnist

        split = load_mnist("bundled")
        x, y = split.x_train, split.y_train
    else:
        try:
            x, y = data
        except (TypeError, ValueError):
            raise InvalidInputError("data must be a pair (images, labels)") from None
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y).astype(np.int64).ravel()
    n = int(np.prod(input_shape))
    if x.size != len(y) * n:
        raise InvalidInputError(f"data: {len(y)} labels but images of shape {x.shape}; each "
                                f"image must have {n} values (input_shape {input_shape})")
    if len(y) == 0 or y.min() < 0 or y.max() >= n_classes:
        raise InvalidInputError(f"data: labels must be integers in 0..{n_classes - 1}")
    return x.reshape((len(y),) + input_shape), y


def train_mixture(n_members: int, hidden: tuple[int, ...] = (16,), epochs: int = 10,
                  seed: int = 0, *, n_classes: int = 10, input_shape: Sequence[int] = (28, 28, 1),
                  data: tuple[np.ndarray, np.ndarray] | None = None,
                  learning_rate: float = 1e-3, batch_size: int = 64, name: str | None = None,
                  verbose: int = 0) -> Any:
    """Train a mixture (see :func:`build_mixture`) and return its averaged-logit model.

    Each member is trained on its own cross-entropy ``CE(softmax(f_i(x)), y)``, never on the
    ensemble's output. All members are fitted in one Keras ``fit`` of a training model whose
    output is the members' logits side by side and whose loss is the sum of the members'
    cross-entropies: the members share no parameter, so the gradient of the sum with respect
    to member ``i``'s weights is the gradient of member ``i``'s own loss, and Adam updates
    each weight from its own gradient alone. This is exactly independent training (the
    members see the same sequence of mini-batches; they differ by their initial weights),
    but one fit of N members runs far faster than N separate fits.

    ``data``: ``(images, labels)``, by default the bundled MNIST training split
    (``verify.data.load_mnist("bundled")``, 8,000 digits); images are reshaped to
    ``input_shape``. Adam with ``learning_rate``, ``batch_size``, shuffled each epoch.
    ``keras.utils.set_random_seed(seed)`` is called first and the initial weights are seeded
    by ``seed``, so a run is deterministic (bit-identical with the JAX backend on CPU).

    The returned model shares the trained layers; it is not compiled (``predict``,
    ``save`` and :func:`verify.load_model` work on it directly).
    """
    n_members, hidden = _check_args(n_members, hidden, n_classes, seed)
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise InvalidInputError(f"epochs must be a non-negative integer, got {epochs!r}")
    input_shape = tuple(int(d) for d in input_shape)
    x, y = _training_data(data, input_shape, n_classes)
    keras = import_keras()
    keras.utils.set_random_seed(int(seed))
    mixture = build_mixture(n_members, hidden, n_classes, input_shape, seed, name)
    trainer = _member_logits_model(mixture)
    ops, classes = keras.ops, int(n_classes)

    def summed_member_losses(y_true, y_pred):
        """Sum over members of each member's softmax cross-entropy, per example."""
        logits = ops.reshape(y_pred, (-1, n_members, classes))
        target = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), classes)
        log_p = ops.log_softmax(logits, axis=-1)
        return -ops.sum(log_p * target[:, None, :], axis=(1, 2))

    trainer.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=summed_member_losses)
    if epochs:
        trainer.fit(x, y, epochs=int(epochs), batch_size=int(batch_size), shuffle=True,
                    verbose=verbose)
    return mixture
