"""ONNX models into the network IR (:class:`verify.network.Network`): :func:`network_from_onnx`.

A model file (``.onnx``, or gzip-compressed ``.onnx.gz``) or an ``onnx.ModelProto`` is checked
with ``onnx.checker.check_model``; a missing, unreadable or invalid file is a
:class:`~verify.errors.ModelLoadError` that names it.

The graph must have one (float) input besides its initializers and one output. It may be any
DAG: nodes with one computed input (plus constants) are read by the handlers below; ``Add``,
``Sub``, ``Sum``, ``Max``, ``Min`` and ``Concat`` of several computed values (residual
connections, branches) are merges. The reader builds a :class:`verify.graph.Graph` and lowers
it exactly onto the chain IR (values still needed later are carried past layers; see
:mod:`verify.graph`); a chain graph gives the chain of layers as before. Constants are
initializers, ``Constant`` nodes, and nodes whose inputs are all constants (evaluated once
with ``onnx.reference``); ``Shape`` of a data value whose shape ONNX shape inference knows is
a constant too (batch as 1, so ``Shape → Gather → Unsqueeze → Concat → Reshape`` — what
``x.view(x.size(0), -1)`` exports to — folds into a constant ``Reshape``, whose leading 1 is then
read as the batch). The input's first dimension is the batch (symbolic, or fixed at 1);
:attr:`Network.input_shape` is the rest, e.g. ``(1, 28, 28)``, ``(784,)`` or ``(28, 28, 1)``.
The IR's flat order is the row-major order of the ONNX tensors (NCHW: channel, row, column).
Weights become float64 copies of the ONNX tensors.

Supported operators (ai.onnx domain) and their constraints:

* ``Gemm``: data as input A, constant B and optional C; ``transA=0``, any ``transB``,
  ``alpha``, ``beta``; C broadcast over the batch. Data of shape (batch, n).
* ``MatMul``: data times a constant 2-D matrix (data of shape (batch, ..., n); leading
  dimensions other than the batch give a block-diagonal sparse map).
* ``Add``, ``Sub``, ``Mul``, ``Div`` with one constant operand that broadcasts to the data
  without changing its shape (and does not vary along the batch): elementwise affine maps
  (input normalisation ``(x - mean) / std`` and the like). ``Div`` only as data / constant
  (no zero). An ``Add``/``Sub`` of a constant right after an affine layer (``MatMul``,
  ``Gemm``, ``Conv``, ...) becomes that layer's bias.
* ``Conv``: 2-D (NCHW data, constant kernel (F, C/group, kh, kw), optional bias), any
  ``strides``, ``pads``, ``auto_pad``, ``dilations`` (a kernel with zeros between its taps)
  and ``group`` (a block-diagonal map). Becomes a sparse CSR affine layer (kind ``conv2d``).
* ``AveragePool`` and ``MaxPool``: 2-D (NCHW), any ``kernel_shape``, ``strides``, ``pads``
  or ``auto_pad``; ``dilations`` 1. ``AveragePool`` follows ``count_include_pad`` (0: divide
  by the number of real inputs in the window, 1: by the window size) and needs
  ``ceil_mode=0``; ``MaxPool`` ignores the padding (its ``Indices`` output must be unused)
  and takes ``ceil_mode=1`` (windows past the end are padding, and a last window that would
  start in the padding is dropped, as PyTorch and onnxruntime do).
* ``GlobalAveragePool`` (mean over every axis after the channels), ``ReduceMean`` and
  ``ReduceSum`` over non-batch axes (any ``keepdims``): sparse averaging (summing) maps.
* Piecewise-linear activations, exact graph operations (see :mod:`verify.graph`):
  ``LeakyRelu`` (``alpha``), ``PRelu`` (constant slopes broadcast to the data),
  ``Clip`` (constant ``min``/``max``, attributes before opset 11, inputs after; ±float32 max
  means no bound: ReLU6, HardTanh), ``Abs``, ``HardSigmoid`` (an affine map and a clip to
  [0, 1]), ``Max``/``Min`` with constants (a one-sided clip); ``Neg``.
* ``Squeeze``/``Unsqueeze`` (axes as attribute or input; never the batch axis): no layer.
* ``BatchNormalization`` (inference: ``training_mode=0``, only the first output used):
  a diagonal affine layer (kind ``batchnorm``) over the channel axis 1.
* ``Relu``; ``Flatten``, ``Reshape`` (constant shape, ``0`` and ``-1`` allowed),
  ``Identity``, ``Dropout`` (inference; mask unused): no layer, the flat order is unchanged;
  none of them may move the batch dimension.
* ``Transpose`` with the batch axis first: a sparse permutation (kind ``transpose``).
* ``Gather`` of constant indices along a non-batch axis: a sparse selection (kind
  ``gather``); ``Pad`` (mode ``constant``, finite value, constant pads, no padding of the
  batch axis): a sparse selection plus the padding value (kind ``pad``).
* ``Softmax`` (over the last axis) and ``Sigmoid`` only as the last node: dropped, recorded in
  :attr:`Network.output_activation`; the IR ends at the logits.

and the patterns :func:`verify.onnx.writer.network_to_onnx` writes for layers that have no single ONNX op:

* ``Where(Greater(x, c), 1, -1)`` with a scalar ``c``: :class:`~verify.network.Binarize`;
* ``Round(Mul(x, c))`` with a positive integer scalar ``c``: :class:`~verify.network.Quantize`;
* ``Where(GreaterOrEqual(MatMul(x, W), t), 1, -1)`` with ``W`` in {-1, 0, 1} and integer
  ``t``, on integer-valued data (after one of these three):
  :class:`~verify.network.SignBlock`; a ``MatMul``/``Gemm`` with ±1 weights on such data is a
  ``binary_dense`` affine layer (the BNN logits);
* ``ReduceMax(Gather(x, I, axis=1), axis=2)``, optionally after ``Pad(x, -inf)`` on the
  last axis: :class:`~verify.network.MaxPool` (indices into the padding become ``-1``);
* ``ReduceSum(Mul(Gather(x, I, axis=1), V), axes=[2], keepdims=0)``: the sparse affine layer
  with ``V[i, j]`` at row i, column ``I[i, j]`` (the ELLPACK form of a sparse matrix);
* ``Max(x, floor)`` with ``floor`` 0 or ``-inf`` per entry: a masked ReLU.

Everything else raises ONE :class:`~verify.errors.UnsupportedOperatorError` that lists every
offending node with its operator and the reason.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import onnx
import scipy.sparse as sp
from onnx import TensorProto, helper, numpy_helper

from ..errors import InvalidInputError, UnsupportedOperatorError
from ..graph import Graph
from ..network import Affine, Binarize, Layer, MaxPool, Network, Quantize, ReLU, SignBlock
from ..windows import Unsupported as _Unsupported
from ..windows import average_matrix, conv_matrix, pool_index, same_pads
from .files import BATCH, first_line, load_onnx

#: operators the reader accepts (see the module docstring for their constraints)
SUPPORTED_OPS = (
    "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Conv", "AveragePool", "MaxPool",
    "BatchNormalization", "Relu", "LeakyRelu", "PRelu", "Clip", "Abs", "HardSigmoid", "Neg",
    "Max", "Min", "Sum", "Concat", "GlobalAveragePool", "ReduceMean", "ReduceSum", "Squeeze",
    "Unsqueeze", "Shape (of known shapes)",
    "Flatten", "Reshape", "Transpose", "Identity", "Dropout",
    "Gather", "Pad", "Softmax (last node)", "Sigmoid (last node)", "Constant",
    "Where(Greater)", "Round(Mul)", "Where(GreaterOrEqual(MatMul))", "ReduceMax(Gather)",
    "ReduceSum(Mul(Gather))",
)

_FLOAT_TYPES = (TensorProto.FLOAT, TensorProto.DOUBLE)


def _fmt(shape: tuple) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _prod(dims) -> int:
    return int(np.prod([int(d) for d in dims], dtype=np.int64)) if len(dims) else 1


def _opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 1


def _attrs(node: onnx.NodeProto) -> dict:
    out = {}
    for attr in node.attribute:
        value = helper.get_attribute_value(attr)
        out[attr.name] = value.decode() if isinstance(value, bytes) else value
    return out


def _label(node: onnx.NodeProto) -> str:
    return node.name or f"{node.op_type}->{node.output[0] if node.output else '?'}"


def _dims(value_info: onnx.ValueInfoProto) -> tuple | None:
    """A value's dimensions: ints, or None for a symbolic/unknown one; None without a shape."""
    ttype = value_info.type.tensor_type
    if not ttype.HasField("shape"):
        return None
    return tuple(int(d.dim_value) if d.HasField("dim_value") else None for d in ttype.shape.dim)


