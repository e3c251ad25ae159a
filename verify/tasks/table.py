"""The one table of tasks: name → the public function that runs it, the parameters a
benchmark config may set, a one-line summary, and how ``verify encode`` builds its problem.

The command line (``verify encode --task``), ``verify bench`` (which tasks and parameters a
config may name) and the documentation read this table instead of keeping lists of their
own. Adding a task is one row here (and its public function in :mod:`verify.tasks`).

Importing this module is cheap (no numpy, solver or Keras import): each row's :attr:`TaskSpec.run`
imports its task module on first call, so that the command line can build its help from the
table and start fast.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    from ..encodings.query import Query


def _min_adversarial(model: Any, image: Any, **kwargs: Any) -> Any:
    from .adversarial import min_adversarial

    return min_adversarial(model, image, **kwargs)


def _certify(model: Any, image: Any, **kwargs: Any) -> Any:
    from .robustness import certify

    return certify(model, image, **kwargs)


def _explain(model: Any, image: Any, **kwargs: Any) -> Any:
    from .explain import explain

    return explain(model, image, **kwargs)


def _attack(model: Any, image: Any, **kwargs: Any) -> Any:
    from ..attacks.api import attack

    return attack(model, image, **kwargs)


def _compare(model: Any, image: Any, **kwargs: Any) -> Any:
    from .compare import compare

    return compare(model, image, **kwargs)


def _evidence(model: Any, image: Any, **kwargs: Any) -> Any:
    from .evidence import evidence

    return evidence(model, image, **kwargs)


def _certify_vnnlib(model: Any, prop: Any, **kwargs: Any) -> Any:
    from .vnnlib import certify_vnnlib

    return certify_vnnlib(model, prop, **kwargs)


Encoder = Callable[..., "Query"]


# -- the summary fields of a benchmark record, from a result's JSON (``to_dict()``) -------------

def _adversarial_record(r: dict) -> dict:
    return {"status": r["status"], "objective": r.get("objective"), "bound": r.get("bound"),
            "time_s": r["time_s"], "target": r.get("target")}


def _certify_record(r: dict) -> dict:
    return {"status": r["status"], "time_s": r["time_s"]}


def _explain_record(r: dict) -> dict:
    minimum = r.get("minimum") or {}
    return {"status": r["status"], "objective": r["size"], "time_s": r["time_s"],
            "bound": minimum.get("lower_bound")}


def _attack_record(r: dict) -> dict:
    ok = bool(r["success"][0])
    return {"status": "success" if ok else "failed", "objective": r["distance"][0],
            "time_s": r["time_s"]}


def _encoder(norm: str | None) -> Encoder:
    """``encode(model, image, target=None, region=None, margin=..., bound_stages=...)``: the
    exact query of a minimal-adversarial task in ``norm`` (None: certify's feasibility
    question, "can the label change in the region?") as :func:`build_query` makes it."""

    def encode(model: Any, image: Any, **kwargs: Any) -> Query:
        from ..encodings.query import build_query

        return build_query(model.network, image, norm=norm, **kwargs)

    encode.__doc__ = (f"The {'feasibility' if norm is None else norm} query of the task "
                      "(see :func:`verify.encodings.query.build_query`).")
    return encode


@dataclass(frozen=True)
class TaskSpec:
    """One task.

    ``run(model, image, **keywords)`` is the public function (for ``certify-vnnlib`` the second
    argument is the property); ``fixed`` are the keywords the task's name implies (the norm of
    ``min-adv-l1``); ``params`` are the keywords a ``verify bench`` config may set, and
    ``defaults`` what the benchmark uses when a config leaves one out; ``solver`` says whether
    it takes ``backend``/``time_limit``/``threads`` (and a benchmark expands it per backend);
    ``bench``: whether ``verify bench`` can run it (one model and one image per query);
    ``record``: the summary fields of a benchmark record (status, objective, bound, time_s,
    ...) from the result's JSON; ``encode``: how ``verify encode`` builds its problem, or
    None; ``aliases``: other names ``verify encode --task`` accepts.
    """

    name: str
    run: Callable[..., Any]
    params: tuple[str, ...]
    summary: str
    fixed: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    defaults: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    solver: bool = True
    bench: bool = True
    record: Callable[[dict], dict] | None = None
    encode: Encoder | None = None
    aliases: tuple[str, ...] = ()

    def __call__(self, model: Any, image: Any, **keywords: Any) -> Any:
        """Run the task: ``run(model, image, **fixed, **defaults, **keywords)`` (``keywords``
        win over ``defaults``; a keyword the name fixes cannot be given)."""
        clash = set(self.fixed) & set(keywords)
        if clash:
            from ..errors import InvalidInputError

            raise InvalidInputError(f"task {self.name} fixes {', '.join(sorted(clash))}; "
                                    "leave it out")
        return self.run(model, image, **self.fixed, **{**self.defaults, **keywords})


def _frozen(**values: Any) -> Mapping[str, Any]:
    return MappingProxyType(dict(values))


def _min_adv(norm: str, summary: str, aliases: tuple[str, ...] = ()) -> TaskSpec:
    return TaskSpec(f"min-adv-{norm}", _min_adversarial, ("target", "pixel_levels", "engine"), summary,
                    fixed=_frozen(norm=norm), record=_adversarial_record, encode=_encoder(norm),
                    aliases=aliases)


#: Every task, by name (in the order the documentation lists them).
TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in (
    _min_adv("card", "provably minimal number of changed pixels that changes the label"),
    _min_adv("l1", "provably minimal L1 change that changes the label"),
    _min_adv("l2", "provably minimal sum of squared changes that changes the label (an MIQP: "
                   "needs scip, the default here, or cplex)",
             aliases=("min-adv-sum",)),
    _min_adv("linf", "provably minimal L∞ change that changes the label"),
    TaskSpec("certify", _certify, ("eps", "norm", "pixels", "target", "engine"),
             "prove that no change within a budget changes the label, or find one that does",
             defaults=_frozen(norm="linf"), record=_certify_record, encode=_encoder(None)),
    TaskSpec("explain", _explain, ("eps", "method", "order", "minimum", "engine"),
             "a subset-minimal set of pixels that forces the label",
             defaults=_frozen(method="batch", order="influence", minimum=False),
             record=_explain_record),
    TaskSpec("attack", _attack, ("method", "norm", "eps", "target", "seed"),
             "a gradient or greedy attack (no proof)",
             defaults=_frozen(method="pgd", norm="linf", seed=0), solver=False,
             record=_attack_record),
    TaskSpec("compare", _compare, ("norm", "methods", "target", "seed"),
             "the exact minimum beside each attack's distance", bench=False),
    TaskSpec("evidence", _evidence, ("claim", "k", "against", "revealed", "method"),
             "the provably most persuasive pixels to reveal to a sparse judge", bench=False),
    TaskSpec("certify-vnnlib", _certify_vnnlib, ("margin", "seed"),
             "decide a VNN-LIB property (sat, unsat, timeout)", bench=False),
)}


def bench_tasks() -> dict[str, tuple[str, ...]]:
    """Task name → the parameters a ``verify bench`` config may set, for the tasks it runs
    (what :data:`verify.bench.TASKS` was)."""
    return {name: spec.params for name, spec in TASKS.items() if spec.bench}


def no_backend_tasks() -> tuple[str, ...]:
    """The benchmark tasks that use no solver (expanded once, with backend ``"-"``)."""
    return tuple(name for name, spec in TASKS.items() if spec.bench and not spec.solver)


def encode_tasks() -> dict[str, TaskSpec]:
    """Every name ``verify encode --task`` accepts (aliases included) → its task."""
    out: dict[str, TaskSpec] = {}
    for spec in TASKS.values():
        if spec.encode is not None:
            out.update({name: spec for name in (spec.name, *spec.aliases)})
    return out


def task(name: str) -> TaskSpec:
    """The task called ``name`` (or one of its aliases); a clear error for an unknown one."""
    if name in TASKS:
        return TASKS[name]
    for spec in TASKS.values():
        if name in spec.aliases:
            return spec
    from ..errors import InvalidInputError

    raise InvalidInputError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
