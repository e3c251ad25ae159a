"""Read a Keras model into the network IR (:class:`verify.network.Network`).

Supported (Sequential and single-input, single-output functional chains): InputLayer, Dense,
Conv2D (valid/same padding, any strides, channels_last, no dilation/groups),
AveragePooling2D and MaxPooling2D (valid/same), Flatten, Reshape, Dropout (identity at
inference), BatchNormalization (folded into the neighbouring affine layer), ReLU and linear
activations (as a layer or as a layer's ``activation``), and a final sigmoid or softmax
(dropped: the IR ends at the logits). Binarized networks (:mod:`verify.layers`):
BinarizeInput, IntegerInput, ``BinaryDense -> [BatchNormalization] -> Sign`` blocks (folded
into one :class:`~verify.network.SignBlock`, see :func:`fold_sign_block`) and a final
BinaryDense.

Ensembles ("mixtures", :mod:`verify.ensembles`): a functional model whose graph is
``trunk -> N parallel member chains -> Average (or Add) -> tail``, each part a chain of the
layers above and all members of the same depth, becomes ONE ordinary network: the members
side by side (stacked first-layer rows, block-diagonal sparse later layers) and the merge
folded into the last affine layer (see :func:`_merge_members`).

Graphs (:class:`_GraphReader`): any other single-input, single-output functional model —
residual connections (``Add``, ``Subtract``), ``Concatenate``, ``Average``, ``Maximum`` and
``Minimum`` (``max(a, b) = a + relu(b − a)``) — and every model with a piecewise-linear layer
beyond ReLU — ``LeakyReLU``, ``PReLU`` (its trained slopes), ``ReLU`` with ``max_value`` /
``negative_slope`` (a ``threshold`` makes it jump: refused), the activations ``relu6``,
``leaky_relu``, ``hard_tanh`` and ``hard_sigmoid``, ``GlobalAveragePooling2D`` and
``GlobalMaxPooling2D`` — is built as a :class:`verify.graph.Graph` and lowered exactly onto the
chain IR. Binarized layers are read in chains only.

Anything else raises one :class:`~verify.errors.UnsupportedLayerError` that names every
unsupported layer (and merge).

This is the only module that imports Keras.
"""
from __future__ import annotations

import importlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from .errors import InvalidInputError, ModelLoadError, UnsupportedLayerError
from .network import (Affine, Binarize, Layer, MaxPool, Network, Quantize, ReLU, SignBlock,
                      layer_size)
from .windows import Unsupported as _Unsupported
from .windows import average_matrix, conv_matrix, pool_index, same_pads

os.environ.setdefault("KERAS_BACKEND", "jax")

FINAL_ACTIVATIONS = ("sigmoid", "softmax")


def import_keras():
    """Import Keras (JAX backend unless the user chose another) with its chatter silenced.

    Keras picks its backend once, at its first import: ``KERAS_BACKEND`` if set, else
    ``~/.keras/keras.json``. ``import verify`` sets ``KERAS_BACKEND=jax`` when it is unset, so
    importing verify first always works; a backend chosen otherwise (the variable, or a
    keras.json read by an earlier ``import keras``) is kept. When that backend cannot be
    imported (e.g. tensorflow is not installed) this raises a one-line
    :class:`~verify.errors.ModelLoadError` that says to set ``KERAS_BACKEND=jax``, instead of
    Keras's traceback.
    """
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import keras  # noqa: WPS433

        importlib.import_module(f"{__package__}.layers")    # registers the BNN layers for load_model
    except Exception as exc:  # ImportError for a missing backend, ValueError for an unknown one
        backend = os.environ.get("KERAS_BACKEND", "")
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fix = ("install JAX (pip install jax)" if backend == "jax" else
               "verify runs Keras on JAX: set KERAS_BACKEND=jax (e.g. `KERAS_BACKEND=jax verify "
               "...`, or os.environ['KERAS_BACKEND'] = 'jax' before the first import of keras)")
        raise ModelLoadError(f"cannot import Keras with its {backend!r} backend "
                             f"(KERAS_BACKEND): {reason}; {fix}") from None
    return keras


