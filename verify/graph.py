"""Networks as small DAGs (residual connections, concatenation, piecewise-linear activations),
lowered exactly onto the chain IR of :mod:`verify.network`.

Readers (ONNX, Keras functional models) build a :class:`Graph`: one input, then nodes in
topological order, each with a name, an operation, named inputs, parameters and the
per-sample ``out_shape`` of its value. A value's *flat order* is the row-major order of its
``out_shape`` (HWC for Keras, CHW for ONNX), exactly as in the chain IR. Operations:

* ``affine`` — ``y = W x + b`` on one input (dense, conv, pooling, batch norm, transposes,
  input normalisation: any affine map a reader builds);
* ``relu`` — ``max(x, 0)``; ``maxpool`` — ``y_i = max_j x[index[i, j]]`` (``-1``: padding);
* ``add`` — ``y = s_a·a + s_b·b + c`` of two computed values of one size (``Add``; ``Sub`` is
  ``s_b = −1``; residual connections);
* ``concat`` — the inputs concatenated along one axis of their shapes;
* ``leaky_relu`` — ``max(x, 0) + α·min(x, 0)`` with a scalar or per-entry ``α`` (LeakyReLU,
  PReLU with constant slopes);
* ``clip`` — ``min(max(x, lo), hi)`` with scalar or per-entry bounds, ``±inf`` allowed
  (Clip, ReLU6, HardTanh, ``Max``/``Min`` with a constant);
* ``abs`` — ``|x|``;
* ``reshape`` — the same values under another shape (Flatten, Reshape, Squeeze, ...);
* ``layer`` — any other chain-IR layer on one input (the BNN layers ``Binarize``,
  ``Quantize``, ``SignBlock``): lowered as itself, so only where no other value is live.

Lowering (:func:`to_network`)
-----------------------------
The chain IR applies one layer after another to one flat vector. The lowering walks the
nodes in order and keeps the *live* values — those that a later node (or the output) still
needs — side by side in that vector. Every step maps the whole live vector:

* an affine node (``affine``, ``add``, ``concat``) is one :class:`~verify.network.Affine`
  layer with a block matrix: the live values still needed later are copied (identity
  blocks), the new value is ``W x + b`` (``add``: ``[s_a I, s_b I]``; ``concat``: a
  permutation of its inputs' entries);
* a ``maxpool`` is one :class:`~verify.network.MaxPool` in which every carried entry is a
  window of one element (the identity);
* every elementwise activation is written exactly as an affine part plus ReLUs,
  ``f(x) = c + a·x + Σ_k b_k·relu(s_k·x + t_k)``:

  - ``relu(x)``: ``a = 0``, one term ``b = s = 1, t = 0``;
  - ``leaky(x) = α·x + (1 − α)·relu(x)`` (for every real α, PReLU slopes above 1 included);
  - ``clip(x, lo, hi) = lo + relu(x − lo) − relu(x − hi)`` (both finite),
    ``lo + relu(x − lo)`` (``hi = ∞``), ``hi − relu(hi − x)`` (``lo = −∞``), ``x`` (neither);
  - ``abs(x) = 2·relu(x) − x``;

  and lowered to ``Affine`` (carried values, the copy of ``x`` that ``a·x`` needs, and each
  ReLU's input ``s_k x + t_k``) → :class:`~verify.network.ReLU` with a **mask**, so that only
  the ReLU inputs are rectified and every other entry passes through unchanged → ``Affine``
  (carried values, ``c + a·x + Σ b_k·r_k``). A plain ReLU whose input is needed by nobody else
  needs neither affine step: it is one masked ReLU over the live vector (with no mask at all
  when nothing else is live, so a chain network lowers to exactly the chain it always was).

Each step is an exact identity on the values, so the lowered network computes the graph's
function exactly (up to float round-off of the ``a·x + b·relu`` sums), every consumer of the
chain IR (forward pass, gradients, bounds, the MIP encoders, the bound engine, ONNX export)
handles graphs on its one code path, and the MIP of a ``clip``/``leaky``/``abs`` has exactly
one binary per unstable ReLU term. :meth:`verify.network.Network.merged_affine` afterwards
multiplies consecutive affine steps together where that keeps them sparse.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, Union

import numpy as np
import scipy.sparse as sp

from .errors import InvalidInputError
from .network import Affine, Layer, MaxPool, Network, ReLU

Matrix = Union[np.ndarray, sp.spmatrix]

#: The operations a :class:`Node` may have (see the module docstring).
OPS = ("affine", "relu", "maxpool", "add", "concat", "leaky_relu", "clip", "abs", "reshape",
       "layer")

#: Suffix of the ``kind`` of the block-matrix Affine layers the lowering makes (copies of
#: carried values, ReLU inputs, combinations): :meth:`Network.merged_affine` multiplies them
#: into their neighbours more eagerly (see :data:`verify.network.CARRY_KINDS`).
CARRY = ".carry"

#: A block matrix is stored dense when more than this fraction of its entries is set.
DENSE_FRACTION = 0.25


def _size(shape: Sequence[int]) -> int:
    return int(np.prod([int(d) for d in shape], dtype=np.int64)) if len(shape) else 1


@dataclass
class Node:
    """One operation of a :class:`Graph`: its value is named ``name`` and has the
    per-sample shape ``out_shape`` (flat order: row-major)."""

    name: str
    op: str
    inputs: tuple
    out_shape: tuple
    params: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return _size(self.out_shape)


class Graph:
    """A network as a DAG of :class:`Node` s from one input to one output.

    Build it with the methods named after the operations, in topological order (each
    input must exist already); every method returns the new value's name, which later
    nodes use as input. The last node added is the output unless :attr:`output` is set.
    Lower it to the chain IR with :meth:`to_network` (or :func:`to_network`).
    """

    def __init__(self, input_shape: Sequence[int], input_name: str = "input"):
        self.input_name = input_name
        self.input_shape = tuple(int(d) for d in input_shape)
        self.nodes: list[Node] = []
        self.shapes: dict[str, tuple] = {input_name: self.input_shape}
        self.output: str | None = None

    # -- building ----------------------------------------------------------------------------
    def shape(self, value: str) -> tuple:
        """The per-sample shape of a value (the input or a node's output)."""
        if value not in self.shapes:
            raise InvalidInputError(f"graph value {value!r} is not defined (yet); nodes must be "
                                    "added in topological order")
        return self.shapes[value]

    def size(self, value: str) -> int:
        return _size(self.shape(value))

    def add_node(self, name: str, op: str, inputs: Sequence[str], out_shape: Sequence[int],
                 **params) -> str:
        """Append a node (prefer the typed methods below, which check their parameters)."""
        if op not in OPS:
            raise InvalidInputError(f"unknown graph operation {op!r}; choose from {OPS}")
        if name in self.shapes:
            raise InvalidInputError(f"graph value {name!r} is defined twice")
        for value in inputs:
            self.shape(value)
        node = Node(name, op, tuple(inputs), tuple(int(d) for d in out_shape), dict(params))
        self.nodes.append(node)
        self.shapes[name] = node.out_shape
        return name

    def affine(self, name: str, inp: str, weight: Matrix, bias, out_shape: Sequence[int],
               kind: str = "dense", conv: dict | None = None) -> str:
        """``y = weight @ x + bias`` (weight (n_out, n_in), dense or sparse); ``kind`` and
        ``conv`` are kept on the resulting :class:`~verify.network.Affine` when the node
        lowers to a layer of its own (see :class:`~verify.network.Affine`)."""
        n_in, n_out = self.size(inp), _size(out_shape)
        if tuple(weight.shape) != (n_out, n_in):
            raise InvalidInputError(f"affine node {name}: weight of shape {tuple(weight.shape)} "
                                    f"does not map {n_in} values to {n_out}")
        b = np.broadcast_to(np.asarray(bias, dtype=np.float64), (n_out,)).copy()
        w: Matrix = (sp.csr_matrix(weight) if sp.issparse(weight)
                     else np.asarray(weight, dtype=np.float64))
        return self.add_node(name, "affine", [inp], out_shape, weight=w, bias=b, kind=kind,
                             conv=conv)

    def relu(self, name: str, inp: str) -> str:
        """``max(x, 0)`` elementwise."""
        return self.add_node(name, "relu", [inp], self.shape(inp))

    def maxpool(self, name: str, inp: str, index: np.ndarray, out_shape: Sequence[int]) -> str:
        """``y_i = max_j x[index[i, j]]`` (``index`` (n_out, window), ``-1`` for padding)."""
        index = np.asarray(index, dtype=np.int64)
        if index.ndim != 2 or index.shape[0] != _size(out_shape):
            raise InvalidInputError(f"maxpool node {name}: index of shape {index.shape} does not "
                                    f"give {_size(out_shape)} outputs")
        if index.size and (index.max() >= self.size(inp) or not np.all((index >= 0).any(axis=1))):
            raise InvalidInputError(f"maxpool node {name}: index out of range or an empty window")
        return self.add_node(name, "maxpool", [inp], out_shape, index=index)

    def add(self, name: str, a: str, b: str, scale_a: float = 1.0, scale_b: float = 1.0,
            const=0.0) -> str:
        """``scale_a·a + scale_b·b + const`` of two values of one size (``const`` a scalar or
        per entry); ``scale_b = −1`` is a subtraction. The output takes ``a``'s shape."""
        if self.size(a) != self.size(b):
            raise InvalidInputError(f"add node {name}: {a} has {self.size(a)} values, "
                                    f"{b} {self.size(b)}")
        c = np.broadcast_to(np.asarray(const, dtype=np.float64), (self.size(a),)).copy()
        return self.add_node(name, "add", [a, b], self.shape(a), scale_a=float(scale_a),
                             scale_b=float(scale_b), const=c)

    def concat(self, name: str, inputs: Sequence[str], axis: int) -> str:
        """The inputs concatenated along ``axis`` of their (per-sample) shapes, which must
        agree on every other axis (ONNX NCHW channels: ``axis=0``; Keras HWC: ``axis=-1``)."""
        shapes = [self.shape(v) for v in inputs]
        if not shapes:
            raise InvalidInputError(f"concat node {name} has no inputs")
        rank = len(shapes[0])
        ax = axis + rank if axis < 0 else axis
        if not 0 <= ax < rank or any(len(s) != rank or s[:ax] + s[ax + 1:] != shapes[0][:ax] + shapes[0][ax + 1:]
                                     for s in shapes):
            raise InvalidInputError(f"concat node {name}: shapes {shapes} do not concatenate "
                                    f"along axis {axis}")
        out = list(shapes[0])
        out[ax] = sum(s[ax] for s in shapes)
        return self.add_node(name, "concat", inputs, out, axis=ax, in_shapes=shapes)

    def leaky_relu(self, name: str, inp: str, alpha) -> str:
        """``max(x, 0) + alpha·min(x, 0)`` (``alpha`` a scalar or one slope per entry)."""
        a = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (self.size(inp),)).copy()
        if not np.all(np.isfinite(a)):
            raise InvalidInputError(f"leaky_relu node {name}: slopes must be finite")
        return self.add_node(name, "leaky_relu", [inp], self.shape(inp), alpha=a)

    def clip(self, name: str, inp: str, lo=-np.inf, hi=np.inf) -> str:
        """``min(max(x, lo), hi)`` (scalars or per entry; ``−inf``/``inf``: no bound)."""
        n = self.size(inp)
        l = np.broadcast_to(np.asarray(lo, dtype=np.float64), (n,)).copy()
        h = np.broadcast_to(np.asarray(hi, dtype=np.float64), (n,)).copy()
        if np.any(np.isnan(l)) or np.any(np.isnan(h)) or np.any(l > h) or np.any(l == np.inf) \
                or np.any(h == -np.inf):
            raise InvalidInputError(f"clip node {name}: bounds must satisfy lo <= hi")
        return self.add_node(name, "clip", [inp], self.shape(inp), lo=l, hi=h)

    def abs(self, name: str, inp: str) -> str:
        """``|x|`` elementwise."""
        return self.add_node(name, "abs", [inp], self.shape(inp))

    def layer(self, name: str, inp: str, layer: Layer) -> str:
        """Any chain-IR layer on ``inp`` (for the BNN layers, which carry no other values: the
        lowering accepts it only where ``inp`` is the one live value)."""
        takes = getattr(layer, "n_in", self.size(inp))
        if takes != self.size(inp):
            raise InvalidInputError(f"layer node {name}: takes {takes} values, "
                                    f"{inp} has {self.size(inp)}")
        return self.add_node(name, "layer", [inp], layer.out_shape, layer=layer)

    def reshape(self, name: str, inp: str, out_shape: Sequence[int]) -> str:
        """The same values (same flat order) under another shape."""
        if _size(out_shape) != self.size(inp):
            raise InvalidInputError(f"reshape node {name}: {self.shape(inp)} has "
                                    f"{self.size(inp)} values, {tuple(out_shape)} would need "
                                    f"{_size(out_shape)}")
        return self.add_node(name, "reshape", [inp], out_shape)

    # -- reading -----------------------------------------------------------------------------
    @property
    def output_name(self) -> str:
        if self.output is not None:
            return self.output
        return self.nodes[-1].name if self.nodes else self.input_name

    def is_chain(self) -> bool:
        """True when every node takes the previous value only (no skip connection)."""
        prev = self.input_name
        for node in self.nodes:
            if node.inputs != (prev,):
                return False
            prev = node.name
        return True

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The output for a batch ``x`` (batch, n_in), node by node (a reference for the
        lowering: :meth:`Network.forward` of :meth:`to_network` gives the same values)."""
        x = np.asarray(x, dtype=np.float64)
        vals = {self.input_name: x.reshape(x.shape[0], -1)}
        for node in self.nodes:
            p, ins = node.params, [vals[v] for v in node.inputs]
            if node.op == "affine":
                W = p["weight"]
                out = np.asarray((W @ ins[0].T).T) + p["bias"]
            elif node.op == "relu":
                out = np.maximum(ins[0], 0.0)
            elif node.op == "maxpool":
                padded = np.concatenate([ins[0], np.full((x.shape[0], 1), -np.inf)], axis=1)
                out = padded[:, p["index"]].max(axis=2)
            elif node.op == "add":
                out = p["scale_a"] * ins[0] + p["scale_b"] * ins[1] + p["const"]
            elif node.op == "concat":
                arrays = [v.reshape((x.shape[0],) + tuple(s)) for v, s in zip(ins, p["in_shapes"])]
                out = np.concatenate(arrays, axis=p["axis"] + 1).reshape(x.shape[0], -1)
            elif node.op == "leaky_relu":
                out = np.where(ins[0] >= 0, ins[0], p["alpha"] * ins[0])
            elif node.op == "clip":
                out = np.minimum(np.maximum(ins[0], p["lo"]), p["hi"])
            elif node.op == "abs":
                out = np.abs(ins[0])
            elif node.op == "layer":
                out = p["layer"].forward(ins[0])
            else:
                out = ins[0]
            vals[node.name] = out
        return vals[self.output_name]

    def to_network(self, name: str = "network", output_activation: str = "linear",
                   meta: dict | None = None) -> Network:
        """The exact chain-IR form of this graph (see :func:`to_network`)."""
        return to_network(self, name, output_activation, meta)


# -- lowering ------------------------------------------------------------------------------

def _elementwise_terms(node: Node, n: int):
    """``(c, a, terms)`` with ``f(x) = c + a·x + Σ_k b_k·relu(s_k·x + t_k)`` per entry for an
    elementwise node; ``terms`` is a list of ``(b, s, t)`` arrays (``b = 0``: no term there)."""
    zero, one = np.zeros(n), np.ones(n)
    if node.op == "relu":
        return zero, zero, [(one, one, zero)]
    if node.op == "leaky_relu":
        alpha = node.params["alpha"]
        return zero, alpha.copy(), [(1.0 - alpha, one, zero)]
    if node.op == "abs":
        return zero, -one, [(2.0 * one, one, zero)]
    if node.op == "clip":
        lo, hi = node.params["lo"], node.params["hi"]
        fl, fh = np.isfinite(lo), np.isfinite(hi)
        c = np.where(fl, np.where(fl, lo, 0.0), np.where(fh, hi, 0.0))
        a = np.where(~fl & ~fh, 1.0, 0.0)
        # lo finite: lo + relu(x − lo) [− relu(x − hi) if hi finite]
        # lo = −inf, hi finite: hi − relu(hi − x)
        t1 = (np.where(fl, 1.0, np.where(fh, -1.0, 0.0)),
              np.where(fl, 1.0, -1.0),
              np.where(fl, -np.where(fl, lo, 0.0), np.where(fh, hi, 0.0)))
        t2 = (np.where(fl & fh, -1.0, 0.0), one, -np.where(fh, hi, 0.0))
        return c, a, [t1, t2]
    raise InvalidInputError(f"node {node.name}: {node.op} is not elementwise")


class _Lowering:
    """The state of :func:`to_network`: the live values and the chain built so far."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.layers: list[Layer] = []
        self.live: list[str] = [graph.input_name]
        self.sizes: dict[str, int] = {graph.input_name: _size(graph.input_shape)}

    def offsets(self, live: list[str] | None = None) -> dict[str, int]:
        out, pos = {}, 0
        for v in (self.live if live is None else live):
            out[v] = pos
            pos += self.sizes[v]
        return out

    @property
    def width(self) -> int:
        return sum(self.sizes[v] for v in self.live)

    def emit_affine(self, new_live: list[str], blocks: dict, biases: dict, out_shape: tuple,
                    name: str, kind: str) -> None:
        """One Affine from the live vector to ``new_live``: values already live are copied,
        each new value ``v`` is ``Σ_u blocks[v][u] @ u + biases[v]``."""
        off, width = self.offsets(), self.width
        rows, bias = [], []
        for v in new_live:
            n = self.sizes[v]
            if v in blocks:
                pieces = []
                for u, M in blocks[v].items():
                    M = sp.csr_matrix(M)
                    pad = sp.hstack([sp.csr_matrix((n, off[u])), M,
                                     sp.csr_matrix((n, width - off[u] - self.sizes[u]))], format="csr")
                    pieces.append(pad)
                rows.append(sum(pieces[1:], pieces[0]))
                bias.append(np.asarray(biases[v], dtype=np.float64))
            else:
                sel = sp.csr_matrix((np.ones(n), (np.arange(n), off[v] + np.arange(n))),
                                    shape=(n, width))
                rows.append(sel)
                bias.append(np.zeros(n))
        W = sp.vstack(rows, format="csr")
        W.eliminate_zeros()
        if W.nnz > DENSE_FRACTION * W.shape[0] * W.shape[1]:
            W = W.toarray()
        self.layers.append(Affine(W, np.concatenate(bias), out_shape, name, kind))
        self.live = list(new_live)

    def kept(self, consumed: set, remaining: dict) -> list[str]:
        """The live values still needed after this node (inputs of later nodes, the output)."""
        return [v for v in self.live if v not in consumed or remaining[v] > 0]


