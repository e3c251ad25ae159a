"""The benchmark config: reading and checking it, and the queries it expands to.

A config is a small TOML (or YAML) file, e.g. ``benchmarks/bench-example.toml``::

    models = ["twoclass"]
    backends = ["highs"]
    tasks = ["min-adv-card", {task = "certify", eps = 0.05, norm = "linf"}]
    images = {test = [0, 10]}          # test digits 0..9; or {folder = "examples/images"}
    time_limit = 10                    # seconds per query
    repetitions = 1

:func:`load_config` / :func:`parse_config` check it, reporting every problem at once in one
:class:`~verify.errors.InvalidInputError`; :func:`expand` turns it into queries, each with a
stable string id (``model|task[params]|image|backend|rN``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import InvalidInputError, VerifyError
from ..tasks.context import ENGINES
from ..tasks.table import bench_tasks, no_backend_tasks

#: Task name → the parameters it accepts from the config (besides ``task``): the tasks a
#: benchmark can run, from the one task table (:mod:`verify.tasks.table`).
TASKS: dict[str, tuple[str, ...]] = bench_tasks()
#: Tasks that use no solver: expanded once, with backend ``"-"``.
NO_BACKEND: tuple[str, ...] = no_backend_tasks()
CONFIG_KEYS = ("models", "tasks", "images", "backends", "time_limit", "repetitions", "threads")


@dataclass
class BenchConfig:
    models: list[str]
    tasks: list[dict]                  # each {"task": name, **params}
    images: dict                       # {"test": [start, stop]} or {"folder": path} or {"files": [...]}
    backends: list[str] = field(default_factory=lambda: ["highs"])
    time_limit: float | None = None
    repetitions: int = 1
    threads: int | None = None         # solver threads per query (default: cores // workers)
    source: str = ""


def load_config(path: str | os.PathLike) -> BenchConfig:
    """Read and validate a TOML (``.toml``) or YAML (``.yaml``/``.yml``) config file."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise InvalidInputError("YAML configs need pyyaml (pip install pyyaml); "
                                        "or write the config as TOML") from None
            raw = yaml.safe_load(text)
        else:
            import tomllib
            raw = tomllib.loads(text)
    except VerifyError:
        raise
    except Exception as exc:  # parse errors of either format
        raise InvalidInputError(f"cannot parse {path}: {exc}") from None
    return parse_config(raw, base=path.parent, source=str(path))


