"""The network IR agrees with Keras, and unsupported models fail with one complete error."""
from __future__ import annotations

import numpy as np
import pytest

from model_zoo import random_models
from verify.errors import UnsupportedLayerError
from verify.keras_io import keras_logits, network_from_keras


def _close(ir: np.ndarray, ref: np.ndarray) -> float:
    """Worst absolute difference, relative to the logit magnitude once it exceeds 1."""
    return float(np.max(np.abs(ir - ref) / np.maximum(1.0, np.abs(ref))))


def test_bundled_models_exist(bundled):
    assert set(bundled) >= {"twoclass", "multiclass", "cnn", "multiclass-large"}


@pytest.mark.parametrize("name", ["twoclass", "multiclass", "cnn", "multiclass-large"])
def test_bundled_forward_matches_keras(bundled, digits, name):
    model = bundled[name]
    x, _ = digits
    ir = model.network.forward(x)
    ref = keras_logits(model.keras, x)
    assert ir.shape == ref.shape == (100, model.network.num_outputs)
    assert _close(ir, ref) < 1e-5
    # and the labels agree with the Keras model's own prediction (probabilities)
    assert np.array_equal(model.network.predict_label(x), model.reference_labels(x))


@pytest.mark.parametrize("name", ["multiclass", "cnn", "multiclass-large"])
def test_bundled_accuracy(bundled, name):
    from verify.data import test_digits

    x, y = test_digits()
    acc = np.mean(bundled[name].network.predict_label(x) == y)
    assert acc > 0.85, f"{name}: {acc:.3f}"


def test_twoclass_accuracy(bundled):
    from verify.data import test_digits

    x, y = test_digits()
    keep = (y == 1) | (y == 3)
    acc = np.mean(bundled["twoclass"].network.predict_label(x[keep]) == (y[keep] == 3))
    assert acc > 0.97


@pytest.mark.parametrize("name", sorted(random_models()))
def test_random_models_match_keras(name, rng):
    model = random_models()[name]
    net = network_from_keras(model)
    x = rng.random((40, 28, 28))
    ref = keras_logits(model, x)
    assert _close(net.forward(x), ref) < 1e-5
    # merging consecutive affine layers changes nothing
    assert _close(net.merged_affine().forward(x), ref) < 1e-5


def test_layer_types_covered():
    kinds = set()
    for model in random_models().values():
        kinds |= {type(l).__name__ for l in model.layers}
        kinds |= {(type(l).__name__, getattr(l, "padding", None)) for l in model.layers
                  if hasattr(l, "padding")}
    for needed in ["Dense", "Conv2D", "AveragePooling2D", "MaxPooling2D", "Flatten", "Reshape",
                   "Dropout", "BatchNormalization", "ReLU", "Activation", "Softmax"]:
        assert needed in kinds
    for layer in ["Conv2D", "AveragePooling2D", "MaxPooling2D"]:
        assert (layer, "same") in kinds and (layer, "valid") in kinds


def test_final_activation_is_recorded(bundled):
    assert bundled["twoclass"].network.output_activation == "sigmoid"
    assert bundled["cnn"].network.output_activation == "softmax"
    assert bundled["twoclass"].network.num_classes == 2


def test_two_unsupported_layers_one_error():
    import keras
    from keras import layers as L

    model = keras.Sequential([keras.Input((28, 28, 1)), L.Flatten(), L.Dense(5, activation="tanh"),
                              L.LayerNormalization(name="norm"), L.Dense(3)])
    with pytest.raises(UnsupportedLayerError) as err:
        network_from_keras(model)
    names = [n for n, _ in err.value.layers]
    assert len(names) == 2 and "norm" in names
    assert "tanh" in str(err.value) and "LayerNormalization" in str(err.value)


def test_branching_model_is_unsupported():
    import keras
    from keras import layers as L

    # (parallel members merged by Average/Add are ensembles, supported: tests/test_ensembles.py;
    # piecewise-linear merges such as Concatenate are graphs, tests/test_keras_graphs.py)
    inp = keras.Input((4,))
    a, b = L.Dense(3, name="left")(inp), L.Dense(3, name="right")(inp)
    model = keras.Model(inp, L.Multiply(name="join")([a, b]))
    with pytest.raises(UnsupportedLayerError) as err:
        network_from_keras(model)
    assert "join" in str(err.value)


def test_softmax_in_the_middle_is_unsupported():
    import keras
    from keras import layers as L

    model = keras.Sequential([keras.Input((4,)), L.Dense(3, activation="softmax", name="mid"),
                              L.Dense(2)])
    with pytest.raises(UnsupportedLayerError, match="mid"):
        network_from_keras(model)


def test_forward_accepts_single_and_flat_inputs(bundled, digits):
    net = bundled["multiclass"].network
    x = digits[0][:3]
    batch = net.forward(x)
    assert np.allclose(net.forward(x[0]), batch[:1])
    assert np.allclose(net.forward(x.reshape(3, 784)), batch)
    assert net.label(x[0]) == int(np.argmax(batch[0]))