def _resolve(graph: Graph) -> tuple[list[Node], dict, str]:
    """Nodes that the output depends on (reshapes folded into aliases), the alias table and
    the output's canonical name."""
    alias: dict[str, str] = {}

    def canon(v: str) -> str:
        while v in alias:
            v = alias[v]
        return v

    nodes = []
    for node in graph.nodes:
        if node.op == "reshape":
            alias[node.name] = canon(node.inputs[0])
            continue
        nodes.append(Node(node.name, node.op, tuple(canon(v) for v in node.inputs),
                          node.out_shape, node.params))
    out = canon(graph.output_name)
    needed, keep = {out}, []
    for node in reversed(nodes):
        if node.name in needed:
            keep.append(node)
            needed.update(node.inputs)
    return keep[::-1], alias, out


def to_network(graph: Graph, name: str = "network", output_activation: str = "linear",
               meta: dict | None = None) -> Network:
    """The chain-IR :class:`~verify.network.Network` that computes exactly the graph's
    function (see the module docstring for the construction). Nodes the output does not
    depend on are dropped; the network's output shape is the output node's shape."""
    if graph.output is not None:
        graph.shape(graph.output)
    nodes, _, out = _resolve(graph)
    remaining: dict[str, int] = {}
    for node in nodes:
        for v in set(node.inputs):
            remaining[v] = remaining.get(v, 0) + 1
    remaining[out] = remaining.get(out, 0) + 1
    st = _Lowering(graph)
    for node in nodes:
        consumed = set(node.inputs)
        for v in consumed:
            remaining[v] -= 1
        st.sizes[node.name] = node.size
        _LOWER[node.op](st, node, st.kept(consumed, remaining))
    if st.live != [out]:
        # only the graph input itself can be left here (an output that is the input)
        st.emit_affine([out], {}, {}, graph.shape(graph.output_name), "output", f"select{CARRY}")
    return Network(graph.input_shape, st.layers, output_activation, name, dict(meta or {}))


