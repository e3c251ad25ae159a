"""The network IR as JAX arrays, for the bound engine.

:func:`compile_network` turns a :class:`verify.network.Network` (Affine, ReLU and MaxPool
layers only) into

* a :class:`Plan` — the static structure (layer kinds and sizes, which layers need bounds of
  their inputs); hashable, so jit-compiled functions take it as a static argument and are
  compiled once per architecture and array shape, not once per network or query;
* a tuple of arrays per layer (the weights), passed to those functions as ordinary arguments.

An affine layer keeps a dense matrix unless its weight is a sparse matrix with at most a
quarter of its entries set (convolutions), which is stored as coordinate triplets
``(rows, cols, vals)``: ``W x`` is a gather and a segment sum, ``A W`` (back-substitution) a
gather and a scatter-add. A max-pool layer is its index table with padding entries replaced
by 0 and a mask. A ReLU layer has no arrays, or — a masked ReLU (:mod:`verify.graph`) — its
boolean mask (True: a ReLU; False: a pass-through entry, the identity).

Every array is float64; the engine's public functions run under ``jax.enable_x64(True)``, a
thread-local switch, so JAX's global default (float32, which Keras relies on) is untouched.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from ..errors import InvalidInputError
from ..network import Affine, MaxPool, Network, ReLU

#: A sparse weight is kept sparse when at most this fraction of its entries is nonzero.
SPARSE_DENSITY = 0.25


def x64():
    """Context in which JAX computes in float64, without changing the process-wide default."""
    return jax.enable_x64(True)


@dataclass(frozen=True)
class Plan:
    """Static structure of a network: one entry per layer.

    ``kinds[j]`` is ``"dense"``, ``"sparse"``, ``"relu"`` or ``"pool"``; ``sizes[j]`` the
    size of ``values[j]`` (the input to layer j; ``sizes[-1]`` is the number of logits).
    ``relu_layers`` lists the layer indices of the ReLUs, ``pool_layers`` those of the
    max-pools; a ReLU's (pool's) position in its list is its *ReLU (pool) number*.
    """

    kinds: tuple
    sizes: tuple
    relu_layers: tuple
    pool_layers: tuple
    pool_width: tuple          # entries per pool window, per pool number

    @property
    def num_layers(self) -> int:
        return len(self.kinds)

    @property
    def relu_sizes(self) -> tuple:
        return tuple(self.sizes[j] for j in self.relu_layers)

    @property
    def relu_offsets(self) -> tuple:
        """Start of each ReLU layer in the flat vector of all ReLU neurons."""
        return tuple(int(v) for v in np.concatenate([[0], np.cumsum(self.relu_sizes)]))

    @property
    def num_relus(self) -> int:
        return int(sum(self.relu_sizes))

    def relu_number(self, j: int) -> int:
        return self.relu_layers.index(j)

    def pool_number(self, j: int) -> int:
        return self.pool_layers.index(j)


@dataclass
class CompiledNetwork:
    """A network ready for the engine: its :class:`Plan`, its arrays, and the IR itself."""

    plan: Plan
    arrays: tuple
    network: Network

    @property
    def num_inputs(self) -> int:
        return self.plan.sizes[0]

    @property
    def num_outputs(self) -> int:
        return self.plan.sizes[-1]

    def passthrough(self) -> np.ndarray:
        """Flat boolean vector over all ReLU neurons (the engine's neuron order): True for the
        pass-through entries of masked ReLU layers, which are identities — exact in every
        relaxation, never unstable, never split."""
        parts = [np.zeros(self.plan.sizes[j], dtype=bool) if not self.arrays[j]
                 else ~np.asarray(self.arrays[j][0], dtype=bool) for j in self.plan.relu_layers]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def compile_network(network: Network) -> CompiledNetwork:
    """The plan and float64 arrays of ``network`` (layers as given: merge affine layers
    first with :meth:`Network.merged_affine` if wanted). Raises InvalidInputError for
    layers the engine has no relaxation of (the BNN layers)."""
    kinds, sizes, arrays = [], [network.num_inputs], []
    relus, pools, widths = [], [], []
    bad = [type(l).__name__ for l in network.layers if not isinstance(l, (Affine, ReLU, MaxPool))]
    if bad:
        raise InvalidInputError(
            f"the bound engine handles Affine, ReLU and MaxPool layers only; {network.name} has "
            f"{', '.join(sorted(set(bad)))} (binarized networks use the exact BNN encodings)")
    with x64():
        for j, layer in enumerate(network.layers):
            if isinstance(layer, Affine):
                if layer.n_in != sizes[-1]:
                    raise InvalidInputError(f"layer {j} ({layer.name}) takes {layer.n_in} values, "
                                            f"the layer before gives {sizes[-1]}")
                W = layer.weight
                bias = jnp.asarray(np.asarray(layer.bias, dtype=np.float64))
                if sp.issparse(W) and W.nnz <= SPARSE_DENSITY * W.shape[0] * W.shape[1]:
                    coo = W.tocoo()
                    kinds.append("sparse")
                    arrays.append((jnp.asarray(coo.row.astype(np.int32)),
                                   jnp.asarray(coo.col.astype(np.int32)),
                                   jnp.asarray(coo.data.astype(np.float64)), bias))
                else:
                    dense = W.toarray() if sp.issparse(W) else np.asarray(W)
                    kinds.append("dense")
                    arrays.append((jnp.asarray(dense.astype(np.float64)), bias))
                sizes.append(layer.n_out)
            elif isinstance(layer, ReLU):
                kinds.append("relu")
                relus.append(j)
                # a masked layer carries its pass-through entries' mask (True: a ReLU)
                arrays.append(() if layer.mask is None
                              else (jnp.asarray(np.asarray(layer.mask, dtype=bool)),))
                sizes.append(sizes[-1])
            else:
                if layer.n_in != sizes[-1]:
                    raise InvalidInputError(f"max-pool layer {j} takes {layer.n_in} values, "
                                            f"the layer before gives {sizes[-1]}")
                index = np.asarray(layer.index, dtype=np.int64)
                mask = index >= 0
                if not np.all(mask.any(axis=1)):
                    raise InvalidInputError(f"max-pool layer {j} has an empty window")
                kinds.append("pool")
                pools.append(j)
                widths.append(index.shape[1])
                arrays.append((jnp.asarray(np.where(mask, index, 0).astype(np.int32)),
                               jnp.asarray(mask)))
                sizes.append(layer.n_out)
    plan = Plan(tuple(kinds), tuple(sizes), tuple(relus), tuple(pools), tuple(widths))
    return CompiledNetwork(plan, tuple(arrays), network)


# -- linear algebra on dense or sparse weights ------------------------------------------------

def sparse_apply(rows, cols, vals, x, n_out: int):
    """``W x`` for a batch ``x`` (..., n_in) and W given by coordinate triplets."""
    contrib = x[..., cols] * vals                        # (..., nnz)
    out = jnp.zeros(x.shape[:-1] + (n_out,), dtype=contrib.dtype)
    return out.at[..., rows].add(contrib)


def sparse_left(A, rows, cols, vals, n_in: int):
    """``A W`` for coefficient rows ``A`` (..., n_out) and W given by coordinate triplets."""
    contrib = A[..., rows] * vals                        # (..., nnz)
    out = jnp.zeros(A.shape[:-1] + (n_in,), dtype=contrib.dtype)
    return out.at[..., cols].add(contrib)


def affine_left(plan: Plan, arrays: tuple, j: int, A):
    """``(A W_j, A b_j, |A| |b_j|)`` for the affine layer j."""
    if plan.kinds[j] == "dense":
        W, b = arrays[j]
        return A @ W, A @ b, jnp.abs(A) @ jnp.abs(b)
    rows, cols, vals, b = arrays[j]
    return sparse_left(A, rows, cols, vals, plan.sizes[j]), A @ b, jnp.abs(A) @ jnp.abs(b)


def forward(plan: Plan, arrays: tuple, x):
    """Logits of a batch ``x`` (batch, n_in) in JAX (the IR's forward pass)."""
    for j, kind in enumerate(plan.kinds):
        if kind == "dense":
            W, b = arrays[j]
            x = x @ W.T + b
        elif kind == "sparse":
            rows, cols, vals, b = arrays[j]
            x = sparse_apply(rows, cols, vals, x, plan.sizes[j + 1]) + b
        elif kind == "relu":
            x = jnp.maximum(x, 0.0) if not arrays[j] else jnp.where(arrays[j][0], jnp.maximum(x, 0.0), x)
        else:
            index, mask = arrays[j]
            x = jnp.max(jnp.where(mask, x[..., index], -jnp.inf), axis=-1)
    return x
