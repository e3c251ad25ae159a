"""The exceptions a user of ``verify`` can see.

Every error the toolkit raises on a user-reachable path is a :class:`VerifyError`; the CLI
turns any of them into a one-line message and a non-zero exit code.
"""
from __future__ import annotations


class VerifyError(Exception):
    """Base class of every error ``verify`` raises on purpose."""


class InvalidInputError(VerifyError, ValueError):
    """An argument, file or image that cannot be used as given (the message says why)."""


class ModelLoadError(InvalidInputError):
    """A model file that is missing, corrupt, or not a Keras (or ONNX) model."""


class UnsupportedLayerError(VerifyError):
    """The model contains layers the network IR cannot represent.

    ``layers`` lists every offending layer as ``(name, description)``, all of them at once.
    """

    def __init__(self, layers: list[tuple[str, str]]):
        self.layers = list(layers)
        listed = "; ".join(f"{name} ({why})" for name, why in self.layers)
        super().__init__(
            f"{len(self.layers)} unsupported layer(s): {listed}. Supported: Dense, Conv2D, "
            "AveragePooling2D, MaxPooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, "
            "Flatten, Reshape, Dropout, BatchNormalization, ReLU (also with max_value and "
            "negative_slope), LeakyReLU, PReLU, the relu/relu6/leaky_relu/hard_tanh/"
            "hard_sigmoid/linear activations, a final sigmoid/softmax, graphs merged by "
            "Add/Subtract/Average/Maximum/Minimum/Concatenate (residual blocks, ensembles), "
            "and in chains the BNN layers of "
            "verify.layers (BinarizeInput/IntegerInput, BinaryDense-[BatchNormalization]-Sign "
            "blocks, a final BinaryDense)."
        )


class UnsupportedOperatorError(UnsupportedLayerError):
    """The ONNX graph contains nodes the network IR cannot represent.

    ``nodes`` (also ``layers``) lists every offending node as ``(name, op type and why)``, all
    of them at once; ``supported`` names the operators the ONNX reader accepts.
    """

    def __init__(self, nodes: list[tuple[str, str]], supported: tuple[str, ...] = ()):
        self.nodes = self.layers = list(nodes)
        self.supported = tuple(supported)
        listed = "; ".join(f"{name} ({why})" for name, why in self.nodes)
        message = f"{len(self.nodes)} unsupported ONNX node(s): {listed}."
        if self.supported:
            message += f" Supported operators: {', '.join(self.supported)}."
        VerifyError.__init__(self, message)


class BackendUnavailableError(VerifyError):
    """A solver backend that is not installed, unknown, or cannot solve this kind of problem."""


class ProblemTooLargeError(VerifyError):
    """The solver refused the problem because of a size limit (e.g. CPLEX Community Edition)."""


class SolveError(VerifyError):
    """The solver failed for a reason other than the problem's own status."""