def _check_keras_archive(path: Path) -> None:
    """A ``.keras`` file is a zip archive; Keras reports one that is not (a corrupt or
    truncated download) as "File not found", so say what is really wrong."""
    try:
        with zipfile.ZipFile(path) as archive:
            archive.getinfo("config.json")
    except KeyError:
        return                                   # a zip without config.json: Keras says so
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        size = path.stat().st_size
        raise ModelLoadError(
            f"cannot load {path} as a Keras model: it is not a valid .keras file, which is a zip "
            f"archive ({exc}; {size} bytes): the file is corrupt or truncated") from None


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
    if path.suffix.lower() == ".keras":
        _check_keras_archive(path)
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a corrupt file
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot load {path} as a Keras model: {msg[:300]}") from None


# ---------------------------------------------------------------------------------------------
# layer handlers: (layer, input shape, is_last) -> (IR layers, output shape, final activation)
# A handler raises _Unsupported(reason) for a layer it cannot represent.
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


def _keras_pads(shape: tuple, kernel: tuple, strides: tuple, padding: str) -> tuple:
    """``(top, left, bottom, right)`` of a Keras window over (H, W, C): none for "valid",
    TensorFlow's "same" (the odd pixel at the end) otherwise."""
    if len(shape) != 3:
        raise _Unsupported(f"needs a (height, width, channels) input, got {shape}")
    if padding == "valid":
        return (0, 0, 0, 0)
    return same_pads(shape[:2], kernel, strides, upper=True)


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
    strides = tuple(int(s) for s in layer.strides)
    pt, pl, pb, pr = _keras_pads(shape, (kh, kw), strides, layer.padding)
    weight, (_, Ho, Wo) = conv_matrix(kernel.transpose(3, 2, 0, 1), (C,) + tuple(shape[:2]), strides,
                                      (pt, pl, pb, pr), "HWC")
    out = (Ho, Wo, F)
    conv = {"kernel": kernel.copy(), "strides": strides, "padding": ((pt, pb), (pl, pr)),
            "input_shape": tuple(shape), "layout": "HWC"}      # for exporters (verify.onnx)
    ir: list[Layer] = [Affine(weight, np.tile(bias, Ho * Wo), out, layer.name, "conv2d", conv)]
    acts, final = _activation_layers(_activation_name(layer), out, layer.name, is_last)
    return ir + acts, out, final


def _pool_geometry(layer, shape):
    _check_channels_last(layer)
    pool = tuple(layer.pool_size)
    strides = tuple(layer.strides) if layer.strides is not None else pool
    pads = _keras_pads(shape, pool, strides, layer.padding)
    (C, Ho, Wo), idx = pool_index((shape[2], shape[0], shape[1]), pool, strides, pads, "HWC")
    return (Ho, Wo, C), idx


def _avgpool(layer, shape, is_last):
    out, idx = _pool_geometry(layer, shape)
    # Keras averages over the window's valid (non-padding) entries
    weight = average_matrix(idx, int(np.prod(shape)))
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


def _single_merge(layer, shape, is_last):
    """An Average or Add of one tensor (an ensemble of one member) is the identity."""
    return [], shape, None


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
    "Average": _single_merge,       # of several tensors: see _parallel below
    "Add": _single_merge,
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


# ---------------------------------------------------------------------------------------------
# Parallel members merged by Average/Add: ensembles ("mixtures", verify.ensembles)

#: merge layers of parallel members -> the weight of each member's output, given their number
MERGES: dict[str, Callable[[int], float]] = {"Average": lambda n: 1.0 / n, "Add": lambda n: 1.0}


@dataclass
class _Parallel:
    """A model of the shape ``trunk -> N parallel member chains -> merge -> tail``."""

    trunk: list                 # layers from the input to the tensor the members share
    members: list[list]         # each member's layers, in the order the merge takes them
    merge: Any                  # the Average/Add layer
    tail: list                  # layers after the merge, to the output


def _inputs_of(layer) -> list:
    inp = layer.input
    return list(inp) if isinstance(inp, (list, tuple)) else [inp]