def _carried_shape(st: _Lowering, kept: list[str], node: Node) -> tuple:
    """Shape of a chain layer's output: the node's own shape when nothing else is carried,
    else the flat width."""
    if not kept:
        return node.out_shape
    return (sum(st.sizes[v] for v in kept) + node.size,)


def _lower_affine_like(st: _Lowering, node: Node, kept: list[str], blocks: dict, bias,
                       kind: str, conv: dict | None = None, weight=None) -> None:
    if not kept and st.live == [node.inputs[0]] and weight is not None:
        # the chain case: the node's own layer, unchanged (dense weights, conv metadata)
        st.layers.append(Affine(weight, np.asarray(bias, dtype=np.float64), node.out_shape,
                                node.name, kind, conv))
        st.live = [node.name]
        return
    st.emit_affine(kept + [node.name], {node.name: blocks}, {node.name: bias},
                   _carried_shape(st, kept, node), node.name,
                   kind if kind in ("add", "concat") else f"{kind}{CARRY}")


def _lower_affine(st: _Lowering, node: Node, kept: list[str]) -> None:
    p = node.params
    _lower_affine_like(st, node, kept, {node.inputs[0]: p["weight"]}, p["bias"], p["kind"],
                       p.get("conv"), p["weight"])


def _lower_add(st: _Lowering, node: Node, kept: list[str]) -> None:
    a, b = node.inputs
    n = node.size
    eye = sp.identity(n, format="csr")
    p = node.params
    if a == b:
        blocks = {a: (p["scale_a"] + p["scale_b"]) * eye}
    else:
        blocks = {a: p["scale_a"] * eye, b: p["scale_b"] * eye}
    _lower_affine_like(st, node, kept, blocks, p["const"], "add")


