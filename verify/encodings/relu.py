"""MIP encoding of a ReLU network over an input region.

Constraints, per layer (``l``, ``u``: the neuron's bounds from :mod:`verify.bounds`):

* **Input**: one column per *free* pixel, bounded by the region's box; pixels the region
  fixes are constants, not columns. The region adds its own budget rows (L1, L0).
* **Affine** ``z = W y + b``: one column per output with bounds ``[l, u]`` and one equality
  row; an output that depends on no column is a constant, and one that copies a column
  (``z_i = y_j``: values carried past a layer, :mod:`verify.graph`) is that column.
* **ReLU** ``y = max(z, 0)``: stable neurons need no binary — ``l ≥ 0``: ``y`` *is* ``z``
  (same column); ``u ≤ 0``: ``y`` is the constant 0. An unstable neuron gets ``y ∈ [0, u]``
  and a binary ``a`` with the per-neuron asymmetric big-M rows
  ``y ≥ z``, ``y ≤ z − l(1 − a)``, ``y ≤ u·a``. Pass-through entries of a masked ReLU layer
  (values carried past it, :mod:`verify.graph`) are ``y = z``: the same column, no binary.
  (MaxPool windows of one element, which carry values past a max-pool, are identities the
  same way.)
* **MaxPool** ``y = max_j z_j``: an input whose lower bound beats every other's upper bound
  *is* the output; inputs that can never be the maximum are dropped; otherwise
  ``y ≥ z_j`` and ``y ≤ z_j + (U − l_j)(1 − δ_j)`` with ``Σ δ_j = 1``, δ binary, U = max u.

With integrality relaxed this is the triangle (LP) relaxation used for bound tightening.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy.sparse as sp

from ..bounds import Bounds
from ..network import Affine, MaxPool, Network, ReLU
from ..problem import ProblemBuilder
from ..regions import Region


@dataclass
class Values:
    """A vector of network values: column ``cols[i]``, or the constant ``const[i]`` where
    ``cols[i] == -1``."""

    cols: np.ndarray
    const: np.ndarray
    relu: "ReluRows | None" = None      # the big-M rows, when these are a ReLU's outputs

    @property
    def is_var(self) -> np.ndarray:
        return self.cols >= 0

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """The values given a solution vector ``x``."""
        out = self.const.copy()
        out[self.is_var] = np.asarray(x)[self.cols[self.is_var]]
        return out


@dataclass
class ReluRows:
    """Where a ReLU layer's big-M encoding lives in the problem, so that a later, narrower
    region can update it in place: per unstable neuron ``neurons[i]``, the columns ``z``, ``y``,
    ``a`` and the rows ``y − z − l·a ≤ −l`` (``chord_rows``) and ``y − u·a ≤ 0`` (``cap_rows``)."""

    neurons: np.ndarray
    z: np.ndarray
    y: np.ndarray
    a: np.ndarray
    chord_rows: np.ndarray
    cap_rows: np.ndarray


@dataclass
class NetworkEncoding:
    network: Network
    region: Region
    bounds: Bounds
    free_idx: np.ndarray            # pixel index of each input column
    input_cols: np.ndarray
    values: list[Values]            # values[i]: input of layer i; values[-1]: logits
    aux: dict = field(default_factory=dict)   # region's auxiliary blocks ("changed", ...)

    @property
    def logits(self) -> Values:
        return self.values[-1]

    def input_image(self, x: np.ndarray) -> np.ndarray:
        """The full (flat) input image of a solution: fixed pixels at the region's centre."""
        image = self.region.center.copy()
        image[self.free_idx] = np.asarray(x)[self.input_cols]
        return np.clip(image, self.region.lo, self.region.hi)


