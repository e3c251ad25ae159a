"""ONNX reader, exporter and onnxruntime reference (verify.onnx).

Every supported operator is checked on a small hand-built graph against onnxruntime; every
bundled model is exported and checked against Keras and read back.
"""
from __future__ import annotations

import gzip

import numpy as np
import pytest
import scipy.sparse as sp
import onnx
from onnx import TensorProto, helper, numpy_helper

from verify.errors import InvalidInputError, ModelLoadError, UnsupportedLayerError, UnsupportedOperatorError
from verify.models import bundled_models, export_model
from verify.network import Affine, Binarize, MaxPool, Network, Quantize, ReLU, SignBlock
from verify.onnx import OnnxReference, network_from_onnx, network_to_onnx, save_onnx

BUNDLED = sorted(bundled_models())


# ---------------------------------------------------------------------------------------------
# helpers

def _model(nodes, inits, in_dims, opset=17, out="y"):
    """A model with input "x" of ``in_dims`` (None: symbolic batch) and output ``out``."""
    tensors = [numpy_helper.from_array(np.asarray(v, np.float32 if np.asarray(v).dtype.kind == "f"
                                                  else np.asarray(v).dtype), k)
               for k, v in inits.items()]
    graph = helper.make_graph(
        nodes, "test", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N" if d is None else d for d in in_dims])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], initializer=tensors)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets))
    # the output's shape, which the checker wants, from ONNX's own shape inference
    inferred = onnx.shape_inference.infer_shapes(model)
    model.graph.output[0].CopyFrom(inferred.graph.output[0])
    return model


def _n(op, inputs, output, **attrs):
    return helper.make_node(op, inputs, [output], name=output, **attrs)


def _f(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _inputs(net: Network, rng, batch=6):
    return rng.random((batch,) + tuple(net.input_shape))


def _activated(net: Network, logits: np.ndarray) -> np.ndarray:
    """The network's outputs after its final activation (what onnxruntime returns)."""
    if net.output_activation == "softmax":
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if net.output_activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-logits))
    return logits


def _agree(model, rng, batch=6, exact=False):
    """The IR's forward equals onnxruntime on random inputs; returns the network.

    ``exact``: the float64 IR outputs round to exactly onnxruntime's float32 ones (BNNs: integer
    sums plus a float32 bias, rounded once)."""
    net = network_from_onnx(model)
    x = _inputs(net, rng, batch)
    want = OnnxReference(model).outputs(x)
    got = _activated(net, net.forward(x))
    assert want.dtype == np.float32 and got.shape == want.shape == (batch, net.num_outputs)
    if exact:
        assert np.array_equal(got.astype(np.float32), want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(want).max()))
    return net


# ---------------------------------------------------------------------------------------------
# hand-built graphs, one or more per supported operator

def g_gemm(rng):
    nodes = [_n("Gemm", ["x", "w1", "c1"], "h", transB=1, alpha=0.7, beta=1.3),
             _n("Relu", ["h"], "r"),
             _n("Gemm", ["r", "w2", "c2"], "y", alpha=1.1)]               # transB=0, C (1, 5)
    inits = {"w1": _f(rng, 8, 12), "c1": _f(rng, 8), "w2": _f(rng, 8, 5), "c2": _f(rng, 1, 5)}
    return nodes, inits, [None, 12]


def g_matmul_add(rng):
    nodes = [_n("MatMul", ["x", "w1"], "h"), _n("Add", ["h", "b1"], "hb"), _n("Relu", ["hb"], "r"),
             _n("MatMul", ["r", "w2"], "o"), _n("Add", ["b2", "o"], "y")]
    inits = {"w1": _f(rng, 12, 9), "b1": _f(rng, 9), "w2": _f(rng, 9, 4), "b2": _f(rng, 1, 4)}
    return nodes, inits, [None, 12]


