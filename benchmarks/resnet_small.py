"""Every task on the bundled residual CNN ``resnet-small``, from the command line.

``resnet-small`` (``models/train.py``) is a Keras functional model with a residual block
(Conv2D 6@3x3/2 ReLU -> [Conv2D ReLU -> Conv2D -> Add -> ReLU] -> Dense 10; 3,042 ReLUs),
read through :mod:`verify.graph`. This script checks that each task runs on it as a user
would run it, with ``verify ... --json`` in a fresh process, and records status and time:
certify (three ε), min-adv-linf / card / l1 / l2 (SCIP), explain, attack, and ``verify
vnncomp`` on generated robustness properties in VNN-LIB 1.0 and 2.0::

    python benchmarks/resnet_small.py --generate   # write benchmarks/resnet-small/ (+ 2.0/)
    python benchmarks/resnet_small.py              # run every task, write results/resnet-small.md

``--generate`` writes the model as an ONNX graph (Conv, Add, Relu, Gemm, as converters
write residual blocks; checked against Keras through verify's reader and onnxruntime), VNN-COMP
robustness properties for the first ``--digits`` correctly classified test digits at
ε = 0.02 and 0.1 with ``instances.csv``, and their VNN-LIB 2.0 form in ``2.0/``
(:func:`verify.vnncomp.convert_benchmark_v2`).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from _common import markdown_table, write_results, write_robustness_instances  # noqa: E402

FOLDER = HERE / "resnet-small"
MODEL = "resnet-small"
EPSILONS = (0.02, 0.1)
IMAGE = ROOT / "examples" / "images" / "digit-7.png"
TIME_LIMIT = 60


def keras_graph_to_onnx(keras_model, path: Path, opset: int = 17) -> None:
    """Write a functional Keras model of Conv2D (``valid``/``same``, ReLU or linear), Add,
    ReLU, Flatten and Dense layers as an ONNX graph the way converters write it (NHWC input,
    Transpose to NCHW, Conv, Add of the two branches, Transpose back, Flatten, Gemm), ending at
    the logits (the final softmax left out, as ``verify export`` does).

    The package's writer (``verify export``) writes the *lowered* chain network, whose
    residual steps are block matrices; the benchmark folder holds the graph instead, as a
    PyTorch or tf2onnx export would, which the ONNX reader lowers itself."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    names: dict[int, str] = {}

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    first = "input.nchw"
    nodes.append(helper.make_node("Transpose", ["input"], [first], perm=[0, 3, 1, 2]))
    names[id(keras_model.inputs[0])] = first
    for layer in keras_model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        srcs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        ins = [names[id(t)] for t in srcs]
        out = layer.name
        act = getattr(getattr(layer, "activation", None), "__name__", "linear")
        if kind == "Conv2D":
            kernel, bias = layer.get_weights()
            kh, kw = kernel.shape[:2]
            if layer.padding == "same":
                if tuple(layer.strides) != (1, 1) or kh % 2 == 0 or kw % 2 == 0:
                    raise ValueError(f"{layer.name}: only stride-1 odd 'same' convolutions")
                pads = [kh // 2, kw // 2, kh // 2, kw // 2]
            else:
                pads = [0, 0, 0, 0]
            nodes.append(helper.make_node(
                "Conv", [ins[0], const(f"{out}.W", kernel.transpose(3, 2, 0, 1)),
                         const(f"{out}.B", bias)], [out + (".lin" if act == "relu" else "")],
                kernel_shape=[kh, kw], strides=list(layer.strides), pads=pads))
        elif kind == "Add":
            nodes.append(helper.make_node("Add", ins, [out]))
        elif kind == "ReLU":
            nodes.append(helper.make_node("Relu", ins, [out]))
        elif kind == "Flatten":
            nhwc = out + ".nhwc"
            nodes.append(helper.make_node("Transpose", ins, [nhwc], perm=[0, 2, 3, 1]))
            nodes.append(helper.make_node("Flatten", [nhwc], [out], axis=1))
        elif kind == "Dense":
            kernel, bias = layer.get_weights()
            nodes.append(helper.make_node("Gemm", [ins[0], const(f"{out}.W", kernel),
                                                   const(f"{out}.B", bias)], [out]))
            act = "linear" if act == "softmax" else act
        else:
            raise ValueError(f"{layer.name}: {kind} is not written by this benchmark helper")
        if act == "relu":
            nodes.append(helper.make_node("Relu", [out + ".lin"], [out]))
        elif act != "linear":
            raise ValueError(f"{layer.name}: activation {act}")
        names[id(layer.output)] = out
    shape = [None] + [int(d) for d in keras_model.input_shape[1:]]
    graph = helper.make_graph(
        nodes, keras_model.name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N"] + shape[1:])],
        [helper.make_tensor_value_info(names[id(keras_model.outputs[0])], TensorProto.FLOAT,
                                       ["N", int(keras_model.outputs[0].shape[-1])])],
        initializer=inits)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="benchmarks/resnet_small.py",
                              ir_version=helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(model)
    onnx.save(model, path)


def generate(folder: Path = FOLDER, digits: int = 4, timeout: float = 60) -> None:
    from verify.models import load_model
    from verify.vnncomp import convert_benchmark_v2

    folder.mkdir(parents=True, exist_ok=True)
    model = load_model(MODEL)
    onnx_name = f"{MODEL}.onnx"
    # the graph as converters write it (not the lowered chain `verify export` writes), so that
    # the benchmark also exercises the ONNX reader on a residual graph
    keras_graph_to_onnx(model.keras, folder / onnx_name)
    check_onnx(model, folder / onnx_name)
    rows, chosen = write_robustness_instances(folder, model, onnx_name, EPSILONS, digits, timeout)
    convert_benchmark_v2(folder)
    print(f"wrote {len(rows)} instances ({len(chosen)} digits: test #{chosen}) to {folder} "
          f"and their VNN-LIB 2.0 form to {folder / '2.0'}")


def check_onnx(model, path: Path) -> None:
    """The ONNX file, read back by verify and run by onnxruntime, computes Keras's logits."""
    import numpy as np

    from verify.data import test_digits
    from verify.keras_io import keras_logits
    from verify.models import load_model
    from verify.onnx import OnnxReference

    x, _ = test_digits(20)
    ref = keras_logits(model.keras, x)
    back = load_model(path)
    for what, out in (("verify's reader", back.network.forward(x.reshape(len(x), -1))),
                      ("onnxruntime", OnnxReference(path).outputs(x.astype(np.float32)))):
        err = float(np.max(np.abs(out - ref) / np.maximum(1.0, np.abs(ref))))
        if err > 1e-4:
            raise SystemExit(f"{path}: {what} differs from Keras by {err:.3g}")


#: (task label, command-line arguments after ``verify``)
TASKS = [
    ("certify ε=0.02", ["certify", str(IMAGE), "--eps", "0.02"]),
    ("certify ε=0.05", ["certify", str(IMAGE), "--eps", "0.05"]),
    ("certify ε=0.1", ["certify", str(IMAGE), "--eps", "0.1"]),
    ("min-adv-linf", ["min-adv-linf", str(IMAGE)]),
    ("min-adv-card", ["min-adv-card", str(IMAGE)]),
    ("min-adv-l1", ["min-adv-l1", str(IMAGE)]),
    ("min-adv-l2 (scip)", ["min-adv-l2", str(IMAGE), "--backend", "scip"]),
    ("explain", ["explain", str(IMAGE)]),
    ("attack", ["attack", str(IMAGE)]),
]


def run_cli(args: list[str]) -> tuple[int, dict | None, str, float]:
    t0 = time.perf_counter()
    verify = Path(sys.executable).parent / "verify"        # the installed command
    proc = subprocess.run([str(verify), *args], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t0
    try:
        data = json.loads(proc.stdout) if proc.stdout.strip() else None
    except json.JSONDecodeError:
        data = None
    err = proc.stderr.strip().splitlines()[-1] if proc.returncode and proc.stderr.strip() else ""
    return proc.returncode, data, err, seconds


def summary_of(data: dict | None) -> tuple[str, str]:
    """(status, detail) of a task's JSON document."""
    if not data:
        return "error", ""
    status = str(data.get("status", data.get("verdict", "")))
    detail = []
    for key in ("stage", "method", "objective", "bound", "size", "adversarial_label"):
        value = data.get(key)
        if value not in (None, "", []):
            detail.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return status, ", ".join(detail)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--generate", action="store_true", help="write benchmarks/resnet-small/")
    ap.add_argument("--digits", type=int, default=4)
    ap.add_argument("--time-limit", type=float, default=TIME_LIMIT)
    args = ap.parse_args()
    if args.generate:
        generate(FOLDER, args.digits)
        return
    rows, records = [], []
    for label, task in TASKS:
        cli = task + ["--model", MODEL, "--json"]
        if task[0] != "attack":
            cli += ["--time-limit", f"{args.time_limit:g}"]
        code, data, err, seconds = run_cli(cli)
        status, detail = summary_of(data)
        rows.append([label, status if code == 0 else f"error: {err}", detail, seconds])
        records.append({"task": label, "args": cli, "returncode": code, "status": status,
                        "seconds": round(seconds, 2), "result": data, "error": err})
        print(f"{label}: {rows[-1][1]} {detail} ({seconds:.1f} s)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for version, folder in (("1.0", FOLDER), ("2.0", FOLDER / "2.0")):
            out = Path(tmp) / f"results-{version}.csv"
            cli = ["vnncomp", str(folder), "--out", str(out), "--timeout-cap",
                   f"{args.time_limit:g}", "--json", "--quiet"]
            code, data, err, seconds = run_cli(cli)
            counts = {k: v for k, v in (data or {}).items() if k in
                      ("sat", "unsat", "timeout", "unknown", "error")}
            label = f"vnncomp VNN-LIB {version}"
            detail = ", ".join(f"{k} {v}" for k, v in counts.items())
            rows.append([label, "done" if code == 0 else f"error: {err}", detail, seconds])
            records.append({"task": label, "args": cli, "returncode": code, "seconds":
                            round(seconds, 2), "result": data, "error": err})
            print(f"{label}: {detail} ({seconds:.1f} s)", flush=True)
    table = markdown_table(["task", "status", "detail", "wall time (s, incl. start-up)"], rows)
    write_results("resnet-small", "Every task on resnet-small (residual CNN, 3,042 ReLUs)",
                  "python benchmarks/resnet_small.py"
                  + (f" --time-limit {args.time_limit:g}" if args.time_limit != TIME_LIMIT else ""),
                  table, records,
                  notes=f"Image {IMAGE.relative_to(ROOT)} (label 7); time limit "
                        f"{args.time_limit:g} s per task; each task a fresh `verify` process "
                        "(start-up included). vnncomp: benchmarks/resnet-small/ "
                        "(1.0) and its 2.0/ form, the same instances.")


if __name__ == "__main__":
    main()