# ---------------------------------------------------------------------------------------------
# sliding-window geometry shared by Conv, the pools and the exporter's Conv check


def _window_pads(attrs: dict, in_hw: tuple, kernel: tuple, strides: tuple) -> tuple:
    """(top, left, bottom, right) padding from ``pads``/``auto_pad`` as ONNX defines them."""
    auto = attrs.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = tuple(int(p) for p in attrs.get("pads", (0, 0, 0, 0)))
        if len(pads) != 4:
            raise _Unsupported(f"pads={list(pads)} (expected 4 values for a 2-D window)")
        if min(pads) < 0:
            raise _Unsupported(f"negative pads {list(pads)}")
        return pads
    if auto == "VALID":
        return (0, 0, 0, 0)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise _Unsupported(f"auto_pad={auto!r}")
    return same_pads(in_hw, kernel, strides, upper=auto == "SAME_UPPER")


# ---------------------------------------------------------------------------------------------
# the reader


@dataclass
class _Step:
    """What a handler made of one node (or a pattern of ``used`` nodes): chain-IR layers
    and :class:`_Op` graph operations, applied in order to the node's data input."""

    layers: list
    shape: tuple            # full shape afterwards: (batch, ...), batch "N" or 1
    used: int = 1


@dataclass
class _Op:
    """An elementwise graph operation of :class:`verify.graph.Graph` (``leaky_relu``,
    ``clip``, ``abs``) with its parameters, as a step of a handler."""

    op: str
    params: dict
    name: str