def _is_branching(model) -> bool:
    """True for a single-input, single-output functional model that is not a chain: some
    layer takes several tensors, or some tensor feeds several layers."""
    keras = import_keras()
    if isinstance(model, keras.Sequential) or len(model.inputs) != 1 or len(model.outputs) != 1:
        return False
    fed: set[int] = set()
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        inputs = _inputs_of(layer)
        if len(inputs) > 1 or any(id(t) in fed for t in inputs):
            return True
        fed.update(id(t) for t in inputs)
    return False


def _parallel(model) -> tuple[_Parallel | None, list[tuple[str, str]]]:
    """Split a branching model into trunk, parallel members, merge and tail; the second value
    lists ``(layer name, reason)`` for every way the graph departs from that shape."""
    consumers: dict[int, list] = {}
    for layer in model.layers:
        if type(layer).__name__ != "InputLayer":
            for tensor in _inputs_of(layer):
                consumers.setdefault(id(tensor), []).append(layer)
    visited: set[int] = set()

    def follow(tensor, chain: list):
        """Extend ``chain`` while ``tensor`` feeds exactly one single-input layer; return the
        tensor where that stops and the layers it feeds."""
        while True:
            after = consumers.get(id(tensor), [])
            if len(after) != 1 or len(_inputs_of(after[0])) != 1 or id(after[0]) in visited:
                return tensor, after
            visited.add(id(after[0]))
            chain.append(after[0])
            tensor = after[0].output

    problems: list[tuple[str, str]] = []
    trunk: list = []
    fork, firsts = follow(model.inputs[0], trunk)
    if len(firsts) < 2:
        where = firsts[0] if firsts else (trunk[-1] if trunk else model)
        problems.append((where.name, f"{type(where).__name__} merges tensors that are not "
                         "parallel branches of one shared tensor"))
        return None, problems
    members, ends, merges = [], [], []
    for first in firsts:
        if len(_inputs_of(first)) != 1:
            problems.append((first.name, f"{type(first).__name__} takes the shared tensor "
                             "directly (a skip connection): each member needs its own layers"))
            continue
        visited.add(id(first))
        chain = [first]
        end, after = follow(first.output, chain)
        if len(after) != 1:
            problems.append((chain[-1].name, "a member that branches again (nested branches "
                             "are not supported)" if after else "a member that does not reach "
                             "the merge"))
            continue
        members.append(chain)
        ends.append(end)
        merges.append(after[0])
    if problems:
        return None, problems
    merge = merges[0]
    kind = type(merge).__name__
    if any(m is not merge for m in merges):
        names = sorted({m.name for m in merges})
        problems.append((merge.name, "members end in different merge layers "
                         f"({', '.join(names)}); only one level of parallel members is supported"))
        return None, problems
    by_end = {id(t): chain for t, chain in zip(ends, members)}
    merged = _inputs_of(merge)
    if len(merged) != len(members) or any(id(t) not in by_end for t in merged):
        problems.append((merge.name, f"{kind} also takes tensors that are not parallel members of "
                         "one shared tensor (shared layers, skip connections or nested branches "
                         "are not supported)"))
        return None, problems
    if kind not in MERGES:
        problems.append((merge.name, f"{kind} merges {len(members)} parallel members; only "
                         f"{' and '.join(MERGES)} are supported (the ensemble must be affine in "
                         "its members' outputs)"))
    tail: list = []
    end, after = follow(merge.output, tail)
    if after or end is not model.outputs[0]:
        problems.append(((after[0] if after else merge).name, "branches again after the merge; "
                         "only one level of parallel members is supported"))
    return _Parallel(trunk, [by_end[id(t)] for t in merged], merge, tail), problems


def _layer_problems(model, known: set[str]) -> list[tuple[str, str]]:
    """Every single-input layer of ``model`` (except those named in ``known``) that the IR
    cannot represent, checked with the shapes Keras records: so that one error lists them all
    even when the graph itself is not supported."""
    problems = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("InputLayer", "Sign") or layer.name in known or len(_inputs_of(layer)) > 1:
            continue
        handler = HANDLERS.get(kind)
        if handler is None:
            problems.append((layer.name, f"{kind} is not supported"))
            continue
        try:
            shape = tuple(int(d) for d in layer.input.shape[1:])
            handler(layer, shape, layer.output is model.outputs[0])
        except _Unsupported as exc:
            problems.append((layer.name, f"{kind}: {exc}"))
        except (TypeError, ValueError):     # unknown dimensions: nothing to check here
            continue
    return problems


