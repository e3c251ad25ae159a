"""The one place where a command's result leaves the process.

Every command ends the same way: with ``--out DIR`` its files and ``result.json`` are written
as one set (:mod:`verify.outdir`: the folder is checked and locked before any work, written
atomically at the end); with ``--json`` stdout receives the one JSON document; otherwise
stdout receives the result line(s), unless ``--out`` already saved them (some commands print
their line anyway). Progress and notes go to stderr (:func:`log`). All JSON goes through one
serialiser, :func:`verify.results.dumps`.
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

from ..outdir import Content, OutputDir, prepare_output_dir


def dump(obj: Any, indent: int = 2) -> str:
    """The JSON text of ``obj`` as every command writes it (``result.json``, ``--json``)."""
    # imported here, not at import: `verify --help` needs no numpy
    from ..results import dumps

    return dumps(obj, indent=indent)


def lower_bound_text(bound: float | None) -> str:
    """A proven lower bound for people: 6 significant digits rounded *down* (so the text
    never claims more than was proven); ``none`` when there is none. The JSON keeps the
    exact value."""
    if bound is None:
        return "none"
    b = float(bound)
    if b <= 0 or not math.isfinite(b):
        return f"{b:g}"
    scale = 10.0 ** (5 - math.floor(math.log10(b)))
    down = math.floor(b * scale) / scale
    return f"{min(down, b):.6g}"


def class_label(classes: list, label: Any) -> str:
    """A label index as result lines print it: the class's name (the digit for the ten-class
    models), or the index itself when it has none (``None`` as ``None``)."""
    return str(classes[label]) if label is not None and label < len(classes) else str(label)


def log(msg: str) -> None:
    """A line for the user that is not the result: stderr."""
    print(msg, file=sys.stderr, flush=True)


#: A command's output files: name → content (:data:`verify.outdir.Content`), or a function
#: that makes them (so nothing is built when there is no ``--out``).
Files = Mapping[str, Content] | Callable[[], Mapping[str, Content]]


class Output:
    """Where one command's result goes, as its ``--json`` and ``--out`` flags ask.

    Make it before any work: with ``--out DIR`` (and ``folder`` true) the folder is checked
    and locked at once, so a bad folder costs a second, not the solve. End the command with
    :meth:`write` (result.json and files) or :meth:`emit` (stdout only).
    """

    def __init__(self, args: argparse.Namespace, folder: bool = True):
        self.json = bool(getattr(args, "json", False))
        out = getattr(args, "out", None) if folder else None
        self.folder: OutputDir | None = prepare_output_dir(out)

    def write(self, payload: Any, text: str, files: Files | None = None,
              wrote: str | None = None, always_text: bool = False) -> None:
        """The command's result: with ``--out``, ``files`` (name → content, or a function that
        makes them, called only then) and ``result.json`` (``payload``) replace the folder's
        previous outputs and ``wrote`` (which files, for the user) is logged; then
        :meth:`emit`."""
        if self.folder is not None:
            made = files() if callable(files) else (files or {})
            self.folder.commit({**made, "result.json": dump(payload)})
            if wrote:
                log(f"wrote {self.folder.path}/{wrote}")
        self.emit(payload, text, always_text)

    def summary(self, line: str) -> None:
        """The result line on stderr as well, where stdout will not show it (``--json`` or
        ``--out``): the user at a terminal sees each result line once."""
        if self.json or self.folder is not None:
            log(line)

    def emit(self, payload: Any, text: str | None, always_text: bool = False) -> None:
        """stdout: ``payload`` as one JSON document with ``--json``; otherwise ``text`` (none if
        None), unless ``--out`` saved the result (``always_text``: print it anyway)."""
        if self.json:
            print(dump(payload))
        elif text is not None and (always_text or self.folder is None):
            print(text)


def progress(args: argparse.Namespace):
    """The block in which a task reports its stages: on stderr, unless ``--quiet``."""
    from ..progress import reporting, stderr_reporter

    return reporting(None if getattr(args, "quiet", False) else stderr_reporter())
