"""Keras functional graphs: residual blocks (Add, Subtract), Concatenate, Average / Maximum /
Minimum merges, LeakyReLU / PReLU, ReLU with max_value and negative_slope, the relu6 /
leaky_relu / hard_tanh / hard_sigmoid activations, GlobalAveragePooling2D and
GlobalMaxPooling2D: ``Network.forward`` equals Keras on small random models; what is not
piecewise-linear-exact is refused, every such layer in one error; a residual model exported
to ONNX by the package's writer reads back and runs in onnxruntime as in Keras."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from verify.errors import UnsupportedLayerError
from verify.keras_io import import_keras, keras_logits, network_from_keras
from verify.models import export_model, load_model
from verify.network import ReLU
from verify.onnx import OnnxReference

keras = import_keras()
layers = keras.layers
ROOT = Path(__file__).resolve().parents[1]


def _inputs(shape, n=16, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.5, 1.5, (n,) + tuple(shape)).astype(np.float32)


def _agrees(model, x: np.ndarray, tol: float = 1e-5):
    """The IR read from ``model`` computes Keras's logits on ``x`` (relative to max(1, |z|))."""
    net = network_from_keras(model)
    ours = net.forward(x.astype(np.float64).reshape(len(x), -1))
    ref = keras_logits(model, x)
    err = np.max(np.abs(ours - ref) / np.maximum(1.0, np.abs(ref)))
    assert err < tol, err
    return net


def _residual(seed: int = 0):
    keras.utils.set_random_seed(seed)
    i = keras.Input((8, 8, 2), name="image")
    h = layers.Conv2D(4, 3, strides=2, padding="valid", activation="relu", name="conv")(i)
    r = layers.Conv2D(4, 3, padding="same", activation="relu", name="block_1")(h)
    r = layers.Conv2D(4, 3, padding="same", name="block_2")(r)
    s = layers.ReLU(name="block_relu")(layers.Add(name="add")([h, r]))
    o = layers.Dense(3, activation="softmax", name="logits")(layers.Flatten()(s))
    return keras.Model(i, o, name="residual")


def test_residual_block():
    model = _residual()
    net = _agrees(model, _inputs((8, 8, 2)))
    assert net.output_activation == "softmax" and net.input_shape == (8, 8, 2)
    assert net.num_relus == 3 * 3 * 4 * 3        # conv, block_1, block_relu; none carried


def test_concat_average_subtract_maximum_minimum():
    keras.utils.set_random_seed(1)
    i = keras.Input((6,))
    a = layers.Dense(5, activation="relu")(i)
    b = layers.Dense(5)(i)
    c = layers.Dense(5, activation="relu")(a)
    cat = layers.Concatenate()([a, b, c])                      # 15
    avg = layers.Average()([a, b, c])
    sub = layers.Subtract()([c, b])
    mx = layers.Maximum()([a, b, sub])
    mn = layers.Minimum()([avg, b])
    o = layers.Dense(4)(layers.Concatenate(axis=-1)([cat, mx, mn]))
    _agrees(keras.Model(i, o), _inputs((6,)))
    # concatenation along the channels of images (axis 3) and along the height (axis 1)
    keras.utils.set_random_seed(2)
    i = keras.Input((5, 5, 1))
    p = layers.Conv2D(2, 3, padding="same")(i)
    q = layers.Conv2D(3, 3, padding="same", activation="relu")(i)
    ch = layers.Concatenate(axis=3)([p, q])
    hh = layers.Concatenate(axis=1)([ch, ch])
    o = layers.Dense(2)(layers.Flatten()(hh))
    _agrees(keras.Model(i, o), _inputs((5, 5, 1)))