def _merged_name(layers: list) -> str:
    return layers[0].name if len(layers) == 1 else f"{layers[0].name}..{layers[-1].name}"


def _merge_members(members: list[list[Layer]], n_in: int, coefficients: list[float],
                   labels: list[str], merge_name: str) -> list[Layer]:
    """Parallel member networks on one shared input of ``n_in`` values, whose outputs are
    combined as ``sum_i coefficients[i] * member_i(x)``, as ONE chain of IR layers.

    The merged network carries all members side by side: its layer ``k`` holds every member's
    layer ``k`` (ReLUs and max-pools concatenated). Its first affine layer stacks the members'
    weight rows (they all read the shared input); later affine layers are block-diagonal
    (sparse CSR: member ``i`` reads only its own previous outputs); the members' last affine
    layers and the merge become one affine layer ``sum_i c_i (W_i h_i + b_i)``, i.e. the
    weights ``[c_1 W_1 ... c_N W_N]`` and the bias ``sum_i c_i b_i`` (for an Average,
    ``c_i = 1/N``). A member that does not start with an affine layer gets an identity one
    first. Members must have the same sequence of IR layer types (same depth); widths may
    differ. Raises ``_Unsupported`` otherwise.
    """
    members = [fold_batchnorm(m) for m in members]
    for i, member in enumerate(members):
        if any(isinstance(l, (Binarize, Quantize, SignBlock)) for l in member):
            raise _Unsupported(f"member {labels[i]} has binarized layers; ensembles of BNNs are "
                               "not supported")
        if not member or not isinstance(member[0], Affine):
            eye = sp.identity(n_in, format="csr", dtype=np.float64)
            member.insert(0, Affine(eye, np.zeros(n_in), (n_in,), f"{labels[i]}.input", "identity"))
    kinds = ["-".join(type(l).__name__ for l in m) for m in members]
    if len(set(kinds)) > 1:
        groups: dict[str, list[str]] = {}
        for label, k in zip(labels, kinds):
            groups.setdefault(k, []).append(label)
        shown = "; ".join(", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3
                                                   else "") + f": {k}" for k, names in groups.items())
        raise _Unsupported(f"its members differ in depth or layer types ({shown}); only members "
                           "with the same sequence of layers can be merged")
    merged: list[Layer] = []
    sizes = [n_in] * len(members)          # each member's input size to the current layer
    for k in range(len(members[0])):
        parts = [m[k] for m in members]
        name, total = _merged_name(parts), sum(layer_size(l) for l in parts)
        if isinstance(parts[0], Affine):
            weights = [l.weight for l in parts]
            if k == 0:        # every member reads the shared input: stack the rows
                weight = (sp.vstack([sp.csr_matrix(w) for w in weights], format="csr")
                          if any(sp.issparse(w) for w in weights) else np.vstack(weights))
            else:
                weight = sp.block_diag(weights, format="csr")
            bias = np.concatenate([l.bias for l in parts])
            merged.append(Affine(weight, bias, (total,), name, parts[0].kind))
        elif isinstance(parts[0], ReLU):
            merged.append(ReLU((total,), name))
        elif isinstance(parts[0], MaxPool):
            width = max(l.index.shape[1] for l in parts)
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            index = np.concatenate([
                np.pad(np.where(l.index >= 0, l.index + off, -1),
                       ((0, 0), (0, width - l.index.shape[1])), constant_values=-1)
                for l, off in zip(parts, offsets)])
            merged.append(MaxPool(index, int(sum(sizes)), (total,), name))
        else:
            raise _Unsupported(f"{type(parts[0]).__name__} layers in members are not supported")
        sizes = [layer_size(l) for l in parts]
    out = members[0][-1].out_shape
    if len(set(sizes)) > 1:
        raise _Unsupported(f"its members have outputs of different sizes {sorted(set(sizes))}")
    m = sizes[0]
    combine = sp.hstack([c * sp.identity(m, format="csr") for c in coefficients], format="csr")
    last = merged[-1]
    if isinstance(last, Affine):
        weight = combine @ last.weight
        if sp.issparse(weight):
            weight = weight.tocsr()
            weight.eliminate_zeros()
            if weight.nnz > 0.25 * weight.shape[0] * weight.shape[1]:
                weight = weight.toarray()
        bias = np.asarray(combine @ last.bias).ravel()
        merged[-1] = Affine(weight, bias, out, f"{last.name}+{merge_name}", last.kind)
    else:
        merged.append(Affine(combine, np.zeros(m), out, merge_name, "merge"))
    return merged


