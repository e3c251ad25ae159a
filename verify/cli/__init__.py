"""The ``verify`` command line. Thin: it parses, calls the public API, prints or saves.

* :mod:`.app` — the parser, the table of command families, :func:`main` (errors as one line,
  interrupts, stdout kept for results);
* :mod:`.args` — the argument groups and validating number types every command shares;
* :mod:`.output` — the one writer of a command's result (``--out`` folder, ``result.json``,
  ``--json`` or the text line);
* one module per command family: :mod:`.models` (models, info, predict), :mod:`.solver`
  (backends, encode), :mod:`.tasks` (min-adv-*, certify), :mod:`.explain`, :mod:`.attacks`
  (attack, compare), :mod:`.bench` (bench, report), :mod:`.vnnlib` (certify --vnnlib,
  vnncomp, export), :mod:`.evidence`.

A new command is a ``register(subparsers)`` in its family's module (or a new module named in
:data:`.app.COMMANDS`) whose function reads its inputs with the groups of :mod:`.args` and
ends with :class:`.output.Output`.
"""
from __future__ import annotations

from .app import build_parser, main

__all__ = ["build_parser", "main"]