def test_leaky_prelu_relu6_and_clipped_relus():
    keras.utils.set_random_seed(3)
    i = keras.Input((4, 4, 1))
    h = layers.Conv2D(3, 2, activation="leaky_relu")(i)
    h = layers.LeakyReLU(negative_slope=0.3)(layers.Conv2D(3, 2)(h))
    h = layers.PReLU(alpha_initializer=keras.initializers.RandomUniform(-0.5, 1.5))(h)
    h = layers.Conv2D(4, 1, activation="relu6")(h)
    h = layers.ReLU(max_value=0.7, negative_slope=0.05)(layers.Conv2D(4, 1)(h))
    h = layers.ReLU(max_value=1.0)(h)
    h = layers.Activation("hard_tanh")(layers.Flatten()(h))
    o = layers.Dense(3, activation="hard_sigmoid")(h)
    o = layers.Dense(2)(o)
    model = keras.Model(i, o)
    x = _inputs((4, 4, 1), n=32) * 4            # well into every clipped range
    _agrees(model, x)
    # relu6 saturates: inputs far above 6 are clipped
    seq = keras.Sequential([keras.Input((3,)), layers.Dense(3, activation="relu6"),
                            layers.LeakyReLU(negative_slope=0.2), layers.Dense(2)])
    seq.layers[0].set_weights([np.eye(3, dtype=np.float32) * 10, np.zeros(3, np.float32)])
    _agrees(seq, _inputs((3,)) * 3)


def test_global_pooling():
    keras.utils.set_random_seed(4)
    i = keras.Input((6, 5, 2))
    h = layers.Conv2D(3, 3, activation="relu")(i)
    avg = layers.GlobalAveragePooling2D()(h)
    mx = layers.GlobalMaxPooling2D()(h)
    keep = layers.Flatten()(layers.GlobalAveragePooling2D(keepdims=True)(h))
    o = layers.Dense(4, activation="softmax")(layers.Concatenate()([avg, mx, keep]))
    net = _agrees(keras.Model(i, o), _inputs((6, 5, 2)))
    assert net.output_activation == "softmax"


def test_chains_read_as_before():
    """A chain without graph-only layers keeps the chain reading: the same layers as before,
    an unmasked ReLU."""
    keras.utils.set_random_seed(5)
    seq = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="relu"), layers.Dense(2)])
    net = network_from_keras(seq)
    assert [type(l).__name__ for l in net.layers] == ["Affine", "ReLU", "Affine"]
    assert net.layers[1].mask is None


def test_unsupported_layers_all_in_one_error():
    keras.utils.set_random_seed(6)
    i = keras.Input((6,))
    a = layers.Dense(4, activation="tanh", name="smooth")(i)
    b = layers.Dense(4, name="plain")(i)
    m = layers.Multiply(name="product")([a, b])
    t = layers.ReLU(threshold=0.5, name="thresholded")(m)
    d = layers.Dense(4, activation="gelu", name="gelu_after")(t)
    e = layers.Dense(4, activation="sigmoid", name="sigmoid_mid")(b)
    o = layers.Dense(2, name="out")(layers.Add()([d, e]))
    with pytest.raises(UnsupportedLayerError) as info:
        network_from_keras(keras.Model(i, o))
    names = [n for n, _ in info.value.layers]
    assert sorted(names) == ["gelu_after", "product", "sigmoid_mid", "smooth", "thresholded"]
    text = str(info.value)
    assert "activation 'tanh' not supported" in text and "threshold=0.5" in text
    assert "Multiply: merges 2 tensors" in text and "activation 'gelu'" in text
    assert "'sigmoid' only as the last layer" in text


def test_residual_model_round_trips_through_onnx(tmp_path):
    """Exported by the package's writer, read back by the ONNX reader: the network and
    onnxruntime both compute Keras's logits."""
    model = _residual(seed=7)
    x = _inputs((8, 8, 2), n=8, seed=1)
    ref = keras_logits(model, x)
    path = tmp_path / "residual.onnx"
    export_model(model, path)
    back = load_model(path)
    ours = back.network.forward(x.astype(np.float64).reshape(len(x), -1))
    runtime = OnnxReference(path).outputs(x).astype(np.float64)
    for out in (ours, runtime):
        assert np.max(np.abs(out - ref) / np.maximum(1.0, np.abs(ref))) < 1e-5
    assert back.network.num_relus == network_from_keras(model).num_relus


