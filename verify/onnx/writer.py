"""The network IR out to ONNX: :func:`network_to_onnx` (and :func:`verify.models.export_model`).

The graph's input ``input`` has shape ``("N",) + network.input_shape`` (float32), its output
``logits`` shape ``("N", num_outputs)``: the logits, without the final sigmoid/softmax (which
is recorded in the model's metadata, ``verify.output_activation``). The input is flattened
first. Layers become:

* dense :class:`~verify.network.Affine`: ``Gemm`` (``MatMul`` + ``Add`` after integer-valued
  layers, so that BNN logits are exactly Keras' float32 sums); a sparse one with a ``conv``
  description (set by the Keras reader for Conv2D) that matches its matrix: ``Conv`` between
  layout changes (``Reshape``/``Transpose`` to NCHW and back, so the flat order is kept); a
  sparse diagonal: ``Mul`` + ``Add``; a sparse selection (one 1 per row): ``Gather``; the
  block matrices of lowered graphs (:mod:`verify.graph`) and any sparse matrix too large to
  write dense: row by row, ``Gather``/``Mul``/``ReduceSum`` (ELLPACK); any other sparse
  matrix dense as ``Gemm`` up to 4,000,000 entries;
* :class:`~verify.network.ReLU`: ``Relu``; a masked ReLU (pass-through entries, from graphs
  with skip connections, :mod:`verify.graph`): ``Max(x, floor)`` with ``floor`` 0 on the ReLU
  entries and ``-inf`` on the pass-through ones (exact; the reader reads it back as the same
  masked ReLU); :class:`~verify.network.MaxPool`: the ``Pad``/``Gather``/``ReduceMax``
  pattern (windows of one entry carry values past it);
* :class:`~verify.network.Binarize`, :class:`~verify.network.Quantize`,
  :class:`~verify.network.SignBlock`: patterns (thresholds as float32, exact while
  the integer sums stay below 2**24).

Every pattern for a layer that has no single ONNX operator is one the reader
(:mod:`verify.onnx.reader`, whose docstring lists them) reads back into the same layer.
"""
from __future__ import annotations

import json
import os
import re

import numpy as np
import onnx
import scipy.sparse as sp
from onnx import TensorProto, helper, numpy_helper

from ..errors import InvalidInputError
from ..network import Affine, Binarize, Layer, MaxPool, Network, Quantize, ReLU, SignBlock
from ..windows import Unsupported as _Unsupported
from ..windows import conv_matrix
from .files import BATCH, save_onnx

#: largest dense matrix (entries) the exporter writes for a sparse layer it cannot write sparsely
MAX_DENSE_EXPORT = 4_000_000


class _Builder:
    """Collects nodes and initializers with unique names."""

    def __init__(self, opset: int):
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.used: set[str] = {"input", "logits"}

    def fresh(self, base: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_.\-]+", "_", base) or "v"
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def const(self, base: str, value: np.ndarray, dtype=np.float32) -> str:
        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], base: str, **attrs) -> str:
        out = self.fresh(base)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def reduce_max_last(self, x: str, base: str) -> str:
        if self.opset >= 18:
            axes = self.const(f"{base}.axes", np.array([2]), np.int64)
            return self.node("ReduceMax", [x, axes], base, keepdims=0)
        return self.node("ReduceMax", [x], base, axes=[2], keepdims=0)


def _is_diagonal(w: sp.spmatrix) -> bool:
    coo = sp.coo_matrix(w)
    return w.shape[0] == w.shape[1] and bool(np.all(coo.row == coo.col))


def _selection_columns(w: sp.spmatrix) -> np.ndarray | None:
    """The column each row picks when every row holds exactly one 1, else None."""
    csr = sp.csr_matrix(w)
    csr.eliminate_zeros()
    if np.any(np.diff(csr.indptr) != 1) or np.any(csr.data != 1.0):
        return None
    return csr.indices.astype(np.int64)