def _lower_concat(st: _Lowering, node: Node, kept: list[str]) -> None:
    ax = node.params["axis"]
    # position of each input's entries in the output's flat order
    parts = list(zip(node.inputs, node.params["in_shapes"]))
    total, start = node.size, 0
    ids = []
    for v, shape in parts:
        ids.append(np.arange(start, start + _size(shape)).reshape(shape))
        start += _size(shape)
    order = np.concatenate(ids, axis=ax).ravel()      # output entry i holds stacked entry order[i]
    stacked_pos = np.empty(total, dtype=np.int64)
    stacked_pos[order] = np.arange(total)               # stacked entry -> output position
    blocks: dict = {}
    start = 0
    for v, shape in parts:
        n = _size(shape)
        rows = stacked_pos[start:start + n]
        M = sp.csr_matrix((np.ones(n), (rows, np.arange(n))), shape=(total, n))
        blocks[v] = blocks[v] + M if v in blocks else M
        start += n
    _lower_affine_like(st, node, kept, blocks, np.zeros(total), "concat")


def _lower_maxpool(st: _Lowering, node: Node, kept: list[str]) -> None:
    x = node.inputs[0]
    index = node.params["index"]
    if not kept and st.live == [x]:
        st.layers.append(MaxPool(index, st.sizes[x], node.out_shape, node.name))
        st.live = [node.name]
        return
    off = st.offsets()
    width = max(index.shape[1], 1)
    carried = np.concatenate([off[v] + np.arange(st.sizes[v]) for v in kept]) if kept \
        else np.zeros(0, dtype=np.int64)
    ident = np.full((carried.size, width), -1, dtype=np.int64)
    ident[:, 0] = carried
    own = np.where(index >= 0, index + off[x], -1)
    st.layers.append(MaxPool(np.vstack([ident, own]), st.width, _carried_shape(st, kept, node),
                             node.name))
    st.live = kept + [node.name]