def test_bundled_resnet_small(digits):
    """The bundled residual CNN reads as a graph (3,042 ReLUs, the skip value carried through
    masked ReLUs), computes Keras's logits and labels, and its ONNX form (written as
    converters write graphs, benchmarks/resnet-small) is read back by the ONNX reader."""
    model = load_model("resnet-small")
    net = model.network
    assert net.num_relus == 3042 and net.output_activation == "softmax"
    assert any(isinstance(l, ReLU) and l.mask is not None for l in net.layers)
    x, _ = digits
    ref = keras_logits(model.keras, x[:50])
    assert np.max(np.abs(net.forward(x[:50]) - ref) / np.maximum(1.0, np.abs(ref))) < 1e-5
    assert np.array_equal(net.predict_label(x), model.reference_labels(x))
    back = load_model(ROOT / "benchmarks" / "resnet-small" / "resnet-small.onnx")
    assert np.max(np.abs(back.network.forward(x[:50]) - ref) / np.maximum(1.0, np.abs(ref))) < 1e-5


def _mixed(seed: int = 3):
    """Concatenate, LeakyReLU, ReLU(max_value=6) and GlobalAveragePooling2D in one graph."""
    keras.utils.set_random_seed(seed)
    i = keras.Input((6, 6, 1))
    h = layers.Conv2D(3, 3, padding="same", activation="relu")(i)
    r = layers.Conv2D(3, 3, padding="same")(h)
    c = layers.Concatenate()([layers.ReLU()(layers.Add()([h, r])), layers.LeakyReLU(0.2)(h)])
    g = layers.GlobalAveragePooling2D()(c)
    d = layers.ReLU(max_value=6.0)(layers.Dense(5)(g))
    return keras.Model(i, layers.Dense(3)(d), name="mixed")


@pytest.mark.parametrize("build", [_residual, _mixed], ids=["residual", "mixed"])
def test_functional_graphs_mip_and_bounds(build):
    """With the input fixed, the MIP of a Keras functional graph gives Keras's logits, and
    interval / symbolic / LP bounds over a box contain 2,000 sampled values and corners."""
    from verify.backends import SolveOptions, get_backend
    from verify.bounds import compute_bounds as relaxation_bounds
    from verify.encodings.relu import encode_network
    from verify.encodings.tightening import compute_bounds
    from verify.problem import ProblemBuilder
    from verify.regions import Box, LinfBall

    model = build()
    net = _agrees(model, np.random.default_rng(4).uniform(0, 1, (16,) + tuple(model.input_shape[1:]))
                  .astype(np.float32)).merged_affine()
    rng = np.random.default_rng(5)
    region = Box(np.full(net.num_inputs, 0.5))
    builder = ProblemBuilder()
    enc = encode_network(builder, net, region, relaxation_bounds(net, region, ("interval", "symbolic")))
    problem = builder.build()
    for x in rng.random((3, net.num_inputs)):
        problem.lb[enc.input_cols] = x[enc.free_idx]
        problem.ub[enc.input_cols] = x[enc.free_idx]
        result = get_backend("highs").solve(problem, SolveOptions(time_limit=60))
        want = keras_logits(model, x.reshape((1,) + tuple(model.input_shape[1:])).astype(np.float32))[0]
        assert result.status == "optimal"
        assert np.allclose(enc.logits.evaluate(result.x), want, atol=1e-4 * (1 + np.abs(want).max()))
    ball = LinfBall(rng.uniform(0.3, 0.7, net.num_inputs), 0.15)
    points = np.vstack([ball.sample(rng, 2000),
                        np.where(rng.random((200, net.num_inputs)) < 0.5, ball.lo, ball.hi)])
    values = net.forward_all(points)
    for stages in (("interval",), ("interval", "symbolic"), ("interval", "symbolic", "lp")):
        b = compute_bounds(net, ball, stages)
        for v, lo, hi in zip(values, b.lower, b.upper):
            scale = 1 + np.maximum(np.abs(lo), np.abs(hi))
            assert np.all((lo - v) / scale <= 1e-9) and np.all((v - hi) / scale <= 1e-9), stages