def _conv_description(layer: Affine) -> dict | None:
    """The layer's ``conv`` description, if it is complete and reproduces its matrix exactly."""
    conv = layer.conv
    if not conv or not sp.issparse(layer.weight):
        return None
    try:
        kernel = np.asarray(conv["kernel"], np.float64)
        H, W, C = (int(d) for d in conv["input_shape"])
        (pt, pb), (pl, pr) = conv["padding"]
        strides = tuple(int(s) for s in conv["strides"])
        layout = conv.get("layout", "HWC")
        weight, (F, Ho, Wo) = conv_matrix(kernel.transpose(3, 2, 0, 1), (C, H, W), strides,
                                          (pt, pl, pb, pr), layout)
    except (KeyError, TypeError, ValueError, _Unsupported):
        return None
    if layout not in ("HWC", "CHW") or weight.shape != layer.weight.shape:
        return None
    scale = max(1.0, float(np.max(np.abs(kernel))) if kernel.size else 1.0)
    diff = abs(weight - sp.csr_matrix(layer.weight))
    if diff.nnz and diff.max() > 1e-12 * scale:
        return None
    return {"kernel": kernel, "chw": (C, H, W), "out": (F, Ho, Wo), "strides": strides,
            "pads": [pt, pl, pb, pr], "layout": layout}


def _export_conv(b: _Builder, layer: Affine, x: str, base: str) -> str | None:
    desc = _conv_description(layer)
    if desc is None:
        return None
    (C, H, W), (F, Ho, Wo), layout = desc["chw"], desc["out"], desc["layout"]
    bias = np.asarray(layer.bias, np.float64)
    per_channel = (bias.reshape(Ho * Wo, F) if layout == "HWC" else bias.reshape(F, Ho * Wo).T)
    channel_bias = per_channel[0]
    uniform = bool(np.all(per_channel == channel_bias[None, :]))
    if layout == "HWC":
        x = b.node("Reshape", [x, b.const(f"{base}.nhwc", np.array([0, H, W, C]), np.int64)], f"{base}.nhwc")
        x = b.node("Transpose", [x], f"{base}.nchw", perm=[0, 3, 1, 2])
    else:
        x = b.node("Reshape", [x, b.const(f"{base}.shape", np.array([0, C, H, W]), np.int64)], f"{base}.nchw")
    inputs = [x, b.const(f"{base}.kernel", desc["kernel"].transpose(3, 2, 0, 1))]
    if uniform and np.any(channel_bias):
        inputs.append(b.const(f"{base}.bias", channel_bias))
    x = b.node("Conv", inputs, base, kernel_shape=list(desc["kernel"].shape[:2]),
               strides=list(desc["strides"]), pads=desc["pads"])
    if layout == "HWC":
        x = b.node("Transpose", [x], f"{base}.nhwc_out", perm=[0, 2, 3, 1])
    x = b.node("Reshape", [x, b.const(f"{base}.flat", np.array([0, F * Ho * Wo]), np.int64)], f"{base}.flat")
    if not uniform:
        x = b.node("Add", [x, b.const(f"{base}.bias", bias)], f"{base}.bias")
    return x


def _export_sparse(b: _Builder, w: sp.csr_matrix, bias: np.ndarray, x: str, base: str) -> str:
    """A sparse matrix row by row (ELLPACK): ``Gather`` each row's columns (an index table
    (n_out, k), k the most nonzeros of a row, short rows padded with weight 0), ``Mul`` by the
    weights, ``ReduceSum`` over the row; then ``Add`` the bias. The reader reads it back as
    the same sparse layer."""
    w = sp.csr_matrix(w)
    w.eliminate_zeros()
    w.sort_indices()
    counts = np.diff(w.indptr)
    k = max(1, int(counts.max(initial=0)))
    rows = np.repeat(np.arange(w.shape[0]), counts)
    pos = np.arange(w.nnz) - np.repeat(w.indptr[:-1], counts)
    index = np.zeros((w.shape[0], k), dtype=np.int64)
    vals = np.zeros((w.shape[0], k))
    index[rows, pos] = w.indices
    vals[rows, pos] = w.data
    x = b.node("Gather", [x, b.const(f"{base}.index", index, np.int64)], f"{base}.gather", axis=1)
    x = b.node("Mul", [x, b.const(f"{base}.weight", vals)], f"{base}.products")
    axes = b.const(f"{base}.axes", np.array([2]), np.int64)
    x = b.node("ReduceSum", [x, axes], f"{base}.sum", keepdims=0)
    return b.node("Add", [x, b.const(f"{base}.bias", bias)], base) if np.any(bias) else x


