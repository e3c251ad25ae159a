"""Output paths (verify/outdir.py): checked before any work, one run at a time, never a mix of
two runs' files.

The bad-path matrix runs the real console script: a path that cannot be written must end in
exit code 1 and one `verify: error:` line that names it, before the command loads a model or
starts a solver (nothing else on stderr: no solver banner, no progress, no result line). Those
runs stop before the heavy imports, so each costs about a second. As root, chmod cannot make a
folder read-only, so the unwritable folder is /proc/sys (exists, refuses new files) and the
uncreatable one /proc/verify-out.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from verify.cli import main
from verify.errors import InvalidInputError
from verify.outdir import (LOCK_NAME, MANIFEST_NAME, AppendFile, FolderLock, OutputDir,
                           OutputFile, check_output_dir, check_output_file, prepare_output_dir)

ROOT = Path(__file__).resolve().parents[1]
IMAGE = str(ROOT / "examples" / "images" / "digit-7.png")
VERIFY = str(Path(sys.executable).parent / "verify")
UNWRITABLE_DIR = "/proc/sys"            # an existing folder nobody can create files in
UNCREATABLE_DIR = "/proc/verify-out"    # a folder nobody can create


def _console(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([VERIFY, *argv], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture
def places(tmp_path):
    """Bad output places: an existing file, and a path under it."""
    (tmp_path / "afile").write_text("not a folder\n")
    return tmp_path


def _folder_commands(tmp_path: Path) -> dict[str, list[str]]:
    """Every command with --out DIR, ending just before the folder argument."""
    return {
        "min-adv-card": ["min-adv-card", IMAGE, "--model", "twoclass", "--out"],
        "min-adv-l1": ["min-adv-l1", IMAGE, "--model", "twoclass", "--out"],
        "certify": ["certify", IMAGE, "--model", "twoclass", "--pixels", "1", "--out"],
        # the property file need not exist: the output folder is checked before it is read
        "certify --vnnlib": ["certify", "--model", "twoclass", "--vnnlib",
                             str(tmp_path / "p.vnnlib"), "--out"],
        "explain": ["explain", IMAGE, "--model", "twoclass", "--out"],
        "attack": ["attack", IMAGE, "--model", "twoclass", "--method", "fgsm", "--out"],
        "compare": ["compare", IMAGE, "--model", "twoclass", "--time-limit", "5", "--out"],
    }


def _file_commands(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    """Every command with an output FILE: (arguments with OUT where the file goes, its name)."""
    bench_dir = tmp_path / "vnncomp"
    bench_dir.mkdir(exist_ok=True)
    (bench_dir / "instances.csv").write_text("net.onnx,prop.vnnlib,10\n")
    config = tmp_path / "bench.toml"
    config.write_text('models = ["twoclass"]\ntasks = ["min-adv-card"]\nimages = {test = [0, 1]}\n')
    return {
        "encode": (["encode", "twoclass", IMAGE, "--task", "certify", "--out", "OUT"], "q.mps"),
        "export": (["export", "twoclass", "OUT"], "m.onnx"),
        "vnncomp": (["vnncomp", str(bench_dir), "--out", "OUT"], "results.csv"),
        "bench": (["bench", str(config), "--out", "OUT"], "bench-out"),
    }


def _assert_refused(proc: subprocess.CompletedProcess, path: str, what: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, f"{what}: exit {proc.returncode}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, f"{what}:\n{proc.stderr}"
    # one line and nothing before it: no banner, no progress, no result: the work never started
    assert len(lines) == 1 and lines[0].startswith("verify: error: "), f"{what}:\n{proc.stderr}"
    assert path in lines[0], f"{what}: the message does not name {path}: {lines[0]}"
    assert proc.stdout == "", f"{what}: stdout {proc.stdout!r}"


def test_every_folder_command_refuses_a_bad_out_before_the_work(places):
    for name, argv in _folder_commands(places).items():
        for bad in (UNWRITABLE_DIR, UNCREATABLE_DIR, "afile", "afile/sub/dir"):
            proc = _console(*argv, bad, cwd=places)
            _assert_refused(proc, bad, f"{name} --out {bad}")
    assert (places / "afile").read_text() == "not a folder\n"
    assert not Path(UNCREATABLE_DIR).exists()


def test_every_file_command_refuses_a_bad_output_before_the_work(places):
    for name, (argv, file_name) in _file_commands(places).items():
        folder = places / f"{name}-is-a-folder" / file_name
        folder.mkdir(parents=True)
        # bench's output is a folder: an existing file is bad for it, a folder is not
        bad_paths = [f"{UNWRITABLE_DIR}/{file_name}", f"{UNCREATABLE_DIR}/{file_name}",
                     f"afile/{file_name}",
                     "afile" if name == "bench" else str(folder)]
        for bad in bad_paths:
            proc = _console(*[bad if a == "OUT" else a for a in argv], cwd=places)
            _assert_refused(proc, bad, f"{name} -> {bad}")
    assert (places / "afile").read_text() == "not a folder\n"


def test_a_folder_held_by_another_run_is_refused(tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "result.json").write_text("{}")
    with FolderLock(out):                # as a running verify command holds it
        proc = _console("certify", IMAGE, "--model", "twoclass", "--pixels", "1", "--out", str(out),
                        cwd=tmp_path)
        _assert_refused(proc, str(out), "certify on a locked folder")
        assert f"process {os.getpid()}" in proc.stderr and "another verify run" in proc.stderr
        with pytest.raises(InvalidInputError, match="in use by another verify run"):
            OutputDir(out)
    assert (out / "result.json").read_text() == "{}"      # untouched
    with OutputDir(out) as again:                          # free again
        assert again.path == out


def test_certify_after_min_adv_leaves_no_stale_adversarial(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["min-adv-card", IMAGE, "--model", "twoclass", "--out", str(out)]) == 0
    assert (out / "adversarial.npy").is_file() and (out / "adversarial.png").is_file()
    # and files of a run written before manifests existed, beside a file of the user's
    (out / "adversarial-target3.npy").write_bytes(b"old")
    (out / "figure-target3.png").write_bytes(b"old")
    (out / "notes.txt").write_text("mine")
    assert main(["certify", IMAGE, "--model", "twoclass", "--pixels", "1", "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "verified"
    names = {p.name for p in out.iterdir()}
    assert not any(n.startswith("adversarial") for n in names), names
    assert "figure-target3.png" not in names and "notes.txt" in names
    assert json.loads((out / MANIFEST_NAME).read_text())["files"] == sorted(
        n for n in names if not n.startswith(".") and n != "notes.txt")
    assert not any(n.startswith(".verify-") and n != MANIFEST_NAME for n in names)
    capsys.readouterr()


# ------------------------------------------------------------------------------------ the module

def test_checks_name_the_path_and_the_reason(tmp_path):
    (tmp_path / "f").write_text("x")
    cases = [(check_output_dir, tmp_path / "f", "is a file"),
             (check_output_dir, tmp_path / "f" / "a" / "b", f"because {tmp_path / 'f'} is a file"),
             (check_output_dir, Path(UNWRITABLE_DIR), "not writable"),
             (check_output_dir, Path(UNCREATABLE_DIR), "cannot create"),
             (check_output_file, tmp_path, "is a folder"),
             (check_output_file, tmp_path / "f" / "x.mps", f"because {tmp_path / 'f'} is a file"),
             (check_output_file, Path(UNWRITABLE_DIR) / "x.mps", "not writable")]
    for check, path, reason in cases:
        with pytest.raises(InvalidInputError) as e:
            check(path)
        assert str(path) in str(e.value) and reason in str(e.value), str(e.value)
    assert check_output_dir(tmp_path / "new" / "deep").is_dir()
    assert check_output_file(tmp_path / "other" / "x.mps") == tmp_path / "other" / "x.mps"
    assert not (tmp_path / "other" / "x.mps").exists()
    assert [p.name for p in (tmp_path / "new" / "deep").iterdir()] == []   # the probe is gone


def test_commit_replaces_the_previous_set(tmp_path):
    out = tmp_path / "d"
    first = prepare_output_dir(out)
    first.commit({"result.json": "1", "custom-name.bin": b"\x00", "adversarial.npy": np.ones(3),
                  "adversarial.png": np.zeros((28, 28)), "figure.png": lambda p: p.write_bytes(b"f")})
    assert np.load(out / "adversarial.npy").tolist() == [1.0, 1.0, 1.0]
    (out / "keep.txt").write_text("user file")
    second = prepare_output_dir(out)
    second.commit({"result.json": "2"})
    assert sorted(p.name for p in out.iterdir()) == sorted([LOCK_NAME, MANIFEST_NAME, "keep.txt",
                                                            "result.json"])
    assert (out / "result.json").read_text() == "2"
    assert prepare_output_dir(None) is None


def test_a_failed_write_keeps_the_previous_set_and_frees_the_folder(tmp_path):
    out = tmp_path / "d"
    prepare_output_dir(out).commit({"result.json": "old", "figure.png": b"old"})

    def broken(path):
        raise InvalidInputError("figure failed")

    with pytest.raises(InvalidInputError, match="figure failed"):
        prepare_output_dir(out).commit({"result.json": "new", "figure.png": broken})
    assert (out / "result.json").read_text() == "old" and (out / "figure.png").read_bytes() == b"old"
    assert not any(p.name.startswith(".verify-staging") for p in out.iterdir())
    prepare_output_dir(out).commit({"result.json": "next"})   # not left locked


def test_a_folder_the_run_created_and_never_wrote_goes_again(tmp_path):
    with OutputDir(tmp_path / "fresh") as out:
        assert out.path.is_dir()
    assert not (tmp_path / "fresh").exists()
    (tmp_path / "kept").mkdir()
    with OutputDir(tmp_path / "kept"):
        pass
    assert (tmp_path / "kept").is_dir()                       # it was there before


def test_single_files_are_replaced_atomically(tmp_path):
    target = tmp_path / "sub" / "q.lp"
    OutputFile(target).commit("first")
    OutputFile(target).commit(lambda p: p.write_text("second"))
    assert target.read_text() == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["q.lp"]   # no temporary left


def test_an_append_file_is_locked_and_an_unused_one_removed(tmp_path):
    csv = tmp_path / "results.csv"
    first = AppendFile(csv, folders=(tmp_path / "results-counterexamples",))
    with pytest.raises(InvalidInputError, match="in use by another verify run"):
        AppendFile(csv)
    first.release()
    assert not csv.exists()                  # created by the run, never written: removed
    (tmp_path / "cex").write_text("x")
    with pytest.raises(InvalidInputError, match="must be a folder"):
        AppendFile(csv, folders=(tmp_path / "cex",))
