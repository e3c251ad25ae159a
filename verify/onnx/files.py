"""ONNX model files: :func:`load_onnx` reads and checks one, :func:`save_onnx` writes one.

A model file is ``.onnx``, or gzip-compressed ``.onnx.gz``. Shared by the reader
(:mod:`verify.onnx.reader`), the writer (:mod:`verify.onnx.writer`) and the runtime
(:mod:`verify.onnx.runtime`), which import nothing from each other but this module.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import onnx

from ..errors import InvalidInputError, ModelLoadError

#: the symbolic batch dimension, in full shapes and in exported graphs
BATCH = "N"


def load_onnx(model_or_path: Any) -> tuple[onnx.ModelProto, str]:
    """The checked ``ModelProto`` and a description of where it came from (its path).

    Accepts a path (``.onnx``; ``.gz`` files are decompressed) or a ``ModelProto``. Any
    failure to read, parse or check the model is a :class:`ModelLoadError` naming the file.
    """
    if isinstance(model_or_path, onnx.ModelProto):
        model, where = model_or_path, "the ONNX model given"
    elif isinstance(model_or_path, (str, os.PathLike)):
        path = Path(model_or_path)
        where = str(path)
        if not path.exists():
            raise ModelLoadError(f"ONNX model file not found: {path}")
        if path.is_dir():
            raise ModelLoadError(f"{path} is a directory, not an ONNX model file")
        try:
            if path.name.lower().endswith(".gz"):
                with gzip.open(path, "rb") as f:
                    model = onnx.load_model_from_string(f.read())
            else:
                model = onnx.load(str(path))
        except Exception as exc:     # protobuf, gzip and OS errors of many kinds
            raise ModelLoadError(f"cannot read {path} as an ONNX model: {first_line(exc)}") from None
    else:
        raise InvalidInputError("an ONNX model must be given as a path or an onnx.ModelProto, "
                                f"not {type(model_or_path).__name__}")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:         # ValidationError, or a protobuf error for broken fields
        raise ModelLoadError(f"{where} is not a valid ONNX model: {first_line(exc)}") from None
    return model, where


def first_line(exc: Exception) -> str:
    """The first line of an exception's message (at most 300 characters), for one-line errors."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def save_onnx(model: onnx.ModelProto, path: str | os.PathLike) -> Path:
    """Save a model; a name ending in ``.gz`` is gzip-compressed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.lower().endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(model.SerializeToString())
    else:
        onnx.save(model, str(path))
    return path
