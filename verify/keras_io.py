"""Read a Keras model into the network IR (:class:`verify.network.Network`).

Supported (Sequential and single-input, single-output functional chains): InputLayer, Dense,
Conv2D (valid/same padding, any strides, channels_last, no dilation/groups),
AveragePooling2D and MaxPooling2D (valid/same), Flatten, Reshape, Dropout (identity at
inference), BatchNormalization (folded into the neighbouring affine layer), ReLU and linear
activations (as a layer or as a layer's ``activation``), and a final sigmoid or softmax
(dropped: the IR ends at the logits). Binarized networks (:mod:`verify.layers`):
BinarizeInput, IntegerInput, ``BinaryDense -> [BatchNormalization] -> Sign`` blocks (folded
into one :class:`~verify.network.SignBlock`, see :func:`fold_sign_block`) and a final
BinaryDense. Anything else raises one :class:`~verify.errors.UnsupportedLayerError` that
names every unsupported layer.

This is the only module that imports Keras.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from .errors import ModelLoadError, UnsupportedLayerError
from .network import Affine, Binarize, Layer, MaxPool, Network, Quantize, ReLU, SignBlock

os.environ.setdefault("KERAS_BACKEND", "jax")

FINAL_ACTIVATIONS = ("sigmoid", "softmax")


def import_keras():
    """Import Keras (JAX backend unless the user chose another) with its chatter silenced."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras  # noqa: WPS433

    importlib.import_module(f"{__package__}.layers")    # registers the BNN layers for load_model

    return keras


