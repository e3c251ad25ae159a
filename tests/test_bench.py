"""The benchmark runner: config checks, resuming, a SIGKILL mid-run, Dask, and the report."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from verify.bench import expand, load_config, parse_config, read_results, run_bench
from verify.errors import InvalidInputError

ROOT = Path(__file__).resolve().parents[1]
# Test digits 5..10: each of these card queries is a real MIP of about 0.3-2.5 s (digits 2..4
# take milliseconds), so a run can be killed between two queries with no test hook slowing it.
CONFIG = """
models = ["twoclass"]
backends = ["highs"]
tasks = ["min-adv-card"]
images = {test = [5, 11]}
time_limit = 20
threads = 1
"""


def _config(tmp_path, text=CONFIG, name="cfg.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _key(records):
    return {r["id"]: (r["status"], r["objective"]) for r in records}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted in-process run of CONFIG: its records."""
    tmp = tmp_path_factory.mktemp("ref")
    run = run_bench(load_config(_config(tmp)), tmp / "out", workers=1, progress=False)
    assert run.ran == 6 and run.skipped == 0
    return run.records


def test_config_errors_listed_at_once(tmp_path):
    raw = {"models": ["twoclass", "nosuchmodel"], "backends": ["highs", "nosolver"],
           "tasks": ["min-adv-card", "min-adv-l7", {"task": "certify", "norm": "linf"},
                     {"task": "attack", "method": "pgd", "norm": "card"}],
           "images": {"test": [5, 3]}, "time_limit": -1, "repetitions": 0, "colour": "red"}
    with pytest.raises(InvalidInputError) as err:
        parse_config(raw)
    msg = str(err.value)
    for part in ("nosuchmodel", "nosolver", "min-adv-l7", "exactly one budget", "works in",
                 "bad range [5, 3)", "time_limit", "repetitions", "'colour'"):
        assert part in msg, part
    assert "9 problem(s)" in msg

    with pytest.raises(InvalidInputError, match="images.folder"):
        parse_config({"models": ["twoclass"], "tasks": ["min-adv-card"], "images": {"folder": "nope"}},
                     base=tmp_path)
    bad = _config(tmp_path, "models = [\n", "bad.toml")
    with pytest.raises(InvalidInputError, match="cannot parse"):
        load_config(bad)


def test_cli_reports_config_error(tmp_path, capsys):
    from verify.cli import main

    path = _config(tmp_path, CONFIG.replace("min-adv-card", "min-adv-cards"))
    assert main(["bench", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 1
    assert "unknown task 'min-adv-cards'" in capsys.readouterr().err


def test_expand_ids_are_stable_and_unique(tmp_path):
    cfg = parse_config({"models": ["twoclass", "multiclass"], "backends": ["highs"],
                        "tasks": ["min-adv-card", {"task": "certify", "norm": "linf", "eps": 0.1},
                                  {"task": "attack", "method": "greedy", "norm": "card"}],
                        "images": {"test": [0, 3]}, "repetitions": 2})
    qs = expand(cfg, ["test:0", "test:1", "test:2"])
    ids = [q["id"] for q in qs]
    assert len(ids) == len(set(ids)) == 2 * 3 * 3 * 2
    assert "multiclass|certify[eps=0.1,norm=linf]|test:2|highs|r1" in ids
    assert "twoclass|attack[method=greedy,norm=card]|test:0|-|r0" in ids
    assert ids == [q["id"] for q in expand(cfg, ["test:0", "test:1", "test:2"])]


def test_resume_skips_done_and_ignores_partial_line(tmp_path, reference):
    cfg = load_config(_config(tmp_path))
    out = tmp_path / "out"
    out.mkdir()
    path = out / "results.jsonl"
    # a run that finished 3 queries, then died in the middle of writing the 4th line
    lines = [json.dumps(r) + "\n" for r in reference[:3]]
    path.write_text("".join(lines) + json.dumps(reference[3])[:40])
    run = run_bench(cfg, out, workers=1, progress=False)
    assert (run.skipped, run.ran) == (3, 3)
    records = read_results(path)
    assert len(records) == 6 and len({r["id"] for r in records}) == 6
    assert _key(records) == _key(reference)
    again = run_bench(cfg, out, workers=1, progress=False)
    assert (again.skipped, again.ran) == (6, 0)
    assert len(read_results(path)) == 6


def test_sigkill_then_restart_loses_and_duplicates_nothing(tmp_path, reference):
    cfg = _config(tmp_path)
    out = tmp_path / "killed"
    path = out / "results.jsonl"
    cmd = [sys.executable, "-m", "verify.cli", "bench", str(cfg), "--out", str(out), "--quiet"]
    # the queries take real solver time (see CONFIG): the run is still going after two lines
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    try:
        while time.time() < deadline and proc.poll() is None:
            if path.is_file() and path.read_bytes().count(b"\n") >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    first = read_results(path)
    assert 2 <= len(first) < 6
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    records = read_results(path)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == 6, "duplicated or lost queries"
    assert _key(records) == _key(reference)
    assert "twoclass" in done.stdout and "min-adv-card" in done.stdout   # summary table


def test_dask_local_cluster_equals_local_workers(tmp_path, reference):
    from dask import distributed   # a dependency (setup.cfg): a missing dask must fail, not skip
    cfg = load_config(_config(tmp_path))
    local = run_bench(cfg, tmp_path / "local", workers=2, progress=False)
    assert local.ran == 6
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster:
        remote = run_bench(cfg, tmp_path / "dask", scheduler=cluster.scheduler_address, progress=False)
    assert remote.ran == 6
    assert _key(remote.records) == _key(local.records) == _key(reference)
    assert len(read_results(tmp_path / "dask" / "results.jsonl")) == 6


def test_report_writes_markdown_and_plots(tmp_path, reference):
    from verify.cli import main

    records = list(reference)
    # an attack on the same images, so the attack/exact ratio plot is drawn too
    for r in reference:
        records.append(dict(r, id=r["id"].replace("min-adv-card", "attack[method=greedy,norm=card]"),
                            task="attack", task_key="attack[method=greedy,norm=card]", backend="-",
                            params={"method": "greedy", "norm": "card"}, status="success",
                            objective=(r["objective"] or 1) * 1.5, bound=None))
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main(["report", str(path), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| twoclass | min-adv-card | highs | 6 |" in md
    assert "Attack / exact ratios" in md and "greedy/card" in md
    for png in ("cactus.png", "distances.png", "ratios.png"):
        assert (tmp_path / "rep" / png).stat().st_size > 1000
    assert main(["report", str(tmp_path / "missing")]) == 1


def test_second_run_on_the_same_folder_is_refused(tmp_path):
    import fcntl

    cfg = load_config(_config(tmp_path))
    out = tmp_path / "busy"
    out.mkdir()
    with open(out / ".lock", "w") as held:       # as a running `verify bench` holds it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(InvalidInputError, match="another verify bench is running"):
            run_bench(cfg, out, workers=1, progress=False)
    assert not (out / "results.jsonl").exists()
    assert run_bench(cfg, out, workers=1, progress=False).ran == 6   # free again
