"""Details of the answers a user reads (issue 16, finding 8): JSON booleans, proven bounds of
distances, the region a result.json reports, class names as ``--target``, the explanation
and certify figures, and explanation witnesses."""
from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib
import numpy as np

from verify.cli import main
from verify.data import read_image
from verify.results import AdversarialResult, _num

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- JSON booleans and bounds

def test_json_keeps_booleans_and_ints():
    assert _num(True) is True and _num(np.bool_(False)) is False
    assert _num(np.int64(7)) == 7 and type(_num(np.int64(7))) is int
    r = AdversarialResult(task="min-adv-card", model="m", norm="card", backend="highs",
                          status="optimal", objective=2.0, bound=2.0, original_label=7,
                          adversarial_label=3, target=None, time_s=0.1, image=np.zeros(4),
                          adversarial=None, margin=1e-3,
                          stats={"rounded_8bit_adversarial": True, "pixel_levels": None})
    d = json.loads(json.dumps(r.to_dict()))
    assert d["rounded_8bit_adversarial"] is True and d["minimal"] is True


def test_proven_bound_of_a_distance_is_never_negative(bundled):
    """A solver's lower bound slightly below 0 (float round-off of a sum of squares) proves
    only 0; the result reports 0, not −3e-05."""
    from verify.tasks.adversarial import _result

    model = bundled["twoclass"]
    center = read_image(EXAMPLES / "digit-1.png").ravel()
    label = int(model.label(center))
    r = _result(model, center, "l2", label, None, "scip", "time_limit", None, -3e-05, 0.1,
                1e-3, {}, None)
    assert r.bound == 0.0 and r.to_dict()["bound"] == 0.0


def test_card_result_reports_the_searched_region_not_the_last_descent_round(bundled):
    from verify.tasks.adversarial import min_adversarial

    model = bundled["multiclass"]
    r = min_adversarial(model, read_image(EXAMPLES / "digit-7.png"), norm="card", target=9,
                        time_limit=60)
    assert r.objective is not None and r.objective > 1
    assert r.stats["region"] == "box (784 free pixels)"
    rounds = r.stats["descent"]
    assert rounds and all(set(rnd) >= {"at_most"} for rnd in rounds)
    # the last round asked for fewer changes than the answer has
    assert rounds[-1]["at_most"] < r.objective


# ---------------------------------------------------------------- --target is a class name

def test_target_is_a_class_name_as_printed(capsys):
    """twoclass has the classes [1, 3] (indices 0, 1): --target names the class, as every
    output does; an impossible target is refused with the valid choices."""
    one = str(EXAMPLES / "digit-1.png")       # twoclass reads it as class 1 (index 0)
    code, out, err = run(capsys, "certify", one, "--model", "twoclass", "--pixels", "30",
                         "--target", "3", "--json")
    assert code == 0, err
    assert json.loads(out)["status"] in ("verified", "counterexample", "unknown")
    code, _, err = run(capsys, "certify", one, "--model", "twoclass", "--pixels", "3",
                       "--target", "1")
    assert code == 1 and "already predicts" in err and "choose another: 3" in err, err
    code, _, err = run(capsys, "min-adv-card", one, "--model", "twoclass", "--target", "7")
    assert code == 1 and "not a class of twoclass; its classes are 1, 3" in err, err
    assert "Traceback" not in err


# ---------------------------------------------------------------- figures

def _explanation(pixels, minimal=True):
    from verify.tasks.explain import ExplanationResult

    image = read_image(EXAMPLES / "digit-3.png")
    return ExplanationResult(task="explain", model="twoclass", status="minimal" if minimal else "time_limit",
                             pixels=sorted(pixels), original_label=1, eps=None, method="batch",
                             order="influence", backend="highs", time_s=1.0, calls=0, checks={},
                             image=image, classes=[1, 3])


def _coloured_fraction(path: Path) -> float:
    """Share of the figure's pixels in a saturated colour (not grey, black or white)."""
    img = matplotlib.image.imread(path)[..., :3]
    return float(np.mean(img.max(axis=-1) - img.min(axis=-1) > 0.3))


def test_explanation_figure_colours_the_explanation(tmp_path):
    """The colour marks the kept pixels: a larger explanation means more colour (the old
    figure coloured the freed pixels, so the colour shrank as the explanation grew)."""
    from verify.figures import explanation_figure

    small = explanation_figure(_explanation(range(300, 310)), tmp_path / "small.png")
    large = explanation_figure(_explanation(range(100, 500)), tmp_path / "large.png")
    assert _coloured_fraction(large) > _coloured_fraction(small) + 0.02


def test_explanation_figure_has_a_legend_and_title(tmp_path):
    from verify.figures import explanation_figure

    with matplotlib.rc_context({"svg.fonttype": "none"}):
        path = explanation_figure(_explanation(range(300, 340), minimal=False), tmp_path / "f.svg")
    svg = path.read_text()
    for words in ("kept, ink", "kept, background", "freed", "force the label", "40 of 784 pixels",
                  "not proven minimal"):
        assert words in svg, words


def test_certify_writes_the_figure_it_promises(capsys, tmp_path):
    digit = str(EXAMPLES / "digit-7.png")
    code, _, err = run(capsys, "certify", digit, "--pixels", "20", "--out", str(tmp_path / "cex"))
    assert code == 0, err
    result = json.loads((tmp_path / "cex" / "result.json").read_text())
    assert result["status"] == "counterexample"
    figure = tmp_path / "cex" / "figure.png"
    assert figure.is_file() and matplotlib.image.imread(figure).shape[1] >= 800   # three panels
    code, _, err = run(capsys, "certify", digit, "--eps", "0.005", "--out", str(tmp_path / "ok"))
    assert code == 0 and (tmp_path / "ok" / "figure.png").is_file(), err


# ---------------------------------------------------------------- witnesses

def test_readme_witness_line_works_without_a_proof(bundled):
    """The README's witness example must not raise on an explanation that is not (yet)
    proven minimal, where some kept pixels have no witness."""
    from verify.tasks.explain import explain

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    python = "".join(re.findall(r"^```python\n(.*?)^```", readme, re.MULTILINE | re.DOTALL))
    line = next(l for l in python.splitlines() if l.startswith("expl.witnesses"))
    expr = line.split("#", 1)[0].strip()
    expl = explain(bundled["multiclass"], read_image(EXAMPLES / "digit-7.png"), time_limit=0.05)
    assert expl.status != "minimal" and expl.pixels[0] not in expl.witnesses   # the case at hand
    value = eval(expr, {"expl": expl})
    assert value is None
