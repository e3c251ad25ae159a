"""Running a VNN-COMP benchmark folder: ``instances.csv`` in, a results CSV out, resumable.

A benchmark folder holds ``instances.csv`` with one instance per row: the ONNX model path, the
VNN-LIB property path (both relative to the folder; ``.gz`` files accepted) and the timeout in
seconds. :func:`run_vnncomp` decides each instance with
:func:`verify.tasks.vnnlib.certify_vnnlib` and appends one row per finished instance to the
results CSV (columns :data:`COLUMNS`), flushed and fsync'd at once, so killing the run loses
no finished instance; running it again skips the rows already there (the key is the
``(onnx, vnnlib)`` pair) and cuts a partial last line. Counterexamples are written in the
VNN-COMP format next to the results, in ``<results name>-counterexamples/``.

Properties may be VNN-LIB 1.0 or 2.0 (:mod:`verify.vnnlib` tells them apart); the
counterexample files use the words of each property's version (``sat`` / ``violated``), while
the ``verdict`` column keeps the toolkit's words (``sat``, ``unsat``, ``timeout``,
``unknown``, ``error``) for every version. :func:`convert_benchmark_v2` writes the 2.0 form of
a 1.0 benchmark folder (``DIR/2.0/``, as VNN-COMP ships both versions).
"""
from __future__ import annotations

import csv
import io
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import interrupts
from .bench import append_durably, complete_lines
from .errors import InvalidInputError, VerifyError

COLUMNS = ("onnx", "vnnlib", "timeout", "verdict", "method", "time_s", "counterexample", "error",
           "stage")


@dataclass
class Instance:
    onnx: str          # as written in instances.csv
    vnnlib: str
    timeout: float

    @property
    def key(self) -> tuple[str, str]:
        return self.onnx, self.vnnlib


def read_instances(directory: str | os.PathLike) -> list[Instance]:
    """The rows of ``DIRECTORY/instances.csv`` (a clear error, with the line, for bad rows)."""
    path = Path(directory) / "instances.csv"
    if not path.is_file():
        raise InvalidInputError(f"{path} not found: a VNN-COMP benchmark folder has an "
                                "instances.csv with rows 'model.onnx,property.vnnlib,timeout'")
    instances = []
    for line_no, row in enumerate(csv.reader(io.StringIO(path.read_text())), start=1):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 3:
            raise InvalidInputError(f"{path}, line {line_no}: expected 3 columns (onnx, vnnlib, "
                                    f"timeout), got {len(row)}")
        onnx, vnnlib, timeout = (c.strip() for c in row)
        try:
            seconds = float(timeout)
        except ValueError:
            raise InvalidInputError(f"{path}, line {line_no}: timeout {timeout!r} is not a number") from None
        if not (math.isfinite(seconds) and seconds > 0):
            raise InvalidInputError(f"{path}, line {line_no}: timeout must be a finite number of "
                                    f"seconds > 0, not {timeout!r}")
        instances.append(Instance(onnx, vnnlib, seconds))
    if not instances:
        raise InvalidInputError(f"{path} lists no instances")
    return instances


def read_results(path: str | os.PathLike) -> list[dict]:
    """Rows of a results CSV (a partial last line, from a killed run, is cut off the file)."""
    text = complete_lines(path, repair=True).decode()
    return [r for r in csv.DictReader(io.StringIO(text)) if r.get("verdict")]


def _append(path: Path, row: dict) -> None:
    new = not path.is_file() or path.stat().st_size == 0
    columns = COLUMNS
    if not new:
        # a file from an earlier version keeps its columns (e.g. no ``stage``)
        with open(path, newline="") as f:
            header = next(csv.reader(f), None)
        if header and set(header) <= set(COLUMNS):
            columns = tuple(header)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    if new:
        writer.writeheader()
    writer.writerow(row)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        append_durably(fd, buf.getvalue().encode(), path)
    finally:
        os.close(fd)