def _network_from_parallel(model, name: str | None) -> Network:
    parallel, problems = _parallel(model)
    if parallel is None or problems:
        raise UnsupportedLayerError(problems + _layer_problems(model, {n for n, _ in problems}))
    input_shape = tuple(int(d) for d in model.input_shape[1:])
    ir: list[Layer] = []
    fork_shape, _, unsupported = _convert(parallel.trunk, input_shape, ir, None)
    member_irs, shapes = [], []
    for chain in parallel.members:
        member: list[Layer] = []
        shape, _, bad = _convert(chain, fork_shape, member, None)
        member_irs.append(member)
        shapes.append(shape)
        unsupported += bad
    kind = type(parallel.merge).__name__
    n = len(parallel.members)
    if not unsupported:
        try:
            ir.extend(_merge_members(member_irs, int(np.prod(fork_shape)),
                                     [MERGES[kind](n)] * n, [c[0].name for c in parallel.members],
                                     parallel.merge.name))
        except _Unsupported as exc:
            unsupported.append((parallel.merge.name, f"{kind}: {exc}"))
    _, final, bad = _convert(parallel.tail, shapes[0], ir, _last_real(parallel.tail))
    unsupported += bad
    if unsupported:
        raise UnsupportedLayerError(unsupported)
    return Network(input_shape, fold_batchnorm(ir), final or "linear", name or model.name,
                   {"members": n, "merge": kind.lower()})


def _last_real(layers: list):
    """The last layer that is not an InputLayer or Dropout (it may carry the final activation)."""
    real = [l for l in layers if type(l).__name__ not in ("InputLayer", "Dropout")]
    return real[-1] if real else None


def _convert(layers: list, shape: tuple, ir: list[Layer], last) -> tuple[tuple, str | None, list]:
    """Append the IR of a chain of Keras ``layers`` (input ``shape``) to ``ir``.

    ``last`` is the layer allowed to carry a final sigmoid/softmax (None: none is). Returns
    the output shape, the final activation (or None) and the unsupported layers as
    ``(name, reason)`` pairs.
    """
    final = None
    unsupported: list[tuple[str, str]] = []
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
    return shape, final, unsupported


# ---------------------------------------------------------------------------------------------
# General functional graphs: residual blocks, concatenation, piecewise-linear activations.
# Built as a verify.graph.Graph and lowered exactly onto the chain IR (verify.graph.to_network).

#: Activations (a layer's ``activation`` or an Activation layer) that are piecewise linear but
#: no plain ReLU, read by the graph path: name -> what the graph computes.
GRAPH_ACTIVATIONS = ("relu6", "leaky_relu", "hard_tanh", "hard_sigmoid")
#: Layers that only the graph path reads (merges of several tensors, activations, pooling).
GRAPH_LAYERS = ("LeakyReLU", "PReLU", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
                "Concatenate", "Subtract", "Maximum", "Minimum")
#: Merge layers of several tensors the graph path reads (``Add``/``Average`` of parallel
#: members of equal depth keep the ensemble reading, :func:`_merge_members`).
GRAPH_MERGES = ("Add", "Subtract", "Average", "Maximum", "Minimum", "Concatenate")
_BNN_LAYERS = ("BinarizeInput", "IntegerInput", "BinaryDense", "Sign")


def _needs_graph(layer) -> bool:
    """True for a layer that only the graph path reads."""
    kind = type(layer).__name__
    if kind in GRAPH_LAYERS:
        return True
    if kind == "ReLU":
        return (layer.max_value is not None or float(layer.negative_slope) != 0.0
                or float(layer.threshold) != 0.0)
    return _activation_name(layer) in GRAPH_ACTIVATIONS


class _WithoutActivation:
    """A layer seen without its activation (the graph path applies that itself)."""

    activation = None

    def __init__(self, layer):
        self._layer = layer

    def __getattr__(self, name):
        return getattr(self._layer, name)


