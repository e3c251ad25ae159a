"""Benchmark runner: many images × models × tasks × backends, in parallel, resumable.

A run is described by a small TOML (or YAML) file, e.g. ``benchmarks/bench-example.toml``::

    models = ["twoclass"]
    backends = ["highs"]
    tasks = ["min-adv-card", {task = "certify", eps = 0.05, norm = "linf"}]
    images = {test = [0, 10]}          # test digits 0..9; or {folder = "examples/images"}
    time_limit = 10                    # seconds per query
    repetitions = 1

:func:`expand` turns it into queries, each with a stable string id
(``model|task[params]|image|backend|rN``). :func:`run_bench` runs the queries that
``DIR/results.jsonl`` does not hold yet, on local processes (``workers``) or a Dask cluster
(``scheduler``), and appends one JSON line per finished query from the parent process only
(one ``write`` + ``fsync`` per line), so a run killed at any moment loses no finished result
and, restarted, duplicates none.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from . import interrupts
from .errors import InvalidInputError, VerifyError

#: Task name → the parameters it accepts from the config (besides ``task``).
TASKS: dict[str, tuple[str, ...]] = {
    "min-adv-card": ("target", "pixel_levels"),
    "min-adv-l1": ("target", "pixel_levels"),
    "min-adv-l2": ("target", "pixel_levels"),
    "min-adv-linf": ("target", "pixel_levels"),
    "certify": ("eps", "norm", "pixels", "target"),
    "explain": ("eps", "method", "order", "minimum"),
    "attack": ("method", "norm", "eps", "target", "seed"),
}
#: Tasks that use no solver: expanded once, with backend ``"-"``.
NO_BACKEND = ("attack",)
CONFIG_KEYS = ("models", "tasks", "images", "backends", "time_limit", "repetitions", "threads")
#: Statuses that settle a query (a proof, a counterexample, or a working attack).
SOLVED = ("optimal", "infeasible", "verified", "counterexample", "minimal", "success")
TIMEOUT = ("time_limit", "unknown")
RESULTS_FILE = "results.jsonl"


# ------------------------------------------------------------------------------------ config

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
    from .models import bundled_models

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

    images = raw.get("images")
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
    from .backends import get_backend

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
    if name == "attack":
        from .attacks.api import METHODS

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
    from .data import TEST_SIZE

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
    from .data import read_image, test_digits

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


# ------------------------------------------------------------------------------------ one query

_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()


def _model(name: str):
    with _MODELS_LOCK:
        if name not in _MODELS:
            from .models import load_model

            _MODELS[name] = load_model(name)
        return _MODELS[name]


def _clean(v):
    """JSON-safe copy: numpy scalars to Python, arrays dropped (they are images)."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items() if not isinstance(x, np.ndarray)}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
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
        task = query["task"]
        if task.startswith("min-adv-"):
            from .tasks.adversarial import min_adversarial

            r = min_adversarial(model, image, norm=task[len("min-adv-"):], target=p.get("target"),
                                backend=backend, time_limit=tl, threads=threads,
                                pixel_levels=p.get("pixel_levels")).to_dict()
            r.pop("changed_pixels", None)
            out.update(status=r["status"], objective=r.get("objective"), bound=r.get("bound"),
                       time_s=r["time_s"], target=r.get("target"))
        elif task == "certify":
            from .tasks.robustness import certify

            r = certify(model, image, eps=p.get("eps"), norm=p.get("norm", "linf"),
                        pixels=p.get("pixels"), target=p.get("target"), backend=backend,
                        time_limit=tl, threads=threads).to_dict()
            out.update(status=r["status"], time_s=r["time_s"])
        elif task == "explain":
            from .tasks.explain import explain

            r = explain(model, image, eps=p.get("eps"), method=p.get("method", "batch"),
                        order=p.get("order", "influence"), minimum=bool(p.get("minimum", False)),
                        backend=backend, time_limit=tl, threads=threads).to_dict()
            minimum = r.get("minimum") or {}
            out.update(status=r["status"], objective=r["size"], time_s=r["time_s"],
                       bound=minimum.get("lower_bound"))
        elif task == "attack":
            from .attacks.api import attack

            r = attack(model, image, method=p.get("method", "pgd"), norm=p.get("norm", "linf"),
                       eps=p.get("eps"), target=p.get("target"), seed=p.get("seed", 0)).to_dict()
            ok = bool(r["success"][0])
            out.update(status="success" if ok else "failed", objective=r["distance"][0],
                       time_s=r["time_s"])
        else:  # guarded by the config check
            raise InvalidInputError(f"unknown task {task!r}")
        out["result"] = r
    except VerifyError as exc:
        out.update(status="error", error=f"{type(exc).__name__}: {exc}",
                   time_s=round(time.perf_counter() - t0, 4))
    delay = float(os.environ.get("VERIFY_BENCH_TEST_DELAY", "0") or 0)
    if delay:  # only for the interruption tests: keeps queries running long enough to kill
        time.sleep(delay)
    record = {k: query[k] for k in ("id", "model", "task", "task_key", "params", "image", "backend", "rep",
                                    "time_limit")}
    record.update(out)
    record["wall_s"] = round(time.perf_counter() - t0, 4)
    return _clean(record)