def g_conv(rng):
    nodes = [_n("Conv", ["x", "k1", "b1"], "c1", strides=[2, 1], pads=[1, 0, 2, 1],
                kernel_shape=[3, 3]),
             _n("Relu", ["c1"], "r1"),
             _n("Conv", ["r1", "k2"], "c2", strides=[2, 2], auto_pad="SAME_UPPER"),
             _n("Flatten", ["c2"], "f"),
             _n("Gemm", ["f", "w", "c"], "y", transB=1)]
    # x 9x8 -> c1: (9+3-3)//2+1 = 5 rows, (8+1-3)+1 = 7 cols -> c2: 3x4 (same, stride 2)
    inits = {"k1": _f(rng, 3, 2, 3, 3), "b1": _f(rng, 3), "k2": _f(rng, 4, 3, 2, 2),
             "w": _f(rng, 5, 4 * 3 * 4), "c": _f(rng, 5)}
    return nodes, inits, [None, 2, 9, 8]


def g_avgpool(rng):
    nodes = [_n("AveragePool", ["x"], "p1", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             _n("AveragePool", ["p1"], "p2", kernel_shape=[2, 2], pads=[0, 0, 1, 1],
                count_include_pad=1),
             _n("AveragePool", ["p2"], "p3", kernel_shape=[2, 2], auto_pad="SAME_LOWER"),
             _n("Flatten", ["p3"], "y")]
    return nodes, {}, [None, 2, 7, 7]


def g_maxpool(rng):
    nodes = [_n("Sub", ["x", "half"], "xs"),
             _n("MaxPool", ["xs"], "p1", kernel_shape=[3, 2], strides=[2, 2], pads=[1, 1, 1, 0]),
             _n("Relu", ["p1"], "r"),
             _n("MaxPool", ["r"], "p2", kernel_shape=[2, 2], auto_pad="SAME_UPPER"),
             _n("Flatten", ["p2"], "y")]
    return nodes, {"half": np.array(0.5, np.float32)}, [None, 3, 7, 6]


def g_batchnorm(rng):
    nodes = [_n("Conv", ["x", "k"], "c"),
             _n("BatchNormalization", ["c", "s1", "b1", "m1", "v1"], "bn1", epsilon=1e-3),
             _n("Relu", ["bn1"], "r"), _n("Flatten", ["r"], "f"),
             _n("Gemm", ["f", "w", "c2"], "g", transB=1),
             _n("BatchNormalization", ["g", "s2", "b2", "m2", "v2"], "y")]
    inits = {"k": _f(rng, 3, 2, 2, 2), "s1": _f(rng, 3), "b1": _f(rng, 3), "m1": _f(rng, 3),
             "v1": rng.random(3).astype(np.float32) + 0.5, "w": _f(rng, 4, 3 * 4 * 4),
             "c2": _f(rng, 4), "s2": _f(rng, 4), "b2": _f(rng, 4), "m2": _f(rng, 4),
             "v2": rng.random(4).astype(np.float32) + 0.1}
    return nodes, inits, [None, 2, 5, 5]


def g_transpose(rng):
    nodes = [_n("Transpose", ["x"], "t", perm=[0, 3, 1, 2]),          # NHWC input -> NCHW
             _n("Conv", ["t", "k", "b"], "c", pads=[1, 1, 1, 1]),
             _n("Transpose", ["c"], "t2", perm=[0, 2, 3, 1]),
             _n("Reshape", ["t2", "shape"], "f"),
             _n("Gemm", ["f", "w", "c2"], "y", transB=1)]
    inits = {"k": _f(rng, 3, 2, 3, 3), "b": _f(rng, 3), "shape": np.array([0, -1], np.int64),
             "w": _f(rng, 4, 6 * 5 * 3), "c2": _f(rng, 4)}
    return nodes, inits, [None, 6, 5, 2]


def g_normalise(rng):
    nodes = [_n("Sub", ["x", "mean"], "s"), _n("Div", ["s", "std"], "d"),
             _n("Mul", ["d", "two"], "m"), _n("Add", ["full", "m"], "a"),
             _n("Sub", ["one", "a"], "s2"),                              # constant - data
             _n("Flatten", ["s2"], "f"), _n("Gemm", ["f", "w", "c"], "y", transB=1)]
    inits = {"mean": _f(rng, 1, 3, 1, 1), "std": rng.random((1, 3, 1, 1)).astype(np.float32) + 0.5,
             "two": np.array(2.0, np.float32), "full": _f(rng, 3, 4, 4),
             "one": np.array([1.0], np.float32), "w": _f(rng, 5, 48), "c": _f(rng, 5)}
    return nodes, inits, [None, 3, 4, 4]


def g_reshape(rng):
    nodes = [_n("Flatten", ["x"], "f", axis=1),
             _n("Reshape", ["f", "s1"], "r"),                            # (N, 4, 9)
             _n("MatMul", ["r", "w"], "m"),                               # (N, 4, 5): block-diagonal
             _n("Reshape", ["m", "s2"], "r2"),
             _n("Identity", ["r2"], "i"),
             helper.make_node("Dropout", ["i", "ratio"], ["d", "mask"], name="d"),
             _n("Gemm", ["d", "w2", "c2"], "g", transB=1),
             _n("Softmax", ["g"], "y")]
    inits = {"s1": np.array([-1, 4, 9], np.int64), "w": _f(rng, 9, 5),
             "s2": np.array([0, 20], np.int64), "ratio": np.array(0.3, np.float32),
             "w2": _f(rng, 6, 20), "c2": _f(rng, 6)}
    return nodes, inits, [None, 1, 6, 6]


def g_sigmoid(rng):
    nodes = [_n("Gemm", ["x", "w", "c"], "g", transB=1), _n("Sigmoid", ["g"], "y")]
    return nodes, {"w": _f(rng, 1, 10), "c": _f(rng, 1)}, [None, 10]


def g_fixed_batch(rng):
    nodes = [_n("Conv", ["x", "k"], "c", strides=[2, 2]),
             _n("Flatten", ["c"], "f", axis=0),                          # (1, n) for batch 1
             _n("Reshape", ["f", "s"], "r"),
             _n("Gemm", ["r", "w", "b"], "y", transB=1)]
    inits = {"k": _f(rng, 2, 1, 2, 2), "s": np.array([1, -1], np.int64), "w": _f(rng, 3, 32),
             "b": _f(rng, 3)}
    return nodes, inits, [1, 1, 8, 8]


def g_constants(rng):
    w = _f(rng, 7, 10)
    nodes = [helper.make_node("Constant", [], ["wt"], value=numpy_helper.from_array(w, "wt")),
             _n("Transpose", ["wt"], "w"),                                # folded: (10, 7)
             _n("MatMul", ["x", "w"], "m"),
             helper.make_node("Constant", [], ["b"], value_floats=rng.standard_normal(7).tolist()),
             _n("Add", ["m", "b"], "y")]
    return nodes, {}, [None, 10]


def g_gather_pad(rng):
    nodes = [_n("Pad", ["x", "pads", "v"], "p"),                           # (N, 2, 8, 8)
             _n("Conv", ["p", "k"], "c"),                                   # (N, 2, 6, 6)
             _n("Flatten", ["c"], "f"),
             _n("Pad", ["f", "pads2", "v"], "p2"),                          # (N, 75)
             _n("Gather", ["p2", "idx"], "g", axis=1),
             _n("Gemm", ["g", "w", "b"], "y", transB=1)]
    inits = {"pads": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64), "v": np.array(0.25, np.float32),
             "k": _f(rng, 2, 2, 3, 3), "pads2": np.array([0, 1, 0, 2], np.int64),
             "idx": rng.permutation(75)[:40].astype(np.int64), "w": _f(rng, 3, 40), "b": _f(rng, 3)}
    return nodes, inits, [None, 2, 5, 5]