def load_keras_model(path: str | os.PathLike) -> Any:
    """Load a ``.keras`` (or legacy ``.h5``) file; clear errors for missing or corrupt files."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"model file not found: {path}")
    if path.is_dir() or path.suffix.lower() not in (".keras", ".h5", ".hdf5"):
        raise ModelLoadError(
            f"{path} is not a Keras model file (expected .keras or .h5); "
            "bundled models are referenced by name, see `verify models`")
    keras = import_keras()

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a corrupt file
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot load {path} as a Keras model: {msg[:300]}") from None


# ---------------------------------------------------------------------------------------------
# layer handlers: (layer, input shape, is_last) -> (IR layers, output shape, final activation)
# A handler raises _Unsupported(reason) for a layer it cannot represent.

class _Unsupported(Exception):
    pass


def _activation_name(layer) -> str:
    act = getattr(layer, "activation", None)
    if act is None:
        return "linear"
    return getattr(act, "__name__", str(act))


def _activation_layers(name: str, shape: tuple, layer_name: str, is_last: bool):
    """IR layers for an activation, and the final activation it sets (if any)."""
    if name == "linear":
        return [], None
    if name == "relu":
        return [ReLU(shape, f"{layer_name}.relu")], None
    if name in FINAL_ACTIVATIONS and is_last:
        return [], name
    where = "only as the last layer" if name in FINAL_ACTIVATIONS else "not supported"
    raise _Unsupported(f"activation '{name}' {where}")


def _dense(layer, shape, is_last):
    if len(shape) != 1:
        raise _Unsupported(f"Dense on a {len(shape)}-D input {shape}; add a Flatten first")
    weights = layer.get_weights()
    kernel = np.asarray(weights[0], dtype=np.float64)
    bias = np.asarray(weights[1], dtype=np.float64) if layer.use_bias else np.zeros(kernel.shape[1])
    out = (kernel.shape[1],)
    ir: list[Layer] = [Affine(kernel.T.copy(), bias, out, layer.name, "dense")]
    acts, final = _activation_layers(_activation_name(layer), out, layer.name, is_last)
    return ir + acts, out, final


def _padding(size: int, k: int, stride: int, padding: str) -> tuple[int, int]:
    """Output size and leading padding, with Keras/TensorFlow 'valid'/'same' semantics."""
    if padding == "valid":
        return (size - k) // stride + 1, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return out, total // 2


def _window_indices(shape, pool, strides, padding):
    """For a 2-D sliding window over (H, W, C): output shape and, per output, input indices.

    Returns ``(out_shape, idx)`` with ``idx`` of shape (Ho, Wo, kh, kw, C) holding flat input
    indices, ``-1`` where the window lies in the padding.
    """
    if len(shape) != 3:
        raise _Unsupported(f"needs a (height, width, channels) input, got {shape}")
    H, W, C = shape
    (kh, kw), (sh, sw) = pool, strides
    Ho, pt = _padding(H, kh, sh, padding)
    Wo, pl = _padding(W, kw, sw, padding)
    if Ho <= 0 or Wo <= 0:
        raise _Unsupported(f"window {pool} larger than input {shape}")
    ih = (np.arange(Ho) * sh - pt)[:, None] + np.arange(kh)[None, :]          # (Ho, kh)
    iw = (np.arange(Wo) * sw - pl)[:, None] + np.arange(kw)[None, :]          # (Wo, kw)
    valid = ((ih >= 0) & (ih < H))[:, None, :, None] & ((iw >= 0) & (iw < W))[None, :, None, :]
    flat = (ih[:, None, :, None] * W + iw[None, :, None, :]) * C               # (Ho, Wo, kh, kw)
    idx = flat[..., None] + np.arange(C)                                       # (Ho,Wo,kh,kw,C)
    idx = np.where(valid[..., None], idx, -1)
    return (Ho, Wo, C), idx


def _check_channels_last(layer):
    fmt = getattr(layer, "data_format", "channels_last")
    if fmt != "channels_last":
        raise _Unsupported(f"data_format={fmt!r} (only channels_last)")


def _conv2d(layer, shape, is_last):
    _check_channels_last(layer)
    if tuple(layer.dilation_rate) != (1, 1):
        raise _Unsupported(f"dilation_rate={tuple(layer.dilation_rate)}")
    if getattr(layer, "groups", 1) != 1:
        raise _Unsupported(f"groups={layer.groups}")
    weights = layer.get_weights()
    kernel = np.asarray(weights[0], dtype=np.float64)          # (kh, kw, C, F)
    kh, kw, C, F = kernel.shape
    if len(shape) != 3 or shape[2] != C:
        raise _Unsupported(f"input shape {shape} does not match kernel {kernel.shape}")
    bias = np.asarray(weights[1], dtype=np.float64) if layer.use_bias else np.zeros(F)
    (Ho, Wo, _), idx = _window_indices(shape, (kh, kw), tuple(layer.strides), layer.padding)
    # rows: output (oh, ow, f); cols: input idx[oh, ow, i, j, c]; value kernel[i, j, c, f]
    rows = (np.arange(Ho * Wo).reshape(Ho, Wo, 1, 1, 1, 1) * F
            + np.arange(F).reshape(1, 1, 1, 1, 1, F))
    cols = idx[..., None]
    vals = kernel[None, None]
    rows, cols, vals = np.broadcast_arrays(rows, cols, vals)
    keep = cols >= 0
    n_in = int(np.prod(shape))
    weight = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(Ho * Wo * F, n_in))
    out = (Ho, Wo, F)
    ir: list[Layer] = [Affine(weight, np.tile(bias, Ho * Wo), out, layer.name, "conv2d")]
    acts, final = _activation_layers(_activation_name(layer), out, layer.name, is_last)
    return ir + acts, out, final


def _pool_geometry(layer, shape):
    _check_channels_last(layer)
    pool = tuple(layer.pool_size)
    strides = tuple(layer.strides) if layer.strides is not None else pool
    out, idx = _window_indices(shape, pool, strides, layer.padding)
    return out, idx.reshape(int(np.prod(out[:2])), -1, shape[2]).transpose(0, 2, 1).reshape(
        int(np.prod(out)), -1)


def _avgpool(layer, shape, is_last):
    out, idx = _pool_geometry(layer, shape)
    # Keras averages over the window's valid (non-padding) entries
    counts = (idx >= 0).sum(axis=1)
    rows = np.repeat(np.arange(idx.shape[0]), idx.shape[1]).reshape(idx.shape)
    keep = idx >= 0
    vals = np.broadcast_to((1.0 / counts)[:, None], idx.shape)
    weight = sp.csr_matrix((vals[keep], (rows[keep], idx[keep])), shape=(idx.shape[0], int(np.prod(shape))))
    return [Affine(weight, np.zeros(idx.shape[0]), out, layer.name, "avgpool")], out, None


def _maxpool(layer, shape, is_last):
    out, idx = _pool_geometry(layer, shape)
    return [MaxPool(idx, int(np.prod(shape)), out, layer.name)], out, None


def _flatten(layer, shape, is_last):
    return [], (int(np.prod(shape)),), None


def _reshape(layer, shape, is_last):
    target = list(layer.target_shape)
    if -1 in target:
        known = int(np.prod([d for d in target if d != -1]))
        target[target.index(-1)] = int(np.prod(shape)) // known
    if int(np.prod(target)) != int(np.prod(shape)):
        raise _Unsupported(f"cannot reshape {shape} to {tuple(layer.target_shape)}")
    return [], tuple(target), None


def _identity(layer, shape, is_last):
    return [], shape, None


def _batchnorm(layer, shape, is_last):
    axis = layer.axis if isinstance(layer.axis, int) else (layer.axis[0] if len(layer.axis) == 1 else None)
    if axis not in (-1, len(shape)):
        raise _Unsupported(f"normalises axis {layer.axis}; only the last (channel) axis")
    gamma = np.asarray(layer.gamma.numpy(), dtype=np.float64) if layer.scale else 1.0
    beta = np.asarray(layer.beta.numpy(), dtype=np.float64) if layer.center else 0.0
    mean = np.asarray(layer.moving_mean.numpy(), dtype=np.float64)
    var = np.asarray(layer.moving_variance.numpy(), dtype=np.float64)
    scale = gamma / np.sqrt(var + layer.epsilon)
    shift = beta - mean * scale
    reps = int(np.prod(shape)) // scale.size
    scale, shift = np.tile(scale, reps), np.tile(np.broadcast_to(shift, mean.shape), reps)
    diag = sp.diags(scale, format="csr")
    return [Affine(diag, shift, shape, layer.name, "batchnorm")], shape, None


def _activation(layer, shape, is_last):
    acts, final = _activation_layers(_activation_name(layer), shape, layer.name, is_last)
    return acts, shape, final


def _relu_layer(layer, shape, is_last):
    if (layer.max_value is not None or float(layer.negative_slope) != 0.0
            or float(layer.threshold) != 0.0):
        raise _Unsupported("ReLU with max_value/negative_slope/threshold")
    return [ReLU(shape, layer.name)], shape, None


def _softmax_layer(layer, shape, is_last):
    if not is_last:
        raise _Unsupported("Softmax only as the last layer")
    return [], shape, "softmax"


def _binarize_input(layer, shape, is_last):
    return [Binarize(float(layer.threshold), shape, layer.name)], shape, None


def _integer_input(layer, shape, is_last):
    return [Quantize(int(layer.levels), shape, layer.name)], shape, None


def _binary_dense(layer, shape, is_last):
    """A BinaryDense not followed by Sign: an affine layer with ±1 weights (BNN logits)."""
    if len(shape) != 1:
        raise _Unsupported(f"BinaryDense on a {len(shape)}-D input {shape}; add a Flatten first")
    weight, bias = _binary_weights(layer)
    out = (weight.shape[0],)
    return [Affine(weight.astype(np.float64), bias.astype(np.float64), out, layer.name,
                   "binary_dense")], out, None


def _binary_weights(layer) -> tuple[np.ndarray, np.ndarray]:
    """The ±1 weights (n_out, n_in) as int8 exactly as the layer binarises them, and the bias."""
    kernel = np.asarray(layer.kernel.numpy(), dtype=np.float32)
    weight = np.where(kernel >= 0, 1, -1).astype(np.int8).T.copy()
    bias = (np.asarray(layer.bias.numpy(), dtype=np.float32) if layer.use_bias
            else np.zeros(weight.shape[0], np.float32))
    return weight, bias


def _sign_alone(layer, shape, is_last):
    raise _Unsupported("Sign must follow a BinaryDense (optionally with a BatchNormalization "
                       "between them)")


def fold_sign_block(dense, batchnorm, sign, input_magnitude: int, name: str) -> SignBlock:
    """``Sign(BatchNorm(BinaryDense(x)))`` as integer thresholds, exactly as Keras computes it.

    With integer inputs of magnitude at most ``input_magnitude``, the sum ``s = sign(W) x`` is
    an integer in [-R, R] (``R = n_in * input_magnitude``), and the block's output is a
    function of ``s`` alone: ``Sign(BatchNorm(float32(s) + bias))``. In floating point that
    function is still monotone in ``s`` (rounding preserves order), so it is a step, and the
    step is found by bisection on the Keras layers themselves, evaluated in float32, for all
    neurons at once: ``+1`` exactly when ``s >= T`` (increasing), ``s <= T`` (decreasing:
    stored as ``-s >= -T``), or always/never (a constant neuron, stored as a zero row).
    The values on both sides of each step are evaluated again as a check.
    """
    weight, bias = _binary_weights(dense)
    n_out, n_in = weight.shape
    bound = n_in * int(input_magnitude)

    def output(sums: np.ndarray) -> np.ndarray:   # sums: (rows, n_out) integers
        z = np.asarray(sums, dtype=np.float32) + bias[None, :]        # float32, as Keras adds
        y = batchnorm(z, training=False) if batchnorm is not None else z
        return np.asarray(sign(y)).reshape(z.shape) > 0

    lo = np.full(n_out, -bound, dtype=np.int64)
    hi = np.full(n_out, bound, dtype=np.int64)
    at_lo, at_hi = output(lo[None])[0], output(hi[None])[0]
    constant = at_lo == at_hi
    rising = ~at_lo & at_hi
    # invariant: output(lo) == at_lo and output(hi) == at_hi for the non-constant neurons
    while np.any((hi - lo > 1) & ~constant):
        mid = (lo + hi) // 2
        at_mid = output(mid[None])[0]
        moves_hi = (at_mid == at_hi) & ~constant
        hi = np.where(moves_hi, mid, hi)
        lo = np.where(~moves_hi & ~constant, mid, lo)
    signs = np.where(rising, 1, -1).astype(np.int8)
    threshold = np.where(rising, hi, -lo)
    threshold = np.where(constant, np.where(at_lo, 0, 1), threshold)
    folded = (weight * signs[:, None]) * (~constant)[:, None].astype(np.int8)
    # check both sides of every step against Keras
    step_lo, step_hi = np.where(rising, lo, hi), np.where(rising, hi, lo)
    for sums in (step_lo, step_hi):
        want = output(sums[None])[0]
        got = np.where(constant, at_lo, signs * sums >= threshold)
        if np.any(want != got):
            bad = np.flatnonzero(want != got)[:5].tolist()
            raise _Unsupported(f"batch norm + sign is not a monotone step in neurons {bad}")
    return SignBlock(folded.astype(np.int8), threshold.astype(np.int64), (n_out,), name)


HANDLERS: dict[str, Callable] = {
    "InputLayer": _identity,
    "Dense": _dense,
    "Conv2D": _conv2d,
    "AveragePooling2D": _avgpool,
    "MaxPooling2D": _maxpool,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Dropout": _identity,
    "BatchNormalization": _batchnorm,
    "Activation": _activation,
    "ReLU": _relu_layer,
    "Softmax": _softmax_layer,
    "BinarizeInput": _binarize_input,
    "IntegerInput": _integer_input,
    "BinaryDense": _binary_dense,
    "Sign": _sign_alone,
}


def _integer_magnitude(ir: list[Layer]) -> int | None:
    """The largest |value| the IR so far outputs when those values are integers, else None."""
    if not ir:
        return None
    last = ir[-1]
    if isinstance(last, (Binarize, SignBlock)):
        return 1
    if isinstance(last, Quantize):
        return last.levels
    return None


def _sign_block_span(layers: list, i: int) -> tuple | None:
    """``(dense, batchnorm or None, sign)`` when ``layers[i:]`` starts with BinaryDense
    [BatchNormalization] Sign, else None."""
    kinds = [type(l).__name__ for l in layers[i:i + 3]]
    if kinds[:2] == ["BinaryDense", "Sign"]:
        return layers[i], None, layers[i + 1]
    if kinds == ["BinaryDense", "BatchNormalization", "Sign"]:
        return layers[i], layers[i + 1], layers[i + 2]
    return None


def _sign_block(dense, batchnorm, sign, shape: tuple, ir: list[Layer]) -> SignBlock:
    if len(shape) != 1:
        raise _Unsupported(f"BinaryDense on a {len(shape)}-D input {shape}; add a Flatten first")
    magnitude = _integer_magnitude(ir)
    if magnitude is None:
        raise _Unsupported("a BinaryDense-Sign block needs integer inputs: put BinarizeInput or "
                           "IntegerInput before the first block")
    if batchnorm is not None:
        _batchnorm(batchnorm, (dense.units,), False)      # same checks as a lone batch norm
    return fold_sign_block(dense, batchnorm, sign, magnitude, dense.name)


def _chain(model) -> list:
    """The model's layers in order, or UnsupportedLayerError if it is not a single chain."""
    keras = import_keras()
    if isinstance(model, keras.Sequential):
        return list(model.layers)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedLayerError([(model.name, f"{len(model.inputs)} inputs and "
                                      f"{len(model.outputs)} outputs; only one of each")])
    bad, layers = [], []
    previous = model.inputs[0]
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        inp = layer.input
        if isinstance(inp, (list, tuple)) and len(inp) != 1:
            bad.append((layer.name, f"{type(layer).__name__} merges {len(inp)} inputs"))
        elif (inp[0] if isinstance(inp, (list, tuple)) else inp) is not previous:
            bad.append((layer.name, f"{type(layer).__name__} off the main chain (branching graph)"))
        layers.append(layer)
        previous = layer.output
    if bad:
        raise UnsupportedLayerError(bad)
    return layers