def _is_carry(layer: Affine) -> bool:
    """A block-matrix step of a lowered graph (copies, sums, combinations; verify.graph)."""
    from ..network import _is_carry as carry

    return carry(layer)


def _export_affine(b: _Builder, layer: Affine, x: str, base: str, integer_in: bool) -> str:
    w = layer.weight
    bias = np.asarray(layer.bias, np.float64)
    if sp.issparse(w):
        if layer.conv is not None:
            out = _export_conv(b, layer, x, base)
            if out is not None:
                return out
        if _is_diagonal(w):
            x = b.node("Mul", [x, b.const(f"{base}.scale", w.diagonal())], f"{base}.scale")
            return b.node("Add", [x, b.const(f"{base}.bias", bias)], base) if np.any(bias) else x
        cols = _selection_columns(w)
        if cols is not None:
            x = b.node("Gather", [x, b.const(f"{base}.index", cols, np.int64)], f"{base}.gather", axis=1)
            return b.node("Add", [x, b.const(f"{base}.bias", bias)], base) if np.any(bias) else x
        k = int(np.max(np.diff(sp.csr_matrix(w).indptr), initial=0))
        if w.shape[0] * w.shape[1] > MAX_DENSE_EXPORT or (
                _is_carry(layer) and 2 * w.shape[0] * max(k, 1) <= w.shape[0] * w.shape[1]):
            if w.shape[0] * max(k, 1) <= MAX_DENSE_EXPORT:
                return _export_sparse(b, sp.csr_matrix(w), bias, x, base)
        if w.shape[0] * w.shape[1] > MAX_DENSE_EXPORT:
            raise InvalidInputError(
                f"cannot export layer {layer.name!r} ({layer.kind}): its sparse {w.shape[0]}x"
                f"{w.shape[1]} matrix is not a convolution with a known geometry, a diagonal or a "
                f"selection, and written dense it would take {w.shape[0] * w.shape[1]:,} weights "
                f"(more than {MAX_DENSE_EXPORT:,}; row by row, {w.shape[0] * max(k, 1):,})")
        w = sp.csr_matrix(w).toarray()
    if integer_in:     # exact integer sums, then one float32 rounding for the bias (as Keras)
        x = b.node("MatMul", [x, b.const(f"{base}.weight", np.asarray(w).T)], f"{base}.matmul")
        return b.node("Add", [x, b.const(f"{base}.bias", bias)], base)
    return b.node("Gemm", [x, b.const(f"{base}.weight", w), b.const(f"{base}.bias", bias)], base,
                  transB=1)


def _integer_magnitude(layer: Layer | None) -> int | None:
    if isinstance(layer, (Binarize, SignBlock)):
        return 1
    if isinstance(layer, Quantize):
        return int(layer.levels)
    return None