class _Reader:
    """Walks the chain of data nodes, turning each into IR layers (see the module docstring).

    Shapes are tracked as full ONNX shapes whose first entry is the batch: ``"N"`` when
    symbolic, or 1. Every problem is recorded, and the walk goes on past it, so that one error
    lists them all.
    """

    def __init__(self, model: onnx.ModelProto, where: str):
        self.model, self.graph, self.where = model, model.graph, where
        self.opset = _opset(model)
        self.consts: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t) for t in self.graph.initializer}
        self.problems: list[tuple[str, str]] = []
        self.layers: list[Layer] = []
        self.final: str | None = None
        self.outputs = {o.name for o in self.graph.output}
        self.consumers: dict[str, int] = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumers[name] = self.consumers.get(name, 0) + 1
        self.inferred = self._inferred_shapes()
        self.nodes = self._fold_constants()

    # -- set-up ---------------------------------------------------------------------------------

    def _inferred_shapes(self) -> dict[str, tuple]:
        """Shapes from ONNX shape inference (used only to go on after a problem)."""
        try:
            inferred = onnx.shape_inference.infer_shapes(self.model, data_prop=True)
        except Exception:        # inference is a convenience here, never required
            return {}
        shapes = {}
        for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
            dims = _dims(vi)
            if dims:
                shapes[vi.name] = dims
        return shapes

    def _fold_constants(self) -> list[onnx.NodeProto]:
        """Evaluate every node whose inputs are all constants; return the other (data) nodes.

        ``Shape`` of a data value is a constant too when ONNX shape inference knows every
        dimension but the batch: the batch counts as 1 there, and every constant computed from
        such a shape is marked *batch-derived* (``Reshape`` then reads a leading 1 as "the
        batch"), so the shape-computation subgraphs exporters write (``Shape → Gather →
        Unsqueeze → Concat → Reshape`` for ``x.view(x.size(0), -1)``) fold into constants."""
        data = []
        self.batch_derived: set[str] = set()
        for node in self.graph.node:
            inputs = [x for x in node.input if x]
            if node.op_type == "Shape" and node.domain in ("", "ai.onnx") and inputs \
                    and inputs[0] not in self.consts and self._fold_shape(node):
                continue
            if not all(x in self.consts for x in inputs):
                data.append(node)
                continue
            if any(x in self.batch_derived for x in inputs):
                self.batch_derived.update(x for x in node.output if x)
            if node.domain not in ("", "ai.onnx"):
                self.problems.append((_label(node), f"{node.domain}::{node.op_type} is not "
                                      "supported (constant input of a custom domain)"))
                continue
            try:
                from onnx.reference import ReferenceEvaluator

                values = ReferenceEvaluator(node, opsets={"": self.opset}).run(
                    None, {x: self.consts[x] for x in inputs})
            except Exception as exc:   # any failure of the reference evaluator
                self.problems.append((_label(node), f"{node.op_type}: cannot evaluate it on its "
                                      f"constant inputs ({first_line(exc)})"))
                continue
            for name, value in zip(node.output, values):
                if name:
                    self.consts[name] = np.asarray(value)
        return data

    def _fold_shape(self, node: onnx.NodeProto) -> bool:
        """Record ``Shape(x)`` as a constant when the shape of ``x`` is known (batch as 1)."""
        dims = None
        for vi in self.graph.input:
            if vi.name == node.input[0]:
                dims = _dims(vi)
        if dims is None:
            dims = self.inferred.get(node.input[0])
        if not dims or any(d is None for d in dims[1:]):
            return False
        full = [1 if dims[0] is None else int(dims[0])] + [int(d) for d in dims[1:]]
        a = _attrs(node)
        start, end = int(a.get("start", 0)), a.get("end")
        value = np.asarray(full[start:None if end is None else int(end)], dtype=np.int64)
        self.consts[node.output[0]] = value
        if start % len(full) == 0 if start < 0 else start == 0:
            self.batch_derived.add(node.output[0])
        return True

    def _input(self) -> tuple[str, tuple] | None:
        inputs = [i for i in self.graph.input if i.name not in self.consts]
        if len(inputs) != 1 or len(self.graph.output) != 1:
            self.problems.append(("graph", f"{len(inputs)} input(s) and {len(self.graph.output)} "
                                  "output(s) (besides initializers); exactly one of each is "
                                  "supported"))
            return None
        inp = inputs[0]
        if inp.type.tensor_type.elem_type not in _FLOAT_TYPES:
            self.problems.append((inp.name, "the input must be a float tensor, not "
                                  f"{TensorProto.DataType.Name(inp.type.tensor_type.elem_type)}"))
            return None
        dims = _dims(inp)
        if dims is None or len(dims) < 2 or dims[0] not in (None, 1):
            shown = "unknown" if dims is None else _fmt(tuple("?" if d is None else d for d in dims))
            self.problems.append((inp.name, f"input shape {shown}: the first dimension must be "
                                  "the batch (symbolic or 1), followed by fixed dimensions"))
            return None
        if any(d is None or d <= 0 for d in dims[1:]):
            self.problems.append((inp.name, f"input shape {_fmt(dims)}: only the batch "
                                  "dimension may be symbolic"))
            return None
        return inp.name, (BATCH if dims[0] is None else 1,) + tuple(dims[1:])

    # -- the walk -------------------------------------------------------------------------------

    def read(self, name: str | None) -> Network:
        start = self._input()
        if start is None:
            raise UnsupportedOperatorError(self.problems, SUPPORTED_OPS)
        cur, first = start
        input_shape = first[1:]
        g = self.ir = Graph(input_shape, input_name=cur)
        self.used_names = {cur}
        # ONNX value -> (graph value or None after a problem, full shape or None)
        self.values: dict[str, tuple] = {cur: (cur, first)}
        self.last_layer: dict[str, object] = {}     # graph value -> the layer that made it
        self.affine_node: dict[str, object] = {}    # ONNX value -> the affine node that made it
        self.current: str | None = None
        i = 0
        while i < len(self.nodes):
            node = self.nodes[i]
            op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
            handler = _HANDLERS.get(op)
            data = [x for x in node.input if x and x not in self.consts]
            ins = [self.values.get(x, (None, None)) for x in data]
            step = None
            if op in _MERGES and len(data) >= 2:
                if all(s is not None for _, s in ins):
                    try:
                        value, shape = _MERGES[op](self, node, ins)
                        self.values[node.output[0]] = (value, shape)
                        i += 1
                        continue
                    except _Unsupported as exc:
                        self.problems.append((_label(node), f"{op}: {exc}"))
            elif handler is None:
                self.problems.append((_label(node), f"{op} is not supported"))
            elif len(data) != 1:
                why = ("has no computed input" if not data else
                       f"takes {len(data)} computed inputs ({', '.join(map(repr, data))}); "
                       f"{op} is supported with one computed input and constants")
                self.problems.append((_label(node), f"{op}: {why}"))
            elif ins[0][1] is not None:
                self.current = ins[0][0]
                try:
                    step = handler(self, node, i, ins[0][1])
                except _Unsupported as exc:
                    self.problems.append((_label(node), f"{op}: {exc}"))
            if step is None:       # go on past the problem with the inferred shape, if any
                for out in node.output:
                    if out:
                        self.values[out] = (None, self._shape_of(out))
                i += 1
                continue
            last = self.nodes[i + step.used - 1]
            self.values[last.output[0]] = (self._emit(step, ins[0][0], ins[0][1], last.output[0]),
                                           step.shape)
            i += step.used
        out = self.graph.output[0].name
        final_value = self.values.get(out, (None, None))[0]
        if final_value is None and not self.problems:
            self.problems.append((out, f"the graph output {out!r} is not computed from the input"))
        if self.problems:
            raise UnsupportedOperatorError(self.problems, SUPPORTED_OPS)
        meta = {p.key: p.value for p in self.model.metadata_props}
        final = self.final or meta.get("verify.output_activation", "linear")
        if final not in ("linear", "sigmoid", "softmax"):
            final = "linear"
        net_name = name or meta.get("verify.network") or self.graph.name or "onnx"
        info = {"format": "onnx", "opset": self.opset, "source": self.where}
        if self.model.producer_name:
            info["producer"] = self.model.producer_name
        g.output = final_value
        try:
            return g.to_network(net_name, final, info)
        except InvalidInputError as exc:
            raise UnsupportedOperatorError([("graph", str(exc))], SUPPORTED_OPS) from None

    def fresh(self, base: str) -> str:
        """A graph value name not used yet."""
        name, k = base or "v", 1
        while name in self.used_names:
            k += 1
            name = f"{base}#{k}"
        self.used_names.add(name)
        return name

    def _emit(self, step: _Step, value: str | None, shape: tuple, out: str) -> str | None:
        """Add a handler's layers and operations to the graph after ``value``; returns the
        graph value of the result (None after an earlier problem)."""
        if value is None:
            return None
        g = self.ir
        self.affine_node.pop(out, None)
        for item in step.layers:
            nm = self.fresh(getattr(item, "name", "") or out)
            if isinstance(item, Affine):
                value = g.affine(nm, value, item.weight, item.bias, item.out_shape, item.kind, item.conv)
                self.affine_node[out] = g.nodes[-1]
            elif isinstance(item, ReLU):
                value = g.relu(nm, value)
            elif isinstance(item, MaxPool):
                value = g.maxpool(nm, value, item.index, item.out_shape)
            elif isinstance(item, _Op):
                value = getattr(g, item.op)(nm, value, **item.params)
            else:
                value = g.layer(nm, value, item)
            self.last_layer[value] = item
            if not isinstance(item, Affine):
                self.affine_node.pop(out, None)
        if tuple(g.shape(value)) != _per_sample(step.shape):
            value = g.reshape(self.fresh(out), value, _per_sample(step.shape))
            self.affine_node.pop(out, None)
        return value

    def fold_target(self, value: str):
        """The affine graph node that computes the ONNX value ``value``, when a constant added
        to it can become its bias (it has no other consumer), else None."""
        if value in self.outputs or self.consumers.get(value, 0) != 1:
            return None
        return self.affine_node.get(value)

    def _shape_of(self, name: str) -> tuple | None:
        dims = self.inferred.get(name)
        if not dims or dims[0] not in (None, 1) or any(d is None for d in dims[1:]):
            return None
        return (BATCH if dims[0] is None else 1,) + tuple(dims[1:])

    # -- helpers for handlers -------------------------------------------------------------------

    def const(self, node: onnx.NodeProto, k: int, what: str) -> np.ndarray:
        if len(node.input) <= k or not node.input[k]:
            raise _Unsupported(f"missing {what}")
        name = node.input[k]
        if name not in self.consts:
            raise _Unsupported(f"its {what} ({name!r}) must be a constant")
        return self.consts[name]

    def optional_const(self, node: onnx.NodeProto, k: int, what: str) -> np.ndarray | None:
        if len(node.input) <= k or not node.input[k]:
            return None
        return self.const(node, k, what)

    def data_first(self, node: onnx.NodeProto) -> None:
        if node.input[0] in self.consts:
            raise _Unsupported("the data must be the first input")

    def only_first_output(self, node: onnx.NodeProto) -> None:
        for name in node.output[1:]:
            if name and (self.consumers.get(name) or name in self.outputs):
                raise _Unsupported(f"its extra output {name!r} is used (only the first output "
                                   "is supported)")

    def follower(self, i: int, op: str, value: str) -> onnx.NodeProto | None:
        """The next data node if it is ``op`` taking ``value`` as its first input and is the
        only consumer of ``value`` (so two nodes form a pattern)."""
        if i + 1 >= len(self.nodes) or value in self.outputs or self.consumers.get(value, 0) != 1:
            return None
        nxt = self.nodes[i + 1]
        if nxt.op_type != op or nxt.domain not in ("", "ai.onnx") or not nxt.input or nxt.input[0] != value:
            return None
        return nxt

    def integer_input(self) -> bool:
        """True when the current value is integer-valued (after Binarize/Quantize/SignBlock)."""
        return self.current is not None and isinstance(
            self.last_layer.get(self.current), (Binarize, Quantize, SignBlock))


def _per_sample(shape: tuple) -> tuple:
    return tuple(int(d) for d in shape[1:])


def _broadcast_const(c: np.ndarray, shape: tuple, what: str = "constant") -> np.ndarray:
    """``c`` broadcast against a full data shape, as a flat per-sample float64 vector; the
    constant may neither change the data's shape nor vary along the batch."""
    target = (1,) + _per_sample(shape)
    try:
        out = np.broadcast_shapes(target, np.shape(c))
    except ValueError:
        raise _Unsupported(f"{what} of shape {_fmt(np.shape(c))} does not broadcast to the data "
                           f"{_fmt(shape)}") from None
    if out != target:
        raise _Unsupported(f"{what} of shape {_fmt(np.shape(c))} would change the data shape "
                           f"{_fmt(shape)} (or vary along the batch)")
    return np.broadcast_to(np.asarray(c, np.float64), target).reshape(-1)


def _float_const(c: np.ndarray, what: str) -> np.ndarray:
    if not (np.issubdtype(c.dtype, np.floating) or np.issubdtype(c.dtype, np.integer)):
        raise _Unsupported(f"{what} has dtype {c.dtype}")
    return np.asarray(c, np.float64)


def _scalar(c: np.ndarray, what: str) -> float:
    if np.size(c) != 1:
        raise _Unsupported(f"{what} must be a scalar, got shape {_fmt(np.shape(c))}")
    return float(np.asarray(c).reshape(-1)[0])


