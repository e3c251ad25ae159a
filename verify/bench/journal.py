"""The results file ``results.jsonl``: durable appends, reading, and repair after a kill.

Only the parent process writes it, one JSON line per finished query with one ``os.write`` then
``fsync`` (:class:`ResultsWriter`), so a run killed at any moment loses no finished result. A
line cut short by a kill is left out when reading, and cut off before the next append
(:func:`complete_lines` with ``repair=True``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

RESULTS_FILE = "results.jsonl"


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