def encode_network(builder: ProblemBuilder, network: Network, region: Region, bounds: Bounds,
                   upto: int | None = None) -> NetworkEncoding:
    """Encode ``network.layers[:upto]`` (default: all) over ``region`` into ``builder``."""
    free_idx = np.flatnonzero(region.free)
    input_cols = builder.add_vars("input", free_idx.size, region.lo[free_idx], region.hi[free_idx])
    cols = np.full(region.size, -1, dtype=np.int64)
    cols[free_idx] = input_cols
    values = [Values(cols, region.center.copy())]
    aux = region.encode(builder, input_cols, free_idx)
    layers = network.layers if upto is None else network.layers[:upto]
    for i, layer in enumerate(layers):
        encode = LAYER_ENCODERS[type(layer)]
        values.append(encode(builder, layer, values[i], bounds.lower[i], bounds.upper[i],
                             bounds.lower[i + 1], bounds.upper[i + 1], _block_name(layer, i)))
    return NetworkEncoding(network, region, bounds, free_idx, input_cols, values, aux)


def _block_name(layer, i: int) -> str:
    return f"L{i}.{type(layer).__name__.lower()}" + (f".{layer.name}" if layer.name else "")


def _encode_affine(builder, layer: Affine, inp: Values, in_lo, in_hi, out_lo, out_hi,
                   name: str) -> Values:
    W = layer.weight.tocsc() if sp.issparse(layer.weight) else layer.weight
    var = inp.is_var
    fixed = ~var
    bias = layer.bias + (np.asarray(W[:, fixed] @ inp.const[fixed]).ravel() if fixed.any() else 0.0)
    Wv = sp.csr_matrix(W[:, var])
    Wv.eliminate_zeros()
    depends = np.diff(Wv.indptr) > 0
    out = Values(np.full(layer.n_out, -1, dtype=np.int64), bias.astype(np.float64))
    # an output that copies one input column (carried values of a lowered graph,
    # verify.graph) *is* that column: no new column, no row
    copy = (np.diff(Wv.indptr) == 1) & (bias == 0)
    if copy.any():
        first = Wv.indptr[:-1][copy]
        copy[copy] = Wv.data[first] == 1.0
        rows = np.flatnonzero(copy)
        out.cols[rows] = inp.cols[var][Wv.indices[Wv.indptr[rows]]]
        depends &= ~copy
    if depends.any():
        rows = np.flatnonzero(depends)
        z = builder.add_vars(name, rows.size, out_lo[rows], out_hi[rows])
        out.cols[rows] = z
        sub = sp.coo_matrix(Wv[rows])
        # z - W y = b
        builder.add_rows(np.concatenate([np.arange(rows.size), sub.row]),
                         np.concatenate([z, inp.cols[var][sub.col]]),
                         np.concatenate([np.ones(rows.size), -sub.data]),
                         bias[rows], bias[rows], count=rows.size)
    return out


def _encode_relu(builder, layer: ReLU, inp: Values, lo, hi, out_lo, out_hi, name: str) -> Values:
    relu = layer.relu_entries()      # pass-through entries: y is z (same column or constant)
    out = Values(inp.cols.copy(), np.where(relu, np.maximum(inp.const, 0.0), inp.const))
    var = inp.is_var & relu
    inactive = var & (hi <= 0)
    out.cols[inactive] = -1
    out.const[inactive] = 0.0
    unstable = np.flatnonzero(var & (lo < 0) & (hi > 0))
    n = unstable.size
    if n:
        l, u, z = lo[unstable], hi[unstable], inp.cols[unstable]
        y = builder.add_vars(name, n, 0.0, u)
        a = builder.add_vars(name + ".active", n, 0.0, 1.0, integer=True)
        r = np.arange(n)
        # y - z ≥ 0
        builder.add_rows(np.r_[r, r], np.r_[y, z], np.r_[np.ones(n), -np.ones(n)], 0.0, np.inf, count=n)
        # y - z - l·a ≤ -l      (y ≤ z − l(1 − a))
        chord = builder.add_rows(np.r_[r, r, r], np.r_[y, z, a], np.r_[np.ones(n), -np.ones(n), -l],
                                 -np.inf, -l, count=n)
        # y - u·a ≤ 0
        cap = builder.add_rows(np.r_[r, r], np.r_[y, a], np.r_[np.ones(n), -u], -np.inf, 0.0, count=n)
        out.cols[unstable] = y
        out.relu = ReluRows(unstable, z, y, a, chord, cap)
    return out