def _export_layer(b: _Builder, layer: Layer, prev: Layer | None, x: str, base: str) -> str:
    magnitude = _integer_magnitude(prev)
    if isinstance(layer, Affine):
        return _export_affine(b, layer, x, base, magnitude is not None)
    if isinstance(layer, ReLU):
        if layer.mask is None:
            return b.node("Relu", [x], base)
        # max(x, 0) on the ReLU entries, max(x, −inf) = x on the pass-through ones: exact
        floor = np.where(np.asarray(layer.mask, dtype=bool), 0.0, -np.inf)
        return b.node("Max", [x, b.const(f"{base}.floor", floor)], base)
    if isinstance(layer, MaxPool):
        index = np.asarray(layer.index, np.int64)
        if np.any(index < 0):
            pads = b.const(f"{base}.pads", np.array([0, 0, 0, 1]), np.int64)
            x = b.node("Pad", [x, pads, b.const(f"{base}.ninf", np.array(-np.inf))], f"{base}.pad",
                       mode="constant")
            index = np.where(index < 0, layer.n_in, index)
        x = b.node("Gather", [x, b.const(f"{base}.index", index, np.int64)], f"{base}.windows", axis=1)
        return b.reduce_max_last(x, base)
    if isinstance(layer, (Binarize, SignBlock)):
        if isinstance(layer, Binarize):
            cond = b.node("Greater", [x, b.const(f"{base}.threshold", np.array(layer.threshold))],
                          f"{base}.greater")
        else:
            if magnitude is None:
                raise InvalidInputError(f"cannot export layer {layer.name!r}: a SignBlock needs "
                                        "integer-valued inputs (after Binarize, Quantize or "
                                        "another SignBlock)")
            limit = 2 ** 24
            if layer.n_in * magnitude >= limit or np.any(np.abs(layer.threshold) >= limit):
                raise InvalidInputError(f"cannot export layer {layer.name!r} exactly: its sums or "
                                        "thresholds reach 2**24, beyond float32's integers")
            sums = b.node("MatMul", [x, b.const(f"{base}.weight", layer.weight.T)], f"{base}.matmul")
            cond = b.node("GreaterOrEqual", [sums, b.const(f"{base}.threshold", layer.threshold)],
                          f"{base}.ge")
        return b.node("Where", [cond, b.const(f"{base}.plus", np.array(1.0)),
                                b.const(f"{base}.minus", np.array(-1.0))], base)
    if isinstance(layer, Quantize):
        x = b.node("Mul", [x, b.const(f"{base}.levels", np.array(float(layer.levels)))], f"{base}.scale")
        return b.node("Round", [x], base)
    raise InvalidInputError(f"cannot export layer {getattr(layer, 'name', '?')!r}: "
                            f"{type(layer).__name__} has no ONNX form")


def network_to_onnx(network: Network, path: str | os.PathLike | None = None, opset: int = 17,
                    source: str | None = None) -> onnx.ModelProto:
    """Write ``network`` as an ONNX model (see the module docstring); save it when ``path`` is
    given (``.gz``: gzip-compressed).

    ``source`` names the model it came from (default: the network's name) in the model's
    ``doc_string`` and metadata. Raises :class:`InvalidInputError` for a layer with no exact
    ONNX form or ``opset`` outside 13 .. the newest this onnx knows.
    """
    newest = onnx.defs.onnx_opset_version()
    if not 13 <= int(opset) <= newest:
        raise InvalidInputError(f"opset must be between 13 and {newest}, not {opset}")
    opset = int(opset)
    b = _Builder(opset)
    x = "input"
    if len(network.input_shape) != 1:
        x = b.node("Flatten", [x], "flatten_input", axis=1)
    prev = None
    for k, layer in enumerate(network.layers):
        x = _export_layer(b, layer, prev, x, layer.name or f"layer{k}")
        prev = layer
    if b.nodes and b.nodes[-1].output[0] == x:
        b.nodes[-1].output[0] = "logits"
    else:
        b.nodes.append(helper.make_node("Identity", [x], ["logits"], name="logits"))
    source = source or network.name
    graph = helper.make_graph(
        b.nodes, re.sub(r"[^A-Za-z0-9_.\-]+", "_", network.name) or "network",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [BATCH, *network.input_shape])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [BATCH, network.num_outputs])],
        initializer=b.inits)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(
        graph, opset_imports=opsets, producer_name="verify",
        ir_version=helper.find_min_ir_version_for(opsets),
        doc_string=(f"Network '{network.name}' exported from {source} by verify.onnx: the "
                    f"logits (its {network.output_activation} output activation is not applied)."))
    helper.set_model_props(model, {
        "source": str(source),
        "verify.network": network.name,
        "verify.output_activation": network.output_activation,
        "verify.input_shape": json.dumps(list(network.input_shape)),
    })
    onnx.checker.check_model(model)
    if path is not None:
        save_onnx(model, path)
    return model
