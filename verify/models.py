"""Bundled models and loading a model from a name, a path or a Keras object.

The seed networks trained by ``models/train.py`` ship inside the package
(``verify/assets/models/*.keras`` with ``index.json``), so ``--model cnn`` works offline.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data import ASSETS
from .errors import InvalidInputError, ModelLoadError
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
    """A Keras model together with its network IR and what its classes mean."""

    name: str
    keras: Any
    network: Network
    path: Path | None = None
    classes: list = field(default_factory=list)   # class index -> displayed label (e.g. digit)
    meta: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple:
        return self.network.input_shape

    def class_name(self, label: int) -> str:
        return str(self.classes[label]) if label < len(self.classes) else str(label)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits of the network IR (float64) for one image or a batch."""
        return self.network.forward(x)

    def label(self, x: np.ndarray) -> int:
        """Predicted class index of one image (network IR)."""
        return self.network.label(x)

    def keras_labels(self, x: np.ndarray) -> np.ndarray:
        """Labels predicted by the Keras model itself in float32: the ground truth used to
        re-check every adversarial example."""
        batch = np.asarray(x, dtype=np.float32).reshape((-1,) + tuple(self.input_shape))
        out = np.asarray(self.keras.predict(batch, verbose=0)).reshape(len(batch), -1)
        if out.shape[1] == 1:
            if self.network.output_activation == "sigmoid":
                return (out[:, 0] > 0.5).astype(np.int64)
            return (out[:, 0] > 0).astype(np.int64)
        return np.argmax(out, axis=1)

    def describe(self) -> dict:
        net = self.network
        return {
            "name": self.name, "path": str(self.path) if self.path else None,
            "input_shape": list(net.input_shape), "num_outputs": net.num_outputs,
            "num_classes": net.num_classes, "classes": [str(c) for c in self.classes],
            "output_activation": net.output_activation, "relus": net.num_relus,
            "layers": net.describe(),
            **{k: v for k, v in self.meta.items() if k in ("architecture", "task", "test_accuracy")},
        }


def resolve_model_path(spec: str | os.PathLike) -> tuple[str, Path, dict]:
    """(name, path, metadata) for a bundled name or a file path."""
    bundled = bundled_models()
    if isinstance(spec, str) and spec in bundled:
        return spec, Path(bundled[spec]["path"]), bundled[spec]
    path = Path(spec)
    if path.exists() or any(s in str(spec) for s in ("/", ".keras", ".h5")):
        return path.stem, path, {}
    names = ", ".join(sorted(bundled)) or "(none installed)"
    raise ModelLoadError(f"no bundled model or file called {spec!r}; bundled models: {names}")


def load_model(spec: Any = None) -> LoadedModel:
    """Load a model given by bundled name (default ``multiclass``), path, or Keras model."""
    from .keras_io import load_keras_model, network_from_keras

    if isinstance(spec, LoadedModel):
        return spec
    if spec is None:
        spec = DEFAULT_MODEL
    if isinstance(spec, (str, os.PathLike)):
        name, path, meta = resolve_model_path(spec)
        keras_model = load_keras_model(path)
    elif hasattr(spec, "layers") and hasattr(spec, "predict"):
        name, path, meta, keras_model = getattr(spec, "name", "model"), None, {}, spec
    else:
        raise InvalidInputError(
            f"model must be a bundled name, a path or a Keras model, not {type(spec).__name__}")
    network = network_from_keras(keras_model, name)
    classes = list(meta.get("classes") or range(network.num_classes))
    return LoadedModel(name, keras_model, network, path, classes, meta)
