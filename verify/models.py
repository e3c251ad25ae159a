"""Bundled models and loading a model from a name, a path or a Keras object.

The seed networks trained by ``models/train.py`` ship inside the package
(``verify/assets/models/*.keras`` with ``index.json``), so ``--model cnn`` works offline.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .data import ASSETS
from .errors import InvalidInputError, ModelLoadError

if TYPE_CHECKING:            # the readers import it; `verify models` needs no scipy
    import onnx

    from .network import Network

MODELS_DIR = ASSETS / "models"
DEFAULT_MODEL = "multiclass"


def bundled_models() -> dict[str, dict]:
    """Name → metadata (file, architecture, classes, test accuracy, ...) of each bundled model."""
    index = MODELS_DIR / "index.json"
    if not index.is_file():
        return {}
    entries = json.loads(index.read_text())
    for name, meta in entries.items():
        meta["path"] = str(MODELS_DIR / meta["file"])
        meta["name"] = name
    return entries


@dataclass
class LoadedModel:
    """A trained model (Keras or ONNX) together with its network IR and what its classes mean.

    ``keras`` is the Keras model, or None for an ONNX model, whose ``onnx`` is then an
    :class:`verify.onnx.OnnxReference` (an onnxruntime session). Either one is the
    *reference*: the model's own runtime, which re-checks every counterexample the toolkit
    reports.
    """

    name: str
    keras: Any
    network: Network
    path: Path | None = None
    classes: list = field(default_factory=list)   # class index -> displayed label (e.g. digit)
    meta: dict = field(default_factory=dict)
    onnx: Any = None

    @property
    def input_shape(self) -> tuple:
        return self.network.input_shape

    @property
    def format(self) -> str:
        return "onnx" if self.onnx is not None else "keras"

    def class_name(self, label: int) -> str:
        return str(self.classes[label]) if label < len(self.classes) else str(label)

    def target_index(self, name: Any, label: int | None = None) -> int:
        """The label index of the class *named* ``name``, as outputs print it (``verify info``
        lists the classes). For the digit models name and index coincide; ``twoclass`` has the
        classes ``[1, 3]``, so ``"3"`` is index 1. A name that is no class, or the class
        ``label`` (the one already predicted), is refused with the valid choices."""
        names = [self.class_name(i) for i in range(self.network.num_classes)]
        text = str(name).strip()
        if text not in names:
            raise InvalidInputError(f"target {text!r} is not a class of {self.name}; its classes "
                                    f"are {', '.join(names)}")
        index = names.index(text)
        if label is not None and index == label:
            others = ", ".join(n for i, n in enumerate(names) if i != label)
            raise InvalidInputError(f"target {text} is the class {self.name} already predicts for "
                                    f"this image; choose another: {others}")
        return index

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits of the network IR (float64) for one image or a batch."""
        return self.network.forward(x)

    def label(self, x: np.ndarray) -> int:
        """Predicted class index of one image (network IR)."""
        return self.network.label(x)

    @property
    def runtime(self) -> str:
        """The reference runtime's name, for messages: "Keras" or "onnxruntime"."""
        return "onnxruntime" if self.onnx is not None else "Keras"

    @property
    def reference_activation(self) -> str:
        """The final activation the reference runtime applies to the logits: the Keras model's
        sigmoid/softmax, or whatever ends the ONNX graph (an exported model ends at the logits)."""
        return self.onnx.output_activation if self.onnx is not None else self.network.output_activation

    def reference_outputs(self, x: np.ndarray) -> np.ndarray:
        """The model's outputs (after any final sigmoid/softmax), shape (batch, outputs), as
        its own runtime computes them in float32: Keras ``predict`` or onnxruntime."""
        if self.onnx is not None:
            return np.asarray(self.onnx.outputs(x), dtype=np.float32)
        batch = np.asarray(x, dtype=np.float32).reshape((-1,) + tuple(self.input_shape))
        return np.asarray(self.keras.predict(batch, verbose=0), dtype=np.float32).reshape(len(batch), -1)

    def reference_labels(self, x: np.ndarray) -> np.ndarray:
        """Labels predicted by the model's own runtime in float32 (Keras or onnxruntime): the
        ground truth used to re-check every adversarial example."""
        out = self.reference_outputs(x)
        if out.shape[1] == 1:
            if self.reference_activation == "sigmoid":
                return (out[:, 0] > 0.5).astype(np.int64)
            return (out[:, 0] > 0).astype(np.int64)
        return np.argmax(out, axis=1)

    def describe(self) -> dict:
        net = self.network
        return {
            "name": self.name, "format": self.format, "path": str(self.path) if self.path else None,
            "input_shape": list(net.input_shape), "num_outputs": net.num_outputs,
            "num_classes": net.num_classes, "classes": [str(c) for c in self.classes],
            "output_activation": net.output_activation, "relus": net.num_relus,
            "layers": net.describe(),
            **{k: v for k, v in self.meta.items() if k in ("architecture", "task", "test_accuracy")},
        }