def _check_where_pm1(r: _Reader, where: onnx.NodeProto, shape: tuple) -> None:
    """``Where(cond, 1, -1)`` with constant branches that do not change the shape."""
    if len(where.input) != 3:
        raise _Unsupported("Where needs three inputs")
    one = _broadcast_const(r.const(where, 1, "Where value for true"), shape, "Where value")
    minus = _broadcast_const(r.const(where, 2, "Where value for false"), shape, "Where value")
    if not (np.all(one == 1.0) and np.all(minus == -1.0)):
        raise _Unsupported("Where must choose +1 (true) or -1 (false)")


def _affine_kind(r: _Reader, weight: np.ndarray) -> str:
    """``binary_dense`` for ±1 weights on integer-valued data (BNN logits), else ``dense``."""
    if r.integer_input() and np.all(np.isin(weight, (-1.0, 1.0))):
        return "binary_dense"
    return "dense"


# -- handlers: (reader, node, index, full input shape) -> _Step ----------------------------------

def _gemm(r: _Reader, node, i, shape):
    r.data_first(node)
    a = _attrs(node)
    if a.get("transA", 0):
        raise _Unsupported("transA=1 (the data must not be transposed)")
    if len(shape) != 2:
        raise _Unsupported(f"needs data of shape (batch, features), got {_fmt(shape)}; add a Flatten")
    b = _float_const(r.const(node, 1, "input B"), "input B")
    if b.ndim != 2:
        raise _Unsupported(f"input B of shape {_fmt(b.shape)} is not a matrix")
    w = b if a.get("transB", 0) else b.T
    n = shape[1]
    if w.shape[1] != n:
        raise _Unsupported(f"weights {_fmt(b.shape)} (transB={a.get('transB', 0)}) do not fit "
                           f"{n} inputs")
    w = float(np.float32(a.get("alpha", 1.0))) * w
    c = r.optional_const(node, 2, "input C")
    out = (shape[0], w.shape[0])
    bias = np.zeros(w.shape[0])
    if c is not None:
        beta = float(np.float32(a.get("beta", 1.0)))
        bias = beta * _broadcast_const(_float_const(c, "input C"), out, "input C")
    w = np.ascontiguousarray(w)
    return _Step([Affine(w, bias, out[1:], _label(node), _affine_kind(r, w))], out)


def _matmul(r: _Reader, node, i, shape):
    r.data_first(node)
    w = _float_const(r.const(node, 1, "weight matrix"), "weight matrix")
    s = _per_sample(shape)
    if w.ndim != 2:
        raise _Unsupported(f"the constant operand must be a matrix, got shape {_fmt(w.shape)}")
    if not s or s[-1] != w.shape[0]:
        raise _Unsupported(f"data {_fmt(shape)} does not fit the matrix {_fmt(w.shape)}")
    out = (shape[0],) + s[:-1] + (w.shape[1],)
    ge = r.follower(i, "GreaterOrEqual", node.output[0])
    if ge is not None:
        return _sign_block(r, node, i, ge, w, shape, out)
    rows = _prod(s[:-1])
    if rows == 1:
        weight = np.ascontiguousarray(w.T)
        kind = _affine_kind(r, weight)
    else:
        weight = sp.kron(sp.identity(rows, format="csr"), sp.csr_matrix(w.T), format="csr")
        kind = "dense"
    return _Step([Affine(weight, np.zeros(weight.shape[0]), out[1:], _label(node), kind)], out)


def _sign_block(r: _Reader, node, i, ge, w, shape, out):
    where = r.follower(i + 1, "Where", ge.output[0])
    if where is None:
        raise _Unsupported("MatMul -> GreaterOrEqual must be followed by Where(..., 1, -1) (a "
                           "binarized neuron block)")
    if len(shape) != 2:
        raise _Unsupported(f"a binarized block needs data of shape (batch, n), got {_fmt(shape)}")
    if not r.integer_input():
        raise _Unsupported("a binarized block (MatMul -> GreaterOrEqual -> Where) needs "
                           "integer-valued inputs: after Binarize, Quantize or another block")
    if not np.all(np.isin(w, (-1.0, 0.0, 1.0))):
        raise _Unsupported("a binarized block needs weights in {-1, 0, 1}")
    t = _broadcast_const(_float_const(r.const(ge, 1, "threshold"), "threshold"), out, "threshold")
    if not np.all(t == np.round(t)):
        raise _Unsupported("a binarized block needs integer thresholds")
    _check_where_pm1(r, where, out)
    block = SignBlock(w.T.astype(np.int8), t.astype(np.int64), out[1:], _label(node))
    return _Step([block], out, used=3)


def _elementwise(r: _Reader, node, i, shape):
    op = node.op_type
    data_pos = 0 if node.input[0] not in r.consts else 1
    c = _float_const(r.const(node, 1 - data_pos, "constant operand"), "constant operand")
    s = _per_sample(shape)
    n = _prod(s)
    name = _label(node)
    if op == "Mul":
        rnd = r.follower(i, "Round", node.output[0])
        if rnd is not None:
            levels = _scalar(c, "the Mul before Round (8-bit input)")
            if levels <= 0 or levels != round(levels):
                raise _Unsupported(f"Round(Mul(x, {levels})) needs a positive integer scale")
            return _Step([Quantize(int(levels), s, name)], shape, used=2)
    v = _broadcast_const(c, shape)
    if op == "Add" or (op == "Sub" and data_pos == 0):
        shift = -v if op == "Sub" else v
        target = r.fold_target(node.input[data_pos])
        if target is not None:              # a bias: fold it into the affine layer before
            target.params["bias"] = target.params["bias"] + shift
            return _Step([], shape)
        return _Step([Affine(sp.identity(n, format="csr"), shift, s, name, "elementwise")], shape)
    if op == "Sub":                         # constant - data
        return _Step([Affine(-sp.identity(n, format="csr"), v, s, name, "elementwise")], shape)
    if op == "Div":
        if data_pos != 0:
            raise _Unsupported("only data / constant (a constant divided by the data is not affine)")
        if np.any(v == 0):
            raise _Unsupported("division by zero in the constant")
        v = 1.0 / v
    return _Step([Affine(sp.diags(v, format="csr"), np.zeros(n), s, name, "elementwise")], shape)


def _nchw(shape: tuple, what: str) -> tuple:
    if len(shape) != 4:
        raise _Unsupported(f"only 2-D {what}s on NCHW data are supported, got data {_fmt(shape)}")
    return _per_sample(shape)


def _window_attrs(a: dict, dilations: bool = False, ceil_mode: bool = False) -> None:
    if not dilations and any(d != 1 for d in a.get("dilations", (1, 1))):
        raise _Unsupported(f"dilations={list(a['dilations'])} (only 1)")
    if not ceil_mode and a.get("ceil_mode", 0):
        raise _Unsupported("ceil_mode=1 (only 0)")


def _dilated(k: np.ndarray, dilations: tuple) -> np.ndarray:
    """A kernel (F, C, kh, kw) with ``d − 1`` zeros between its taps: the dilated convolution
    is the plain convolution with this kernel."""
    dh, dw = dilations
    if dh == dw == 1:
        return k
    F, C, kh, kw = k.shape
    out = np.zeros((F, C, (kh - 1) * dh + 1, (kw - 1) * dw + 1))
    out[:, :, ::dh, ::dw] = k
    return out