def _keras_shape(tensor) -> tuple | None:
    try:
        return tuple(int(d) for d in tensor.shape[1:])
    except (TypeError, ValueError):
        return None


class _GraphReader:
    """Reads a single-input, single-output functional (or Sequential) Keras model into a
    :class:`verify.graph.Graph`; every layer it cannot read is collected in ``problems``."""

    def __init__(self, model):
        from .graph import Graph

        self.model = model
        self.graph = Graph(tuple(int(d) for d in model.input_shape[1:]))
        # Keras tensor id -> graph value (None: not built, an unsupported layer upstream)
        self.values: dict[int, str | None] = {id(model.inputs[0]): self.graph.input_name}
        self.problems: list[tuple[str, str]] = []
        self.final: str | None = None

    def read(self) -> None:
        model = self.model
        pending = [l for l in model.layers if type(l).__name__ != "InputLayer"]
        while pending:                    # topological order, whatever order Keras lists
            ready = [l for l in pending if all(id(t) in self.values for t in _inputs_of(l))]
            if not ready:
                for layer in pending:
                    self.problems.append((layer.name, "not reachable from the model's input "
                                                      "(several inputs are not supported)"))
                return
            for layer in ready:
                pending.remove(layer)
                self.layer(layer)

    def layer(self, layer) -> None:
        kind = type(layer).__name__
        inputs = [self.values[id(t)] for t in _inputs_of(layer)]
        out_key = id(layer.output)
        self.values[out_key] = None
        nodes = getattr(layer, "_inbound_nodes", [])
        if len(nodes) > 1:
            self.problems.append((layer.name, f"{kind} is called {len(nodes)} times (shared "
                                              "layers are not supported)"))
            return
        if kind in _BNN_LAYERS:
            self.problems.append((layer.name, f"{kind} in a graph model: binarized layers are "
                                              "read in Sequential chains only"))
            return
        is_last = layer.output is self.model.outputs[0]
        try:
            if len(inputs) > 1 or kind in GRAPH_MERGES:
                value = self.merge(layer, kind, inputs)
            else:
                value = self.single(layer, kind, inputs[0], is_last)
        except _Unsupported as exc:
            self.problems.append((layer.name, f"{kind}: {exc}"))
            return
        except InvalidInputError as exc:            # the graph's own size checks
            self.problems.append((layer.name, f"{kind}: {exc}"))
            return
        self.values[out_key] = value

    def single(self, layer, kind: str, value: str | None, is_last: bool) -> str | None:
        g = self.graph
        shape = g.shape(value) if value is not None else _keras_shape(layer.input)
        if kind in ("LeakyReLU", "PReLU", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
                    "ReLU"):
            if value is None:
                self.check_only(layer, kind, shape)
                return None
            return getattr(self, "_" + kind.lower())(layer, value, shape)
        handler = HANDLERS.get(kind)
        if handler is None:
            raise _Unsupported("is not supported" if not hasattr(layer, "layers") else
                               "a nested model is not supported (build the model flat)")
        activation = _activation_name(layer) if kind != "Activation" else "linear"
        extra = activation if activation in GRAPH_ACTIVATIONS else None
        if kind == "Activation" and _activation_name(layer) in GRAPH_ACTIVATIONS:
            extra, ir, out, final = _activation_name(layer), [], shape, None
        else:
            ir, out, final = handler(_WithoutActivation(layer) if extra else layer, shape, is_last)
        if value is None or shape is None:
            return None
        if final:
            self.final = final
        value = self.emit(value, ir)
        if tuple(out) != g.shape(value):
            value = g.reshape(f"{layer.name}.reshape", value, tuple(out))
        if extra:
            value = self.activation(f"{layer.name}.{extra}", value, extra)
        return value

    def check_only(self, layer, kind: str, shape) -> None:
        """Check a layer downstream of an unsupported one, for the one error listing all."""
        if kind == "ReLU":
            self.relu_parts(layer)

    def emit(self, value: str, ir: list[Layer]) -> str:
        g = self.graph
        for l in ir:
            if isinstance(l, Affine):
                value = g.affine(l.name, value, l.weight, l.bias, l.out_shape, kind=l.kind,
                                 conv=l.conv)
            elif isinstance(l, ReLU):
                value = g.relu(l.name, value)
            elif isinstance(l, MaxPool):
                value = g.maxpool(l.name, value, l.index, l.out_shape)
            else:
                value = g.layer(l.name, value, l)
        return value

    def activation(self, name: str, value: str, activation: str) -> str:
        g = self.graph
        if activation == "relu6":
            return g.clip(name, value, 0.0, 6.0)
        if activation == "leaky_relu":          # keras.activations.leaky_relu: slope 0.2
            return g.leaky_relu(name, value, 0.2)
        if activation == "hard_tanh":
            return g.clip(name, value, -1.0, 1.0)
        # hard_sigmoid(x) = relu6(x + 3) / 6 = clip(x / 6 + 1 / 2, 0, 1)
        n = g.size(value)
        scaled = g.affine(f"{name}.scale", value, sp.identity(n, format="csr") / 6.0,
                          np.full(n, 0.5), g.shape(value), kind="scale")
        return g.clip(name, scaled, 0.0, 1.0)

    def _leakyrelu(self, layer, value: str, shape) -> str:
        return self.graph.leaky_relu(layer.name, value, float(layer.negative_slope))

    def _prelu(self, layer, value: str, shape) -> str:
        alpha = np.asarray(layer.alpha.numpy(), dtype=np.float64)
        alpha = np.broadcast_to(alpha, tuple(shape)).reshape(-1).copy()
        return self.graph.leaky_relu(layer.name, value, alpha)

    @staticmethod
    def relu_parts(layer) -> tuple[float | None, float]:
        """``(max_value, negative_slope)`` of a Keras ReLU layer; refuses a threshold."""
        threshold = float(layer.threshold)
        if threshold != 0.0:
            raise _Unsupported(f"threshold={threshold:g}: the function jumps at the threshold "
                               "(not continuous, so not piecewise-linear-exact)")
        top = None if layer.max_value is None else float(layer.max_value)
        slope = float(layer.negative_slope)
        if top is not None and top < 0:
            raise _Unsupported(f"max_value={top:g} < 0")
        return top, slope

    def _relu(self, layer, value: str, shape) -> str:
        g = self.graph
        top, slope = self.relu_parts(layer)
        if slope == 0.0:
            if top is None:
                return g.relu(layer.name, value)
            return g.clip(layer.name, value, 0.0, top)
        leaky = g.leaky_relu(layer.name if top is None else f"{layer.name}.leaky", value, slope)
        # min(max_value, leaky(x)): leaky(x) <= 0 <= max_value below 0, so a clip from above
        return leaky if top is None else g.clip(layer.name, leaky, hi=top)

    def _globalaveragepooling2d(self, layer, value: str, shape) -> str:
        _check_channels_last(layer)
        if len(shape) != 3:
            raise _Unsupported(f"needs a (height, width, channels) input, got {shape}")
        H, W, C = shape
        rows = np.tile(np.arange(C), H * W)
        weight = sp.csr_matrix((np.full(H * W * C, 1.0 / (H * W)), (rows, np.arange(H * W * C))),
                               shape=(C, H * W * C))
        out = (1, 1, C) if getattr(layer, "keepdims", False) else (C,)
        return self.graph.affine(layer.name, value, weight, np.zeros(C), out, kind="avgpool")

    def _globalmaxpooling2d(self, layer, value: str, shape) -> str:
        _check_channels_last(layer)
        if len(shape) != 3:
            raise _Unsupported(f"needs a (height, width, channels) input, got {shape}")
        H, W, C = shape
        index = (np.arange(H * W)[None, :] * C + np.arange(C)[:, None]).astype(np.int64)
        out = (1, 1, C) if getattr(layer, "keepdims", False) else (C,)
        return self.graph.maxpool(layer.name, value, index, out)

    def merge(self, layer, kind: str, inputs: list[str | None]) -> str | None:
        g = self.graph
        if kind not in GRAPH_MERGES:
            raise _Unsupported(f"merges {len(inputs)} tensors; only "
                               f"{', '.join(GRAPH_MERGES)} are supported (piecewise linear)")
        if len(inputs) < 2:
            return inputs[0]
        if any(v is None for v in inputs):
            return None
        name = layer.name
        if kind == "Concatenate":
            axis = int(layer.axis)
            return g.concat(name, inputs, axis - 1 if axis > 0 else axis)
        shapes = {g.shape(v) for v in inputs}
        if len(shapes) > 1:
            raise _Unsupported(f"inputs of shapes {sorted(shapes)}: broadcasting is not supported")
        n = len(inputs)
        if kind == "Subtract":
            return g.add(name, inputs[0], inputs[1], scale_b=-1.0)
        if kind in ("Maximum", "Minimum"):
            # max(a, b) = a + relu(b - a); min(a, b) = a - relu(a - b)
            value = inputs[0]
            sign = 1.0 if kind == "Maximum" else -1.0
            for k, other in enumerate(inputs[1:], start=1):
                tag = f"{name}.{k}" if n > 2 else name
                diff = g.add(f"{tag}.diff", other, value, scale_a=sign, scale_b=-sign)
                value = g.add(tag, value, g.relu(f"{tag}.relu", diff), scale_b=sign)
            return value
        scale = 1.0 / n if kind == "Average" else 1.0
        value = g.add(name if n == 2 else f"{name}.1", inputs[0], inputs[1], scale, scale)
        for k, other in enumerate(inputs[2:], start=2):
            value = g.add(name if k == n - 1 else f"{name}.{k}", value, other, 1.0, scale)
        return value