def _relu(shape: tuple, name: str, mask: np.ndarray | None) -> ReLU:
    """A ReLU layer; a mask that selects every entry is dropped (the plain ReLU)."""
    return ReLU(shape, name, None if mask is None or np.all(mask) else mask)


def _lower_elementwise(st: _Lowering, node: Node, kept: list[str]) -> None:
    x = node.inputs[0]
    n = node.size
    if node.op == "relu" and x not in kept:
        # in place: rectify x's entries, pass every other live entry through
        off = st.offsets()
        if st.live == [x]:
            mask = None
        else:
            mask = np.zeros(st.width, dtype=bool)
            mask[off[x]:off[x] + n] = True
        shape = node.out_shape if st.live == [x] else (st.width,)
        st.layers.append(_relu(shape, node.name, mask))
        st.live = [node.name if v == x else v for v in st.live]
        st.sizes[node.name] = n
        return
    if node.op == "clip" and x not in kept and np.all(node.params["hi"] == np.inf) \
            and np.all((node.params["lo"] == 0) | (node.params["lo"] == -np.inf)):
        # max(x, 0) on some entries, the identity on the others (the form ONNX export
        # writes masked ReLUs in): a masked ReLU in place
        off = st.offsets()
        mask = np.zeros(st.width, dtype=bool) if st.live != [x] else None
        own = node.params["lo"] == 0
        if mask is not None:
            mask[off[x]:off[x] + n] = own
        elif not np.all(own):
            mask = own.copy()
        shape = node.out_shape if st.live == [x] else (st.width,)
        st.layers.append(_relu(shape, node.name, mask))
        st.live = [node.name if v == x else v for v in st.live]
        return
    c, a, terms = _elementwise_terms(node, n)
    # pre-activation step: carried values, the copy of x for a·x, each term's ReLU input
    pre_live, blocks, biases, parts = list(kept), {}, {}, []
    lin_idx = np.flatnonzero(a != 0)
    if lin_idx.size:
        v = f"{node.name}#lin"
        st.sizes[v] = lin_idx.size
        blocks[v] = {x: sp.csr_matrix((np.ones(lin_idx.size), (np.arange(lin_idx.size), lin_idx)),
                                      shape=(lin_idx.size, n))}
        biases[v] = np.zeros(lin_idx.size)
        pre_live.append(v)
    relu_names = []
    for k, (b, s, t) in enumerate(terms):
        idx = np.flatnonzero(b != 0)
        if not idx.size:
            continue
        v = f"{node.name}#r{k}"
        st.sizes[v] = idx.size
        blocks[v] = {x: sp.csr_matrix((s[idx], (np.arange(idx.size), idx)), shape=(idx.size, n))}
        biases[v] = t[idx]
        pre_live.append(v)
        relu_names.append(v)
        parts.append((v, idx, b[idx]))
    carried_width = sum(st.sizes[v] for v in pre_live)
    st.emit_affine(pre_live, blocks, biases, (carried_width,), f"{node.name}.pre", f"{node.op}{CARRY}")
    if relu_names:
        off = st.offsets()
        mask = np.zeros(st.width, dtype=bool)
        for v in relu_names:
            mask[off[v]:off[v] + st.sizes[v]] = True
        st.layers.append(_relu((st.width,), node.name, mask))
    # post step: carried values and f(x)
    post = {}
    if lin_idx.size:
        post[f"{node.name}#lin"] = sp.csr_matrix((a[lin_idx], (lin_idx, np.arange(lin_idx.size))),
                                                 shape=(n, lin_idx.size))
    for v, idx, b in parts:
        post[v] = sp.csr_matrix((b, (idx, np.arange(idx.size))), shape=(n, idx.size))
    st.emit_affine(kept + [node.name], {node.name: post}, {node.name: c},
                   _carried_shape(st, kept, node), f"{node.name}.post", f"{node.op}{CARRY}")


