"""Keep standard output for results only, whatever native libraries write.

Solver libraries written in C/C++ write to file descriptor 1 directly: highspy ≥ 1.16 prints
a banner when a ``Highs`` object is created, before any option can silence it, and SCIP,
CPLEX or onnxruntime may print too. Python's ``sys.stdout`` never sees those bytes, so no
Python-level redirection can keep them out of a ``--json`` document.

:func:`results_only_stdout` moves file descriptor 1 onto standard error for the duration of
a command and gives Python's ``sys.stdout`` a private duplicate of the real standard output:
``print`` (the results) still reaches the user's stdout, every native write goes to stderr.
Child processes inherit descriptor 1 as it is then (stderr), so their stray output cannot
reach stdout either.
"""
from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def results_only_stdout() -> Iterator[None]:
    """Inside the block, descriptor 1 is standard error and ``sys.stdout`` is the real stdout."""
    try:
        sys.stdout.flush()
        original_fd1 = os.dup(1)
    except (OSError, ValueError, AttributeError):
        # no usable descriptor 1 (closed stdout, an embedding host): nothing to guard
        yield
        return
    python_stdout = sys.stdout
    if _writes_to_fd1(python_stdout):
        results = io.TextIOWrapper(os.fdopen(os.dup(original_fd1), "wb", buffering=0),
                                   encoding=getattr(python_stdout, "encoding", None) or "utf-8",
                                   errors="backslashreplace", line_buffering=True)
    else:
        # sys.stdout was already replaced (a test's capture, a notebook): keep writing there
        results = python_stdout
    os.dup2(2, 1)
    sys.stdout = results
    try:
        yield
    finally:
        try:
            results.flush()
        except (OSError, ValueError):
            pass  # the reader went away (a closed pipe): nothing left to deliver
        sys.stdout = python_stdout
        os.dup2(original_fd1, 1)
        os.close(original_fd1)
        if results is not python_stdout:
            try:
                results.close()
            except (OSError, ValueError):
                pass


@contextmanager
def native_stdout_to_stderr() -> Iterator[None]:
    """Inside the block, descriptor 1 is standard error (Python's ``sys.stdout`` is flushed
    first and written after as before); for native calls that print uninvited, e.g. the
    banner highspy prints when a process makes its first ``Highs`` object."""
    try:
        sys.stdout.flush()
        saved_fd1 = os.dup(1)
    except (OSError, ValueError, AttributeError):
        yield           # no usable descriptor 1: nothing to guard
        return
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved_fd1, 1)
        os.close(saved_fd1)


def _writes_to_fd1(stream) -> bool:
    try:
        return stream.fileno() == 1
    except (AttributeError, OSError, ValueError):
        return False