def _worker_init(threads: int) -> None:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))


# ------------------------------------------------------------------------------------ results file

def complete_lines(path: str | os.PathLike, repair: bool = False) -> bytes:
    """The whole lines of an append-only results file (b"" if there is none). A trailing
    partial line (a write cut short by a kill) is left out, and with ``repair=True`` cut off
    the file so that the next append starts on a fresh line."""
    path = Path(path)
    if not path.is_file():
        return b""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if repair and end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
    return data[:end]


def append_durably(fd: int, data: bytes, path: str | os.PathLike = "") -> None:
    """One ``os.write`` of ``data`` to an ``O_APPEND`` descriptor, then ``fsync``: a finished
    result is on disk before the run goes on."""
    n = os.write(fd, data)
    if n != len(data):  # regular files write whole; guard anyway
        raise OSError(f"short write to {path}")
    os.fsync(fd)


def read_results(path: str | os.PathLike, repair: bool = False) -> list[dict]:
    """Records of a results.jsonl, in file order (see :func:`complete_lines`)."""
    records = []
    for line in complete_lines(path, repair).splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # never written by us whole; skip rather than fail a long run
    return records


def latest(records: Iterable[dict]) -> dict[str, dict]:
    """id → last record of that id."""
    out: dict[str, dict] = {}
    for r in records:
        if "id" in r:
            out[r["id"]] = r
    return out


class ResultsWriter:
    """Appends one record per line: one ``os.write`` of the whole line, then ``fsync``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, record: dict) -> None:
        line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()
        append_durably(self.fd, line, self.path)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ------------------------------------------------------------------------------------ runner

@dataclass
class BenchRun:
    out_dir: Path
    total: int
    skipped: int                       # already in results.jsonl
    ran: int
    wall_s: float
    records: list[dict]                # every query's latest record, in query order

    @property
    def results_path(self) -> Path:
        return self.out_dir / RESULTS_FILE


def default_threads(workers: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


def run_bench(config: BenchConfig, out_dir: str | os.PathLike, workers: int = 1,
              scheduler: str | None = None, progress: bool = True,
              on_record: Callable[[dict], None] | None = None) -> BenchRun:
    """Run every query of ``config`` not yet in ``out_dir/results.jsonl``; see the module docs.

    ``workers``: local processes (1: in this process). ``scheduler``: address of a Dask
    distributed scheduler (then ``workers`` is ignored). Solver threads per query: the
    config's ``threads``, else cores // workers (1 on a cluster)."""
    if workers < 1:
        raise InvalidInputError(f"workers must be ≥ 1, not {workers}")
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    path = out_dir / RESULTS_FILE
    images = load_images(config)
    queries = expand(config, images)
    with _exclusive(out_dir):
        return _run_locked(config, out_dir, path, images, queries, workers, scheduler, progress,
                           on_record, t0)


def _exclusive(out_dir: Path):
    """Hold ``out_dir/.lock`` for the whole run: a second run on the same folder (which would
    run the same queries again and append duplicates) is refused with a clear error."""
    from .outdir import exclusive

    return exclusive(out_dir, busy=f"another verify bench is running on {out_dir}{{holder}}; "
                                   "wait for it or stop it (its finished queries are kept)")


