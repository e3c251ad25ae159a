"""The ``verify`` command line. Thin: it parses, calls the public API, prints or saves.

Results go to stdout (``--json`` for machines), progress and logs to stderr. Every
:class:`~verify.errors.VerifyError` becomes a one-line ``verify: error: ...`` message and
exit code 1; bad usage exits with 2. Ctrl-C or SIGTERM stops the work: the result so far is
printed and saved as usual (status ``interrupted``) and the exit code is 130; a second signal
quits at once (:mod:`verify.interrupts`).
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings

from . import interrupts
from .errors import VerifyError
from .stdio import results_only_stdout
from .cli_args import add_scale_arg

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


def _print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, default=_json_default)
    sys.stdout.write("\n")


def _json_default(obj):
    # imported here, not at import: `verify --help` needs no numpy
    from .results import json_default

    return json_default(obj)


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", default=None,
                   help="bundled model name or path to a .keras/.h5 file (default: multiclass)")


def _add_image(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="28x28 digit: PNG/JPEG (RGB is converted to grayscale) or .npy")
    p.add_argument("--resize", action="store_true",
                   help="scale an image of another size to 28x28 instead of refusing it")
    add_scale_arg(p)


# ---------------------------------------------------------------------------------- commands

def cmd_models(args) -> int:
    from .models import bundled_models

    models = bundled_models()
    if args.json:
        _print_json([{k: m.get(k) for k in ("name", "path", "architecture", "task", "classes",
                                             "test_accuracy", "params")} for m in models.values()])
        return 0
    print(f"{'name':<18} {'architecture':<48} {'task':<14} {'test acc':>8}")
    for m in models.values():
        print(f"{m['name']:<18} {m.get('architecture', ''):<48} {m.get('task', ''):<14} "
              f"{100 * m.get('test_accuracy', float('nan')):7.2f}%")
    print(f"\n(files under {next(iter(models.values()))['path'].rsplit('/', 1)[0]})" if models else
          "no bundled models installed")
    return 0


def cmd_info(args) -> int:
    from .models import load_model

    model = load_model(args.model_spec)
    info = model.describe()
    if args.json:
        _print_json(info)
        return 0
    print(f"model {info['name']}" + (f" ({info['path']})" if info["path"] else ""))
    if "architecture" in info:
        print(f"  {info['architecture']}; {info.get('task', '')}; "
              f"test accuracy {100 * info['test_accuracy']:.2f}%")
    print(f"  input {tuple(info['input_shape'])}, {info['num_outputs']} logit(s) "
          f"(final {info['output_activation']} dropped: the IR ends at the logits), "
          f"{info['num_classes']} classes {info['classes']}, {info['relus']} ReLUs")
    print(f"\n  {'layer':<28} {'type':<22} {'output shape':<16} {'neurons':>8} {'params':>8}")
    for row in info["layers"]:
        print(f"  {row['name'][:28]:<28} {row['type']:<22} {str(tuple(row['shape'])):<16} "
              f"{row['neurons']:>8} {row['params']:>8}")
    return 0


def cmd_predict(args) -> int:
    from .data import read_image
    from .models import load_model

    image = read_image(args.image, resize=args.resize, scale=args.scale)
    model = load_model(args.model)
    logits = model.logits(image)[0]
    label = model.network.labels_from_logits(logits[None])[0]
    reference_label = int(model.reference_labels(image)[0])
    result = {"image": args.image, "model": model.name, "label": int(label),
              "class": model.class_name(int(label)), "logits": logits.tolist(),
              "reference_label": reference_label, "runtime": model.runtime}
    if args.json:
        _print_json(result)
        return 0
    print(f"{args.image}: label {label} (class {model.class_name(int(label))}) by model {model.name}")
    print("logits: " + " ".join(f"{model.class_name(i)}:{v:+.3f}" for i, v in enumerate(logits))
          if len(logits) > 1 else f"logit: {logits[0]:+.4f} (positive means class "
                                   f"{model.class_name(1)})")
    return 0


#: Modules that add further subcommands: each has ``register(subparsers)``.
COMMAND_MODULES = ("cli_solver", "cli_tasks", "cli_explain", "cli_attacks", "cli_bench",
                   "cli_vnnlib", "cli_evidence")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verify", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Exact verification of trained neural networks: provably minimal "
                    "adversarial examples, minimal explanations and robustness certificates.")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"verify {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("models", help="list the bundled models")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=cmd_models)

    p = sub.add_parser("info", help="layers, shapes and neuron counts of a model")
    p.add_argument("model_spec", metavar="MODEL", help="bundled model name or path")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=cmd_info)

    p = sub.add_parser("predict", help="predicted label and logits of an image")
    _add_image(p)
    _add_model(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=cmd_predict)

    import importlib
    for module in COMMAND_MODULES:
        importlib.import_module(f".{module}", __package__).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    # stdout carries results only: native solver output (HiGHS's banner, ...) goes to stderr;
    # Ctrl-C / SIGTERM stop the work, the result so far is printed and saved, exit code 130
    with results_only_stdout(), warnings.catch_warnings(), interrupts.install_handlers():
        warnings.showwarning = _one_line_warning
        try:
            code = int(args.run(args) or 0)
            return interrupts.EXIT_CODE if interrupts.stop_requested() else code
        except VerifyError as exc:
            print(f"verify: error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("verify: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:
            # the reader of stdout went away (`verify models | head`): stop quietly, as a
            # command killed by SIGPIPE would
            return 141


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings a user should read (an image's transparency flattened, ...) as one line."""
    print(f"verify: warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
