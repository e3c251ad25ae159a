"""VNN-LIB 2.0 beside 1.0: version detection, the 2.0 declarations and tensor elements, errors
with positions, the 1.0 → 2.0 converter, result files in each version's words, the bundled
2.0 benchmark properties, and the same verdicts from both versions (counterexamples that
replay in onnxruntime with zero output tolerance)."""
from __future__ import annotations

import csv
import gzip
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from verify.errors import InvalidInputError
from verify.models import load_model
from verify.tasks.vnnlib import certify_vnnlib
from verify.vnncomp import convert_benchmark_v2, onnx_io_shapes, read_instances, run_vnncomp
from verify.vnnlib import (RESULT_WORDS, convert_to_v2, counterexample_text, detect_version,
                           parse_vnnlib, parse_vnnlib_text, read_counterexample, result_word,
                           write_robustness_property)

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

V1 = """; a property with every construct
(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const X_2 Real)
(declare-const X_3 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(declare-const Y_2 Real)
(assert (<= X_0 1))
(assert (>= X_0 -1.5))
(assert (and (<= X_1 0.25) (>= X_1 0.0) (= X_2 0.5)))
(assert (<= -2e-1 X_3 1e-1))
(assert (or (and (>= Y_1 Y_0) (< (- Y_2 (* 2 Y_1)) 0.5))
            (> (+ Y_0 Y_2) (/ 3 2))))
(assert (<= Y_2 10))
"""

V2 = """; the same property in VNN-LIB 2.0
(vnnlib-version <2.0>)
(declare-network net
    (declare-input X float32 [1, 2,2] "input")
    (declare-output Y Real [1,3]))
(assert (<= X[0,0,0] 1.0))
(assert (>= X[0,0,0] -1.5))
(assert (and (<= X[0,0,1] 0.25) (>= X[0,0,1] 0.0) (== X[0,1,0] 0.5)))
(assert (<= -0.2 X[0,1,1] 0.1))
(assert (or (and (>= Y[0,1] Y[0,0]) (< (- Y[0,2] (* 2.0 Y[0,1])) 0.5))
            (> (+ Y[0,0] Y[0,2]) 1.5)))
(assert (<= Y[0,2] 10.0))
"""


def _same(a, b) -> bool:
    from vnnlib2 import same_normal_form
    return same_normal_form(a, b)


def test_version_2_reads_to_the_normal_form_of_version_1():
    a, b = parse_vnnlib_text(V1), parse_vnnlib_text(V2, 4, 3)
    assert (a.version, b.version) == ("1.0", "2.0")
    assert detect_version(V1) == "1.0" and detect_version(V2) == "2.0"
    assert _same(a, b) and len(b.cases) == 1 and len(b.cases[0].disjuncts) == 2
    assert (b.network, b.input_name, b.output_name) == ("net", "X", "Y")
    assert b.input_shape == (1, 2, 2) and b.output_shape == (1, 3)
    assert a.input_shape == (4,) and a.output_shape == (3,)
    # elements flatten in C order: X[0,1,0] is input 2
    assert b.cases[0].lower[2] == b.cases[0].upper[2] == 0.5
    # a scalar output, named bare or as NAME[0]; no version line needed with declare-network
    c = parse_vnnlib_text("(declare-network f (declare-input x Real [2]) (declare-output s Real []))"
                          "(assert (<= x[0] 1.0)) (assert (>= x[0] 0.0)) (assert (<= x[1] 1.0))"
                          "(assert (>= x[1] 0.0)) (assert (or (>= s 2.0) (<= s[0] -2.0)))")
    assert c.version == "2.0" and c.num_outputs == 1 and c.output_shape == ()
    assert [d[0].tolist() for d in c.cases[0].disjuncts] == [[[-1.0]], [[1.0]]]


HEAD = "(vnnlib-version <2.0>)\n"
NET = "(declare-network N (declare-input X float32 [1,2]) (declare-output Y float32 [2]))\n"


