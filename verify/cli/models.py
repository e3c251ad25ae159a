"""The model commands: ``verify models``, ``verify info MODEL`` and ``verify predict IMAGE``."""
from __future__ import annotations

import argparse

from . import args as a
from .output import Output


def cmd_models(args: argparse.Namespace) -> int:
    from ..models import bundled_models

    models = bundled_models()
    rows = [{k: m.get(k) for k in ("name", "path", "architecture", "task", "classes",
                                   "test_accuracy", "params")} for m in models.values()]
    lines = [f"{'name':<18} {'architecture':<48} {'task':<14} {'test acc':>8}"]
    for m in models.values():
        lines.append(f"{m['name']:<18} {m.get('architecture', ''):<48} {m.get('task', ''):<14} "
                     f"{100 * m.get('test_accuracy', float('nan')):7.2f}%")
    lines.append(f"\n(files under {next(iter(models.values()))['path'].rsplit('/', 1)[0]})" if models else
                 "no bundled models installed")
    Output(args).emit(rows, "\n".join(lines))
    return 0


def _info_text(info: dict) -> str:
    lines = [f"model {info['name']}" + (f" ({info['path']})" if info["path"] else "")]
    if "architecture" in info:
        lines.append(f"  {info['architecture']}; {info.get('task', '')}; "
                     f"test accuracy {100 * info['test_accuracy']:.2f}%")
    lines.append(f"  input {tuple(info['input_shape'])}, {info['num_outputs']} logit(s) "
                 f"(final {info['output_activation']} dropped: the IR ends at the logits), "
                 f"{info['num_classes']} classes {info['classes']}, {info['relus']} ReLUs")
    lines.append(f"\n  {'layer':<28} {'type':<22} {'output shape':<16} {'neurons':>8} {'params':>8}")
    for row in info["layers"]:
        lines.append(f"  {row['name'][:28]:<28} {row['type']:<22} {str(tuple(row['shape'])):<16} "
                     f"{row['neurons']:>8} {row['params']:>8}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    from ..models import load_model

    info = load_model(args.model_spec).describe()
    Output(args).emit(info, _info_text(info))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    image = a.read_image(args)
    model = a.load_model(args)
    logits = model.logits(image)[0]
    label = model.network.labels_from_logits(logits[None])[0]
    reference_label = int(model.reference_labels(image)[0])
    result = {"image": args.image, "model": model.name, "label": int(label),
              "class": model.class_name(int(label)), "logits": logits.tolist(),
              "reference_label": reference_label, "runtime": model.runtime}
    text = (f"{args.image}: label {label} (class {model.class_name(int(label))}) by model {model.name}\n"
            + ("logits: " + " ".join(f"{model.class_name(i)}:{v:+.3f}" for i, v in enumerate(logits))
               if len(logits) > 1 else f"logit: {logits[0]:+.4f} (positive means class "
                                        f"{model.class_name(1)})"))
    Output(args).emit(result, text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the bundled models")
    a.add_output_options(p, json="print JSON")
    p.set_defaults(run=cmd_models)

    p = sub.add_parser("info", help="layers, shapes and neuron counts of a model")
    a.add_model_spec(p)
    a.add_output_options(p, json="print JSON")
    p.set_defaults(run=cmd_info)

    p = sub.add_parser("predict", help="predicted label and logits of an image")
    a.add_image(p)
    a.add_model(p)
    a.add_output_options(p, json="print JSON")
    p.set_defaults(run=cmd_predict)