def run_vnncomp(directory: str | os.PathLike, results: str | os.PathLike | None = None,
                backend: str | None = None, threads: int | None = None,
                timeout_cap: float | None = None,
                progress: Callable[[Instance, dict], None] | None = None,
                engine: str | None = None) -> list[dict]:
    """Decide every instance of a benchmark folder; returns all result rows (old and new).

    ``engine`` (``auto``, default; ``bab``; ``mip``) is passed to
    :func:`~verify.tasks.vnnlib.certify_vnnlib`; the ``stage`` column says which stage
    settled each instance.

    ``results`` defaults to ``DIRECTORY/results.csv``; ``timeout_cap`` lowers every instance's
    timeout to at most that many seconds. An instance that cannot be run (a missing file, an
    unsupported operator) gets verdict ``error`` with the message, and the run goes on.
    """
    from .models import load_model
    from .tasks.vnnlib import certify_vnnlib
    from .validate import check
    from .vnnlib import parse_vnnlib

    check(threads=threads, timeout_cap=timeout_cap)
    from .tasks.engine_stage import check_engine
    engine = check_engine(engine)
    directory = Path(directory)
    instances = read_instances(directory)
    results = Path(results) if results is not None else directory / "results.csv"
    results.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["onnx"], r["vnnlib"]): r for r in read_results(results)}
    cex_dir = results.parent / f"{results.stem}-counterexamples"
    models: dict[str, object] = {}
    rows = [done[i.key] for i in instances if i.key in done]
    for number, inst in enumerate(instances):
        if inst.key in done:
            continue
        if interrupts.stop_requested():
            break           # Ctrl-C / SIGTERM: the finished instances are kept, a rerun resumes
        limit = min(inst.timeout, timeout_cap) if timeout_cap else inst.timeout
        row = {"onnx": inst.onnx, "vnnlib": inst.vnnlib, "timeout": f"{limit:g}", "verdict": "error",
               "method": "", "time_s": "", "counterexample": "", "error": "", "stage": ""}
        t0 = time.perf_counter()
        try:
            if inst.onnx not in models:
                models[inst.onnx] = load_model(directory / inst.onnx)
            model = models[inst.onnx]
            net = model.network
            prop = parse_vnnlib(directory / inst.vnnlib, net.num_inputs, net.num_outputs)
            r = certify_vnnlib(model, prop, backend=backend, time_limit=limit, threads=threads,
                               engine=engine)
            if r.interrupted:
                break       # stopped by the user, not a timeout: not recorded, a rerun runs it
            row.update(verdict=r.verdict, method=r.method, stage=r.stage, time_s=f"{r.time_s:.4f}")
            if r.verdict == "sat":
                cex_dir.mkdir(parents=True, exist_ok=True)
                stem = Path(inst.vnnlib).name.removesuffix(".gz").removesuffix(".vnnlib")
                cex = cex_dir / f"{number:04d}-{stem}.txt"
                cex.write_text(r.vnncomp_text())
                row["counterexample"] = os.path.relpath(cex, results.parent)
        except VerifyError as exc:
            row.update(error=f"{type(exc).__name__}: {exc}", time_s=f"{time.perf_counter() - t0:.4f}")
        _append(results, row)
        rows.append(row)
        if progress is not None:
            progress(inst, row)
    return rows


def onnx_io_shapes(path: str | os.PathLike) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The shapes of an ONNX model's (first) input and output, a symbolic dimension (the
    batch) read as 1: the shapes a VNN-LIB 2.0 property declares for the model."""
    from .onnx.files import load_onnx

    model, where = load_onnx(path)
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    if not inputs or not graph.output:
        raise InvalidInputError(f"{where} has no graph input or output")

    def shape(value) -> tuple[int, ...]:
        dims = value.type.tensor_type.shape.dim
        return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                     for d in dims)

    return shape(inputs[0]), shape(graph.output[0])


def convert_benchmark_v2(directory: str | os.PathLike, out: str | os.PathLike | None = None,
                         *, compress: bool = True) -> Path:
    """Write the VNN-LIB 2.0 form of a benchmark folder's 1.0 properties.

    Every property listed in ``DIRECTORY/instances.csv`` is converted with
    :func:`verify.vnnlib.convert_to_v2` (declared shapes: its ONNX model's input and output,
    :func:`onnx_io_shapes`) into ``OUT`` (default ``DIRECTORY/2.0``), gzip-compressed unless
    ``compress`` is False, with an ``instances.csv`` whose model paths point back into
    ``DIRECTORY``: ``verify vnncomp OUT`` runs the same instances from the 2.0 files.
    Returns ``OUT``.
    """
    from .vnnlib import _read_text, convert_to_v2

    directory = Path(directory)
    out = Path(out) if out is not None else directory / "2.0"
    out.mkdir(parents=True, exist_ok=True)
    instances = read_instances(directory)
    shapes: dict[str, tuple] = {}
    rows = []
    done: dict[str, str] = {}
    for inst in instances:
        if inst.onnx not in shapes:
            shapes[inst.onnx] = onnx_io_shapes(directory / inst.onnx)
        x_shape, y_shape = shapes[inst.onnx]
        name = done.get(inst.vnnlib)
        if name is None:
            source = directory / inst.vnnlib
            stem = Path(inst.vnnlib).name.removesuffix(".gz")
            name = stem + (".gz" if compress else "")
            text = convert_to_v2(_read_text(source), x_shape, y_shape, source=str(source))
            target = out / name
            if compress:
                import gzip
                # mtime 0: the same property gives the same bytes (no churn on regeneration)
                target.write_bytes(gzip.compress(text.encode(), mtime=0))
            else:
                target.write_text(text)
            done[inst.vnnlib] = name
        model = os.path.relpath(directory / inst.onnx, out)
        rows.append(f"{model},{name},{inst.timeout:g}")
    (out / "instances.csv").write_text("\n".join(rows) + "\n")
    return out


def summary(rows: list[dict]) -> dict:
    """Counts per verdict, the median and maximum time of the decided instances, and how many
    each stage decided (``stages``; rows from before the ``stage`` column count under their
    ``method``)."""
    import statistics

    counts: dict[str, int] = {}
    stages: dict[str, int] = {}
    for r in rows:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
        if r["verdict"] in ("sat", "unsat"):
            stage = r.get("stage") or r.get("method") or ""
            stages[stage] = stages.get(stage, 0) + 1
    times = [float(r["time_s"]) for r in rows if r["verdict"] in ("sat", "unsat")]
    return {"instances": len(rows), **counts,
            "median_decided_s": statistics.median(times) if times else None,
            "max_decided_s": max(times) if times else None, "stages": stages}
