"""verify — exact verification of trained neural networks.

Provably minimal adversarial examples, minimal explanations and robustness certificates for
Keras and ONNX networks (and VNN-LIB properties), computed with MIP/MIQP/SAT solvers. Start with::

    import verify
    model = verify.load_model("multiclass")      # a bundled model, a path, or a Keras model
    model.predict(image)

Keras runs on the JAX backend unless ``KERAS_BACKEND`` is already set.
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

__version__ = "0.1.0"

from .errors import (BackendUnavailableError, InvalidInputError, ModelLoadError,  # noqa: E402
                     ProblemTooLargeError, SolveError, UnsupportedLayerError, VerifyError)

__all__ = ["VerifyError", "InvalidInputError", "ModelLoadError", "UnsupportedLayerError",
           "BackendUnavailableError", "ProblemTooLargeError", "SolveError", "__version__"]

from .models import LoadedModel, bundled_models, load_model  # noqa: E402
from .results import AdversarialResult, CertifyResult  # noqa: E402
from .tasks.adversarial import min_adversarial  # noqa: E402
from .tasks.explain import ExplanationResult, explain  # noqa: E402
from .tasks.robustness import certify  # noqa: E402
from .attacks.api import AttackResult, attack  # noqa: E402
from .tasks.compare import ComparisonResult, compare  # noqa: E402
from .tasks.vnnlib import PropertyResult, certify_vnnlib  # noqa: E402
from .vnnlib import VnnProperty, parse_vnnlib  # noqa: E402

__all__ += ["load_model", "bundled_models", "LoadedModel", "min_adversarial", "certify",
            "explain", "AdversarialResult", "CertifyResult", "ExplanationResult", "attack",
            "compare", "AttackResult", "ComparisonResult", "certify_vnnlib", "PropertyResult",
            "parse_vnnlib", "VnnProperty"]