@pytest.mark.parametrize("text, message, line, column", [
    ("(vnnlib-version <3.1>)", "version 3.1 is not supported", 1, 1),
    (HEAD + "(declare-const X_0 Real)", "VNN-LIB 1.0 syntax", 2, 1),
    ("(declare-const X_0 Real)\n" + NET, "VNN-LIB 2.0 syntax", 2, 1),
    (HEAD + "(assert (<= 1.0 2.0))", "must declare the network", 1, 1),
    (HEAD + NET + NET, r"a second \(declare-network", 3, 1),
    (HEAD + "(declare-network N (declare-input X Real [2]) (declare-hidden H Real [2] \"h\")"
            " (declare-output Y Real [2]))", "hidden nodes are not supported", 2, 47),
    (HEAD + "(declare-network N (declare-input X Real [2]) (declare-input Z Real [2])"
            " (declare-output Y Real [2]))", "several inputs are not supported", 2, 47),
    (HEAD + "(declare-network N (declare-input X Real [2]))", r"has no \(declare-output", 2, 1),
    (HEAD + "(declare-network N (declare-input X int8 [2]) (declare-output Y Real [2]))",
     "element type 'int8'", 2, 37),
    (HEAD + "(declare-network N (declare-input X Real [2,x]) (declare-output Y Real [2]))",
     "invalid shape", 2, 42),
    (HEAD + "(declare-network N (declare-input X Real [3]) (declare-output Y Real [2]))",
     r"'X' has shape \[3\] \(3 values\) but the network has 2 inputs", 2, 35),
    (HEAD + NET + "(assert (<= X[0,2] 1.0))", r"'X\[0,2\]' is out of range", 3, 13),
    (HEAD + NET + "(assert (<= X[1] 1.0))", "has 1 indices but 'X' has shape", 3, 13),
    (HEAD + NET + "(assert (<= Z[0] 1.0))", "undeclared tensor 'Z'", 3, 13),
    (HEAD + NET + "(assert (<= X 1.0))", r"refer to an element, e.g. X\[0,0\]", 3, 13),
    (HEAD + NET + "(assert (!= Y[0] 1.0))", "'!=' is not supported", 3, 10),
    (HEAD + "(assert (<= 1.0 2.0))\n" + NET, "declares the networks before the assertions", 3, 1),
])
def test_version_2_errors_name_the_place(text, message, line, column):
    with pytest.raises(InvalidInputError, match=message) as info:
        parse_vnnlib_text(text, 2, 2, source="p.vnnlib")
    assert str(info.value).startswith(f"p.vnnlib, line {line}, column {column}: ")


def test_result_words_and_counterexamples_in_each_version():
    assert [result_word(v, "1.0") for v in ("sat", "unsat", "timeout", "unknown")] == \
        ["sat", "unsat", "timeout", "unknown"]
    assert [result_word(v, "2.0") for v in ("sat", "unsat", "timeout", "unknown")] == \
        ["violated", "holds", "timeout", "unknown"]
    assert set(RESULT_WORDS) == {"1.0", "2.0"}
    with pytest.raises(InvalidInputError, match="unknown verdict"):
        result_word("maybe", "2.0")
    x = np.array([0.5, 0.25, -1.0, 0.1])
    y = np.array([1.0, 2.5, -0.75])
    one, two = parse_vnnlib_text(V1), parse_vnnlib_text(V2)
    t1, t2 = counterexample_text(x, y, one), counterexample_text(x, y, two)
    assert t1.startswith("sat\n((X_0 0.5)\n (X_1 0.25)") and "(Y_2 -0.75))" in t1
    assert t2.startswith("violated\n((X[0,0,0] 0.5)\n (X[0,0,1] 0.25)\n (X[0,1,0] -1.0)")
    assert "(Y[0,0] 1.0)" in t2 and t2.endswith("(Y[0,2] -0.75))\n")
    for text in (t1, t2, t2.split("\n", 1)[1]):
        xr, yr = read_counterexample(text)
        assert np.array_equal(xr, x) and np.array_equal(yr, y)
    with pytest.raises(InvalidInputError, match=r"X\[0,1,1\] is missing"):
        read_counterexample(t2.replace("\n (X[0,1,1] 0.1)", ""))
    with pytest.raises(InvalidInputError, match="not a counterexample"):
        read_counterexample("holds\n((X[0] 1.0) (Y[0] 2.0))")


