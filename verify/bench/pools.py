"""Running a benchmark: :func:`run_bench` runs the pending queries in this process, on local
worker processes, or on a Dask cluster, and records each one as it finishes.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import interrupts
from ..errors import InvalidInputError
from .config import BenchConfig, expand, load_images
from .dispatch import run_query
from .journal import RESULTS_FILE, ResultsWriter, latest, read_results


def _worker_init(threads: int) -> None:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))


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
    from ..outdir import exclusive

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