def _conv(r: _Reader, node, i, shape):
    r.data_first(node)
    a = _attrs(node)
    chw = _nchw(shape, "convolution")
    _window_attrs(a, dilations=True)
    group = int(a.get("group", 1))
    dil = tuple(int(d) for d in a.get("dilations", (1, 1)))
    if len(dil) != 2 or min(dil) < 1:
        raise _Unsupported(f"dilations={list(dil)}")
    k = _float_const(r.const(node, 1, "kernel"), "kernel")
    if group < 1 or chw[0] % group or (k.ndim == 4 and k.shape[0] % group):
        raise _Unsupported(f"group={group} does not divide {chw[0]} channels and the filters")
    if k.ndim != 4 or k.shape[1] * group != chw[0]:
        raise _Unsupported(f"kernel {_fmt(k.shape)} does not fit data {_fmt(shape)} "
                           f"(group={group})")
    if "kernel_shape" in a and tuple(a["kernel_shape"]) != k.shape[2:]:
        raise _Unsupported(f"kernel_shape={list(a['kernel_shape'])} differs from the kernel {_fmt(k.shape)}")
    strides = tuple(int(s) for s in a.get("strides", (1, 1)))
    kd = _dilated(k, dil)
    pads = _window_pads(a, chw[1:], kd.shape[2:], strides)
    if group == 1:
        weight, out = conv_matrix(kd, chw, strides, pads, "CHW")
    else:
        # block-diagonal: group g maps its channel slice to its filter slice (CHW: contiguous)
        fg, cg = k.shape[0] // group, chw[0] // group
        blocks = [conv_matrix(kd[g * fg:(g + 1) * fg], (cg,) + tuple(chw[1:]), strides, pads, "CHW")
                  for g in range(group)]
        weight = sp.block_diag([blk for blk, _ in blocks], format="csr")
        out = (k.shape[0],) + tuple(blocks[0][1][1:])
    if dil != (1, 1):
        weight.eliminate_zeros()
    b = r.optional_const(node, 2, "bias")
    bias = np.zeros(k.shape[0]) if b is None else _float_const(b, "bias").reshape(-1)
    if bias.size != k.shape[0]:
        raise _Unsupported(f"bias of {bias.size} values for {k.shape[0]} filters")
    conv = None
    if group == 1:       # the geometry an exporter can write as a Conv again
        conv = {"kernel": kd.transpose(2, 3, 1, 0).copy(), "strides": strides,
                "padding": ((pads[0], pads[2]), (pads[1], pads[3])),
                "input_shape": (chw[1], chw[2], chw[0]), "layout": "CHW"}
    layer = Affine(weight, np.repeat(bias, out[1] * out[2]), out, _label(node), "conv2d", conv)
    return _Step([layer], (shape[0],) + out)