ONNX_SUFFIXES = (".onnx", ".onnx.gz")


def resolve_model_path(spec: str | os.PathLike) -> tuple[str, Path, dict]:
    """(name, path, metadata) for a bundled name or a file path."""
    bundled = bundled_models()
    if isinstance(spec, str) and spec in bundled:
        return spec, Path(bundled[spec]["path"]), bundled[spec]
    path = Path(spec)
    if path.exists() or any(s in str(spec) for s in ("/", ".keras", ".h5") + ONNX_SUFFIXES):
        return _file_stem(path), path, {}
    names = ", ".join(sorted(bundled)) or "(none installed)"
    raise ModelLoadError(f"no bundled model or file called {spec!r}; bundled models: {names}")


def _file_stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".onnx", ".keras", ".h5"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


def is_onnx_path(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(ONNX_SUFFIXES)


def load_model(spec: Any = None) -> LoadedModel:
    """Load a model given by bundled name (default ``multiclass``), a path to a Keras
    (``.keras``, ``.h5``) or ONNX (``.onnx``, ``.onnx.gz``) file, or a Keras model object."""
    if isinstance(spec, LoadedModel):
        return spec
    if spec is None:
        spec = DEFAULT_MODEL
    if isinstance(spec, (str, os.PathLike)):
        name, path, meta = resolve_model_path(spec)
        if is_onnx_path(path):
            from .onnx import OnnxReference, network_from_onnx

            network = network_from_onnx(path, name)
            classes = list(meta.get("classes") or range(network.num_classes))
            return LoadedModel(name, None, network, path, classes, meta, onnx=OnnxReference(path))
        from .keras_io import load_keras_model

        keras_model = load_keras_model(path)
    elif hasattr(spec, "layers") and hasattr(spec, "predict"):
        name, path, meta, keras_model = getattr(spec, "name", "model"), None, {}, spec
    else:
        raise InvalidInputError(
            f"model must be a bundled name, a path or a Keras model, not {type(spec).__name__}")
    from .keras_io import network_from_keras

    network = network_from_keras(keras_model, name)
    classes = list(meta.get("classes") or range(network.num_classes))
    return LoadedModel(name, keras_model, network, path, classes, meta)


def export_model(model: Any, path: str | os.PathLike, opset: int = 17) -> "onnx.ModelProto":
    """Export a loaded model (:class:`LoadedModel`, or anything :func:`load_model` accepts)
    as ONNX to ``path``: its network as read (not merged), named after the model in the ONNX
    ``doc_string`` and metadata. (It lives here, above both readers, so that
    :mod:`verify.onnx` never imports this module.)"""
    from onnx import helper

    from .onnx import network_to_onnx, save_onnx

    loaded = load_model(model)
    source = f"model '{loaded.name}'" + (f" ({loaded.path})" if loaded.path else "")
    onnx_model = network_to_onnx(loaded.network, None, opset, source=source)
    helper.set_model_props(onnx_model, {
        **{p.key: p.value for p in onnx_model.metadata_props}, "source": loaded.name,
        "verify.model": loaded.name})
    save_onnx(onnx_model, path)
    return onnx_model