GRAPHS = {f.__name__[2:]: f for f in (g_gemm, g_matmul_add, g_conv, g_avgpool, g_maxpool,
                                      g_batchnorm, g_transpose, g_normalise, g_reshape,
                                      g_sigmoid, g_fixed_batch, g_constants, g_gather_pad)}


@pytest.mark.parametrize("case", sorted(GRAPHS))
def test_reader_matches_onnxruntime(case):
    rng = np.random.default_rng(sum(map(ord, case)))
    model = _model(*GRAPHS[case](rng))
    net = _agree(model, rng)
    # merging consecutive affine layers changes nothing either
    x = _inputs(net, rng)
    np.testing.assert_allclose(net.merged_affine().forward(x), net.forward(x), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("case", sorted(GRAPHS))
def test_export_of_read_networks(case, tmp_path):
    """A network read from ONNX exports again (conv, pools, permutations, diagonals, maxpool
    gather pattern) and computes the same."""
    rng = np.random.default_rng(7 + sum(map(ord, case)))
    net = network_from_onnx(_model(*GRAPHS[case](rng)))
    path = tmp_path / f"{case}.onnx"
    exported = network_to_onnx(net, path)
    x = _inputs(net, rng)
    want = net.forward(x)
    got = OnnxReference(path).outputs(x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(want).max()))
    back = network_from_onnx(path)
    np.testing.assert_allclose(back.forward(x), want, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(want).max()))
    assert back.output_activation == net.output_activation
    ops = {n.op_type for n in exported.graph.node}
    if any(isinstance(l, Affine) and l.kind == "conv2d" for l in net.layers):
        assert "Conv" in ops
    if any(isinstance(l, MaxPool) for l in net.layers):
        assert any(isinstance(l, MaxPool) for l in back.layers)


