"""The ``verify`` parser, its table of commands, and :func:`main`.

Results go to stdout (``--json`` for machines), progress and logs to stderr. Every
:class:`~verify.errors.VerifyError` becomes a one-line ``verify: error: ...`` message and
exit code 1; bad usage exits with 2. Ctrl-C or SIGTERM stops the work: the result so far is
printed and saved as usual (status ``interrupted``) and the exit code is 130; a second signal
quits at once (:mod:`verify.interrupts`).
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from .. import interrupts
from ..errors import VerifyError
from ..stdio import results_only_stdout
from . import attacks, bench, evidence, explain, models, solver, tasks, vnnlib
from .output import log

EPILOG = """examples:
  verify models                          list the bundled models
  verify info cnn                        layers, shapes and neuron counts of a model
  verify predict digit.png --model cnn   label and logits of a 28x28 digit
  verify backends                        installed solvers and what each can solve
  verify encode multiclass digit.png --task min-adv-card --out query.mps
  verify export mlp-256x2 mlp.onnx       a model as ONNX (its logits)
  verify certify --model mlp.onnx --vnnlib examples/properties/digit-7-eps0.03.vnnlib
                                         sat / unsat / timeout

Models are given by bundled name (see `verify models`) or by path to a .keras/.h5/.onnx file.
Images are PNG/JPEG (converted to grayscale) or .npy arrays, 28x28, values in [0, 1]."""

#: The command families, in the order ``verify --help`` lists their commands. Each module's
#: ``register(subparsers)`` adds its commands, every one with ``run=`` its function.
COMMANDS = (models, solver, tasks, explain, attacks, bench, vnnlib, evidence)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verify", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Exact verification of trained neural networks: provably minimal "
                    "adversarial examples, minimal explanations and robustness certificates.")
    from .. import __version__
    parser.add_argument("--version", action="version", version=f"verify {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for family in COMMANDS:
        family.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``verify`` command (``argv``: the arguments, default ``sys.argv[1:]``) and
    return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    _use_compile_cache()
    # stdout carries results only: native solver output (HiGHS's banner, ...) goes to stderr;
    # Ctrl-C / SIGTERM stop the work, the result so far is printed and saved, exit code 130
    with results_only_stdout(), warnings.catch_warnings(), interrupts.install_handlers():
        warnings.showwarning = _one_line_warning
        try:
            code = int(args.run(args) or 0)
            return interrupts.EXIT_CODE if interrupts.stop_requested() else code
        except VerifyError as exc:
            log(f"verify: error: {exc}")
            return 1
        except KeyboardInterrupt:
            log("verify: interrupted")
            return 130
        except BrokenPipeError:
            # the reader of stdout went away (`verify models | head`): stop quietly, as a
            # command killed by SIGPIPE would
            return 141


def _use_compile_cache() -> None:
    """Keep JAX's compiled bound-engine functions on disk between runs, so a command pays
    the compilation (seconds per network architecture) once, not on every call: in
    ``$VERIFY_CACHE_DIR/jax`` (default ``$XDG_CACHE_HOME/verify``, else ``~/.cache/verify``).
    ``VERIFY_CACHE_DIR=off`` disables it; an unwritable place is skipped silently. Set in the
    environment before JAX is imported (child processes inherit it) and never overrides a
    ``JAX_COMPILATION_CACHE_DIR`` the user chose."""
    root = os.environ.get("VERIFY_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "verify")
    if root.lower() in ("off", "0", "none") or "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return
    folder = Path(root) / "jax"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    if not os.access(folder, os.W_OK):
        return
    settings = {"JAX_COMPILATION_CACHE_DIR": str(folder),
                "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    if "jax" in sys.modules:        # already imported (main() called in-process): configure it
        import jax

        jax.config.update("jax_compilation_cache_dir", settings["JAX_COMPILATION_CACHE_DIR"])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    else:
        os.environ.update(settings)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings a user should read (an image's transparency flattened, ...) as one line."""
    log(f"verify: warning: {message}")