def parse_config(raw: Any, base: str | os.PathLike = ".", source: str = "config") -> BenchConfig:
    """Validate a config mapping; every problem is reported at once in one error."""
    from ..models import bundled_models

    if not isinstance(raw, dict):
        raise InvalidInputError(f"{source}: the config must be a table of keys, not {type(raw).__name__}")
    problems: list[str] = []
    for key in raw:
        if key not in CONFIG_KEYS:
            problems.append(f"unknown key {key!r} (known: {', '.join(CONFIG_KEYS)})")

    models = _str_list(raw.get("models"), "models", problems)
    if not models and "models" in raw:
        problems.append("models: give at least one model")
    elif "models" not in raw:
        problems.append("models: missing (bundled names or .keras/.h5 paths)")
    bundled = bundled_models()
    resolved_models = []
    for m in models:
        if m in bundled:
            resolved_models.append(m)
        elif m.endswith((".keras", ".h5")) and (Path(base) / m).is_file():
            resolved_models.append(str((Path(base) / m).resolve()))
        else:
            problems.append(f"models: unknown model {m!r} (bundled: {', '.join(bundled)}; "
                            "or an existing .keras/.h5 file)")

    backends = _str_list(raw.get("backends", ["highs"]), "backends", problems) or []
    if "backends" in raw and not backends:
        problems.append("backends: give at least one backend")
    for b in backends:
        why = _backend_problem(b)
        if why:
            problems.append(f"backends: {why}")

    tasks = []
    raw_tasks = raw.get("tasks")
    if raw_tasks is None:
        problems.append(f"tasks: missing (any of {', '.join(TASKS)})")
        raw_tasks = []
    elif not isinstance(raw_tasks, list) or not raw_tasks:
        problems.append("tasks: must be a non-empty list of task names or tables")
        raw_tasks = []
    for i, t in enumerate(raw_tasks):
        spec = {"task": t} if isinstance(t, str) else dict(t) if isinstance(t, dict) else None
        if spec is None or not isinstance(spec.get("task"), str):
            problems.append(f"tasks[{i}]: expected a task name or a table with a 'task' key, got {t!r}")
            continue
        name = spec["task"]
        if name not in TASKS:
            problems.append(f"tasks[{i}]: unknown task {name!r} (known: {', '.join(TASKS)})")
            continue
        for k in spec:
            if k != "task" and k not in TASKS[name]:
                problems.append(f"tasks[{i}] ({name}): unknown parameter {k!r} "
                                f"(accepted: {', '.join(TASKS[name]) or 'none'})")
        problems += [f"tasks[{i}] ({name}): {p}" for p in _param_problems(name, spec)]
        tasks.append(spec)

    images: Any = raw.get("images")
    problems += _image_problems(images, base)
    if isinstance(images, dict) and "folder" in images:
        images = dict(images, folder=str((Path(base) / str(images["folder"])).resolve()))
    if isinstance(images, dict) and "files" in images and isinstance(images["files"], list):
        images = dict(images, files=[str((Path(base) / str(f)).resolve()) for f in images["files"]])

    time_limit = raw.get("time_limit")
    if time_limit is not None and (isinstance(time_limit, bool) or not isinstance(time_limit, (int, float))
                                   or not time_limit > 0):
        problems.append(f"time_limit: must be a number of seconds > 0, not {time_limit!r}")
    reps = raw.get("repetitions", 1)
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        problems.append(f"repetitions: must be an integer ≥ 1, not {reps!r}")
    threads = raw.get("threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        problems.append(f"threads: must be an integer ≥ 1, not {threads!r}")

    if problems:
        raise InvalidInputError(f"{source}: {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))
    return BenchConfig(resolved_models, tasks, images, backends,
                       None if time_limit is None else float(time_limit), reps, threads, source)


def _str_list(v, key, problems) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        problems.append(f"{key}: must be a list of names, not {v!r}")
        return []
    return list(v)


def _backend_problem(name: str) -> str | None:
    from ..backends import get_backend

    try:
        b = get_backend(name)
    except VerifyError as exc:
        return str(exc)
    try:
        if not b.available():
            return f"backend {name!r} is not installed (see `verify backends`)"
    except Exception as exc:  # a broken installation
        return f"backend {name!r} cannot be used: {exc}"
    return None


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _param_problems(name: str, p: dict) -> list[str]:
    out = []
    if "target" in p and p["target"] is not None and (not isinstance(p["target"], int) or isinstance(p["target"], bool)):
        out.append(f"target must be a class index (integer), not {p['target']!r}")
    if "eps" in p and p["eps"] is not None and (not _is_num(p["eps"]) or p["eps"] < 0):
        out.append(f"eps must be a number ≥ 0, not {p['eps']!r}")
    if "norm" in p and p["norm"] not in ("card", "l1", "l2", "linf"):
        out.append(f"norm must be card, l1, l2 or linf, not {p['norm']!r}")
    if name == "certify":
        has_eps, has_pix = p.get("eps") is not None, p.get("pixels") is not None
        if has_eps == has_pix:
            out.append("give exactly one budget: eps (with norm) or pixels")
        if has_pix and (not isinstance(p["pixels"], int) or isinstance(p["pixels"], bool) or p["pixels"] < 0):
            out.append(f"pixels must be an integer ≥ 0, not {p['pixels']!r}")
    if "engine" in p and p["engine"] not in ENGINES:
        out.append(f"engine must be one of {', '.join(ENGINES)}, not {p['engine']!r}")
    if name == "attack":
        from ..attacks.api import METHODS

        method = p.get("method", "pgd")
        if method not in METHODS:
            out.append(f"unknown attack method {method!r} (known: {', '.join(METHODS)})")
        elif p.get("norm", "linf") not in METHODS[method].norms:
            out.append(f"attack {method!r} works in {', '.join(METHODS[method].norms)}, "
                       f"not {p.get('norm', 'linf')!r}")
    if name == "explain" and p.get("method", "batch") not in ("batch", "sequential", "seed"):
        out.append(f"explain method must be batch, sequential or seed, not {p.get('method')!r}")
    return out


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".npy", ".bmp", ".gif")


def _image_problems(images, base) -> list[str]:
    from ..data import TEST_SIZE

    if images is None:
        return ["images: missing; e.g. images = {test = [0, 10]} or images = {folder = \"dir\"}"]
    if not isinstance(images, dict) or len(images) != 1 or next(iter(images)) not in ("test", "folder", "files"):
        return [f"images: must be a table with one key test = [start, stop], folder = \"dir\" or "
                f"files = [...], not {images!r}"]
    kind, v = next(iter(images.items()))
    if kind == "test":
        if (not isinstance(v, list) or len(v) != 2 or not all(isinstance(i, int) and not isinstance(i, bool) for i in v)):
            return [f"images.test: must be [start, stop] (integers), not {v!r}"]
        start, stop = v
        if not 0 <= start < stop <= TEST_SIZE:
            return [f"images.test: bad range [{start}, {stop}): need 0 ≤ start < stop ≤ {TEST_SIZE}"]
        return []
    if kind == "folder":
        folder = Path(base) / str(v)
        if not folder.is_dir():
            return [f"images.folder: {folder} is not a folder"]
        if not any(f.suffix.lower() in IMAGE_SUFFIXES for f in folder.iterdir()):
            return [f"images.folder: {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})"]
        return []
    if not isinstance(v, list) or not v:
        return [f"images.files: must be a non-empty list of paths, not {v!r}"]
    return [f"images.files: {Path(base) / str(f)} does not exist" for f in v if not (Path(base) / str(f)).is_file()]


# ------------------------------------------------------------------------------------ queries

def task_key(spec: dict) -> str:
    """``name`` or ``name[k=v,...]`` with the parameters sorted: part of the stable id."""
    params = {k: v for k, v in spec.items() if k != "task" and v is not None}
    if not params:
        return spec["task"]
    return spec["task"] + "[" + ",".join(f"{k}={params[k]}" for k in sorted(params)) + "]"


def load_images(config: BenchConfig) -> dict[str, np.ndarray]:
    """Image key (``test:3`` or the file name) → 28x28 array, in a fixed order."""
    from ..data import read_image, test_digits

    kind, v = next(iter(config.images.items()))
    if kind == "test":
        x, _ = test_digits(v[1])
        return {f"test:{i}": x[i] for i in range(v[0], v[1])}
    files = (sorted(f for f in Path(v).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
             if kind == "folder" else [Path(f) for f in v])
    return {f.name if kind == "folder" else str(f): read_image(f) for f in files}


def expand(config: BenchConfig, images: Iterable[str]) -> list[dict]:
    """Every query: models × tasks × images × backends × repetitions, each with its ``id``."""
    queries = []
    images = list(images)
    for model in config.models:
        for spec in config.tasks:
            backends = ["-"] if spec["task"] in NO_BACKEND else config.backends
            for image in images:
                for backend in backends:
                    for rep in range(config.repetitions):
                        tk = task_key(spec)
                        queries.append({
                            "id": f"{model}|{tk}|{image}|{backend}|r{rep}", "model": model,
                            "task": spec["task"], "task_key": tk,
                            "params": {k: v for k, v in spec.items() if k != "task"},
                            "image": image, "backend": backend, "rep": rep,
                            "time_limit": config.time_limit})
    return queries