@pytest.mark.parametrize("case", ["gemm", "conv", "maxpool", "batchnorm", "gather_pad"])
def test_opset_11_and_initializers_listed_as_inputs(case):
    rng = np.random.default_rng(16)
    model = _model(*GRAPHS[case](rng), opset=11)
    for init in model.graph.initializer:       # as IR version 3 required; ignored by the reader
        model.graph.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    _agree(model, rng)


def test_layer_kinds_and_shapes():
    rng = np.random.default_rng(0)
    net = network_from_onnx(_model(*g_matmul_add(rng)))
    assert [type(l).__name__ for l in net.layers] == ["Affine", "ReLU", "Affine"]   # biases folded
    assert net.input_shape == (12,) and net.num_outputs == 4
    conv = network_from_onnx(_model(*g_conv(rng)))
    assert conv.input_shape == (2, 9, 8)
    assert conv.layers[0].kind == "conv2d" and sp.issparse(conv.layers[0].weight)
    assert conv.layers[0].out_shape == (3, 5, 7)
    t = network_from_onnx(_model(*g_transpose(rng)))
    assert t.layers[0].kind == "transpose" and sp.issparse(t.layers[0].weight)
    bn = network_from_onnx(_model(*g_batchnorm(rng)))
    assert [l.kind for l in bn.layers if isinstance(l, Affine)][:2] == ["conv2d", "batchnorm"]
    mp = network_from_onnx(_model(*g_maxpool(rng)))
    assert isinstance(mp.layers[1], MaxPool) and np.any(mp.layers[1].index < 0)
    assert network_from_onnx(_model(*g_reshape(rng))).output_activation == "softmax"
    assert network_from_onnx(_model(*g_sigmoid(rng))).output_activation == "sigmoid"
    assert network_from_onnx(_model(*g_fixed_batch(rng))).input_shape == (1, 8, 8)


