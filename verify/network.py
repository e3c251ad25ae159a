"""The network IR: a trained network as an ordered list of typed numpy layers.

Every layer maps a flat vector to a flat vector (a batch of them: arrays of shape
``(batch, n)``). Flat order is row-major over the Keras shape (height, width, channels), the
order ``Flatten`` uses, so Flatten, Reshape and Dropout need no layer of their own.

* :class:`Affine` — ``y = W x + b``. Dense layers keep a dense ``W``; Conv2D and
  AveragePooling2D become sparse CSR matrices; BatchNormalization is folded into a
  neighbouring affine layer.
* :class:`ReLU` — ``y = max(x, 0)`` elementwise, or on the entries of a ``mask`` only (the
  others pass through unchanged: values a residual connection still needs, see
  :mod:`verify.graph`, which lowers DAGs — skip connections, Concat, LeakyReLU, Clip, Abs —
  exactly onto this chain).
* :class:`MaxPool` — ``y_i = max(x[index[i, :]])`` (entries ``-1`` in ``index`` are padding).

Binarized networks (BNNs, :mod:`verify.layers`) add three layer types:

* :class:`Binarize` — the input step ``+1 if x > threshold else -1``;
* :class:`Quantize` — the 8-bit input ``round(levels * x)``;
* :class:`SignBlock` — a binarized neuron block ``+1 if weight @ x >= threshold else -1``
  with integer weights in {-1, 0, +1} and integer thresholds: a ``BinaryDense`` with its
  batch norm and sign folded in (exactly, see :func:`verify.keras_io.fold_sign_block`).

The last layer of a BNN is an :class:`Affine` with ±1 weights (``kind="binary_dense"``):
its integer-valued outputs are the logits.

The network ends at the **logits**: a final sigmoid or softmax is recorded in
:attr:`Network.output_activation` but not applied, since both are monotone and leave the
predicted label unchanged. A one-logit (sigmoid) network predicts class 1 when its logit is
positive, class 0 otherwise.

The IR evaluates itself in float64 (:meth:`Network.forward`) and agrees with Keras'
float32 ``predict`` to float tolerance. Keras is imported only by :mod:`verify.keras_io`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Union

import numpy as np
import scipy.sparse as sp

from .errors import InvalidInputError

Matrix = Union[np.ndarray, sp.csr_matrix]


class _WeightedLayer:
    """Sizes of a layer with a ``weight`` matrix of shape (n_out, n_in)."""

    weight: Matrix

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]


@dataclass
class Affine(_WeightedLayer):
    """``y = W x + b``; ``kind`` records where it came from (dense, conv2d, avgpool, ...).

    ``conv`` optionally describes the 2-D convolution that ``W`` was built from, so that an
    exporter can write it as a convolution again: ``kernel`` (kh, kw, C, F), ``strides``
    (sh, sw), ``padding`` ((top, bottom), (left, right)), ``input_shape`` (H, W, C) and
    ``layout`` ("HWC", Keras' flat order, or "CHW", ONNX's), the flat order of both the input
    and the output. It is set only by readers; a layer built from another one with changed
    weights (batch-norm folding, merging) leaves it None.
    """

    weight: Matrix          # (n_out, n_in)
    bias: np.ndarray        # (n_out,)
    out_shape: tuple
    name: str = ""
    kind: str = "dense"
    conv: dict | None = field(default=None, repr=False, compare=False)

    def forward(self, x: np.ndarray) -> np.ndarray:
        # (W @ x.T).T works for dense and sparse W alike
        return np.asarray((self.weight @ x.T).T) + self.bias

    def dense_weight(self) -> np.ndarray:
        return self.weight.toarray() if sp.issparse(self.weight) else self.weight


@dataclass
class ReLU:
    """``y = max(x, 0)`` elementwise, or only on the entries of ``mask``.

    ``mask`` is None (every entry is a ReLU: the common case) or a boolean vector over the
    entries: ``True`` entries are ReLUs, ``False`` entries pass their input through unchanged
    (``y_i = x_i``). Pass-through entries carry values that a later layer still needs (a
    skip connection, the linear part of a LeakyReLU) past the ReLUs: see :mod:`verify.graph`.
    They are exact identities everywhere: no binary in a MIP, slope 1 in every relaxation,
    never unstable, never branched on, and not counted in :attr:`Network.num_relus`.
    """

    out_shape: tuple
    name: str = ""
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def num_relus(self) -> int:
        """Entries that are ReLUs (all of them without a mask)."""
        return layer_size(self) if self.mask is None else int(np.count_nonzero(self.mask))

    def relu_entries(self) -> np.ndarray:
        """Boolean vector: True for the entries that are ReLUs."""
        return np.ones(layer_size(self), dtype=bool) if self.mask is None else np.asarray(self.mask, dtype=bool)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.mask is None:
            return np.maximum(x, 0.0)
        return np.where(self.mask, np.maximum(x, 0.0), x)


@dataclass
class MaxPool:
    """``y_i = max_j x[index[i, j]]``; ``index`` is (n_out, pool) with ``-1`` for padding."""

    index: np.ndarray
    n_in: int
    out_shape: tuple
    name: str = ""

    @property
    def n_out(self) -> int:
        return self.index.shape[0]

    def groups(self) -> list[np.ndarray]:
        """The input indices of each output (padding removed)."""
        return [row[row >= 0] for row in self.index]

    def forward(self, x: np.ndarray) -> np.ndarray:
        padded = np.concatenate([x, np.full((x.shape[0], 1), -np.inf)], axis=1)
        return padded[:, self.index].max(axis=2)   # index -1 picks the -inf column


@dataclass
class Binarize:
    """Input step: ``+1`` where ``x > threshold``, ``-1`` elsewhere."""

    threshold: float
    out_shape: tuple
    name: str = ""

    def forward(self, x: np.ndarray) -> np.ndarray:
        # compared in float32, as Keras does: 0.5 + 1e-12 is not above 0.5 there
        return np.where(np.asarray(x, np.float32) > np.float32(self.threshold), 1.0, -1.0)


@dataclass
class Quantize:
    """Integer input: ``round(levels * x)`` (round half to even, as Keras and numpy do)."""

    levels: int
    out_shape: tuple
    name: str = ""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.round(np.float32(self.levels) * np.asarray(x, np.float32)).astype(np.float64)


@dataclass
class SignBlock(_WeightedLayer):
    """Binarized neurons: ``y_i = +1 if weight[i] @ x >= threshold[i] else -1``.

    ``weight`` is an int8 matrix (n_out, n_in) with entries in {-1, 0, +1} (a row of zeros
    is a neuron whose output is constant) and ``threshold`` an int64 vector; the inputs are
    integers (±1, or 8-bit values after :class:`Quantize`), so the sums are exact.
    """

    weight: np.ndarray
    threshold: np.ndarray
    out_shape: tuple
    name: str = ""

    def forward(self, x: np.ndarray) -> np.ndarray:
        sums = x @ self.weight.T.astype(np.float64)
        return np.where(sums >= self.threshold, 1.0, -1.0)


Layer = Union[Affine, ReLU, MaxPool, Binarize, Quantize, SignBlock]


def layer_size(layer: Layer) -> int:
    return int(np.prod(layer.out_shape))


@dataclass
class Network:
    """A feed-forward network from an input of ``input_shape`` to its logits."""

    input_shape: tuple
    layers: list[Layer]
    output_activation: str = "linear"     # "linear", "sigmoid" or "softmax" (not applied)
    name: str = "network"
    meta: dict = field(default_factory=dict)

    @property
    def num_inputs(self) -> int:
        return int(math.prod(self.input_shape))    # on every forward pass: not np.prod

    @property
    def num_outputs(self) -> int:
        return layer_size(self.layers[-1]) if self.layers else self.num_inputs

    @property
    def num_classes(self) -> int:
        """Number of labels: 2 for a single-logit (sigmoid) network."""
        return 2 if self.num_outputs == 1 else self.num_outputs

    @property
    def is_binarized(self) -> bool:
        """True for a BNN (binarised or integer inputs, binarized neuron blocks): the BNN
        tasks and encodings apply."""
        return any(isinstance(l, (Binarize, Quantize, SignBlock)) for l in self.layers)

    @property
    def num_relus(self) -> int:
        """ReLU neurons (pass-through entries of masked ReLU layers are not counted)."""
        return sum(l.num_relus for l in self.layers if isinstance(l, ReLU))

    def flatten_input(self, x: np.ndarray) -> np.ndarray:
        """Turn one input or a batch, in the model's shape or flat, into (batch, n) float64."""
        x = np.asarray(x, dtype=np.float64)
        n = self.num_inputs
        if x.ndim == 2 and x.shape[1] == n:
            return x
        if x.size == n:
            return x.reshape(1, n)
        if x.ndim >= 1 and x.size % n == 0 and (x.shape[1:] == tuple(self.input_shape)
                                                 or (x.ndim == 2 and x.shape[1] == n)
                                                 or int(np.prod(x.shape[1:])) == n):
            return x.reshape(x.shape[0], n)
        raise InvalidInputError(
            f"input of shape {x.shape} does not fit network input {self.input_shape} ({n} values)")

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Logits for a batch (or one input): shape (batch, num_outputs), float64."""
        return self.forward_all(x)[-1]

    def forward_from(self, k: int, values: np.ndarray) -> np.ndarray:
        """Logits given the (batch of) inputs ``values`` to ``layers[k]``."""
        for layer in self.layers[k:]:
            values = layer.forward(values)
        return values

    def forward_all(self, x: np.ndarray) -> list[np.ndarray]:
        """The input followed by every layer's output, each of shape (batch, size)."""
        values = [self.flatten_input(x)]
        for layer in self.layers:
            values.append(layer.forward(values[-1]))
        return values

    def labels_from_logits(self, logits: np.ndarray) -> np.ndarray:
        logits = np.atleast_2d(logits)
        if logits.shape[1] == 1:
            return (logits[:, 0] > 0).astype(np.int64)
        return np.argmax(logits, axis=1)

    def predict_label(self, x: np.ndarray) -> np.ndarray:
        """Predicted class index for each input of a batch."""
        return self.labels_from_logits(self.forward(x))

    def label(self, x: np.ndarray) -> int:
        """Predicted class index of one input."""
        return int(self.predict_label(self.flatten_input(x)[:1])[0])

    def describe(self) -> list[dict]:
        """One row per layer: name, type, output shape, neurons, parameters."""
        rows = [{"name": "input", "type": "Input", "shape": list(self.input_shape),
                 "neurons": self.num_inputs, "params": 0}]
        for layer in self.layers:
            kind = type(layer).__name__ if not isinstance(layer, Affine) else f"Affine({layer.kind})"
            if isinstance(layer, ReLU) and layer.mask is not None:
                kind = f"ReLU({layer.num_relus} + {layer_size(layer) - layer.num_relus} carried)"
            params = 0
            if isinstance(layer, Affine):
                nnz = layer.weight.nnz if sp.issparse(layer.weight) else layer.weight.size
                params = int(nnz + layer.bias.size)
            elif isinstance(layer, SignBlock):
                params = int(np.count_nonzero(layer.weight) + layer.n_out)
            rows.append({"name": layer.name, "type": kind, "shape": list(layer.out_shape),
                         "neurons": layer_size(layer), "params": params})
        return rows

    def merged_affine(self) -> "Network":
        """An equivalent network in which consecutive affine layers are multiplied together.

        Encoders use it so a Conv2D followed by AveragePooling2D becomes one affine map (and
        the MIP gets no variables for the discarded intermediate values). A product is kept
        only when it has no more nonzeros than its two factors together would need as rows
        of the smaller output; otherwise the layers stay apart.
        """
        merged: list[Layer] = []
        for layer in self.layers:
            prev = merged[-1] if merged else None
            if isinstance(layer, Affine) and isinstance(prev, Affine):
                # the lowering's copy/combination steps (verify.graph) are merged even when
                # the product has up to twice the nonzeros: they only duplicate rows/columns
                carry = _is_carry(prev) or _is_carry(layer)
                product = _compose(prev, layer, 2.0 if carry else 1.0)
                if product is not None:
                    merged[-1] = product
                    continue
            merged.append(layer)
        return Network(self.input_shape, merged, self.output_activation, self.name, dict(self.meta))


#: ``kind`` values of the structural Affine layers of :func:`verify.graph.to_network` (the
#: ``".carry"`` suffix marks the rest): merged into neighbours more eagerly.
CARRY_KINDS = ("add", "concat")


def _is_carry(layer: Affine) -> bool:
    return layer.kind in CARRY_KINDS or ".carry" in layer.kind


def _compose(first: Affine, second: Affine, slack: float = 1.0) -> Affine | None:
    """``second ∘ first`` as one Affine, or None when the product would be much denser
    (more than ``slack`` times the nonzeros of the two factors)."""
    w = second.weight @ first.weight
    b = np.asarray(second.weight @ first.bias).ravel() + second.bias
    if sp.issparse(w):
        w = w.tocsr()
        w.eliminate_zeros()
        nnz = w.nnz
        if nnz > 0.25 * w.shape[0] * w.shape[1]:
            w = w.toarray()
    else:
        nnz = w.size
    def size(m: Matrix) -> int:
        return m.nnz if sp.issparse(m) else m.size
    if nnz > slack * (size(first.weight) + size(second.weight)):
        return None
    return Affine(w, b, second.out_shape, f"{first.name}+{second.name}", f"{first.kind}+{second.kind}")
