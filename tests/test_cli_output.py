"""The command line's one output writer (verify.cli.output.Output): what reaches stdout, what
lands in the --out folder, and that a bad folder is refused before any work. No model or
solver is involved, so these run in well under a second."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from verify.cli.output import Output
from verify.errors import InvalidInputError

PAYLOAD = {"status": "optimal", "objective": 2.0, "pixels": [3, 5]}


def args(**flags) -> argparse.Namespace:
    return argparse.Namespace(**{"json": False, "out": None, **flags})


def test_text_only_without_flags(capsys):
    Output(args()).write(PAYLOAD, "a result line", {"figure.png": b"x"})
    assert capsys.readouterr().out == "a result line\n"


def test_json_is_one_document_and_equals_result_json(capsys, tmp_path):
    out = tmp_path / "run"
    made = []

    def files():
        made.append(True)
        return {"note.txt": "hello"}

    Output(args(json=True, out=str(out))).write(PAYLOAD, "ignored line", files,
                                                 wrote="result.json, note.txt")
    captured = capsys.readouterr()
    assert json.loads(captured.out) == PAYLOAD
    assert (out / "result.json").read_text() + "\n" == captured.out
    assert (out / "note.txt").read_text() == "hello" and made == [True]
    assert f"wrote {out}/result.json, note.txt" in captured.err


def test_out_saves_instead_of_printing_unless_always_text(capsys, tmp_path):
    Output(args(out=str(tmp_path / "a"))).write(PAYLOAD, "line a")
    assert capsys.readouterr().out == ""
    Output(args(out=str(tmp_path / "b"))).write(PAYLOAD, "line b", always_text=True)
    assert capsys.readouterr().out == "line b\n"
    assert json.loads((tmp_path / "b" / "result.json").read_text()) == PAYLOAD


def test_files_are_not_made_without_out(capsys):
    def files():
        raise AssertionError("files built although nothing is saved")

    Output(args(json=True)).write(PAYLOAD, "line", files)
    assert json.loads(capsys.readouterr().out) == PAYLOAD


def test_bad_out_folder_is_refused_when_the_writer_is_made(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(InvalidInputError, match="a-file"):
        Output(args(out=str(blocker)))


def test_folder_false_ignores_out_and_emit_none_prints_nothing(capsys, tmp_path):
    target = tmp_path / "results.csv"           # vnncomp's --out is a CSV, not a folder
    Output(args(out=str(target)), folder=False).emit(PAYLOAD, None)
    assert capsys.readouterr().out == "" and not target.exists()


def test_lower_bounds_are_printed_rounded_down():
    """The text of a proven lower bound never claims more than the number proven."""
    from verify.cli.output import lower_bound_text
    rng = np.random.default_rng(0)
    for b in np.concatenate([rng.random(500) * 10.0 ** rng.integers(-6, 4, 500),
                             [0.03358619409045355, 0.1, 1.0, 7.0, 255.0]]):
        text = lower_bound_text(float(b))
        assert float(text) <= b and float(text) >= b * (1 - 1e-5), (b, text)
    assert lower_bound_text(None) == "none" and lower_bound_text(0.0) == "0"
