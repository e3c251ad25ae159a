"""The task context: what every exact task needs besides its own question, prepared once.

Every public task (:func:`~verify.tasks.adversarial.min_adversarial`,
:func:`~verify.tasks.explain.explain`, :func:`~verify.tasks.robustness.certify`,
:func:`~verify.tasks.evidence.evidence`, ...) starts the same way: check the numbers the user
passed in, load the model, check the image against it, ask the model's own runtime for its
label, and pick the ReLU or the binarized (BNN) path. :func:`prepare` does exactly that, in
that order and with the messages of :mod:`verify.validate`, *before any work*, and returns a
frozen :class:`TaskContext`; the task's internal helpers then take the context instead of long
parameter lists.

Example::

    ctx = prepare("multiclass", image, time_limit=10, threads=1)
    ctx.label, ctx.binarized, ctx.options.time_limit, ctx.deadline().remaining()

:class:`TaskOptions` carries the options that most tasks share (backend, time limit, threads,
margin, pixel levels, engine, BNN encoding). It is frozen: a task that needs a variant (one
target of ``target="all"`` with its share of the time) makes a new one with
:meth:`TaskContext.with_options`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from ..budget import Deadline
from ..errors import InvalidInputError
from ..models import LoadedModel, load_model
from ..validate import check
from ..vocabulary import DEFAULT_MARGIN

#: The exact engines a certify-like task may use (``auto``: the task decides).
ENGINES = ("auto", "bab", "mip")


@dataclass(frozen=True)
class TaskOptions:
    """Everything a task needs besides the model and the image (all optional).

    ``backend``: solver name (None: the task's default); ``time_limit``: seconds for the whole
    task (None: no limit); ``threads``: solver threads; ``margin``: logit margin by which a
    new label must win; ``levels``: pixel levels of a changed pixel (e.g. 256 for 8-bit
    values; None: continuous); ``engine``: ``auto``, ``bab`` or ``mip`` for certify-like
    tasks; ``encoding``: how a BNN is encoded (``cnf``, ``mip``, ``ip``; None: the task's
    default; a ReLU network only takes None or ``mip``).
    """

    backend: str | None = None
    time_limit: float | None = None
    threads: int | None = None
    margin: float = DEFAULT_MARGIN
    levels: int | None = None
    engine: str = "auto"
    encoding: str | None = None

    def check(self) -> None:
        """The rules of :mod:`verify.validate` (same names and messages as the public
        functions' parameters: ``levels`` is checked as ``pixel_levels``), and the engine."""
        check(time_limit=self.time_limit, threads=self.threads, margin=self.margin,
              pixel_levels=self.levels)
        if self.engine not in ENGINES:
            raise InvalidInputError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")


def as_input(model: LoadedModel, image: Any) -> np.ndarray:
    """``image`` as the flat float64 vector the network IR takes, after the one check of
    every task: as many values as the model's input, all finite and in [0, 1]."""
    x = np.asarray(image, dtype=np.float64)
    if x.size != model.network.num_inputs:
        raise InvalidInputError(
            f"image has {x.size} values; model {model.name} takes {model.network.num_inputs} "
            f"(shape {model.input_shape})")
    if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
        raise InvalidInputError("image values must lie in [0, 1]")
    return x.ravel()


def check_relu_encoding(model: LoadedModel, encoding: str | None) -> None:
    """A ReLU network is encoded as a MIP: only ``encoding`` None or ``"mip"`` applies."""
    if encoding not in (None, "mip"):
        raise InvalidInputError(f"encoding {encoding!r} is for binarized networks; "
                                f"{model.name} is encoded as a MIP")


@dataclass(frozen=True)
class TaskContext:
    """A loaded model, a checked input and the task's options, prepared once (:func:`prepare`).

    ``image`` is the flat float64 input the network IR takes (``shaped`` gives the model's
    input shape); ``label`` is the model's own runtime's label on it (asked once, on first
    use); ``binarized`` says which path the task takes (ReLU MIP, or BNN flips); ``started``
    is the :func:`time.perf_counter` reading when :func:`prepare` was called (before the
    model was loaded), the start of the task's time limit (the clock every task and
    :class:`~verify.budget.Deadline` use).
    """

    model: LoadedModel
    image: np.ndarray
    binarized: bool
    options: TaskOptions = field(default_factory=TaskOptions)
    started: float = field(default_factory=time.perf_counter)

    @cached_property
    def label(self) -> int:
        """The label the model's own runtime (Keras or onnxruntime, float32) gives the input."""
        return int(self.model.reference_labels(self.image)[0])

    @property
    def shape(self) -> tuple:
        return tuple(self.model.input_shape)

    def shaped(self, x: np.ndarray) -> np.ndarray:
        """``x`` (flat) in the model's input shape."""
        return np.asarray(x).reshape(self.shape)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def remaining(self) -> float | None:
        """Seconds left of ``options.time_limit`` (never negative), or None without one."""
        limit = self.options.time_limit
        return None if limit is None else max(0.0, limit - self.elapsed())

    def deadline(self) -> Deadline:
        """A :class:`~verify.budget.Deadline` for ``options.time_limit``, counted from
        :attr:`started` (not from this call)."""
        deadline = Deadline(self.options.time_limit)
        deadline.start = self.started
        deadline.at = None if deadline.seconds is None else self.started + deadline.seconds
        return deadline

    def bound_budget(self) -> float | None:
        """Seconds the LP stage of the bounds may take: half of what is left of the time limit
        (the solver keeps the other half); None without a limit."""
        left = self.remaining()
        return None if left is None else 0.5 * left

    def with_options(self, restart: bool = True, **changes: Any) -> TaskContext:
        """The same model, input and label with some options changed (checked again);
        ``restart``: the time limit counts from now."""
        options = replace(self.options, **changes)
        options.check()
        ctx = replace(self, options=options,
                      started=time.perf_counter() if restart else self.started)
        if "label" in self.__dict__:        # already asked: do not ask the runtime again
            ctx.__dict__["label"] = self.__dict__["label"]
        return ctx


def prepare(model: Any, image: Any, options: TaskOptions | None = None,
            **overrides: Any) -> TaskContext:
    """Check the options, load ``model`` (a bundled name, a path, a Keras model or a
    :class:`~verify.models.LoadedModel`), check ``image`` against it and pick the ReLU or BNN
    path: the common start of every task, before any work.

    ``options`` (default :class:`TaskOptions`\\ ()) with ``overrides`` applied, e.g.
    ``prepare(model, image, time_limit=5, levels=256)``. Raises
    :class:`~verify.errors.InvalidInputError` (or the model loader's errors) with the same
    messages as the tasks' own parameter checks; a ReLU network given a BNN ``encoding`` is
    refused here too.
    """
    started = time.perf_counter()
    options = replace(options or TaskOptions(), **overrides)
    options.check()
    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    x = as_input(loaded, image)
    binarized = bool(loaded.network.is_binarized)
    if not binarized:
        check_relu_encoding(loaded, options.encoding)
    return TaskContext(loaded, x, binarized, options, started)