def _bnn_graph(rng, quantize: bool):
    first = ([_n("Mul", ["x", "levels"], "q"), _n("Round", ["q"], "h0")] if quantize else
             [_n("Greater", ["x", "thr"], "gt"), _n("Where", ["gt", "one", "minus"], "h0")])
    nodes = first + [
        _n("MatMul", ["h0", "w1"], "s1"), _n("GreaterOrEqual", ["s1", "t1"], "ge1"),
        _n("Where", ["ge1", "one", "minus"], "h1"),
        _n("MatMul", ["h1", "w2"], "s2"), _n("GreaterOrEqual", ["s2", "t2"], "ge2"),
        _n("Where", ["ge2", "one", "minus"], "h2"),
        _n("MatMul", ["h2", "w3"], "o"), _n("Add", ["o", "b3"], "y")]
    inits = {"levels": np.array(255.0, np.float32), "thr": np.array(0.5, np.float32),
             "one": np.array(1.0, np.float32), "minus": np.array(-1.0, np.float32),
             "w1": rng.integers(-1, 2, (20, 8)).astype(np.float32),
             "t1": rng.integers(-300 if quantize else -3, 300 if quantize else 4, 8).astype(np.float32),
             "w2": rng.integers(-1, 2, (8, 6)).astype(np.float32),
             "t2": rng.integers(-2, 3, 6).astype(np.float32),
             "w3": np.where(rng.random((6, 4)) < 0.5, 1.0, -1.0).astype(np.float32),
             "b3": (rng.random(4) * 0.6 - 0.3).astype(np.float32)}
    return nodes, inits, [None, 20]


@pytest.mark.parametrize("quantize", [False, True], ids=["binarize", "quantize"])
def test_bnn_patterns(quantize, tmp_path):
    rng = np.random.default_rng(11)
    model = _model(*_bnn_graph(rng, quantize))
    net = _agree(model, rng, batch=50, exact=True)
    kinds = [type(l).__name__ for l in net.layers]
    assert kinds == ["Quantize" if quantize else "Binarize", "SignBlock", "SignBlock", "Affine"]
    assert net.is_binarized and net.layers[-1].kind == "binary_dense"
    assert net.layers[1].weight.dtype == np.int8 and net.layers[1].threshold.dtype == np.int64
    # and the exporter writes the same patterns back, exactly
    network_to_onnx(net, tmp_path / "bnn.onnx")
    x = _inputs(net, rng, 50)
    assert np.array_equal(OnnxReference(tmp_path / "bnn.onnx").outputs(x), net.forward(x).astype(np.float32))
    assert [type(l) for l in network_from_onnx(tmp_path / "bnn.onnx").layers] == [type(l) for l in net.layers]


def test_sign_block_needs_integer_inputs():
    rng = np.random.default_rng(3)
    nodes, inits, dims = _bnn_graph(rng, False)
    nodes = nodes[2:]
    nodes[0] = _n("MatMul", ["x", "w1"], "s1")
    with pytest.raises(UnsupportedOperatorError, match="integer-valued inputs"):
        network_from_onnx(_model(nodes, inits, dims))


# ---------------------------------------------------------------------------------------------
# unsupported graphs and bad files

def test_all_unsupported_nodes_in_one_error():
    rng = np.random.default_rng(5)
    nodes = [_n("Gemm", ["x", "w1", "c1"], "h", transB=1), _n("Tanh", ["h"], "tanh_1"),
             _n("Relu", ["tanh_1"], "r"), _n("Sigmoid", ["r"], "sigmoid_1"),
             _n("Mul", ["sigmoid_1", "r"], "mul_1"),
             _n("Gemm", ["mul_1", "w2", "c2"], "y", transB=1)]
    inits = {"w1": _f(rng, 4, 6), "c1": _f(rng, 4), "w2": _f(rng, 3, 4), "c2": _f(rng, 3)}
    with pytest.raises(UnsupportedOperatorError) as info:
        network_from_onnx(_model(nodes, inits, [None, 6]))
    err = info.value
    assert isinstance(err, UnsupportedLayerError)
    assert [name for name, _ in err.nodes] == ["tanh_1", "sigmoid_1", "mul_1"]
    text = str(err)
    for word in ("Tanh", "Sigmoid", "Mul", "3 unsupported", "Supported operators", "Gemm"):
        assert word in text