def test_converter_writes_the_same_property():
    v2 = convert_to_v2(V1, (1, 2, 2), (1, 3), network="net")
    assert v2.startswith("; a property with every construct\n; VNN-LIB 2.0 form")
    assert "(declare-input X float32 [1,2,2])" in v2 and "(== X[0,1,0] 0.5)" in v2
    assert "-0.2" in v2 and "1e-1" not in v2 and "(<= X[0,0,0] 1.0)" in v2
    assert _same(parse_vnnlib_text(V1), parse_vnnlib_text(v2))
    with pytest.raises(InvalidInputError, match="already VNN-LIB 2.0"):
        convert_to_v2(V2, (4,), (3,))
    with pytest.raises(InvalidInputError, match="network has 5 inputs"):
        convert_to_v2(V1, (5,), (3,))


def test_the_bundled_2_0_benchmark_properties_match_1_0():
    """Every benchmark folder has its 2.0 form (benchmarks/vnnlib2.py), listing the same
    instances; the first properties of each parse to the very same cases as their 1.0
    originals (all of them: ``python benchmarks/vnnlib2.py --check``)."""
    from vnnlib2 import FOLDERS

    assert len(FOLDERS) == 6
    for folder in FOLDERS:
        old, new = read_instances(folder), read_instances(folder / "2.0")
        assert [(Path(i.vnnlib).name + ".gz", i.timeout) for i in old] == \
            [(i.vnnlib, i.timeout) for i in new]
        assert {(folder / "2.0" / i.onnx).resolve() for i in new} == \
            {(folder / i.onnx).resolve() for i in old}
        for a, b in list(zip(old, new))[:2]:
            p1, p2 = parse_vnnlib(folder / a.vnnlib), parse_vnnlib(folder / "2.0" / b.vnnlib)
            assert p2.version == "2.0" and _same(p1, p2)
            assert p2.input_shape == onnx_io_shapes(folder / a.onnx)[0]


def _replays(onnx_path: Path, text: str, prop) -> bool:
    """The VNN-COMP check with zero tolerance: onnxruntime with its default options on the
    file's inputs gives exactly the file's outputs, the inputs lie in a case's box and the
    outputs satisfy one of its disjuncts."""
    x, y = read_counterexample(text)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    shape = [1 if not isinstance(d, int) else d for d in inp.shape]
    out = session.run(None, {inp.name: x.astype(np.float32).reshape(shape)})[0].reshape(-1)
    if not np.array_equal(out.astype(np.float64), y):
        return False
    return any(np.all(x >= c.lower) and np.all(x <= c.upper)
               and any(np.all(A @ y <= b) for A, b in c.disjuncts) for c in prop.cases)


def test_both_versions_give_the_same_verdicts_on_the_bundled_benchmark(tmp_path):
    """Four instances of benchmarks/vnncomp/mlp-256x2 (two sat, two unsat), decided from the
    1.0 and from the 2.0 files by the VNN-COMP runner: the same verdicts; the 2.0 counterexample
    files say ``violated``, name tensor elements and replay in onnxruntime exactly."""
    folder = BENCH / "vnncomp" / "mlp-256x2"
    chosen = ["prop_0_eps_0.030.vnnlib", "prop_3_eps_0.030.vnnlib", "prop_1_eps_0.030.vnnlib",
              "prop_8_eps_0.030.vnnlib"]
    verdicts = {}
    for version, sub, suffix in (("1.0", folder, ""), ("2.0", folder / "2.0", ".gz")):
        run = tmp_path / version
        run.mkdir()
        (run / "instances.csv").write_text("".join(
            f"{folder / 'mlp-256x2.onnx'},{sub / (name + suffix)},30\n" for name in chosen))
        rows = run_vnncomp(run, run / "results.csv", timeout_cap=30)
        verdicts[version] = [r["verdict"] for r in rows]
        for r in rows:
            if r["verdict"] == "sat":
                text = (run / r["counterexample"]).read_text()
                prop = parse_vnnlib(r["vnnlib"])
                assert text.split("\n", 1)[0] == ("violated" if version == "2.0" else "sat")
                assert ("(X[0,0,0,0] " in text) == (version == "2.0")
                assert _replays(folder / "mlp-256x2.onnx", text, prop)
    assert verdicts["1.0"] == verdicts["2.0"] == ["unsat", "sat", "unsat", "sat"]


