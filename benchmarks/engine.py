"""The engine benchmark (issue 18): naturally trained MNIST networks, VNN-COMP-style robustness
properties, each instance decided by the new default engine, by ``--engine mip`` and by Marabou.

Networks (``benchmarks/engine/NAME/``, trained by ``models/train.py``, ``BENCHMARK_SPECS``;
not bundled with the package): ``natural-256x2`` (784-256-256-10), ``natural-256x4``
(784-256x4-10), ``natural-256x6`` (784-256x6-10) and ``natural-cnn`` (two strided 3x3
convolutions and a dense layer: 2,028 ReLUs), all plain Adam on the cross-entropy (no robust
training). Properties: L∞ robustness at ε = 0.03 and 0.05 around the first 15 correctly
classified test digits (30 per network), written by ``benchmarks/vnncomp.py``'s ``generate``
(ONNX exported by ``verify.models.export_model``, VNN-LIB, ``instances.csv``).

Tools, each on every instance of the same run:

* ``auto`` — ``verify.vnncomp.run_vnncomp`` (the code of ``verify vnncomp``) with the default
  engine (``engine="auto"``: attack → α-CROWN → branch and bound → MIP);
* ``mip`` — the same with ``engine="mip"`` (the attack → interval/symbolic/LP bounds → MIP
  pipeline that predates the engine);
* ``marabou`` — Marabou (``pip install maraboupy``; a benchmark-only peer, not a dependency of
  ``verify``): ``Marabou.read_onnx`` + the VNN-LIB file through ``MarabouCore.loadProperty``,
  one worker, ``timeoutInSeconds``; a fresh subprocess per instance.

Every instance runs in a worker process (``--jobs`` at a time, default 2: one per core; each
solver gets ``cores // jobs`` threads), with the instance's time limit (``--timeout``, default
120 s) and a hard kill ``GRACE`` seconds later. Times are measured inside the worker, from
reading the ONNX model to the verdict (the interpreter's start-up and imports excluded, for
every tool alike). Every ``sat`` counterexample is re-checked here with onnxruntime (inside the
box, and the property's output condition holds on onnxruntime's outputs); verdicts are
cross-checked between tools, and a sat/unsat disagreement or an unconfirmed counterexample is
printed loudly and marked in the report. Each finished (network, instance, tool, timeout) is
appended at once to ``results/engine.jsonl``, so an interrupted run resumes (``--fresh``
starts over).

::

    python benchmarks/engine.py --train       # train the networks, export ONNX, write properties
    python benchmarks/engine.py --generate    # only the ONNX + properties, from the .keras files
    python benchmarks/engine.py               # the whole benchmark (hours: an idle machine!)
    python benchmarks/engine.py --networks natural-256x2 --tools auto marabou --limit 2 --timeout 20

Writes ``results/engine.md`` / ``.json`` (summary per network and tool, then every instance:
verdict, time and the stage that settled it, per tool).
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _common import append_record, markdown_table, read_records, write_results  # noqa: E402

FOLDER = HERE / "engine"
NETWORKS = ("natural-256x2", "natural-256x4", "natural-256x6", "natural-cnn")
TOOLS = ("auto", "mip", "marabou")
ALL_TOOLS = ("auto", "bab", "mip", "marabou")   # bab: the engine alone (no MIP), on request
DIGITS = 15
LOG = HERE / "results" / "engine.jsonl"
GRACE = 30.0          # seconds past an instance's limit before its worker is killed
DECIDED = ("sat", "unsat")


# --------------------------------------------------------------------------------------------
# Preparing the networks and properties
# --------------------------------------------------------------------------------------------

def train_networks(names: list[str]) -> dict[str, dict]:
    """Train each network with ``models/train.py`` into ``engine/NAME/NAME.keras``."""
    sys.path.insert(0, str(ROOT / "models"))
    import train as training
    from verify.data import load_mnist

    split = load_mnist("bundled")
    entries = {}
    for name in names:
        path, entry, took = training.train_benchmark_model(name, FOLDER / name, split)
        entries[name] = entry
        print(f"{name}: test accuracy {100 * entry['test_accuracy']:.2f} % ({took:.1f} s) -> {path}",
              flush=True)
    return entries


def generate_properties(names: list[str], timeout: float) -> None:
    """ONNX + VNN-LIB + instances.csv per network, by ``benchmarks/vnncomp.py``'s ``generate``;
    then the ONNX file is checked against the Keras model on the test digits."""
    import onnxruntime as ort

    import vnncomp
    from verify.data import test_digits
    from verify.models import load_model

    for name in names:
        folder = FOLDER / name
        keras_path = folder / f"{name}.keras"
        if not keras_path.is_file():
            raise SystemExit(f"{keras_path} not found: run with --train first")
        vnncomp.generate(folder, str(keras_path), DIGITS, timeout)
        onnx_path = folder / f"{name}.onnx"
        model = load_model(keras_path)
        x, _ = test_digits(200)
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        feed = x.reshape(len(x), *session.get_inputs()[0].shape[1:]).astype(np.float32)
        logits = session.run(None, {session.get_inputs()[0].name: feed})[0]
        agree = np.mean(logits.argmax(1) == np.array([model.label(d) for d in x]))
        print(f"{name}: {onnx_path.stat().st_size / 1e6:.2f} MB ONNX, {relu_count(model.network)} "
              f"ReLUs, ONNX and Keras agree on {100 * agree:.1f} % of 200 test digits", flush=True)


def relu_count(network) -> int:
    from verify.network import ReLU

    return sum(int(np.prod(layer.out_shape)) for layer in network.layers if isinstance(layer, ReLU))


# --------------------------------------------------------------------------------------------
# Workers (run in child processes)
# --------------------------------------------------------------------------------------------

def _private_stdout():
    """A private copy of stdout for the result lines; fd 1 itself goes to stderr, so that
    whatever a library prints (Marabou's C++ code, warnings) cannot garble them."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def verify_worker() -> None:
    """Read JSON tasks (one a line) from stdin; for each, decide the instance with
    ``run_vnncomp`` (the given engine) in a temporary folder and answer one JSON line."""
    out = _private_stdout()
    from verify.vnncomp import run_vnncomp
    from verify.vnnlib import read_counterexample

    print(json.dumps({"ready": True}), file=out, flush=True)
    for line in sys.stdin:
        task = json.loads(line)
        with tempfile.TemporaryDirectory(prefix="verify-engine-") as tmp:
            tmp = Path(tmp)
            (tmp / "instances.csv").write_text(f"{task['onnx']},{task['vnnlib']},{task['timeout']:g}\n")
            t0 = time.perf_counter()
            try:
                rows = run_vnncomp(tmp, tmp / "results.csv", threads=task["threads"],
                                   engine=task["tool"])
                wall = time.perf_counter() - t0
                row = rows[0]
                x = None
                if row["verdict"] == "sat" and row["counterexample"]:
                    x = read_counterexample(tmp / row["counterexample"])[0].tolist()
                answer = {"verdict": row["verdict"], "stage": row.get("stage") or row["method"] or "",
                          "method": row["method"],
                          "time_s": wall, "tool_time_s": float(row["time_s"] or "nan"),
                          "error": row["error"], "x": x}
            except Exception as exc:  # noqa: BLE001 - reported as the instance's error
                answer = {"verdict": "error", "stage": "", "time_s": time.perf_counter() - t0,
                          "error": f"{type(exc).__name__}: {exc}", "x": None}
        print(json.dumps(answer), file=out, flush=True)


def batch_one_onnx(onnx_path: str, out: Path) -> str:
    """The same model with batch size 1 written out: Marabou's ONNX parser reads neither a
    symbolic batch dimension in the input nor the ``0`` ("copy this dimension") entries of
    ``Reshape`` shapes that ``verify``'s exporter writes for the batch; both become 1. (Same
    function for a single input, which is all a VNN-LIB property asks about.)"""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(onnx_path)
    for value in [*model.graph.input, *model.graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_value = 1
    shapes = {n.input[1] for n in model.graph.node if n.op_type == "Reshape" and len(n.input) > 1}
    for init in model.graph.initializer:
        if init.name in shapes:
            shape = numpy_helper.to_array(init).copy()
            if shape.size and shape[0] == 0:
                shape[0] = 1
                init.CopyFrom(numpy_helper.from_array(shape, init.name))
    onnx.save(model, str(out))
    return str(out)


def marabou_worker(onnx_path: str, vnnlib_path: str, timeout: float, threads: int) -> None:
    """Decide one instance with Marabou and print one JSON line (on the private stdout)."""
    out = _private_stdout()
    from maraboupy import Marabou

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="verify-engine-marabou-") as tmp:
        net = Marabou.read_onnx(batch_one_onnx(onnx_path, Path(tmp) / "model.onnx"))
    options = Marabou.createOptions(numWorkers=1, timeoutInSeconds=max(1, int(round(timeout))),
                                    verbosity=0, numBlasThreads=threads)
    code, values, _ = net.solve(options=options, propertyFilename=vnnlib_path, verbose=False)
    wall = time.perf_counter() - t0
    verdict = {"sat": "sat", "unsat": "unsat", "TIMEOUT": "timeout"}.get(code, "unknown")
    x = None
    if verdict == "sat":
        x = [float(values[int(v)]) for v in np.asarray(net.inputVars[0]).ravel()]
    print(json.dumps({"verdict": verdict, "stage": "marabou" if verdict in DECIDED else "",
                      "time_s": wall, "tool_time_s": wall,
                      "error": "" if verdict != "unknown" else f"Marabou exit code {code!r}",
                      "x": x}), file=out, flush=True)


# --------------------------------------------------------------------------------------------
# The parent: scheduling, hard time limits, re-checks
# --------------------------------------------------------------------------------------------

def _worker_env(threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    if threads == 1:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                            "intra_op_parallelism_threads=1").strip()
    return env


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


class VerifyWorker:
    """A persistent ``--worker`` child (Keras/JAX start once), killed and restarted when an
    instance overruns its limit by more than :data:`GRACE`."""

    def __init__(self, threads: int, log: Path):
        self.threads, self.log, self.proc = threads, log, None
        self.lines: queue.Queue = queue.Queue()

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.log.open("a"), text=True, cwd=ROOT,
            env=_worker_env(self.threads), start_new_session=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc, self.lines), daemon=True).start()
        hello = self.lines.get(timeout=600)
        if hello is None:
            raise SystemExit(f"the verify worker did not start; see {self.log}")

    @staticmethod
    def _read(proc: subprocess.Popen, lines: queue.Queue) -> None:
        for line in proc.stdout:
            lines.put(json.loads(line))
        lines.put(None)

    def run(self, task: dict) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        t0 = time.perf_counter()
        self.proc.stdin.write(json.dumps(task) + "\n")
        self.proc.stdin.flush()
        try:
            answer = self.lines.get(timeout=task["timeout"] + GRACE)
        except queue.Empty:
            answer = "killed"
        if answer is None or answer == "killed":
            _kill(self.proc)
            self.proc = None
            wall = time.perf_counter() - t0
            if answer == "killed":
                return {"verdict": "timeout", "stage": "", "time_s": wall, "x": None,
                        "error": f"killed {GRACE:g} s past the limit"}
            return {"verdict": "error", "stage": "", "time_s": wall, "x": None,
                    "error": f"worker died; see {self.log}"}
        return answer

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            _kill(self.proc)


