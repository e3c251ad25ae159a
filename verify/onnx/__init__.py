"""ONNX models in and out of the network IR (:class:`verify.network.Network`).

* :mod:`verify.onnx.reader` — :func:`network_from_onnx`: an ONNX model into the IR (its
  docstring lists every supported operator and constraint);
* :mod:`verify.onnx.writer` — :func:`network_to_onnx`: the IR out to ONNX (``verify export``,
  :func:`verify.models.export_model`);
* :mod:`verify.onnx.runtime` — :class:`OnnxReference`: an onnxruntime session, the ground
  truth that re-checks counterexamples of ONNX models;
* :mod:`verify.onnx.files` — :func:`load_onnx` / :func:`save_onnx` (``.onnx`` or
  gzip-compressed ``.onnx.gz``), the only module the other three share.

This package sits in the reading-and-writing layer: it imports the IR (``network``,
``windows``) and ``errors`` only, never :mod:`verify.models` (which imports it).
"""
from __future__ import annotations

from .files import BATCH, load_onnx, save_onnx
from .reader import SUPPORTED_OPS, network_from_onnx
from .runtime import OnnxReference
from .writer import MAX_DENSE_EXPORT, network_to_onnx

__all__ = ["BATCH", "MAX_DENSE_EXPORT", "SUPPORTED_OPS", "OnnxReference", "load_onnx",
           "network_from_onnx", "network_to_onnx", "save_onnx"]