def _run_locked(config, out_dir, path, images, queries, workers, scheduler, progress, on_record,
                t0) -> BenchRun:
    done = latest(read_results(path, repair=True))
    pending = [q for q in queries if q["id"] not in done]
    threads = config.threads or (1 if scheduler else default_threads(workers))

    from tqdm import tqdm

    bar = tqdm(total=len(queries), initial=len(queries) - len(pending), unit="query",
               file=sys.stderr, disable=not progress, dynamic_ncols=True)
    ran = 0
    with ResultsWriter(path) as writer:
        def finish(record):
            nonlocal ran
            if interrupts.stop_requested():
                # Ctrl-C / SIGTERM with workers: records from now on may be interrupted ones;
                # stop the pool here (nothing more is recorded; a rerun resumes)
                raise KeyboardInterrupt
            writer.write(record)
            done[record["id"]] = record
            ran += 1
            bar.update(1)
            bar.set_postfix_str(f"{record['task_key']} {record['image']}: {record['status']}",
                                refresh=False)
            if on_record:
                on_record(record)

        try:
            if not pending:
                pass
            elif scheduler:
                _run_dask(scheduler, pending, images, threads, finish)
            elif workers == 1:
                for q in pending:
                    record = run_query(q, images[q["image"]], threads)
                    if interrupts.stop_requested():
                        break   # Ctrl-C / SIGTERM: an interrupted query is not recorded (a rerun runs it)
                    finish(record)
            else:
                _run_pool(workers, pending, images, threads, finish)
        finally:
            bar.close()
    return BenchRun(out_dir, len(queries), len(queries) - len(pending), ran,
                    time.perf_counter() - t0, [done[q["id"]] for q in queries if q["id"] in done])


def _run_pool(workers, pending, images, threads, finish) -> None:
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    pool = cf.ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=ctx,
                                  initializer=_worker_init, initargs=(threads,))
    try:
        futures = [pool.submit(run_query, q, images[q["image"]], threads) for q in pending]
        for fut in cf.as_completed(futures):
            finish(fut.result())
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _run_dask(address, pending, images, threads, finish) -> None:
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise InvalidInputError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from None
    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise InvalidInputError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        futures = [client.submit(run_query, q, images[q["image"]], threads, pure=False)
                   for q in pending]
        for fut in as_completed(futures):
            finish(fut.result())
    finally:
        client.close()


# ------------------------------------------------------------------------------------ summary

def is_solved(r: dict) -> bool:
    return r.get("status") in SOLVED


def summary_rows(records: Iterable[dict]) -> list[dict]:
    """Per (model, task, backend): queries, solved, timeouts, errors, median/mean/max time."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["model"], r.get("task_key", r["task"]), r["backend"]), []).append(r)
    rows = []
    for (model, task, backend), rs in groups.items():
        times = [r["time_s"] for r in rs if r.get("time_s") is not None]
        rows.append({"model": Path(model).name, "task": task, "backend": backend, "queries": len(rs),
                     "solved": sum(map(is_solved, rs)),
                     "timeouts": sum(r.get("status") in TIMEOUT for r in rs),
                     "errors": sum(r.get("status") == "error" for r in rs),
                     "median_s": statistics.median(times) if times else None,
                     "mean_s": statistics.fmean(times) if times else None,
                     "max_s": max(times) if times else None})
    return rows


SUMMARY_COLUMNS = ("model", "task", "backend", "queries", "solved", "timeouts", "errors",
                   "median_s", "mean_s", "max_s")


def format_table(rows: list[dict], markdown: bool = False) -> str:
    def cell(v):
        if v is None:
            return "-"
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    cells = [[cell(r[c]) for c in SUMMARY_COLUMNS] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(SUMMARY_COLUMNS) + " |", "|" + "|".join("---" for _ in SUMMARY_COLUMNS) + "|"]
        return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells])
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(SUMMARY_COLUMNS)]
    line = lambda c: "  ".join(s.ljust(w) if i < 3 else s.rjust(w)  # noqa: E731
                               for i, (s, w) in enumerate(zip(c, widths)))
    return "\n".join([line(SUMMARY_COLUMNS)] + [line(c) for c in cells])