def _ceil_pads(chw: tuple, kernel: tuple, strides: tuple, pads: tuple) -> tuple:
    """Pads with ``ceil_mode=1``: extra padding at the bottom/right so that the output has
    ``ceil((size + pads − kernel)/stride) + 1`` rows/columns, less one where the last window
    would start in the bottom/right padding (as PyTorch and onnxruntime count)."""
    padded = list(pads)
    for d, (size, k, s) in enumerate(zip(chw[1:], kernel, strides)):
        begin, end = padded[d], padded[d + 2]
        out = -(-(size + begin + end - k) // s) + 1
        if (out - 1) * s >= size + begin:
            out -= 1
        padded[d + 2] = max(end, (out - 1) * s + k - size - begin)
    return tuple(padded)


def _pool_geometry(node, shape, ceil_ok: bool = False):
    a = _attrs(node)
    chw = _nchw(shape, "pool")
    _window_attrs(a, ceil_mode=ceil_ok)
    kernel = tuple(int(k) for k in a.get("kernel_shape", ()))
    if len(kernel) != 2:
        raise _Unsupported(f"kernel_shape={list(kernel)} (expected 2 values)")
    strides = tuple(int(s) for s in a.get("strides", (1, 1)))
    pads = _window_pads(a, chw[1:], kernel, strides)
    if a.get("ceil_mode", 0):
        pads = _ceil_pads(chw, kernel, strides, pads)
    out, idx = pool_index(chw, kernel, strides, pads)
    return a, chw, out, idx


def _avgpool(r: _Reader, node, i, shape):
    a, chw, out, idx = _pool_geometry(node, shape)
    counts = np.full(idx.shape[0], idx.shape[1]) if a.get("count_include_pad", 0) else None
    weight = average_matrix(idx, _prod(chw), counts)
    return _Step([Affine(weight, np.zeros(idx.shape[0]), out, _label(node), "avgpool")],
                 (shape[0],) + out)


def _maxpool(r: _Reader, node, i, shape):
    r.only_first_output(node)
    a, chw, out, idx = _pool_geometry(node, shape, ceil_ok=True)
    if np.any((idx >= 0).sum(axis=1) == 0):
        raise _Unsupported("a window lies entirely in the padding")
    return _Step([MaxPool(idx, _prod(chw), out, _label(node))], (shape[0],) + out)


def _batchnorm(r: _Reader, node, i, shape):
    r.data_first(node)
    r.only_first_output(node)
    a = _attrs(node)
    if a.get("training_mode", 0):
        raise _Unsupported("training_mode=1 (only inference)")
    if not a.get("spatial", 1):
        raise _Unsupported("spatial=0")
    s = _per_sample(shape)
    if not s:
        raise _Unsupported(f"data {_fmt(shape)} has no channel axis")
    parts = [_float_const(r.const(node, k, what), what).reshape(-1)
             for k, what in enumerate(("scale", "bias", "mean", "variance"), start=1)]
    if any(p.size != s[0] for p in parts):
        raise _Unsupported(f"parameters of {[p.size for p in parts]} values for {s[0]} channels")
    gamma, beta, mean, var = parts
    scale = gamma / np.sqrt(var + float(np.float32(a.get("epsilon", 1e-5))))
    reps = _prod(s[1:])
    diag = sp.diags(np.repeat(scale, reps), format="csr")
    return _Step([Affine(diag, np.repeat(beta - mean * scale, reps), s, _label(node), "batchnorm")], shape)


def _relu(r: _Reader, node, i, shape):
    return _Step([ReLU(_per_sample(shape), _label(node))], shape)


def _identity(r: _Reader, node, i, shape):
    return _Step([], shape)


def _dropout(r: _Reader, node, i, shape):
    r.data_first(node)
    r.only_first_output(node)
    training = r.optional_const(node, 2, "training_mode")
    if training is not None and bool(np.asarray(training).reshape(-1)[0]):
        raise _Unsupported("training_mode=true")
    return _Step([], shape)


def _final(activation: str):
    def handler(r: _Reader, node, i, shape):
        if i != len(r.nodes) - 1 or node.output[0] not in r.outputs:
            raise _Unsupported(f"{node.op_type} only as the last node (the graph output)")
        if activation == "softmax":
            axis = _attrs(node).get("axis", -1 if r.opset >= 13 else 1)
            axis = axis + len(shape) if axis < 0 else axis
            if axis != len(shape) - 1 and not (r.opset < 13 and axis == 1):
                raise _Unsupported(f"axis={axis} (only over the last axis)")
        r.final = activation
        return _Step([], shape)
    return handler


def _batch_kept(shape: tuple, dims: list, what: str) -> tuple:
    """The full shape after reshaping ``shape`` to ``dims`` (0s already copied; one -1 allowed),
    which must keep the batch first."""
    n = _prod(shape[1:])
    if dims.count(-1) > 1:
        raise _Unsupported(f"{what} has several -1 entries")
    if any(d != -1 and d != BATCH and d < 0 for d in dims):
        raise _Unsupported(f"{what} has negative entries")
    if shape[0] == BATCH:
        if not dims or dims[0] not in (BATCH, -1):
            raise _Unsupported(f"{what} {dims} fixes the (symbolic) batch dimension")
        rest = [int(d) for d in dims[1:]]
        if dims[0] == -1 or -1 not in rest:
            if _prod(rest) != n:
                raise _Unsupported(f"{what} {dims} does not keep the {n} values per sample")
        else:
            known = _prod([d for d in rest if d != -1])
            if known == 0 or n % known:
                raise _Unsupported(f"{what} {dims} does not fit {n} values per sample")
            rest[rest.index(-1)] = n // known
        return (BATCH,) + tuple(rest)
    dims = [int(d) for d in dims]
    if -1 in dims:
        known = _prod([d for d in dims if d != -1])
        if known == 0 or n % known:
            raise _Unsupported(f"{what} {dims} does not fit {n} values")
        dims[dims.index(-1)] = n // known
    if _prod(dims) != n or not dims or dims[0] != 1:
        raise _Unsupported(f"{what} {dims} does not keep the batch of 1 first")
    return tuple(dims)


def _flatten(r: _Reader, node, i, shape):
    axis = _attrs(node).get("axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    if axis == 0:
        if shape[0] != 1:
            raise _Unsupported("axis=0 merges the batch dimension into the data")
        return _Step([], (1, _prod(shape[1:])))
    if _prod(shape[1:axis]) != 1:
        raise _Unsupported(f"axis={axis} merges data dimensions into the batch")
    return _Step([], (shape[0], _prod(shape[axis:])))


def _reshape(r: _Reader, node, i, shape):
    r.data_first(node)
    target = [int(d) for d in np.asarray(r.const(node, 1, "shape")).reshape(-1)]
    if node.input[1] in r.batch_derived and shape[0] == BATCH and target and target[0] == 1:
        target[0] = 0          # computed from Shape(x): its leading 1 is the batch
    dims: list = []
    for k, d in enumerate(target):
        if d == 0 and not _attrs(node).get("allowzero", 0):
            if k >= len(shape):
                raise _Unsupported(f"shape {target} copies dimension {k} the data does not have")
            dims.append(shape[k])
        else:
            dims.append(d)
    return _Step([], _batch_kept(shape, dims, "shape"))


def _selection(src: np.ndarray, n_in: int) -> sp.csr_matrix:
    """Rows picking ``x[src[i]]`` (rows with ``src < 0`` stay empty)."""
    src = np.asarray(src).reshape(-1)
    keep = src >= 0
    rows = np.flatnonzero(keep)
    return sp.csr_matrix((np.ones(rows.size), (rows, src[keep])), shape=(src.size, n_in))


def _transpose(r: _Reader, node, i, shape):
    perm = list(_attrs(node).get("perm", range(len(shape) - 1, -1, -1)))
    if sorted(perm) != list(range(len(shape))):
        raise _Unsupported(f"perm={perm} does not fit data {_fmt(shape)}")
    if perm[0] != 0:
        raise _Unsupported(f"perm={perm} moves the batch dimension")
    inner = [p - 1 for p in perm[1:]]
    s = _per_sample(shape)
    out = (shape[0],) + tuple(s[p] for p in inner)
    if inner == sorted(inner):
        return _Step([], out)
    src = np.arange(_prod(s)).reshape(s).transpose(inner)
    weight = _selection(src, _prod(s))
    return _Step([Affine(weight, np.zeros(src.size), out[1:], _label(node), "transpose")], out)


def _int_indices(c: np.ndarray, size: int, what: str) -> np.ndarray:
    if not np.issubdtype(np.asarray(c).dtype, np.integer):
        raise _Unsupported(f"{what} must be integers")
    idx = np.asarray(c, np.int64)
    idx = np.where(idx < 0, idx + size, idx)
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise _Unsupported(f"{what} out of range for a dimension of {size}")
    return idx


def _gather(r: _Reader, node, i, shape, pad: tuple | None = None):
    """Gather of constant indices: a selection, or with ReduceMax after it a MaxPool.

    ``pad`` = (n_before, n_real): the data was padded with -inf on its last axis by the
    Pad just before (the exporter's max-pool pattern); indices into the padding become -1.
    """
    r.data_first(node)
    axis = _attrs(node).get("axis", 0)
    axis = axis + len(shape) if axis < 0 else axis
    if axis == 0:
        raise _Unsupported("gathers along the batch axis")
    if axis >= len(shape):
        raise _Unsupported(f"axis={axis} for data {_fmt(shape)}")
    s = _per_sample(shape)
    idx = _int_indices(r.const(node, 1, "indices"), s[axis - 1], "indices")
    reduce = r.follower(i, "ReduceMax", node.output[0])
    if reduce is not None and len(shape) == 2 and idx.ndim == 2:
        a = _attrs(reduce)
        axes = a.get("axes")
        if len(reduce.input) > 1 and reduce.input[1]:
            axes = np.asarray(r.const(reduce, 1, "axes")).reshape(-1).tolist()
        if axes is None or [x % 3 for x in axes] != [2]:
            raise _Unsupported(f"Gather -> ReduceMax must reduce axis 2 (the window), not {axes}")
        n_in = s[0]
        if pad is not None:
            before, n_in = pad
            idx = idx - before
            idx = np.where((idx >= 0) & (idx < n_in), idx, -1)
        if np.any((idx >= 0).sum(axis=1) == 0):
            raise _Unsupported("a max-pool window lies entirely in the padding")
        out = (shape[0], idx.shape[0]) + ((1,) if a.get("keepdims", 1) else ())
        return _Step([MaxPool(idx, n_in, out[1:], _label(node))], out, used=2)
    mul = r.follower(i, "Mul", node.output[0])
    if mul is not None and pad is None and len(shape) == 2 and idx.ndim == 2 and axis == 1:
        total = r.follower(i + 1, "ReduceSum", mul.output[0])
        if total is not None:
            return _sparse_rows(r, node, mul, total, idx, shape)
    if pad is not None:
        raise _Unsupported("Pad with -inf is supported only before Gather -> ReduceMax (max pool)")
    src = np.take(np.arange(_prod(s)).reshape(s), idx, axis=axis - 1)
    out = (shape[0],) + src.shape
    return _Step([Affine(_selection(src, _prod(s)), np.zeros(src.size), out[1:], _label(node),
                         "gather")], out)


def _sparse_rows(r: _Reader, gather, mul, total, idx: np.ndarray, shape: tuple) -> _Step:
    """``ReduceSum(Mul(Gather(x, I, axis=1), V), axes=[2], keepdims=0)``: the sparse matrix
    with row i holding ``V[i, j]`` at column ``I[i, j]`` (the writer's ELLPACK form)."""
    if mul.input[1] not in r.consts:
        raise _Unsupported("Gather -> Mul -> ReduceSum needs constant weights")
    vals = _float_const(r.consts[mul.input[1]], "weights")
    if vals.shape != idx.shape:
        raise _Unsupported(f"Gather -> Mul -> ReduceSum: weights {_fmt(vals.shape)} do not match "
                           f"the index table {_fmt(idx.shape)}")
    a = _attrs(total)
    axes = a.get("axes")
    if len(total.input) > 1 and total.input[1]:
        axes = np.asarray(r.const(total, 1, "axes")).reshape(-1).tolist()
    if axes is None or [x % 3 for x in axes] != [2] or a.get("keepdims", 1):
        raise _Unsupported("Gather -> Mul -> ReduceSum must sum axis 2 with keepdims=0")
    rows = np.repeat(np.arange(idx.shape[0]), idx.shape[1])
    weight = sp.csr_matrix((vals.reshape(-1), (rows, idx.reshape(-1))), shape=(idx.shape[0], shape[1]))
    weight.sum_duplicates()
    weight.eliminate_zeros()
    out = (shape[0], idx.shape[0])
    return _Step([Affine(weight, np.zeros(idx.shape[0]), out[1:], _label(gather), "sparse")], out,
                 used=3)


def _pad(r: _Reader, node, i, shape):
    r.data_first(node)
    a = _attrs(node)
    if a.get("mode", "constant") != "constant":
        raise _Unsupported(f"mode={a['mode']!r} (only constant)")
    if r.opset < 11:
        pads, value = list(a.get("pads", ())), float(a.get("value", 0.0))
        axes = list(range(len(shape)))
    else:
        pads = [int(p) for p in np.asarray(r.const(node, 1, "pads")).reshape(-1)]
        v = r.optional_const(node, 2, "constant_value")
        value = 0.0 if v is None else _scalar(v, "constant_value")
        ax = r.optional_const(node, 3, "axes")
        axes = (list(range(len(shape))) if ax is None
                else [int(x) % len(shape) for x in np.asarray(ax).reshape(-1)])
    if len(pads) != 2 * len(axes):
        raise _Unsupported(f"pads {pads} do not fit {len(axes)} axes")
    before = dict(zip(axes, pads[:len(axes)]))
    after = dict(zip(axes, pads[len(axes):]))
    if before.get(0, 0) or after.get(0, 0):
        raise _Unsupported("pads the batch axis")
    s = _per_sample(shape)
    if np.isneginf(value):
        gather = r.follower(i, "Gather", node.output[0])
        if gather is None or len(shape) != 2 or before.get(1, 0) < 0 or after.get(1, 0) < 0:
            raise _Unsupported("Pad with -inf only on (batch, n) data before Gather -> ReduceMax "
                               "(the max-pool pattern)")
        padded = (shape[0], s[0] + before.get(1, 0) + after.get(1, 0))
        step = _gather(r, gather, i + 1, padded, pad=(before.get(1, 0), s[0]))
        return _Step(step.layers, step.shape, used=1 + step.used)
    if not np.isfinite(value):
        raise _Unsupported(f"padding value {value}")
    new = tuple(d + before.get(k + 1, 0) + after.get(k + 1, 0) for k, d in enumerate(s))
    if min(new, default=1) <= 0:
        raise _Unsupported(f"pads {pads} leave nothing of the data {_fmt(shape)}")
    grids = np.meshgrid(*[np.arange(d) - before.get(k + 1, 0) for k, d in enumerate(new)],
                        indexing="ij")
    valid = np.ones(new, bool)
    for k, g in enumerate(grids):
        valid &= (g >= 0) & (g < s[k])
    src = np.zeros(new, np.int64)
    for k, g in enumerate(grids):
        src = src * s[k] + np.clip(g, 0, s[k] - 1)
    src = np.where(valid, src, -1)
    bias = np.where(valid, 0.0, value).reshape(-1)
    return _Step([Affine(_selection(src, _prod(s)), bias, new, _label(node), "pad")], (shape[0],) + new)


def _greater(r: _Reader, node, i, shape):
    r.data_first(node)
    where = r.follower(i, "Where", node.output[0])
    if where is None:
        raise _Unsupported("only as Where(Greater(x, c), 1, -1) (input binarisation)")
    c = _float_const(r.const(node, 1, "threshold"), "threshold")
    _broadcast_const(c, shape, "threshold")
    threshold = _scalar(c, "the threshold of Greater")
    _check_where_pm1(r, where, shape)
    return _Step([Binarize(threshold, _per_sample(shape), _label(node))], shape, used=2)


# -- piecewise-linear activations (graph operations) --------------------------------------------

#: float32's largest value: PyTorch writes it (or its negative) for a missing Clip bound
_FLT_MAX = float(np.finfo(np.float32).max)


def _leaky(r: _Reader, node, i, shape):
    alpha = float(np.float32(_attrs(node).get("alpha", 0.01)))
    return _Step([_Op("leaky_relu", {"alpha": alpha}, _label(node))], shape)


def _prelu(r: _Reader, node, i, shape):
    r.data_first(node)
    slope = _broadcast_const(_float_const(r.const(node, 1, "slope"), "slope"), shape, "slope")
    return _Step([_Op("leaky_relu", {"alpha": slope}, _label(node))], shape)


def _bound(c, shape, what: str) -> np.ndarray:
    v = _broadcast_const(_float_const(c, what), shape, what)
    return np.where(v >= _FLT_MAX, np.inf, np.where(v <= -_FLT_MAX, -np.inf, v))


def _clip(r: _Reader, node, i, shape):
    r.data_first(node)
    n = _prod(shape[1:])
    if r.opset < 11:
        a = _attrs(node)
        lo = _bound(np.array(a.get("min", -np.inf)), shape, "min")
        hi = _bound(np.array(a.get("max", np.inf)), shape, "max")
    else:
        lo_c, hi_c = r.optional_const(node, 1, "min"), r.optional_const(node, 2, "max")
        lo = np.full(n, -np.inf) if lo_c is None else _bound(np.asarray(_scalar(lo_c, "min")), shape, "min")
        hi = np.full(n, np.inf) if hi_c is None else _bound(np.asarray(_scalar(hi_c, "max")), shape, "max")
    if np.any(lo > hi):
        raise _Unsupported("min above max")
    return _Step([_Op("clip", {"lo": lo, "hi": hi}, _label(node))], shape)


def _max_min_const(r: _Reader, node, i, shape):
    """``Max``/``Min`` of the data and constants: a clip from below / above."""
    consts = [_float_const(r.consts[x], "constant operand") for x in node.input if x and x in r.consts]
    if not consts:
        raise _Unsupported("needs a constant operand")
    bounds = [_broadcast_const(c, shape) for c in consts]
    if node.op_type == "Max":
        return _Step([_Op("clip", {"lo": np.max(bounds, axis=0)}, _label(node))], shape)
    return _Step([_Op("clip", {"hi": np.min(bounds, axis=0)}, _label(node))], shape)


def _abs(r: _Reader, node, i, shape):
    return _Step([_Op("abs", {}, _label(node))], shape)


def _neg(r: _Reader, node, i, shape):
    n = _prod(shape[1:])
    return _Step([Affine(-sp.identity(n, format="csr"), np.zeros(n), _per_sample(shape),
                         _label(node), "elementwise")], shape)


def _hard_sigmoid(r: _Reader, node, i, shape):
    """``max(0, min(1, α·x + β))``: an elementwise affine map, then a clip to [0, 1]."""
    a = _attrs(node)
    alpha, beta = float(np.float32(a.get("alpha", 0.2))), float(np.float32(a.get("beta", 0.5)))
    n = _prod(shape[1:])
    scale = Affine(alpha * sp.identity(n, format="csr"), np.full(n, beta), _per_sample(shape),
                   _label(node) + ".affine", "elementwise")
    return _Step([scale, _Op("clip", {"lo": 0.0, "hi": 1.0}, _label(node))], shape)


# -- reductions and shape changes --------------------------------------------------------------

def _axes(r: _Reader, node, rank: int, first_input_opset: int) -> list | None:
    """The ``axes`` of a node (an attribute before ``first_input_opset``, else input 1),
    made non-negative for data of ``rank`` axes; None when absent."""
    if r.opset >= first_input_opset:
        c = r.optional_const(node, 1, "axes")
        axes = None if c is None else [int(x) for x in np.asarray(c).reshape(-1)]
    else:
        axes = _attrs(node).get("axes")
        axes = None if axes is None else [int(x) for x in axes]
    if axes is None:
        return None
    if any(not -rank <= x < rank for x in axes):
        raise _Unsupported(f"axes {axes} out of range for {rank} axes")
    return sorted({x + rank if x < 0 else x for x in axes})


def _reduce(r: _Reader, node, i, shape):
    """``ReduceMean``/``ReduceSum`` over non-batch axes: a sparse averaging (summing) map."""
    r.data_first(node)
    a = _attrs(node)
    axes = _axes(r, node, len(shape), 18 if node.op_type == "ReduceMean" else 13)
    if axes is None:
        if a.get("noop_with_empty_axes", 0):
            return _Step([], shape)
        axes = list(range(len(shape)))
    if 0 in axes:
        raise _Unsupported("reduces over the batch axis")
    if any(x >= len(shape) for x in axes):
        raise _Unsupported(f"axes {axes} for data {_fmt(shape)}")
    s = _per_sample(shape)
    keep = [d for d in range(1, len(shape)) if d not in axes]
    out_inner = tuple(shape[d] for d in keep)
    grid = np.indices(s).reshape(len(s), -1)                         # per input entry
    out_pos = np.ravel_multi_index(tuple(grid[d - 1] for d in keep), out_inner) if keep         else np.zeros(grid.shape[1], dtype=np.int64)
    count = _prod([shape[d] for d in axes])
    value = 1.0 / count if node.op_type == "ReduceMean" else 1.0
    n_out = _prod(out_inner)
    weight = sp.csr_matrix((np.full(out_pos.size, value), (out_pos, np.arange(out_pos.size))),
                           shape=(n_out, _prod(s)))
    full = tuple(1 if d in axes else shape[d] for d in range(len(shape))) if a.get("keepdims", 1)         else (shape[0],) + out_inner
    return _Step([Affine(weight, np.zeros(n_out), full[1:], _label(node), "reduce")], full)


def _global_avgpool(r: _Reader, node, i, shape):
    """Mean over every axis after the channel axis: (N, C, H, W) -> (N, C, 1, 1)."""
    if len(shape) < 3:
        raise _Unsupported(f"needs data (batch, channels, spatial...), got {_fmt(shape)}")
    s = _per_sample(shape)
    c, m = s[0], _prod(s[1:])
    weight = sp.kron(sp.identity(c, format="csr"), sp.csr_matrix(np.full((1, m), 1.0 / m)), format="csr")
    full = (shape[0], c) + (1,) * (len(shape) - 2)
    return _Step([Affine(weight, np.zeros(c), full[1:], _label(node), "avgpool")], full)


def _squeeze(r: _Reader, node, i, shape):
    r.data_first(node)
    axes = _axes(r, node, len(shape), 13)
    if axes is None:
        axes = [d for d in range(1, len(shape)) if shape[d] == 1]
    if 0 in axes:
        raise _Unsupported("squeezes the batch axis")
    if any(x >= len(shape) or shape[x] != 1 for x in axes):
        raise _Unsupported(f"axes {axes} are not all of size 1 in data {_fmt(shape)}")
    return _Step([], tuple(d for k, d in enumerate(shape) if k not in axes))


def _unsqueeze(r: _Reader, node, i, shape):
    r.data_first(node)
    if r.opset >= 13:
        c = r.optional_const(node, 1, "axes")
        raw = [] if c is None else np.asarray(c).reshape(-1).tolist()
    else:
        raw = list(_attrs(node).get("axes", []))
    if not raw:
        raise _Unsupported("needs axes")
    rank = len(shape) + len(raw)
    axes = _axes(r, node, rank, 13) or []
    if 0 in axes:
        raise _Unsupported("inserts an axis before the batch axis")
    out, rest = [], list(shape)
    for k in range(rank):
        out.append(1 if k in axes else rest.pop(0))
    return _Step([], tuple(out))


# -- merges of two or more computed values ------------------------------------------------------

def _same_shapes(ins: list, op: str) -> tuple:
    shapes = [tuple(s[1:]) for _, s in ins]
    if any(sh != shapes[0] for sh in shapes):
        raise _Unsupported(f"{op} of computed values of different shapes "
                           f"{', '.join(_fmt(sh) for sh in shapes)} (no broadcasting between "
                           "computed values)")
    return ins[0][1]


def _two_computed(node, ins) -> tuple:
    """The common shape of a binary merge's two computed inputs (an error unless there are
    exactly two of the same shape)."""
    if len(node.input) != 2 or len(ins) != 2:
        raise _Unsupported("needs exactly two inputs")
    return _same_shapes(ins, node.op_type)


def _merge_add(r: _Reader, node, ins):
    """``Add``/``Sub`` of two computed values (a residual connection): a graph ``add``."""
    shape = _two_computed(node, ins)
    if ins[0][0] is None or ins[1][0] is None:
        return None, shape
    sign = -1.0 if node.op_type == "Sub" else 1.0
    return r.ir.add(r.fresh(_label(node)), ins[0][0], ins[1][0], 1.0, sign), shape


def _merge_sum(r: _Reader, node, ins):
    if any(x in r.consts for x in node.input if x):
        raise _Unsupported("Sum of computed values and constants")
    shape = _same_shapes(ins, "Sum")
    if any(v is None for v, _ in ins):
        return None, shape
    value = ins[0][0]
    for v, _ in ins[1:]:
        value = r.ir.add(r.fresh(_label(node)), value, v)
    return value, shape


def _merge_max(r: _Reader, node, ins):
    """``Max(a, b) = b + relu(a − b)``, ``Min(a, b) = a − relu(a − b)`` of computed values."""
    shape = _two_computed(node, ins)
    if ins[0][0] is None or ins[1][0] is None:
        return None, shape
    (a, _), (b, _) = ins
    g, base = r.ir, _label(node)
    d = g.add(r.fresh(base + ".diff"), a, b, 1.0, -1.0)
    h = g.relu(r.fresh(base + ".relu"), d)
    if node.op_type == "Max":
        return g.add(r.fresh(base), h, b), shape
    return g.add(r.fresh(base), a, h, 1.0, -1.0), shape


def _merge_concat(r: _Reader, node, ins):
    """``Concat`` of computed values along a non-batch axis."""
    if any(x in r.consts for x in node.input if x):
        raise _Unsupported("concatenates computed values with constants")
    shape0 = ins[0][1]
    axis = int(_attrs(node).get("axis", 1))
    axis = axis + len(shape0) if axis < 0 else axis
    if axis == 0:
        raise _Unsupported("concatenates along the batch axis")
    if any(len(s) != len(shape0) or s[:axis] + s[axis + 1:] != shape0[:axis] + shape0[axis + 1:]
           for _, s in ins):
        raise _Unsupported(f"shapes {', '.join(_fmt(s) for _, s in ins)} do not concatenate "
                           f"along axis {axis}")
    full = list(shape0)
    full[axis] = sum(s[axis] for _, s in ins)
    if any(v is None for v, _ in ins):
        return None, tuple(full)
    return r.ir.concat(r.fresh(_label(node)), [v for v, _ in ins], axis - 1), tuple(full)


#: operators with two or more computed inputs: (reader, node, [(graph value, full shape)])
#: -> (graph value, full shape)
_MERGES = {"Add": _merge_add, "Sub": _merge_add, "Sum": _merge_sum, "Max": _merge_max,
           "Min": _merge_max, "Concat": _merge_concat}


def _pattern_only(pattern: str):
    def handler(r: _Reader, node, i, shape):
        raise _Unsupported(f"only as part of {pattern}")
    return handler


_HANDLERS = {
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _elementwise,
    "Sub": _elementwise,
    "Mul": _elementwise,
    "Div": _elementwise,
    "Conv": _conv,
    "AveragePool": _avgpool,
    "MaxPool": _maxpool,
    "BatchNormalization": _batchnorm,
    "Relu": _relu,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Identity": _identity,
    "Dropout": _dropout,
    "Gather": _gather,
    "Pad": _pad,
    "Softmax": _final("softmax"),
    "Sigmoid": _final("sigmoid"),
    "Greater": _greater,
    "LeakyRelu": _leaky,
    "PRelu": _prelu,
    "Clip": _clip,
    "Abs": _abs,
    "Neg": _neg,
    "HardSigmoid": _hard_sigmoid,
    "Max": _max_min_const,
    "Min": _max_min_const,
    "ReduceMean": _reduce,
    "ReduceSum": _reduce,
    "GlobalAveragePool": _global_avgpool,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Sum": _identity,
    "Concat": _pattern_only("Concat of computed values (no constants)"),
    "Where": _pattern_only("Where(Greater(x, c), 1, -1) or Where(GreaterOrEqual(MatMul(x, W), t), 1, -1)"),
    "GreaterOrEqual": _pattern_only("Where(GreaterOrEqual(MatMul(x, W), t), 1, -1)"),
    "Round": _pattern_only("Round(Mul(x, c))"),
    "ReduceMax": _pattern_only("ReduceMax(Gather(x, indices, axis=1), axis=2) (max pool)"),
}


def network_from_onnx(model_or_path: str | os.PathLike | onnx.ModelProto,
                      name: str | None = None) -> Network:
    """Read an ONNX model (path, ``.onnx.gz`` path, or ``ModelProto``) into the network IR.

    See the module docstring for the supported operators. Raises :class:`ModelLoadError` for a
    missing, unreadable or invalid file and one :class:`UnsupportedOperatorError` listing every
    node the IR cannot represent. The network is named ``name``, else by the exporter's
    metadata, else by the graph's name.
    """
    model, where = load_onnx(model_or_path)
    return _Reader(model, where).read(name)
