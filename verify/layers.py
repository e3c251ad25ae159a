"""Keras layers for binarized neural networks (BNNs), and rebuilding a BNN from arrays.

A BNN block in the style of Courbariaux et al. and of Narodytska et al. (AAAI 2018) is::

    BinaryDense(units)  ->  keras.layers.BatchNormalization()  ->  Sign()

* :class:`BinaryDense` keeps real-valued *latent* weights and multiplies by their sign
  (``+1`` for ``w >= 0``, ``-1`` otherwise) in the forward pass. The gradient passes
  straight through to the latent weights, which a constraint clips to [-1, 1].
* :class:`Sign` outputs ``+1`` for ``x >= 0`` and ``-1`` otherwise; its gradient is the
  straight-through estimator of ``hard_tanh`` (1 where ``|x| <= 1``, else 0).
* Inputs: :class:`BinarizeInput` maps a pixel in [0, 1] to ``+1`` if it is above 0.5 and to
  ``-1`` otherwise, so the first block sees ±1 values; :class:`IntegerInput` maps it to the
  8-bit integer ``round(255 * x)`` instead, as the seed's first layer did.

The last layer of a classifier is a ``BinaryDense(classes)`` without activation: its
outputs are integer-valued logits (the label is the first index of the largest one, as
``argmax`` picks). Scale the logits inside the *loss* when training (see ``models/train.py``),
not in the model, so that the model stays exactly integer.

The network reader (:mod:`verify.keras_io`) folds ``BinaryDense -> [BatchNormalization] ->
Sign`` into one integer threshold per neuron, computed by evaluating these very layers in
float32, so the verified network is the one Keras runs, ties included.

All layers are registered Keras serializables: a saved ``.keras`` file reloads with
``keras.models.load_model`` once ``verify.layers`` is imported (``verify.load_model`` and
the CLI import it before loading).
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
from keras import ops  # noqa: E402

PACKAGE = "verify"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClipWeights(keras.constraints.Constraint):
    """Keep latent weights in [-limit, limit] (BinaryConnect's clipping)."""

    def __init__(self, limit: float = 1.0):
        self.limit = float(limit)

    def __call__(self, w):
        return ops.clip(w, -self.limit, self.limit)

    def get_config(self):
        return {"limit": self.limit}


def _sign(x):
    """+1 where ``x >= 0``, -1 elsewhere (so sign(0) = +1), in x's dtype."""
    return ops.where(x >= 0, ops.ones_like(x), -ops.ones_like(x))


@keras.saving.register_keras_serializable(package=PACKAGE)
class BinaryDense(keras.layers.Layer):
    """A dense layer whose weights are ``sign(latent weights)`` (±1) in the forward pass.

    ``y = x @ sign(W) + b`` (``b`` only with ``use_bias=True``). The latent weights are
    trained with a straight-through gradient and kept in [-1, 1]. No activation: follow it
    with ``BatchNormalization`` and :class:`Sign`, or use it as the integer output layer.
    """

    def __init__(self, units: int, use_bias: bool = False,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(int(input_shape[-1]), self.units),
            initializer=self.kernel_initializer,
            constraint=ClipWeights(1.0))
        self.bias = (self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
                     if self.use_bias else None)

    def binary_kernel(self):
        """The ±1 weights the forward pass uses (straight-through gradient to the latent ones)."""
        w = ops.convert_to_tensor(self.kernel)
        return w + ops.stop_gradient(_sign(w) - w)

    def call(self, inputs):
        y = ops.matmul(inputs, self.binary_kernel())
        return y + self.bias if self.bias is not None else y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, use_bias=self.use_bias,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class Sign(keras.layers.Layer):
    """``+1`` where ``x >= 0``, ``-1`` elsewhere; straight-through (hard-tanh) gradient."""

    def call(self, inputs):
        clipped = ops.clip(inputs, -1.0, 1.0)
        return clipped + ops.stop_gradient(_sign(inputs) - clipped)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package=PACKAGE)