def _network_from_graph(model, name: str | None) -> Network:
    """Read a functional model as a graph (residual blocks, concatenations, piecewise-linear
    activations) and lower it exactly onto the chain IR; one error lists every layer it
    cannot read."""
    from .graph import to_network

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedLayerError([(model.name, f"{len(model.inputs)} inputs and "
                                      f"{len(model.outputs)} outputs; only one of each")])
    reader = _GraphReader(model)
    reader.read()
    if reader.problems:
        raise UnsupportedLayerError(reader.problems)
    output = reader.values.get(id(model.outputs[0]))
    if output is None:
        raise UnsupportedLayerError([(model.name, "the output is not computed from the input")])
    reader.graph.output = output
    return to_network(reader.graph, name=name or model.name,
                      output_activation=reader.final or "linear", meta={})


def network_from_keras(model, name: str | None = None) -> Network:
    """Convert a Keras model to the network IR (see the module docstring for what is supported).

    A chain of layers (Sequential or functional) is read layer by layer. A functional model
    of parallel members merged by ``Average`` or ``Add`` (an ensemble, e.g. from
    :func:`verify.ensembles.build_mixture`) becomes one ordinary network; see
    :func:`_merge_members`. Its ``meta`` then records ``members`` and ``merge``.

    Any other single-input, single-output graph (residual blocks with ``Add``/``Subtract``,
    ``Concatenate``, ``Average``/``Maximum``/``Minimum``), and any model with a layer only
    graphs read (LeakyReLU, PReLU, ReLU with ``max_value``/``negative_slope``, the
    relu6/leaky_relu/hard_tanh/hard_sigmoid activations, GlobalAveragePooling2D,
    GlobalMaxPooling2D), is read as a :class:`verify.graph.Graph` and lowered exactly onto
    the chain IR (:func:`verify.graph.to_network`); see :class:`_GraphReader`.
    """
    keras = import_keras()
    graph_layers = any(_needs_graph(l) for l in model.layers)
    if _is_branching(model):
        parallel, problems = _parallel(model)
        if parallel is not None and not problems and not graph_layers:
            return _network_from_parallel(model, name)
        return _network_from_graph(model, name)
    if graph_layers and not isinstance(model, keras.Sequential):
        return _network_from_graph(model, name)
    if graph_layers:
        return _network_from_graph(keras.Model(model.inputs, model.outputs, name=model.name), name)
    layers = _chain(model)
    ir: list[Layer] = []
    shape = tuple(int(d) for d in model.input_shape[1:])
    _, final, unsupported = _convert(layers, shape, ir, _last_real(layers))
    if unsupported:
        raise UnsupportedLayerError(unsupported)
    return Network(tuple(int(d) for d in model.input_shape[1:]), fold_batchnorm(ir),
                   final or "linear", name or model.name)


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
