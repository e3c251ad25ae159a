"""The reference forward of ONNX models: :class:`OnnxReference`.

An ``onnxruntime`` session (CPU, one thread, graph optimisations off so that it computes
exactly what the graph says) that returns a model's float32 outputs for a batch: the ground
truth for re-checking counterexamples of ONNX models.
"""
from __future__ import annotations

import math
import os

import numpy as np
import onnx

from ..errors import InvalidInputError, ModelLoadError
from .files import first_line, load_onnx


class OnnxReference:
    """An onnxruntime session on an ONNX model: its float32 outputs for a batch.

    CPU only, one thread, graph optimisations off (``optimize=True`` turns them on), so the
    outputs are what the graph itself computes. Used as the ground truth when re-checking
    counterexamples of ONNX models.
    """

    def __init__(self, model_or_path: str | os.PathLike | onnx.ModelProto, optimize: bool = False):
        import onnxruntime as ort

        model, self.where = load_onnx(model_or_path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        if not optimize:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            self.session = ort.InferenceSession(model.SerializeToString(), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:     # onnxruntime raises its own exception types
            raise ModelLoadError(f"onnxruntime cannot run {self.where}: {first_line(exc)}") from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.dtype = np.float64 if inp.type == "tensor(double)" else np.float32
        dims = list(inp.shape)
        if len(dims) < 2 or not (dims[0] is None or isinstance(dims[0], str) or dims[0] == 1):
            raise InvalidInputError(f"{self.where}: input shape {dims} has no leading batch "
                                    "dimension (symbolic or 1)")
        if any(not isinstance(d, int) for d in dims[1:]):
            raise InvalidInputError(f"{self.where}: input shape {dims}: only the batch "
                                    "dimension may be symbolic")
        self.input_shape = tuple(int(d) for d in dims[1:])
        self.batched = dims[0] != 1
        self.output_name = self.session.get_outputs()[0].name
        last = [n for n in model.graph.node if self.output_name in n.output]
        op = last[0].op_type if last else ""
        self.output_activation = {"Softmax": "softmax", "Sigmoid": "sigmoid"}.get(op, "linear")

    @property
    def num_inputs(self) -> int:
        return math.prod(self.input_shape)

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """Outputs (batch, num_outputs) as float32 for a batch in any shape with the model's
        number of input values per row (one input alone is a batch of one)."""
        x = np.asarray(x)
        n = self.num_inputs
        if x.size == n:
            x = x.reshape(1, n)
        if x.ndim < 1 or x.size % n or (x.shape[0] and x.size // x.shape[0] != n):
            raise InvalidInputError(f"input of shape {x.shape} does not fit the ONNX model input "
                                    f"{self.input_shape} ({n} values per row)")
        batch = x.reshape((x.shape[0],) + self.input_shape).astype(self.dtype)
        if self.batched:
            out = self.session.run([self.output_name], {self.input_name: batch})[0]
            return np.asarray(out, np.float32).reshape(len(batch), -1)
        rows = [self.session.run([self.output_name], {self.input_name: row[None]})[0].reshape(-1)
                for row in batch]
        return np.asarray(rows, np.float32).reshape(len(batch), -1)

    def labels(self, x: np.ndarray) -> np.ndarray:
        """Predicted labels: argmax, or for one output ``> 0.5`` after a sigmoid, ``> 0`` else."""
        out = self.outputs(x)
        if out.shape[1] == 1:
            cut = 0.5 if self.output_activation == "sigmoid" else 0.0
            return (out[:, 0] > cut).astype(np.int64)
        return np.argmax(out, axis=1)