def test_same_verdicts_and_result_words_on_a_small_model(tmp_path):
    """Generated robustness properties on the bundled ``multiclass`` (Keras, 10-10 ReLUs):
    1.0 and its 2.0 conversion agree (a small ε holds, a large one is violated), and the result
    files use each version's words."""
    from verify.data import load_mnist

    model = load_model("multiclass")
    split = load_mnist("bundled")
    x = split.x_test[2].astype(np.float64)          # a 5, classified with a wide margin
    label = model.label(x)
    seen = set()
    for eps in (0.002, 0.3):
        p1 = tmp_path / f"p-{eps}.vnnlib"
        write_robustness_property(p1, x.ravel(), label, eps, 10)
        p2 = tmp_path / f"p-{eps}-2.vnnlib"
        p2.write_text(convert_to_v2(p1.read_text(), (1, 28, 28, 1), (1, 10)))
        a = certify_vnnlib(model, p1, time_limit=30)
        b = certify_vnnlib(model, p2, time_limit=30)
        assert a.verdict == b.verdict and a.verdict in ("sat", "unsat")
        seen.add(a.verdict)
        words = {"sat": ("sat", "violated"), "unsat": ("unsat", "holds")}[a.verdict]
        assert (a.vnncomp_text().split("\n")[0], b.vnncomp_text().split("\n")[0]) == words
        assert (a.to_dict()["result"], b.to_dict()["result"]) == words
        assert b.to_dict()["vnnlib_version"] == "2.0" and b.to_dict()["verdict"] == a.verdict
        if b.verdict == "sat":
            xr, yr = read_counterexample(b.vnncomp_text())
            assert np.array_equal(xr, b.counterexample) and np.array_equal(yr, b.outputs)
            assert np.array_equal(model.reference_outputs(xr.astype(np.float32)[None])[0], yr)
    assert seen == {"sat", "unsat"}


def test_convert_benchmark_writes_a_runnable_2_0_folder(tmp_path):
    """convert_benchmark_v2 on a small generated folder: gzip files (deterministic bytes),
    instances.csv pointing back at the model; a second conversion changes nothing."""
    from verify.models import export_model

    src = tmp_path / "bench"
    src.mkdir()
    model = load_model("multiclass")
    export_model(model, src / "m.onnx")
    x = np.linspace(0.1, 0.9, 784)
    write_robustness_property(src / "p.vnnlib", x, 3, 0.01, 10)
    (src / "instances.csv").write_text("m.onnx,p.vnnlib,5\n")
    out = convert_benchmark_v2(src)
    first = (out / "p.vnnlib.gz").read_bytes()
    assert convert_benchmark_v2(src) == out and (out / "p.vnnlib.gz").read_bytes() == first
    assert list(csv.reader((out / "instances.csv").open())) == [["../m.onnx", "p.vnnlib.gz", "5"]]
    text = gzip.decompress(first).decode()
    assert "(declare-input X float32 [1,28,28,1])" in text
    assert _same(parse_vnnlib(src / "p.vnnlib"), parse_vnnlib(out / "p.vnnlib.gz"))


