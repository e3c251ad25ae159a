"""verify — exact verification of trained neural networks.

Provably minimal adversarial examples, minimal explanations and robustness certificates for
Keras and ONNX networks (and VNN-LIB properties), computed with MIP/MIQP/SAT solvers. Start with::

    import verify
    from verify.data import read_image
    model = verify.load_model("multiclass")      # a bundled model, a path, or a Keras model
    image = read_image("examples/images/digit-7.png")
    model.label(image), model.logits(image)
    verify.min_adversarial(model, image, norm="card").objective

Keras runs on the JAX backend unless ``KERAS_BACKEND`` is already set: ``import verify``
sets it to ``jax`` when it is unset. Keras chooses its backend once, at its first import
(``KERAS_BACKEND``, else ``~/.keras/keras.json``), so import ``verify`` before ``keras``
when your keras.json names a backend that is not installed (e.g. tensorflow); a backend that
cannot be imported gives a one-line :class:`ModelLoadError` saying to set
``KERAS_BACKEND=jax``.
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

__version__ = "0.1.0"

from .errors import (BackendUnavailableError, InvalidInputError, ModelLoadError,  # noqa: E402
                     ProblemTooLargeError, SolveError, UnsupportedLayerError, VerifyError)

#: Public name -> the module that defines it. Imported on first use (PEP 562), so that
#: ``import verify`` and ``verify --help`` load neither numpy, scipy nor Keras.
_LAZY = {
    "load_model": "models", "bundled_models": "models", "LoadedModel": "models",
    "AdversarialResult": "results", "CertifyResult": "results",
    "min_adversarial": "tasks.adversarial",
    "explain": "tasks.explain", "ExplanationResult": "tasks.explain",
    "certify": "tasks.robustness",
    "attack": "attacks.api", "AttackResult": "attacks.api",
    "compare": "tasks.compare", "ComparisonResult": "tasks.compare",
    "certify_vnnlib": "tasks.vnnlib", "PropertyResult": "tasks.vnnlib",
    "parse_vnnlib": "vnnlib", "VnnProperty": "vnnlib",
    "evidence": "tasks.evidence", "EvidenceResult": "tasks.evidence",
}

__all__ = ["VerifyError", "InvalidInputError", "ModelLoadError", "UnsupportedLayerError",
           "BackendUnavailableError", "ProblemTooLargeError", "SolveError", "__version__",
           *_LAZY]


def __getattr__(name: str):
    """A public name of :data:`_LAZY`, or a submodule (``verify.data``, ``verify.ensembles``,
    ...), imported on first use."""
    import importlib

    module = _LAZY.get(name)
    if module is None:
        if name.startswith("_"):
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise                # the submodule exists but something it imports does not
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value          # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