class BinarizeInput(keras.layers.Layer):
    """Input preprocessing: ``+1`` where ``x > threshold`` (default 0.5), ``-1`` elsewhere."""

    def __init__(self, threshold: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.threshold = float(threshold)

    def call(self, inputs):
        return ops.where(inputs > self.threshold, ops.ones_like(inputs), -ops.ones_like(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(threshold=self.threshold)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class IntegerInput(keras.layers.Layer):
    """Input preprocessing: a pixel in [0, 1] becomes the integer ``round(levels * x)``
    (default 255: the 8-bit value), as a float."""

    def __init__(self, levels: int = 255, **kwargs):
        super().__init__(**kwargs)
        self.levels = int(levels)

    def call(self, inputs):
        return ops.round(inputs * float(self.levels))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(levels=self.levels)
        return config


def bnn_from_arrays(blocks: Sequence[dict], output: dict, input_shape: Sequence[int] = (28, 28, 1),
                    input_mode: str = "binarize", name: str = "bnn",
                    batchnorm_epsilon: float = 1e-3, input_levels: int = 255) -> "keras.Model":
    """Rebuild a BNN trained elsewhere as a Keras model of these layers.

    ``blocks``: one dict per hidden block, each with ``weight`` of shape (inputs, units) — the
    real or ±1 weights; only their signs are used, ``w >= 0`` meaning +1 — optional ``bias``
    (units,), and the batch-norm arrays ``gamma``, ``beta``, ``mean``, ``variance`` (units,)
    (leave all four out for a block without batch norm). ``output``: ``weight`` (inputs,
    classes) and optional ``bias``. ``input_mode``: ``"binarize"`` (pixel > 0.5 → +1, else
    -1) or ``"integer"`` (8-bit integers 0..255: ``round(255 * x)``; ``input_levels`` sets
    another top value, e.g. a few levels for exhaustive tests). ``batchnorm_epsilon``: the ε the
    other framework used in ``(x - mean) / sqrt(variance + ε)`` (PyTorch's ``BatchNorm1d``
    default is 1e-5). Weights stored as (units, inputs), as in PyTorch's ``nn.Linear``, must be
    transposed first; the batch-norm ``mean`` and ``variance`` are the *running* statistics
    (PyTorch's ``running_mean`` / ``running_var``), ``gamma``/``beta`` its ``weight``/``bias``.
    """
    if input_mode not in ("binarize", "integer"):
        raise ValueError(f"input_mode must be 'binarize' or 'integer', not {input_mode!r}")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = (BinarizeInput(name="binarize") if input_mode == "binarize"
         else IntegerInput(int(input_levels), name="integer_input"))(x)
    assigned = []
    for k, block in enumerate(blocks, start=1):
        weight = np.asarray(block["weight"], dtype=np.float64)      # signs before any rounding
        dense = BinaryDense(weight.shape[1], use_bias="bias" in block, name=f"binary_dense_{k}")
        x = dense(x)
        assigned.append((dense, [np.where(weight >= 0, 1.0, -1.0).astype(np.float32)]
                         + ([np.asarray(block["bias"], np.float32)] if "bias" in block else [])))
        if "gamma" in block:
            norm = keras.layers.BatchNormalization(epsilon=batchnorm_epsilon, name=f"batchnorm_{k}")
            x = norm(x)
            assigned.append((norm, [np.asarray(block[key], np.float32)
                                    for key in ("gamma", "beta", "mean", "variance")]))
        x = Sign(name=f"sign_{k}")(x)
    weight = np.asarray(output["weight"], dtype=np.float64)
    dense = BinaryDense(weight.shape[1], use_bias="bias" in output, name="binary_dense_out")
    logits = dense(x)
    assigned.append((dense, [np.where(weight >= 0, 1.0, -1.0).astype(np.float32)]
                     + ([np.asarray(output["bias"], np.float32)] if "bias" in output else [])))
    model = keras.Model(inputs, logits, name=name)
    for layer, weights in assigned:
        layer.set_weights(weights)
    return model