def _identity_onnx(path: Path) -> Path:
    """y = (x0, −x0): a Gemm with exact float32 arithmetic."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.array([[1.0], [-1.0]], np.float32), "w")
    b = numpy_helper.from_array(np.zeros(2, np.float32), "b")
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)], "id",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
                              initializer=[w, b])
    opsets = [helper.make_opsetid("", 17)]
    onnx.save(helper.make_model(graph, opset_imports=opsets,
                                ir_version=helper.find_min_ir_version_for(opsets)), path)
    return path


def test_counterexamples_replay_exactly_or_are_not_reported(tmp_path):
    """0.7 is not a float32: float32(0.7) < 0.7. A candidate at x = 0.7 for ``Y_0 >= 0.7``
    misses in the runtime by rounding and is nudged up until it replays; when the box ends at
    0.7 no float32 input satisfies the property, and the answer is not ``violated``."""
    from verify.regions import InputBox
    from verify.tasks.vnnlib import _confirm

    model = load_model(_identity_onnx(tmp_path / "id.onnx"))
    cases = [(np.array([[-1.0, 0.0]]), np.array([-0.7]))]          # -Y_0 <= -0.7
    region = InputBox(np.zeros(1), np.ones(1))
    hit = _confirm(model, np.array([0.7]), region, cases, model.network)
    assert hit is not None
    x, y = hit
    assert x[0] > 0.7 and x[0] == np.float32(x[0]) and y[0] >= 0.7 and y[0] == x[0]
    tight = InputBox(np.zeros(1), np.full(1, 0.7))
    assert _confirm(model, np.array([0.7]), tight, cases, model.network) is None
    head = ("(vnnlib-version <2.0>)\n(declare-network N (declare-input X float32 [1,1]) "
            "(declare-output Y float32 [1,2]))\n(assert (>= X[0,0] 0.0))\n")
    for top, want in (("1.0", ("sat", "violated")), ("0.7", None)):
        prop = tmp_path / f"p{top}.vnnlib"
        prop.write_text(head + f"(assert (<= X[0,0] {top}))\n(assert (>= Y[0,0] 0.7))\n")
        r = certify_vnnlib(model, prop, time_limit=20)
        if want:
            assert (r.verdict, r.result_word) == want
            assert _replays(tmp_path / "id.onnx", r.vnncomp_text(), parse_vnnlib(prop))
        else:
            # true over the reals (x = 0.7), false in float32: neither violated nor holds
            assert (r.verdict, r.result_word) == ("unknown", "unknown")


def test_cli_answers_in_the_words_of_the_version(tmp_path):
    """``verify certify --vnnlib`` on a 2.0 property prints ``violated`` and writes it, with
    the tensor-named counterexample, to result.txt (one process, the command as a user runs
    it)."""
    import subprocess

    verify = Path(sys.executable).parent / "verify"
    prop = BENCH / "vnncomp" / "mlp-256x2" / "2.0" / "prop_3_eps_0.030.vnnlib.gz"
    proc = subprocess.run([str(verify), "certify", "--model", "mlp-256x2", "--vnnlib", str(prop),
                           "--time-limit", "60", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[0] == "violated"
    text = (tmp_path / "out" / "result.txt").read_text()
    assert text.startswith("violated\n((X[0,0,0,0] ") and "(Y[0,9] " in text


def test_conv_graph_counterexamples_replay_in_default_onnxruntime():
    """The residual CNN as a converter writes it (benchmarks/resnet-small): onnxruntime's
    default session fuses Conv/Add kernels and rounds differently from the unoptimised one;
    the counterexample holds on both and carries the default session's outputs, so it
    replays with zero tolerance."""
    folder = BENCH / "resnet-small"
    model = load_model(folder / "resnet-small.onnx")
    for name in ("prop_0_eps_0.100.vnnlib", "2.0/prop_1_eps_0.100.vnnlib.gz"):
        prop = parse_vnnlib(folder / name)
        r = certify_vnnlib(model, prop, time_limit=30)
        assert r.verdict == "sat" and r.result_word == prop.result_word("sat")
        assert _replays(folder / "resnet-small.onnx", r.vnncomp_text(), prop)
