"""Benchmark runner: many images × models × tasks × backends, in parallel, resumable.

A run is described by a small TOML (or YAML) file (:mod:`verify.bench.config`, e.g.
``benchmarks/bench-example.toml``). :func:`expand` turns it into queries, each with a stable
string id (``model|task[params]|image|backend|rN``). :func:`run_bench`
(:mod:`verify.bench.pools`) runs the queries that ``DIR/results.jsonl`` does not hold yet, one
at a time through :func:`run_query` (:mod:`verify.bench.dispatch`), on local processes
(``workers``) or a Dask cluster (``scheduler``), and appends one JSON line per finished query
from the parent process only (:mod:`verify.bench.journal`: one ``write`` + ``fsync`` per line),
so a run killed at any moment loses no finished result and, restarted, duplicates none.
:mod:`verify.bench.summary` tabulates the records (``verify bench``, ``verify report``).

Inside the package the modules import downward only: ``pools`` uses ``config``, ``dispatch``
and ``journal``; those three and ``summary`` import no sibling.
"""
from __future__ import annotations

from .config import (CONFIG_KEYS, IMAGE_SUFFIXES, NO_BACKEND, TASKS, BenchConfig, expand,
                     load_config, load_images, parse_config, task_key)
from .dispatch import run_query
from .journal import RESULTS_FILE, ResultsWriter, append_durably, complete_lines, latest, read_results
from .pools import BenchRun, default_threads, run_bench
from .summary import SOLVED, SUMMARY_COLUMNS, TIMEOUT, format_table, is_solved, summary_rows

__all__ = ["CONFIG_KEYS", "IMAGE_SUFFIXES", "NO_BACKEND", "RESULTS_FILE", "SOLVED",
           "SUMMARY_COLUMNS", "TASKS", "TIMEOUT", "BenchConfig", "BenchRun", "ResultsWriter",
           "append_durably", "complete_lines", "default_threads", "expand", "format_table",
           "is_solved", "latest", "load_config", "load_images", "parse_config", "read_results",
           "run_bench", "run_query", "summary_rows", "task_key"]
