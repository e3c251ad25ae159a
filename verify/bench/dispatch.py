"""One query: :func:`run_query` runs a task on one image and returns its JSON record.

The task comes from the one task table (:mod:`verify.tasks.table`): its public function, the
parameters a config may set (every one is passed, ``None`` or the task's default when the
config leaves it out), whether it takes a solver, and the summary fields of its record.
:func:`run_query` is a plain function of plain arguments, so that it can be shipped to a
worker process or a Dask worker; each process loads every model once (:func:`_model`).
"""
from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from ..errors import InvalidInputError, VerifyError
from ..results import json_value
from ..tasks.table import task as task_spec

_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()


def _model(name: str):
    with _MODELS_LOCK:
        if name not in _MODELS:
            from ..models import load_model

            _MODELS[name] = load_model(name)
        return _MODELS[name]


def _clean(v):
    """The record in plain JSON types: a record keeps no images, so arrays inside dicts are
    dropped; every value is cleaned by the results' JSON sanitiser
    (:func:`verify.results.json_value`: numpy scalars to Python, NaN/inf to None); anything
    that is still no JSON scalar becomes its ``str``."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items() if not isinstance(x, np.ndarray)}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    v = json_value(v)
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def run_query(query: dict, image: np.ndarray, threads: int | None = 1) -> dict:
    """Run one query and return its record (plain JSON types). Pure: safe to ship to a worker.

    Errors raised on purpose (:class:`VerifyError`) become a record with status ``error``."""
    t0 = time.perf_counter()
    p = dict(query["params"])
    backend = None if query["backend"] == "-" else query["backend"]
    tl = query["time_limit"]
    out = {"target": p.get("target"), "objective": None, "bound": None}
    try:
        model = _model(query["model"])
        spec = task_spec(query["task"])
        if not spec.bench or spec.record is None:   # guarded by the config check
            raise InvalidInputError(f"task {spec.name!r} cannot run in a benchmark")
        keywords = {k: p.get(k, spec.defaults.get(k)) for k in spec.params}
        if spec.solver:
            keywords.update(backend=backend, time_limit=tl, threads=threads)
        r = spec(model, image, **keywords).to_dict()
        r.pop("changed_pixels", None)       # image-sized; the record keeps the objective
        out.update(spec.record(r))
        out["result"] = r
    except VerifyError as exc:
        out.update(status="error", error=f"{type(exc).__name__}: {exc}",
                   time_s=round(time.perf_counter() - t0, 4))
    record = {k: query[k] for k in ("id", "model", "task", "task_key", "params", "image", "backend", "rep",
                                    "time_limit")}
    record.update(out)
    record["wall_s"] = round(time.perf_counter() - t0, 4)
    return _clean(record)