def network_from_keras(model, name: str | None = None) -> Network:
    """Convert a Keras model to the network IR (see the module docstring for what is supported)."""
    layers = _chain(model)
    shape = tuple(int(d) for d in model.input_shape[1:])
    ir: list[Layer] = []
    final = "linear"
    unsupported: list[tuple[str, str]] = []
    real = [l for l in layers if type(l).__name__ not in ("InputLayer", "Dropout")]
    last = real[-1] if real else None
    i = 0
    while i < len(layers):
        layer = layers[i]
        kind = type(layer).__name__
        i += 1
        span = _sign_block_span(layers, i - 1) if kind == "BinaryDense" else None
        if span is not None:
            i += sum(part is not None for part in span) - 1
            try:
                ir.append(_sign_block(*span, shape, ir))
                shape = ir[-1].out_shape
            except _Unsupported as exc:
                unsupported.append((layer.name, f"{kind}: {exc}"))
            continue
        handler = HANDLERS.get(kind)
        if handler is None:
            unsupported.append((layer.name, f"{kind} is not supported"))
            continue
        try:
            new, shape, act = handler(layer, shape, layer is last)
        except _Unsupported as exc:
            unsupported.append((layer.name, f"{kind}: {exc}"))
            continue
        ir.extend(new)
        if act:
            final = act
    if unsupported:
        raise UnsupportedLayerError(unsupported)
    return Network(tuple(int(d) for d in model.input_shape[1:]), fold_batchnorm(ir), final,
                   name or model.name)


