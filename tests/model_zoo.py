"""Small randomly initialised Keras models covering every supported layer type, for tests."""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np


def _randomise_batchnorm(model, rng):
    from keras import layers as L

    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, c), rng.normal(size=c),
                               rng.normal(size=c) * 0.3, rng.uniform(0.3, 2, c)])
    return model


def random_models(seed: int = 0) -> dict:
    """name -> Keras model. Together they use every layer the reader supports, both padding
    modes, strides, batch norm before/after affine layers, and sigmoid/softmax/linear ends."""
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    models = {
        "conv-same-stride-bn-maxpool": keras.Sequential([
            keras.Input((28, 28, 1)),
            L.Conv2D(4, 3, padding="same", strides=2, activation="relu"),
            L.BatchNormalization(),
            L.MaxPooling2D(2, padding="same"),
            L.Conv2D(3, (3, 2), padding="valid"),
            L.AveragePooling2D((3, 3), strides=2, padding="same"),
            L.ReLU(),
            L.Flatten(),
            L.Dropout(0.3),
            L.Dense(7),
            L.BatchNormalization(),
            L.Activation("relu"),
            L.Dense(5, activation="softmax"),
        ]),
        "seed-cnn": keras.Sequential([
            keras.Input((28, 28, 1)), L.Conv2D(10, 3), L.AveragePooling2D(6), L.ReLU(),
            L.Flatten(), L.Dense(10, activation="softmax")]),
        "flat-input-reshape-maxpool-valid-sigmoid": keras.Sequential([
            keras.Input((784,)), L.Reshape((28, 28, 1)), L.MaxPooling2D(3, strides=2),
            L.Flatten(), L.BatchNormalization(), L.Dense(8, activation="relu"),
            L.Dense(1, activation="sigmoid")]),
        "conv-same-relu-avgpool-valid-linear": keras.Sequential([
            keras.Input((28, 28)), L.Reshape((28, 28, 1)),
            L.Conv2D(2, 5, strides=3, padding="same", use_bias=False),
            L.BatchNormalization(), L.ReLU(), L.AveragePooling2D(2, padding="valid"),
            L.Flatten(), L.Dense(4)]),
    }
    inp = keras.Input((28, 28, 1))
    h = L.Flatten()(inp)
    h = L.Dense(6, activation="relu")(h)
    h = L.Dense(3)(h)
    models["functional-softmax-layer"] = keras.Model(inp, L.Softmax()(h))
    for model in models.values():
        _randomise_batchnorm(model, rng)
    return models


def tiny_dense(n_in: int, hidden: list[int], n_out: int, seed: int = 0, scale: float = 1.0):
    """A tiny dense ReLU Keras model (input shape (n_in,)) with random weights, for brute force."""
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = keras.Sequential([keras.Input((n_in,))] + [L.Dense(h, activation="relu") for h in hidden]
                             + [L.Dense(n_out)])
    model.set_weights([scale * rng.normal(size=w.shape) for w in model.get_weights()])
    return model


def tiny_cnn(seed: int = 0, padding: str = "valid", pool: str = "max"):
    """A tiny CNN on 6x6 inputs: Conv2D(2, 3x3) -> ReLU -> 2x2 pooling -> Dense(3)."""
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(seed)
    pooling = L.MaxPooling2D(2, padding=padding) if pool == "max" else L.AveragePooling2D(2, padding=padding)
    return keras.Sequential([keras.Input((6, 6, 1)), L.Conv2D(2, 3, padding=padding, activation="relu"),
                             pooling, L.Flatten(), L.Dense(3)])