def test_unsupported_attributes_and_structure_listed_together():
    nodes = [_n("AveragePool", ["x"], "avg_c", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
             _n("MaxPool", ["avg_c"], "pool_d", kernel_shape=[2, 2], dilations=[2, 2]),
             _n("Relu", ["pool_d"], "r"),
             _n("Mul", ["r", "pool_d"], "product"),          # not piecewise linear
             _n("Softmax", ["product"], "early_softmax"),
             _n("Flatten", ["early_softmax"], "y")]
    with pytest.raises(UnsupportedOperatorError) as info:
        network_from_onnx(_model(nodes, {}, [None, 2, 9, 9]))
    listed = dict(info.value.nodes)
    assert set(listed) == {"avg_c", "pool_d", "product", "early_softmax"}
    assert "ceil_mode" in listed["avg_c"] and "dilations" in listed["pool_d"]
    assert "computed inputs" in listed["product"] and "last node" in listed["early_softmax"]


def test_bad_inputs_are_unsupported():
    rng = np.random.default_rng(8)
    for dims in ([12], [5, 12], [None, None]):
        with pytest.raises(UnsupportedOperatorError, match="input shape"):
            network_from_onnx(_model([_n("MatMul", ["x", "w"], "y")], {"w": _f(rng, 12, 2)}, dims))


def _valid_bytes(rng) -> bytes:
    return _model(*g_gemm(rng)).SerializeToString()


def test_missing_garbage_and_truncated_files(tmp_path):
    rng = np.random.default_rng(9)
    missing = tmp_path / "missing.onnx"
    with pytest.raises(ModelLoadError, match="not found") as info:
        network_from_onnx(missing)
    assert str(missing) in str(info.value)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    truncated = tmp_path / "truncated.onnx"
    data = _valid_bytes(rng)
    truncated.write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    not_gzip = tmp_path / "fake.onnx.gz"
    not_gzip.write_bytes(data)
    for path in (garbage, truncated, empty, not_gzip):
        with pytest.raises(ModelLoadError) as info:
            network_from_onnx(path)
        assert str(path) in str(info.value)
        with pytest.raises(ModelLoadError):
            OnnxReference(path)


def test_gzip_and_modelproto_inputs(tmp_path):
    rng = np.random.default_rng(10)
    model = _model(*g_conv(rng))
    path = tmp_path / "conv.onnx.gz"
    with gzip.open(path, "wb") as f:
        f.write(model.SerializeToString())
    x = rng.random((4, 2, 9, 8))
    a, b = network_from_onnx(path), network_from_onnx(model)
    assert np.array_equal(a.forward(x), b.forward(x))
    np.testing.assert_allclose(OnnxReference(path).outputs(x), a.forward(x), rtol=1e-5, atol=1e-5)


def test_reference_accepts_any_row_shape():
    rng = np.random.default_rng(12)
    ref = OnnxReference(_model(*g_conv(rng)))
    x = rng.random((3, 2, 9, 8))
    out = ref.outputs(x)
    assert out.shape == (3, 5) and out.dtype == np.float32
    assert np.array_equal(ref.outputs(x.reshape(3, -1)), out)
    assert np.array_equal(ref.outputs(x[0]), out[:1])
    with pytest.raises(InvalidInputError):
        ref.outputs(np.zeros((3, 7)))


# ---------------------------------------------------------------------------------------------
# exporter

def test_export_every_layer_type(tmp_path):
    """MaxPool with padding, Quantize, SignBlock and sparse layers, written and run exactly."""
    rng = np.random.default_rng(13)
    index = np.array([[0, 1, 2], [3, 4, -1], [5, -1, -1], [6, 7, 0]])
    layers = [
        Affine(sp.random(8, 6, density=0.5, random_state=1, format="csr"), rng.standard_normal(8), (8,), "sparse"),
        ReLU((8,), "relu"),
        MaxPool(index, 8, (4,), "pool"),
        Quantize(15, (4,), "q"),
        SignBlock(rng.integers(-1, 2, (5, 4)).astype(np.int8), rng.integers(-20, 20, 5), (5,), "block"),
        Binarize(0.0, (5,), "again"),
        Affine(np.where(rng.random((3, 5)) < 0.5, 1.0, -1.0), np.array([0.25, -0.5, 0.0]), (3,),
               "out", "binary_dense"),
    ]
    net = Network((2, 3), layers, "softmax", "all-layers")
    for opset in (13, 17, 18):
        path = tmp_path / f"all{opset}.onnx"
        network_to_onnx(net, path, opset=opset)
        x = rng.random((40, 2, 3))
        assert np.array_equal(OnnxReference(path).outputs(x).astype(np.float64), net.forward(x))
        back = network_from_onnx(path)
        assert [type(l) for l in back.layers] == [type(l) for l in net.layers]
        assert back.output_activation == "softmax" and back.name == "all-layers"
        assert np.array_equal(back.forward(x), net.forward(x))


def test_export_refuses_what_it_cannot_write():
    # a large sparse matrix is written row by row (Gather/Mul/ReduceSum), and reads back
    big = Affine(sp.random(2100, 2000, density=0.001, random_state=0, format="csr"),
                 np.zeros(2100), (2100,), "huge", "custom")
    model = network_to_onnx(Network((2000,), [big]))
    assert "ReduceSum" in {n.op_type for n in model.graph.node}
    x = np.random.default_rng(0).random((3, 2000))
    np.testing.assert_allclose(OnnxReference(model).outputs(x), big.forward(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(network_from_onnx(model).forward(x), big.forward(x), atol=1e-6)
    # ... unless one row is so dense that neither form fits
    rows = sp.random(2100, 2000, density=0.001, random_state=0, format="lil")
    rows[0, :] = 1.0
    huge = Affine(rows.tocsr(), np.zeros(2100), (2100,), "huge", "custom")
    with pytest.raises(InvalidInputError, match="huge"):
        network_to_onnx(Network((2000,), [huge]))
    small = Network((4,), [ReLU((4,))])
    with pytest.raises(InvalidInputError, match="opset"):
        network_to_onnx(small, opset=11)


def test_export_checks_the_conv_description(tmp_path):
    """A ``conv`` description that no longer matches the weights is not trusted: the layer is
    written dense instead."""
    rng = np.random.default_rng(14)
    conv = network_from_onnx(_model(*g_conv(rng))).layers[0]
    assert conv.conv is not None and conv.conv["layout"] == "CHW"
    good = Network((2, 9, 8), [conv])
    assert "Conv" in {n.op_type for n in network_to_onnx(good).graph.node}
    stale = Affine(conv.weight * 2.0, conv.bias, conv.out_shape, "scaled", conv.kind, conv.conv)
    net = Network((2, 9, 8), [stale])
    model = network_to_onnx(net, tmp_path / "stale.onnx")
    assert "Conv" not in {n.op_type for n in model.graph.node}
    x = rng.random((5, 2, 9, 8))
    np.testing.assert_allclose(OnnxReference(tmp_path / "stale.onnx").outputs(x), net.forward(x),
                               rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def keras_zoo():
    """The reader-coverage Keras models of tests/model_zoo.py, plus strided 'same'/'valid'
    convolutions that keep their conv description (no batch norm folded into them)."""
    import keras
    from keras import layers as L

    from model_zoo import random_models

    models = random_models()
    keras.utils.set_random_seed(3)
    models["conv-same-strided"] = keras.Sequential([
        keras.Input((28, 28, 1)), L.Conv2D(3, (3, 4), strides=(2, 3), padding="same"), L.ReLU(),
        L.Conv2D(2, 2, strides=2, padding="valid", activation="relu"), L.Flatten(), L.Dense(4)])
    return models


def test_keras_models_export(keras_zoo, tmp_path):
    from verify.keras_io import keras_logits, network_from_keras

    x = np.random.default_rng(15).random((30, 28, 28))
    for name, model in keras_zoo.items():
        net = network_from_keras(model, name)
        path = tmp_path / f"{name}.onnx"
        exported = network_to_onnx(net, path)
        keras = keras_logits(model, x)
        got = OnnxReference(path).outputs(x)
        assert np.max(np.abs(got - keras) / np.maximum(1.0, np.abs(keras))) < 1e-5, name
        ir = net.forward(x)
        assert np.max(np.abs(network_from_onnx(path).forward(x) - ir) / np.maximum(1.0, np.abs(ir))) < 1e-6, name
        convs = sum(isinstance(l, Affine) and l.conv is not None for l in net.layers)
        assert sum(n.op_type == "Conv" for n in exported.graph.node) == convs, name
    assert sum(isinstance(l, Affine) and l.conv is not None
               for l in network_from_keras(keras_zoo["conv-same-strided"]).layers) == 2


@pytest.fixture(scope="module")
def digits200():
    from verify.data import test_digits

    x, _ = test_digits(200)
    return x


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_export_round_trip(bundled, digits200, name, tmp_path):
    from verify.keras_io import keras_logits

    model = bundled[name]
    net = model.network
    path = tmp_path / f"{name}.onnx"
    exported = export_model(model, path)
    props = {p.key: p.value for p in exported.metadata_props}
    assert props["source"] == name and name in exported.doc_string
    x = digits200
    ref = OnnxReference(path)
    got = ref.outputs(x).astype(np.float64)
    keras = keras_logits(model.keras, x)
    assert got.shape == keras.shape == (len(x), net.num_outputs)
    if net.is_binarized:
        assert np.array_equal(got, keras)
    else:
        # float32 round-off scales with the largest logit of the image, not with each one
        scale = np.maximum(1.0, np.abs(keras).max(axis=1, keepdims=True))
        assert np.max(np.abs(got - keras) / scale) < 1e-5
    labels = net.labels_from_logits(keras)
    assert np.array_equal(ref.labels(x), labels)
    assert np.array_equal(net.labels_from_logits(got), labels)
    back = network_from_onnx(path)
    assert back.input_shape == net.input_shape and back.output_activation == net.output_activation
    ir = net.forward(x)
    # weights travel as float32; only products computed in float64 (e.g. 1/36 of an average
    # pool, 1/10 of an ensemble average) can differ in their last bits
    assert np.max(np.abs(back.forward(x) - ir) / np.maximum(1.0, np.abs(ir))) < 1e-6
    assert np.array_equal(back.predict_label(x), net.predict_label(x))
    if any(isinstance(l, Affine) and l.kind == "conv2d" for l in net.layers):
        assert "Conv" in {n.op_type for n in exported.graph.node}
    if net.is_binarized:
        assert np.array_equal(back.forward(x), ir)
        assert back.layers[-1].kind == "binary_dense"


def test_save_onnx_gz(tmp_path):
    net = Network((3,), [Affine(np.eye(2, 3), np.ones(2), (2,), "d")])
    model = network_to_onnx(net)
    path = save_onnx(model, tmp_path / "m.onnx.gz")
    with gzip.open(path, "rb") as f:
        assert f.read() == model.SerializeToString()
    x = np.random.default_rng(1).random((4, 3))
    np.testing.assert_allclose(network_from_onnx(path).forward(x), net.forward(x))