def fold_batchnorm(layers: list[Layer]) -> list[Layer]:
    """Fold each batch-norm (diagonal affine) layer into the affine layer before it, or else
    into the one after it; keep it as its own affine layer only when neither neighbour is one."""
    out: list[Layer] = []
    pending: Affine | None = None           # a batch-norm waiting for the next affine layer
    for layer in layers:
        if isinstance(layer, Affine) and layer.kind == "batchnorm":
            prev = out[-1] if out else None
            if isinstance(prev, Affine) and pending is None:
                out[-1] = _scale_after(prev, layer)
            else:
                pending = layer if pending is None else _scale_after(pending, layer)
            continue
        if pending is not None:
            if isinstance(layer, Affine):
                layer = _scale_before(layer, pending)
            else:
                out.append(pending)
            pending = None
        out.append(layer)
    if pending is not None:
        out.append(pending)
    return out


def _scale_after(affine: Affine, bn: Affine) -> Affine:
    s, t = bn.weight.diagonal(), bn.bias
    w = sp.diags(s) @ affine.weight if sp.issparse(affine.weight) else affine.weight * s[:, None]
    w = w.tocsr() if sp.issparse(w) else w
    return Affine(w, s * affine.bias + t, affine.out_shape, f"{affine.name}+{bn.name}", affine.kind)


