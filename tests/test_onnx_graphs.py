"""ONNX graphs beyond chains — residual (Add/Sub of two computed values) and Concat blocks,
LeakyReLU/PReLU/Clip/Abs/HardSigmoid/Max/Min, GlobalAveragePool, ReduceMean, Squeeze/Unsqueeze,
MaxPool with ceil_mode, grouped and dilated Conv, input normalisation and the Shape → Gather
→ Concat → Reshape pattern — built with onnx.helper node for node as torch.onnx.export writes
them. For each: Network.forward equals onnxruntime; with the input fixed the MIP (HiGHS) gives
the same logits; interval/symbolic/LP and α-CROWN bounds contain sampled values (region corners
included); export writes an ONNX graph onnxruntime agrees with, which reads back to the same
layers."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from verify.backends import SolveOptions, get_backend
from verify.bounds import compute_bounds as relaxation_bounds
from verify.encodings.relu import encode_network
from verify.encodings.tightening import compute_bounds
from verify.engine.crown import root_bounds, spec_bounds
from verify.engine.model import compile_network
from verify.errors import UnsupportedOperatorError
from verify.network import ReLU
from verify.onnx import OnnxReference, network_from_onnx, network_to_onnx
from verify.problem import ProblemBuilder
from verify.regions import Box, LinfBall

OPSET = 17


def _model(nodes, inits, in_dims, opset=OPSET, out="y"):
    tensors = [numpy_helper.from_array(np.asarray(v, np.float32 if np.asarray(v).dtype.kind == "f"
                                                  else np.asarray(v).dtype), k)
               for k, v in inits.items()]
    graph = helper.make_graph(
        nodes, "torch_jit",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch" if d is None else d for d in in_dims])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], initializer=tensors)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="pytorch",
                              ir_version=helper.find_min_ir_version_for(opsets))
    inferred = onnx.shape_inference.infer_shapes(model)
    model.graph.output[0].CopyFrom(inferred.graph.output[0])
    onnx.checker.check_model(model)
    return model


def _n(op, inputs, output, **attrs):
    # torch names nodes "/layer/Op" and values "/layer/Op_output_0"
    return helper.make_node(op, inputs, [output], name=f"/{output}/{op}", **attrs)


def _f(rng, *shape, scale=0.5):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def _i64(*values):
    return np.array(values, dtype=np.int64)


# -- the graphs --------------------------------------------------------------------------------

def residual_block(rng):
    """relu(conv(relu(conv(x))) + x) → GlobalAveragePool → Squeeze → Gemm (a ResNet block)."""
    nodes = [_n("Conv", ["input", "c1.w", "c1.b"], "c1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             _n("Relu", ["c1"], "r1"),
             _n("Conv", ["r1", "c2.w", "c2.b"], "c2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             _n("Add", ["c2", "input"], "add"),
             _n("Relu", ["add"], "r2"),
             _n("GlobalAveragePool", ["r2"], "gap"),
             _n("Squeeze", ["gap", "axes23"], "flat"),              # AdaptiveAvgPool2d(1) + squeeze
             _n("Gemm", ["flat", "fc.w", "fc.b"], "y", alpha=1.0, beta=1.0, transB=1)]
    inits = {"c1.w": _f(rng, 2, 2, 3, 3), "c1.b": _f(rng, 2), "c2.w": _f(rng, 2, 2, 3, 3),
             "c2.b": _f(rng, 2), "fc.w": _f(rng, 3, 2, scale=2.0), "fc.b": _f(rng, 3), "axes23": _i64(2, 3)}
    return _model(nodes, inits, [None, 2, 4, 4])


def concat_block(rng):
    """Two conv branches concatenated on channels, ReLU, MaxPool(ceil_mode), then
    ``x.view(x.size(0), -1)`` as torch exports it (Shape → Gather → Unsqueeze → Concat →
    Reshape), then a Sub-residual MLP: ``fc2(relu(fc1(h))) − fc3(h)``."""
    nodes = [_n("Conv", ["input", "a.w", "a.b"], "a", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             _n("Conv", ["input", "b.w"], "b", kernel_shape=[1, 1]),
             _n("Concat", ["a", "b"], "cat", axis=1),
             _n("Relu", ["cat"], "r"),
             _n("MaxPool", ["r"], "pool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
             _n("Shape", ["pool"], "shape"),
             _n("Gather", ["shape", "zero"], "batch", axis=0),
             _n("Unsqueeze", ["batch", "axes0"], "batch1"),
             _n("Concat", ["batch1", "minus1"], "target", axis=0),
             _n("Reshape", ["pool", "target"], "flat"),
             _n("Gemm", ["flat", "f1.w", "f1.b"], "f1", transB=1),
             _n("Relu", ["f1"], "f1r"),
             _n("Gemm", ["f1r", "f2.w", "f2.b"], "f2", transB=1),
             _n("Gemm", ["flat", "f3.w"], "f3", transB=1),
             _n("Sub", ["f2", "f3"], "y")]
    inits = {"a.w": _f(rng, 2, 1, 3, 3), "a.b": _f(rng, 2), "b.w": _f(rng, 1, 1, 1, 1),
             "zero": np.array(0, dtype=np.int64), "axes0": _i64(0), "minus1": _i64(-1),
             "f1.w": _f(rng, 4, 18), "f1.b": _f(rng, 4), "f2.w": _f(rng, 3, 4), "f2.b": _f(rng, 3),
             "f3.w": _f(rng, 3, 18)}
    return _model(nodes, inits, [None, 1, 5, 3])


def activations(rng):
    """An MLP with LeakyReLU, PReLU (per-feature slopes), ReLU6 (Clip 0..6), HardTanh
    (Clip −1..1) and Abs, after input normalisation (opset-13+ forms, as torch writes them)."""
    nodes = [_n("Sub", ["input", "mean"], "centred"),
             _n("Div", ["centred", "std"], "normed"),
             _n("Gemm", ["normed", "w1", "b1"], "h1", transB=1),
             _n("LeakyRelu", ["h1"], "a1", alpha=0.1),
             _n("Gemm", ["a1", "w2", "b2"], "h2", transB=1),
             _n("PRelu", ["h2", "slope"], "a2"),
             _n("Gemm", ["a2", "w3", "b3"], "h3", transB=1),
             _n("Clip", ["h3", "zero", "six"], "a3"),
             _n("Gemm", ["a3", "w4", "b4"], "h4", transB=1),
             _n("Clip", ["h4", "m1", "one"], "a4"),
             _n("Abs", ["a4"], "a5"),
             _n("Gemm", ["a5", "w5", "b5"], "y", transB=1)]
    inits = {"mean": np.float32(0.4), "std": np.float32(0.3),
             "w1": _f(rng, 5, 3), "b1": _f(rng, 5), "w2": _f(rng, 5, 5, scale=1.0), "b2": _f(rng, 5),
             "slope": np.array([0.2, -0.3, 1.5, 0.0, 0.7], np.float32), "w3": _f(rng, 5, 5, scale=2.0),
             "b3": _f(rng, 5), "zero": np.float32(0.0), "six": np.float32(6.0),
             "w4": _f(rng, 4, 5), "b4": _f(rng, 4), "m1": np.float32(-1.0), "one": np.float32(1.0),
             "w5": _f(rng, 3, 4, scale=2.0), "b5": _f(rng, 3)}
    return _model(nodes, inits, [None, 3])


def clips(rng):
    """Clip with only a max (``clamp(max=...)``), HardSigmoid, Max/Min with constants and Max
    of two computed values (``torch.maximum``), on parallel branches."""
    nodes = [_n("Gemm", ["input", "w1", "b1"], "h1", transB=1),
             _n("Clip", ["h1", "", "half"], "a1"),
             _n("HardSigmoid", ["a1"], "a2", alpha=0.5, beta=0.25),
             _n("Max", ["h1", "floor"], "a3"),
             _n("Min", ["a3", "half"], "a4"),
             _n("Max", ["a2", "a4"], "a5"),
             _n("Gemm", ["a5", "w2", "b2"], "y", transB=1)]
    inits = {"w1": _f(rng, 4, 3, scale=1.5), "b1": _f(rng, 4), "half": np.float32(0.5),
             "floor": np.array([-0.2, 0.1, -0.5, 0.0], np.float32),
             "w2": _f(rng, 3, 4, scale=2.0), "b2": _f(rng, 3)}
    return _model(nodes, inits, [None, 3])


def shapes_and_convs(rng):
    """Input normalisation, grouped and dilated Conv, Unsqueeze/Squeeze, ReduceMean over the
    spatial axes (``x.mean((2, 3))``) and a ReLU6 through Clip."""
    nodes = [_n("Sub", ["input", "mean"], "centred"),
             _n("Div", ["centred", "std"], "normed"),
             _n("Conv", ["normed", "g.w", "g.b"], "g", kernel_shape=[3, 3], group=2, pads=[1, 1, 1, 1]),
             _n("Relu", ["g"], "gr"),
             _n("Conv", ["gr", "d.w", "d.b"], "d", kernel_shape=[2, 2], dilations=[2, 2]),
             _n("Clip", ["d", "zero", "six"], "d6"),
             _n("Unsqueeze", ["d6", "axes1"], "u"),
             _n("Squeeze", ["u", "axes1"], "s"),
             _n("ReduceMean", ["s"], "m", axes=[2, 3], keepdims=0),
             _n("Gemm", ["m", "fc.w", "fc.b"], "y", transB=1)]
    inits = {"mean": np.array([0.5, 0.4], np.float32).reshape(1, 2, 1, 1),
             "std": np.array([0.25, 0.5], np.float32).reshape(1, 2, 1, 1),
             "g.w": _f(rng, 4, 1, 3, 3), "g.b": _f(rng, 4), "d.w": _f(rng, 3, 4, 2, 2),
             "d.b": _f(rng, 3), "zero": np.float32(0.0), "six": np.float32(6.0), "axes1": _i64(1),
             "fc.w": _f(rng, 2, 3, scale=2.0), "fc.b": _f(rng, 2)}
    return _model(nodes, inits, [None, 2, 5, 5])


GRAPHS = {"residual": residual_block, "concat": concat_block, "activations": activations,
          "clips": clips, "shapes": shapes_and_convs}


@pytest.fixture(scope="module", params=sorted(GRAPHS))
def case(request):
    rng = np.random.default_rng(sorted(GRAPHS).index(request.param) + 21)
    model = GRAPHS[request.param](rng)
    return request.param, model, network_from_onnx(model)


def _ort(model, x):
    return OnnxReference(model).outputs(x.astype(np.float32)).astype(np.float64)


def _points(net, region, rng, n=2000):
    """Samples of the region plus corners of its box."""
    pts = region.sample(rng, n)
    lo, hi = region.lo, region.hi
    corners = np.where(rng.random((200, lo.size)) < 0.5, lo, hi)
    return np.vstack([pts, corners])


def _violation(bounds_lower, bounds_upper, values):
    worst = 0.0
    for v, lo, hi in zip(values, bounds_lower, bounds_upper):
        scale = 1 + np.maximum(np.abs(lo), np.abs(hi))
        worst = max(worst, float(np.max((lo - v) / scale)), float(np.max((v - hi) / scale)))
    return worst


def test_forward_matches_onnxruntime(case):
    name, model, net = case
    rng = np.random.default_rng(1)
    x = rng.random((64,) + tuple(net.input_shape))
    want = _ort(model, x)
    got = net.forward(x)
    assert got.shape == want.shape
    assert np.allclose(got, want, atol=1e-4 * (1 + np.abs(want).max())), name
    assert np.allclose(net.merged_affine().forward(x), got, atol=1e-9 * (1 + np.abs(got).max()))


def test_graph_layers_are_lowered_with_masks(case):
    name, model, net = case
    masked = [l for l in net.layers if isinstance(l, ReLU) and l.mask is not None]
    if name in ("residual", "concat", "activations", "clips"):
        assert masked, name           # values are carried past ReLUs
    for layer in masked:
        assert 0 < layer.num_relus < layer.mask.size
    assert net.num_relus == sum(l.num_relus for l in net.layers if isinstance(l, ReLU))


def test_mip_with_fixed_input_gives_the_logits(case):
    name, model, net = case
    net = net.merged_affine()
    rng = np.random.default_rng(2)
    region = Box(np.full(net.num_inputs, 0.5))
    bounds = relaxation_bounds(net, region, ("interval", "symbolic"))
    builder = ProblemBuilder()
    enc = encode_network(builder, net, region, bounds)
    problem = builder.build()
    assert problem.num_integer > 0
    backend = get_backend("highs")
    for x in rng.random((3, net.num_inputs)):
        problem.lb[enc.input_cols] = x[enc.free_idx]
        problem.ub[enc.input_cols] = x[enc.free_idx]
        result = backend.solve(problem, SolveOptions(time_limit=60))
        assert result.status == "optimal", (name, result.status)
        got, want = enc.logits.evaluate(result.x), net.forward(x)[0]
        assert np.allclose(got, want, atol=1e-5 * (1 + np.abs(want).max())), (name, got, want)


def test_bounds_contain_sampled_values(case):
    name, model, net = case
    net = net.merged_affine()
    rng = np.random.default_rng(3)
    center = rng.uniform(0.3, 0.7, net.num_inputs)
    region = LinfBall(center, 0.15)
    values = net.forward_all(_points(net, region, rng))
    for stages in (("interval",), ("interval", "symbolic"), ("interval", "symbolic", "lp")):
        b = compute_bounds(net, region, stages)
        assert _violation(b.lower, b.upper, values) <= 1e-9, (name, stages)
    # the engine: CROWN bounds of every value, α-CROWN on random rows of the logits (on two
    # of the graphs: each layer costs JAX compilations; the masked ReLUs of the others are the
    # same code, checked on a random graph of every operation in tests/test_graph.py)
    if name not in ("residual", "clips"):
        return
    cnet = compile_network(net)
    rb = root_bounds(cnet, region, steps=0, all_neurons=True)
    assert _violation(rb.lower, rb.upper, values) <= 1e-9, name
    C = rng.normal(size=(4, net.num_outputs))
    lb = spec_bounds(cnet, region, rb, C, steps=8)
    assert np.all(values[-1] @ C.T >= lb[0][None] - 1e-7), name


def test_export_round_trips(case, tmp_path):
    name, model, net = case
    rng = np.random.default_rng(4)
    x = rng.random((32,) + tuple(net.input_shape))
    exported = network_to_onnx(net, tmp_path / f"{name}.onnx")
    ort = _ort(exported, x)
    want = net.forward(x)
    assert np.allclose(ort, want, atol=1e-4 * (1 + np.abs(want).max())), name
    back = network_from_onnx(tmp_path / f"{name}.onnx")
    assert [type(l).__name__ for l in back.layers] == [type(l).__name__ for l in net.layers]
    for a, b in zip(back.layers, net.layers):
        if isinstance(a, ReLU):
            assert np.array_equal(a.relu_entries(), b.relu_entries())
    assert np.allclose(back.forward(x), want, atol=1e-5 * (1 + np.abs(want).max()))


def test_smooth_activations_listed_together():
    rng = np.random.default_rng(5)
    nodes = [_n("Gemm", ["input", "w1", "b1"], "h", transB=1), _n("Tanh", ["h"], "t"),
             _n("Add", ["t", "h"], "skip"), _n("Sigmoid", ["skip"], "s"),
             _n("Gemm", ["s", "w2", "b2"], "g", transB=1), _n("Gelu", ["g"], "y")]
    inits = {"w1": _f(rng, 4, 3), "b1": _f(rng, 4), "w2": _f(rng, 4, 4), "b2": _f(rng, 4)}
    model = _model(nodes, inits, [None, 3], opset=20)
    with pytest.raises(UnsupportedOperatorError) as info:
        network_from_onnx(model)
    listed = dict(info.value.nodes)
    assert set(listed) == {"/t/Tanh", "/s/Sigmoid", "/y/Gelu"}, listed


def test_merges_need_matching_shapes():
    rng = np.random.default_rng(6)
    nodes = [_n("Gemm", ["input", "w1"], "h", transB=1), _n("Relu", ["h"], "r"),
             _n("Gemm", ["r", "w2"], "k", transB=1), _n("Add", ["h", "k"], "y")]
    inits = {"w1": _f(rng, 4, 3), "w2": _f(rng, 1, 4)}
    with pytest.raises(UnsupportedOperatorError, match="different shapes"):
        network_from_onnx(_model(nodes, inits, [None, 3]))