def _lower_layer(st: _Lowering, node: Node, kept: list[str]) -> None:
    x = node.inputs[0]
    if kept or st.live != [x]:
        raise InvalidInputError(f"node {node.name}: a {type(node.params['layer']).__name__} layer "
                                "cannot carry other values past it (only in a chain)")
    st.layers.append(node.params["layer"])
    st.live = [node.name]


_LOWER = {
    "layer": _lower_layer,
    "affine": _lower_affine,
    "add": _lower_add,
    "concat": _lower_concat,
    "maxpool": _lower_maxpool,
    "relu": _lower_elementwise,
    "leaky_relu": _lower_elementwise,
    "clip": _lower_elementwise,
    "abs": _lower_elementwise,
}


def from_network(network: Network) -> Graph:
    """A chain network as a graph (one node per layer), e.g. to extend it with graph nodes.
    Masked ReLUs and the BNN layers have no graph form and raise InvalidInputError."""
    g = Graph(network.input_shape)
    prev = g.input_name
    for i, layer in enumerate(network.layers):
        nm = f"{layer.name or type(layer).__name__.lower()}#{i}"
        if isinstance(layer, Affine):
            prev = g.affine(nm, prev, layer.weight, layer.bias, layer.out_shape, layer.kind, layer.conv)
        elif isinstance(layer, ReLU) and layer.mask is None:
            prev = g.relu(nm, prev)
        elif isinstance(layer, MaxPool):
            prev = g.maxpool(nm, prev, layer.index, layer.out_shape)
        else:
            raise InvalidInputError(f"layer {i} ({type(layer).__name__}) has no graph form")
    return g