def _scale_before(affine: Affine, bn: Affine) -> Affine:
    s, t = bn.weight.diagonal(), bn.bias
    w = affine.weight @ sp.diags(s) if sp.issparse(affine.weight) else affine.weight * s[None, :]
    w = w.tocsr() if sp.issparse(w) else w
    b = np.asarray(affine.weight @ t).ravel() + affine.bias
    return Affine(w, b, affine.out_shape, f"{bn.name}+{affine.name}", affine.kind)


def keras_logits(model, x: np.ndarray) -> np.ndarray:
    """The Keras model's output before its final sigmoid/softmax, for comparison with the IR.

    Computed by the Keras model itself with the last activation swapped for linear on a
    clone, so no part of the network is re-implemented here.
    """
    keras = import_keras()
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    last = clone.layers[-1]
    if type(last).__name__ in ("Softmax",) or (type(last).__name__ == "Activation"
                                                and _activation_name(last) in FINAL_ACTIVATIONS):
        clone = keras.Model(clone.inputs, clone.layers[-2].output)
    elif _activation_name(last) in FINAL_ACTIVATIONS:
        last.activation = keras.activations.linear
    x = np.asarray(x, dtype=np.float32).reshape((-1,) + tuple(model.input_shape[1:]))
    return np.asarray(clone.predict(x, verbose=0), dtype=np.float64).reshape(len(x), -1)