def run_marabou(task: dict, log: Path) -> dict:
    t0 = time.perf_counter()
    with log.open("a") as err:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--marabou", task["onnx"], task["vnnlib"],
             f"{task['timeout']:g}", str(task["threads"])], stdout=subprocess.PIPE, stderr=err,
            text=True, cwd=ROOT, env=_worker_env(task["threads"]), start_new_session=True)
        try:
            stdout, _ = proc.communicate(timeout=task["timeout"] + GRACE)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return {"verdict": "timeout", "stage": "", "time_s": time.perf_counter() - t0, "x": None,
                    "error": f"killed {GRACE:g} s past the limit"}
    lines = [line for line in stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        return {"verdict": "error", "stage": "", "time_s": time.perf_counter() - t0, "x": None,
                "error": f"Marabou process exited with {proc.returncode}; see {log}"}
    return json.loads(lines[-1])


def recheck(onnx_path: Path, vnnlib_path: Path, x: list[float] | None, sessions: dict) -> bool:
    """The counterexample lies in some case's box (to 1e-6) and, on onnxruntime's outputs at
    that point clipped into the box, satisfies one of the case's disjuncts."""
    import onnxruntime as ort

    from verify.vnnlib import parse_vnnlib

    if x is None:
        return False
    if onnx_path not in sessions:
        sessions[onnx_path] = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    session = sessions[onnx_path]
    point = np.asarray(x, dtype=np.float64)
    prop = parse_vnnlib(vnnlib_path)
    shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
    for case in prop.cases:
        if point.shape != case.lower.shape or np.any(point < case.lower - 1e-6) or np.any(point > case.upper + 1e-6):
            continue
        inside = np.clip(point, case.lower, case.upper).astype(np.float32)
        y = session.run(None, {session.get_inputs()[0].name: inside.reshape(shape)})[0]
        y = np.asarray(y, dtype=np.float64).ravel()
        if any(np.all(a @ y <= b) for a, b in case.disjuncts):
            return True
    return False


def instances_of(network: str, limit: int | None) -> list[tuple[str, str]]:
    from verify.vnncomp import read_instances

    folder = FOLDER / network
    if not (folder / "instances.csv").is_file():
        raise SystemExit(f"{folder / 'instances.csv'} not found: run with --train (or --generate) first")
    rows = read_instances(folder)
    return [(r.onnx, r.vnnlib) for r in rows[:limit]]


def key(rec: dict) -> tuple:
    return rec["network"], rec["vnnlib"], rec["tool"], rec["timeout"]


def run(networks: list[str], tools: list[str], timeout: float, jobs: int, limit: int | None,
        fresh: bool, report_only: bool = False) -> tuple[list[dict], float | None]:
    """Decide every (network, instance, tool) not already in the log (none with
    ``report_only``); returns this selection's records and the wall time of this run."""
    if fresh:
        LOG.unlink(missing_ok=True)
    done = {key(r): r for r in read_records(LOG)}
    threads = max(1, (os.cpu_count() or 1) // jobs)
    tasks = []
    for network in networks:
        for onnx, vnnlib in instances_of(network, limit):
            for tool in tools:
                rec = {"network": network, "onnx": onnx, "vnnlib": vnnlib, "tool": tool,
                       "timeout": timeout}
                if key(rec) not in done and not report_only:
                    tasks.append(rec)
    logs = Path(tempfile.mkdtemp(prefix="verify-engine-bench-")) if tasks else Path(".")
    print(f"{len(tasks)} runs to do ({len(done)} records already in {LOG.name}); "
          f"{jobs} at a time, {threads} thread(s) each"
          + (f"; worker logs in {logs}" if tasks else ""), file=sys.stderr, flush=True)
    todo: queue.Queue = queue.Queue()
    for t in tasks:
        todo.put(t)
    lock = threading.Lock()
    sessions: dict = {}
    stop = threading.Event()

    def slot(number: int) -> None:
        worker = VerifyWorker(threads, logs / f"verify-{number}.log")
        try:
            while not stop.is_set():
                try:
                    rec = todo.get_nowait()
                except queue.Empty:
                    return
                folder = FOLDER / rec["network"]
                task = {"tool": rec["tool"], "onnx": str(folder / rec["onnx"]),
                        "vnnlib": str(folder / rec["vnnlib"]), "timeout": timeout, "threads": threads}
                if rec["tool"] == "marabou":
                    answer = run_marabou(task, logs / f"marabou-{number}.log")
                else:
                    answer = worker.run(task)
                rec = {**rec, **{k: v for k, v in answer.items() if k != "x"}}
                with lock:
                    if rec["verdict"] == "sat":
                        rec["confirmed"] = recheck(folder / rec["onnx"], folder / rec["vnnlib"],
                                                   answer.get("x"), sessions)
                        if not rec["confirmed"]:
                            print(f"!!! {rec['network']} {rec['vnnlib']} {rec['tool']}: sat, but the "
                                  "counterexample is NOT confirmed by onnxruntime", file=sys.stderr)
                    append_record(LOG, rec)
                    done[key(rec)] = rec
                    print(f"{rec['network']} {rec['vnnlib']} {rec['tool']:8s} {rec['verdict']:8s} "
                          f"{rec['time_s']:7.2f} s {rec.get('stage') or ''}"
                          + (f" ({rec['error']})" if rec.get("error") else ""), file=sys.stderr, flush=True)
        finally:
            worker.close()

    t0 = time.perf_counter()
    threads_ = [threading.Thread(target=slot, args=(n,), daemon=True) for n in range(jobs)]
    for t in threads_:
        t.start()
    try:
        for t in threads_:
            while t.is_alive():
                t.join(0.5)
    except KeyboardInterrupt:
        stop.set()
        print("interrupted: finished instances are in the log; rerun to resume", file=sys.stderr)
        raise
    wall = time.perf_counter() - t0 if tasks else None
    selected = []
    for network in networks:
        for onnx, vnnlib in instances_of(network, limit):
            for tool in tools:
                rec = done.get((network, vnnlib, tool, timeout))
                if rec is not None:
                    selected.append(rec)
    return selected, wall


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def disagreements(records: list[dict]) -> list[str]:
    """Instances where one tool says sat and another unsat, and sat answers not confirmed."""
    by_instance: dict[tuple, dict] = {}
    for r in records:
        by_instance.setdefault((r["network"], r["vnnlib"]), {})[r["tool"]] = r
    problems = []
    for (network, vnnlib), tools in by_instance.items():
        verdicts = {t: r["verdict"] for t, r in tools.items() if r["verdict"] in DECIDED}
        if len(set(verdicts.values())) > 1:
            problems.append(f"{network} {vnnlib}: tools disagree ("
                            + ", ".join(f"{t} {v}" for t, v in verdicts.items()) + ")")
        for t, r in tools.items():
            if r["verdict"] == "sat" and not r.get("confirmed"):
                problems.append(f"{network} {vnnlib}: {t}'s counterexample is not confirmed by onnxruntime")
    return problems


def in_time(rec: dict) -> bool:
    """Decided within the instance's time limit (a verdict that comes later counts as a
    timeout, as in VNN-COMP)."""
    return rec["verdict"] in DECIDED and rec["time_s"] <= rec["timeout"]


def late(rec: dict) -> bool:
    return rec["verdict"] in DECIDED and rec["time_s"] > rec["timeout"]


def summarise(records: list[dict], networks: list[str], tools: list[str]) -> list[list]:
    rows = []
    for network in networks:
        for tool in tools:
            mine = [r for r in records if r["network"] == network and r["tool"] == tool]
            if not mine:
                continue
            ok = [r for r in mine if in_time(r)]
            decided = [r["time_s"] for r in ok]
            count = {v: sum(r["verdict"] == v for r in ok) for v in DECIDED}
            count["timeout"] = sum(r["verdict"] == "timeout" or late(r) for r in mine)
            other = len(mine) - sum(count.values())
            stages: dict[str, int] = {}
            for r in ok:
                stages[r.get("stage") or "?"] = stages.get(r.get("stage") or "?", 0) + 1
            rows.append([network, tool, len(mine), len(decided), count["sat"], count["unsat"],
                         count["timeout"], sum(late(r) for r in mine), other,
                         statistics.median(decided) if decided else float("nan"),
                         max(decided) if decided else float("nan"),
                         ", ".join(f"{s} {n}" for s, n in sorted(stages.items())) or "—"])
    return rows


def per_instance(records: list[dict], tools: list[str]) -> list[list]:
    by_instance: dict[tuple, dict] = {}
    for r in records:
        by_instance.setdefault((r["network"], r["vnnlib"]), {})[r["tool"]] = r
    rows = []
    for (network, vnnlib), mine in by_instance.items():
        row = [network, vnnlib.removesuffix(".vnnlib")]
        for tool in tools:
            r = mine.get(tool)
            if r is None:
                row.append("")
                continue
            cell = f"{r['verdict']} {r['time_s']:.3g} s"
            if r.get("stage"):
                cell += f" ({r['stage']})"
            if late(r):
                cell += " — past the limit"
            if r["verdict"] == "sat" and not r.get("confirmed"):
                cell += " **UNCONFIRMED**"
            row.append(cell)
        rows.append(row)
    return rows


def report(records: list[dict], networks: list[str], tools: list[str], wall: float | None,
           args: argparse.Namespace) -> None:
    problems = disagreements(records)
    for p in problems:
        print(f"!!! WRONG ANSWER SOMEWHERE: {p}", file=sys.stderr)
    summary = markdown_table(
        ["network", "tool", "instances", "decided", "sat", "unsat", "timeout", "of which late",
         "other",
         "median s (decided)", "max s (decided)", "settled by"],
        summarise(records, networks, tools))
    accuracy = []
    for network in networks:
        meta = FOLDER / network / "network.json"
        if meta.is_file():
            m = json.loads(meta.read_text())
            accuracy.append([network, m["architecture"], m["relus"], f"{100 * m['test_accuracy']:.2f} %",
                             f"{m['onnx_bytes'] / 1e6:.2f} MB"])
    notes = [
        "**Run it on an otherwise idle machine**: every tool gets one core per job "
        f"(`--jobs {args.jobs}`, {max(1, (os.cpu_count() or 1) // args.jobs)} solver thread(s) each), "
        "and any other load changes the times and the number decided.",
        "",
        f"Time limit {args.timeout:g} s per instance; time measured inside each worker process from "
        "reading the ONNX file to the verdict (interpreter start-up and imports excluded, for every "
        "tool); " + (f"wall time of this run {wall:.0f} s" if wall is not None else
                     f"report made from the records in `results/{LOG.name}`")
        + ". `auto`: `verify.vnncomp.run_vnncomp` with "
        "the default engine; `mip`: the same with `engine=\"mip\"`; `marabou`: Marabou "
        "(maraboupy, `Marabou.read_onnx` on a batch-1 copy of the ONNX file, which its parser "
        "needs, + the VNN-LIB file via `loadProperty`, 1 worker), a fresh process per instance.",
    ]
    notes += ["", "Every `sat` counterexample was re-checked with onnxruntime (inside the box, output "
                  "condition holds on onnxruntime's outputs); verdicts cross-checked between tools: "
              + ("**PROBLEMS:**\n\n" + "\n".join(f"- **{p}**" for p in problems) if problems
                 else "no disagreement, every counterexample confirmed.")]
    if accuracy:
        notes += ["", "## Networks", "",
                  markdown_table(["network", "architecture", "ReLUs", "test accuracy (2,000 bundled "
                                  "test digits)", "ONNX"], accuracy)]
    notes += ["", "## Per instance", "", markdown_table(["network", "instance", *tools],
                                                        per_instance(records, tools))]
    write_results(LOG.stem, "Engine benchmark: natural MNIST networks, VNN-COMP-style robustness",
                  "python benchmarks/engine.py " + " ".join(sys.argv[1:]), summary,
                  {"records": records, "problems": problems, "wall_s": wall,
                   "timeout": args.timeout, "jobs": args.jobs}, "\n".join(notes))
    if problems:
        print(f"\n!!! {len(problems)} PROBLEM(S): a sat/unsat disagreement or an unconfirmed "
              "counterexample is a bug", file=sys.stderr)


def write_network_info(names: list[str], entries: dict[str, dict]) -> None:
    """``engine/NAME/network.json``: architecture, ReLUs, test accuracy, ONNX size."""
    from verify.models import load_model

    for name in names:
        folder = FOLDER / name
        model = load_model(folder / f"{name}.keras")
        old = json.loads((folder / "network.json").read_text()) if (folder / "network.json").is_file() else {}
        entry = entries.get(name, old)
        info = {"architecture": entry["architecture"], "test_accuracy": entry["test_accuracy"],
                "epochs": entry["epochs"], "seed": entry["seed"], "params": entry["params"],
                "relus": relu_count(model.network),
                "onnx_bytes": (folder / f"{name}.onnx").stat().st_size}
        (folder / "network.json").write_text(json.dumps(info, indent=1) + "\n")


def main() -> None:
    global LOG
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", action="store_true", help="train the networks, then --generate, and stop")
    ap.add_argument("--generate", action="store_true", help="write ONNX + properties and stop")
    ap.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    ap.add_argument("--tools", nargs="+", default=list(TOOLS), choices=ALL_TOOLS,
                    help=f"default: {' '.join(TOOLS)}")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per instance (default 120)")
    ap.add_argument("--jobs", type=int, default=2, help="instances at a time (default 2: one per core)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N instances per network")
    ap.add_argument("--fresh", action="store_true", help="forget the records in results/NAME.jsonl (--log)")
    ap.add_argument("--log", default="engine", metavar="NAME",
                    help="results/NAME.jsonl holds the records, results/NAME.md/.json the report "
                         "(default: engine; another name keeps a separate run, e.g. one tool "
                         "re-measured after a change)")
    ap.add_argument("--report", action="store_true",
                    help="run nothing: the report of the selection from results/NAME.jsonl (--log)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--marabou", nargs=4, metavar=("ONNX", "VNNLIB", "TIMEOUT", "THREADS"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    LOG = HERE / "results" / f"{args.log}.jsonl"
    if args.worker:
        return verify_worker()
    if args.marabou:
        onnx_path, vnnlib_path, limit, threads = args.marabou
        return marabou_worker(onnx_path, vnnlib_path, float(limit), int(threads))
    if args.jobs < 1 or args.timeout <= 0 or (args.limit is not None and args.limit < 1):
        ap.error("--jobs and --limit must be >= 1 and --timeout > 0")
    if args.train or args.generate:
        entries = train_networks(args.networks) if args.train else {}
        generate_properties(args.networks, args.timeout)
        write_network_info(args.networks, entries)
        return None
    records, wall = run(args.networks, args.tools, args.timeout, args.jobs, args.limit, args.fresh,
                        args.report)
    report(records, args.networks, args.tools, wall, args)
    return None


if __name__ == "__main__":
    main()