def _encode_maxpool(builder, layer: MaxPool, inp: Values, lo, hi, out_lo, out_hi,
                    name: str) -> Values:
    out = Values(np.full(layer.n_out, -1, dtype=np.int64), np.zeros(layer.n_out))
    pending = []
    for i, group in enumerate(layer.groups()):
        g_lo, g_hi = lo[group], hi[group]
        best = int(np.argmax(g_lo))
        if g_lo[best] >= np.max(np.delete(g_hi, best), initial=-np.inf):
            j = group[best]                               # this input is always the maximum
            out.cols[i], out.const[i] = inp.cols[j], inp.const[j]
            continue
        pending.append((i, group[g_hi >= g_lo.max()]))   # others can never be the maximum
    if not pending:
        return out
    y = builder.add_vars(name, len(pending), [out_lo[i] for i, _ in pending],
                         [out_hi[i] for i, _ in pending])
    sel_count = sum(len(c) for _, c in pending)
    delta = builder.add_vars(name + ".argmax", sel_count, 0.0, 1.0, integer=True)
    rows_i, rows_j, rows_v, rlo, rhi = [], [], [], [], []

    def row(terms, lower, upper):
        for col, coef in terms:
            rows_i.append(len(rlo)); rows_j.append(col); rows_v.append(coef)
        rlo.append(lower); rhi.append(upper)

    d = 0
    for (i, cands), yi in zip(pending, y):
        out.cols[i] = yi
        U = hi[cands].max()
        for j in cands:
            big = U - lo[j]
            # a constant z_j moves to the right-hand side
            z_terms, shift = ([(inp.cols[j], -1.0)], 0.0) if inp.cols[j] >= 0 else ([], inp.const[j])
            row([(yi, 1.0)] + z_terms, shift, np.inf)                              # y ≥ z_j
            row([(yi, 1.0), (delta[d], big)] + z_terms, -np.inf, big + shift)     # y ≤ z_j + big(1-δ_j)
            d += 1
    r = len(rlo)
    builder.add_rows(rows_i, rows_j, rows_v, np.array(rlo), np.array(rhi), count=r)
    # exactly one selected input per output
    starts = np.cumsum([0] + [len(c) for _, c in pending])
    sel_rows = np.repeat(np.arange(len(pending)), np.diff(starts))
    builder.add_rows(sel_rows, delta, np.ones(sel_count), 1.0, 1.0, count=len(pending))
    return out


#: Dispatch table: IR layer type → encoder.
LAYER_ENCODERS: dict[type, Callable] = {
    Affine: _encode_affine,
    ReLU: _encode_relu,
    MaxPool: _encode_maxpool,
}


def quantise_inputs(builder: ProblemBuilder, enc: NetworkEncoding, levels: int) -> np.ndarray:
    """Restrict every free pixel to the ``levels`` values ``k/(levels − 1)`` (256 for 8-bit
    images): an integer column ``k_i`` per pixel with ``x_i = k_i/(levels − 1)``."""
    scale = levels - 1
    idx = enc.free_idx
    lo = np.ceil(enc.region.lo[idx] * scale - 1e-9)
    hi = np.floor(enc.region.hi[idx] * scale + 1e-9)
    k = builder.add_vars("input.level", idx.size, lo, hi, integer=True)
    r = np.arange(idx.size)
    builder.add_rows(np.r_[r, r], np.r_[enc.input_cols, k],
                     np.r_[np.full(idx.size, float(scale)), -np.ones(idx.size)], 0.0, 0.0, count=idx.size)
    return k
