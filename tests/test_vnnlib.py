"""VNN-LIB parsing into the normal form, counterexample files, robustness properties."""
from __future__ import annotations

import gzip
import textwrap

import numpy as np
import pytest

from verify.errors import InvalidInputError
from verify.vnnlib import (PropertyCase, VnnProperty, format_counterexample, parse_vnnlib,
                           parse_vnnlib_text, read_counterexample, write_counterexample,
                           write_robustness_property)


def _decls(n_in: int, n_out: int) -> str:
    return "".join(f"(declare-const X_{i} Real)\n" for i in range(n_in)) + "".join(
        f"(declare-const Y_{j} Real)\n" for j in range(n_out))


def _line_of(text: str, marker: str = "; <-") -> int:
    """1-based number of the (only) line containing ``marker``."""
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if marker in line]
    assert len(lines) == 1, lines
    return lines[0]


def _assert_disjunct(disjunct, A, b):
    got_A, got_b = disjunct
    np.testing.assert_array_equal(got_A, np.array(A, dtype=np.float64).reshape(got_A.shape))
    np.testing.assert_array_equal(got_b, np.array(b, dtype=np.float64))
    assert got_A.shape == (len(b), got_A.shape[1]) and got_A.dtype == np.float64


# --- robustness properties ----------------------------------------------------------------


@pytest.mark.parametrize("label", [0, 3, 9])
def test_robustness_property_round_trip(tmp_path, label):
    rng = np.random.default_rng(label)
    image = rng.random((28, 28))
    image[0, :5] = [0.0, 1.0, 0.005, 0.999, 0.5]          # clipped at 0 and 1
    eps = 0.02
    path = tmp_path / "prop.vnnlib"
    write_robustness_property(path, image, label, eps, 10)
    prop = parse_vnnlib(path, num_inputs=784, num_outputs=10)
    assert isinstance(prop, VnnProperty) and prop.source == str(path)
    assert (prop.num_inputs, prop.num_outputs) == (784, 10)
    assert len(prop.cases) == 1
    case = prop.cases[0]
    assert isinstance(case, PropertyCase)
    x = image.ravel()
    np.testing.assert_array_equal(case.lower, np.maximum(0.0, x - eps))
    np.testing.assert_array_equal(case.upper, np.minimum(1.0, x + eps))
    assert case.lower.dtype == np.float64 and case.lower.shape == (784,)
    assert case.lower[0] == 0.0 and case.upper[1] == 1.0
    others = [j for j in range(10) if j != label]
    assert len(case.disjuncts) == 9
    for j, disjunct in zip(others, case.disjuncts):
        row = np.zeros(10)
        row[label], row[j] = 1.0, -1.0                     # Y_j >= Y_label  <=>  Y_label - Y_j <= 0
        _assert_disjunct(disjunct, [row], [0.0])
    assert prop.robustness_label() == label


def test_robustness_property_bounds_arrays_and_gz(tmp_path):
    image = np.array([[0.2, -0.7], [3.0, 0.0]])
    path = tmp_path / "prop.vnnlib.gz"
    upper = np.array([[1, 1], [4, 1]])
    write_robustness_property(path, image, 1, 0.5, 3, lower=-1.0, upper=upper)
    with gzip.open(path, "rt") as f:
        assert "(declare-const X_3 Real)" in f.read()
    prop = parse_vnnlib(path)
    np.testing.assert_array_equal(prop.cases[0].lower, np.maximum(-1.0, image.ravel() - 0.5))
    np.testing.assert_array_equal(prop.cases[0].upper, np.minimum(upper, image + 0.5).ravel())
    np.testing.assert_allclose(prop.cases[0].lower, [-0.3, -1.0, 2.5, -0.5])
    np.testing.assert_allclose(prop.cases[0].upper, [0.7, -0.2, 3.5, 0.5])
    assert prop.robustness_label() == 1 and len(prop.cases[0].disjuncts) == 2


def test_robustness_property_rejects_bad_arguments(tmp_path):
    path = tmp_path / "p.vnnlib"
    with pytest.raises(InvalidInputError, match="label"):
        write_robustness_property(path, np.zeros(4), 10, 0.1, 10)
    with pytest.raises(InvalidInputError, match="eps"):
        write_robustness_property(path, np.zeros(4), 1, -0.1, 10)
    with pytest.raises(InvalidInputError, match="empty"):
        write_robustness_property(path, np.full(4, 2.0), 1, 0.1, 10)


def test_robustness_parse_of_a_full_mnist_property(tmp_path):
    """A 784-input property (the size every MNIST benchmark writes) reads back exactly."""
    path = tmp_path / "mnist.vnnlib"
    x = np.random.default_rng(0).random(784)
    write_robustness_property(path, x, 7, 0.03, 10)
    prop = parse_vnnlib(path, 784, 10)
    assert prop.robustness_label() == 7
    assert len(prop.cases) == 1
    lower, upper = prop.cases[0].lower, prop.cases[0].upper
    np.testing.assert_allclose(lower, np.clip(x - 0.03, 0, 1), atol=1e-9)
    np.testing.assert_allclose(upper, np.clip(x + 0.03, 0, 1), atol=1e-9)


def test_targeted_robustness_label():
    text = _decls(1, 3) + "(assert (<= 0 X_0 1))\n(assert (<= Y_1 Y_2))\n"
    prop = parse_vnnlib_text(text)
    assert prop.robustness_label() == 1                     # one target: Y_2 >= Y_1
    text = _decls(1, 3) + "(assert (<= 0 X_0 1))\n(assert (<= Y_1 (* 2 Y_2)))\n"
    assert parse_vnnlib_text(text).robustness_label() is None


# --- general properties ---------------------------------------------------------------------

ACAS_STYLE = """\
; A hand-written property in the style of the ACAS Xu files: two input boxes,
; each with its own output constraint (comments may contain ( and ) ).
(declare-const X_0 Real)
(declare-const X_1 Real)

(declare-const Y_0 Real)   ; outputs
(declare-const Y_1 Real)
(declare-const Y_2 Real)

(assert (or
    (and (>= X_0 -0.5) (<= X_0 0.5) (>= X_1 0) (<= X_1 1.5e-1)
         (<= (+ (* 2 Y_0) (- Y_1)) 3)
         (<= (+ Y_0 0.5) (- 2 Y_1)))
    (and (>= X_0 0.6) (<= X_0 0.7) (>= X_1 -1) (<= (* 2 X_1) 1)
         (or (>= Y_2 (+ Y_0 1))
             (and (<= 1 (- Y_1 Y_0)) (= Y_2 0.25))))
    (and (<= -0.5 X_0 0.5) (>= 0.15 X_1 0) (> Y_1 Y_2))
    (and (>= X_0 1) (<= X_0 0) (<= Y_0 0))
))
(assert (<= (* -1 X_0) 100))   ; redundant: X_0 >= -100
"""


def test_general_disjunctive_property():
    prop = parse_vnnlib_text(ACAS_STYLE, num_inputs=2, num_outputs=3)
    assert prop.source == "<string>" and (prop.num_inputs, prop.num_outputs) == (2, 3)
    assert len(prop.cases) == 2                             # terms 1 and 3 share a box; 4 is empty
    first, second = prop.cases
    np.testing.assert_array_equal(first.lower, [-0.5, 0.0])
    np.testing.assert_array_equal(first.upper, [0.5, 0.15])
    assert len(first.disjuncts) == 2
    _assert_disjunct(first.disjuncts[0], [[2, -1, 0], [1, 1, 0]], [3, 1.5])
    _assert_disjunct(first.disjuncts[1], [[0, -1, 1]], [0])            # > read as >=
    np.testing.assert_array_equal(second.lower, [0.6, -1.0])
    np.testing.assert_array_equal(second.upper, [0.7, 0.5])
    assert len(second.disjuncts) == 2
    _assert_disjunct(second.disjuncts[0], [[1, 0, -1]], [-1])
    _assert_disjunct(second.disjuncts[1], [[1, -1, 0], [0, 0, 1], [0, 0, -1]], [-1, 0.25, -0.25])
    assert prop.robustness_label() is None


def test_gz_file_and_plain_file_agree(tmp_path):
    plain = tmp_path / "prop_1.vnnlib"
    plain.write_text(ACAS_STYLE)
    packed = tmp_path / "prop_1.vnnlib.gz"
    with gzip.open(packed, "wt") as f:
        f.write(ACAS_STYLE)
    a, b = parse_vnnlib(plain), parse_vnnlib(str(packed))
    assert b.source == str(packed)
    assert len(a.cases) == len(b.cases) == 2
    for ca, cb in zip(a.cases, b.cases):
        np.testing.assert_array_equal(ca.lower, cb.lower)
        np.testing.assert_array_equal(ca.upper, cb.upper)
        for (A1, b1), (A2, b2) in zip(ca.disjuncts, cb.disjuncts, strict=True):
            np.testing.assert_array_equal(A1, A2)
            np.testing.assert_array_equal(b1, b2)


def test_numbers_comments_and_expressions():
    text = _decls(5, 2) + textwrap.dedent("""\
        ; leading comment (with parentheses
        (assert (>= X_0 -2.5e-3))(assert (<= X_0 1.5E+2)) ; two on a line
        (assert (<= .5 X_1 7.))     ; .5 and 7.
        (assert (<= +3 X_2 4e0))
        (assert (= X_3 (/ 1 4)))    ; equality on an input: a point
        (assert (>= (* -2 X_4) -1))   ; -2 X_4 >= -1  <=>  X_4 <= 0.5
        (assert (>= (- X_4) 1))       ; X_4 <= -1 ... together with:
        (assert (>= X_4 -3))
        (assert (<= (- Y_0 Y_1 (- 1)) (* 0.5 (+ Y_1 Y_1) 2)))   ; Y_0 - 3 Y_1 <= -1
        """)
    prop = parse_vnnlib_text(text)
    (case,) = prop.cases
    np.testing.assert_array_equal(case.lower, [-2.5e-3, 0.5, 3.0, 0.25, -3.0])
    np.testing.assert_array_equal(case.upper, [150.0, 7.0, 4.0, 0.25, -1.0])
    (disjunct,) = case.disjuncts
    _assert_disjunct(disjunct, [[1, -3]], [-1])


def test_term_without_output_atoms_and_strict_comparisons():
    text = _decls(1, 2) + "(assert (< 0 X_0))\n(assert (< X_0 1))\n"
    (case,) = parse_vnnlib_text(text).cases
    np.testing.assert_array_equal(case.lower, [0.0])
    np.testing.assert_array_equal(case.upper, [1.0])
    (A, b), = case.disjuncts
    assert A.shape == (0, 2) and b.shape == (0,)


def test_constant_atoms():
    base = _decls(1, 1) + "(assert (<= 0 X_0 1))\n"
    prop = parse_vnnlib_text(base + "(assert (or (<= 2 1) (and (<= 1 2) (<= Y_0 0))))\n")
    (case,) = prop.cases
    _assert_disjunct(case.disjuncts[0], [[1]], [0])
    assert len(case.disjuncts) == 1
    cancelled = parse_vnnlib_text(base + "(assert (<= (- Y_0 Y_0) -1))\n")
    assert cancelled.trivially_unsat


def test_trivially_unsat_has_zero_cases():
    # (an empty input box in every term is an error instead: tests/test_inputs.py)
    text = _decls(1, 1) + "(assert (or (and (>= X_0 0) (<= X_0 1) (<= 1 0) (<= Y_0 0)) false))\n"
    prop = parse_vnnlib_text(text)
    assert prop.cases == [] and prop.trivially_unsat and prop.robustness_label() is None
    assert parse_vnnlib_text(_decls(1, 1) + "(assert false)\n").cases == []


def test_deep_nesting_does_not_hit_the_recursion_limit():
    depth = 5000
    formula = "(and (<= Y_0 1) " * depth + "(<= 0 X_0 1)" + ")" * depth
    expr = "(+ 1 " * depth + "Y_0" + ")" * depth
    text = _decls(1, 1) + f"(assert {formula})\n(assert (<= {expr} 0))\n"
    (case,) = parse_vnnlib_text(text).cases
    (A, b), = case.disjuncts
    assert A.shape == (depth + 1, 1) and b[-1] == -depth


def test_dnf_blow_up_is_refused():
    ors = [f"(assert (or (<= Y_0 {i}) (>= Y_1 {i})))\n" for i in range(17)]
    text = _decls(1, 2) + "(assert (<= 0 X_0 1))\n" + "".join(ors)      # 2**17 terms
    with pytest.raises(InvalidInputError, match="131072 terms"):
        parse_vnnlib_text(text)
    small = _decls(1, 2) + "(assert (<= 0 X_0 1))\n" + "".join(ors[:2])
    assert len(parse_vnnlib_text(small).cases[0].disjuncts) == 4
    nested = _decls(1, 2) + "(assert (<= 0 X_0 1))\n(assert (and\n" + "".join(
        f"  (or (<= Y_0 {i}) (<= Y_1 {i}) (<= Y_0 -{i}))\n" for i in range(4)) + "))\n"
    with pytest.raises(InvalidInputError, match=r"line 5\b.*81 terms"):
        parse_vnnlib_text(nested, max_dnf_terms=80)
    assert len(parse_vnnlib_text(nested, max_dnf_terms=81).cases[0].disjuncts) == 81


# --- errors -----------------------------------------------------------------------------------

_HEADER = _decls(2, 2) + "(assert (<= 0 X_0 1))\n"

MALFORMED = {
    "extra closing paren": _HEADER + "(assert (<= X_1 1)))  ; <-\n(assert (>= X_1 0))\n",
    "unclosed paren": _HEADER + "(assert (<= X_1 1)  ; <-\n(assert (>= X_1 0))\n",
    "unknown command": _HEADER + "(assert (<= 0 X_1 1))\n(check-model)  ; <-\n",
    "unknown operator": _HEADER + "(assert (<= 0 X_1 1))\n(assert (not (<= Y_0 1)))  ; <-\n",
    "unknown expression operator": _HEADER + "(assert (<= 0 X_1 1))\n"
                                              "(assert\n  (<= (max Y_0 Y_1) 1))  ; <-\n",
    "arithmetic as formula": _HEADER + "(assert (<= 0 X_1 1))\n(assert (+ Y_0 1))  ; <-\n",
    "bad number": _HEADER + "(assert (<= 0 X_1 1))\n(assert (<= Y_0 0.5.3))  ; <-\n",
    "bad exponent": _HEADER + "(assert (<= 0 X_1 1))\n(assert (<= Y_0 1e))  ; <-\n",
    "double sign": _HEADER + "(assert (<= 0 X_1 1))\n(assert (<= Y_0 --1))  ; <-\n",
    "number out of range": _HEADER + "(assert (<= 0 X_1 1))\n(assert (<= Y_0 1e999))  ; <-\n",
    "undeclared variable": _HEADER + "(assert (<= 0 X_1 1))\n(assert (<= Y_2 1))  ; <-\n",
    "unknown symbol": _HEADER + "(assert (<= 0 X_1 1))\n(assert (<= Y_0 foo))  ; <-\n",
    "use before declaration": "(declare-const X_0 Real)\n(assert (<= 0 X_0 Y_0))  ; <-\n"
                              "(declare-const Y_0 Real)\n",
    "mixes inputs and outputs": _HEADER + "(assert (<= 0 X_1 1))\n(assert (<= X_0 Y_0))  ; <-\n",
    "two inputs": _HEADER + "(assert (<= 0 X_1 1))\n(assert (<= (+ X_0 X_1) 1))  ; <-\n",
    "missing upper bound": _decls(1, 0) + "(declare-const X_1 Real)  ; <-\n"
                           "(declare-const Y_0 Real)\n(assert (<= 0 X_0 1))\n(assert (>= X_1 0))\n",
    "non-linear product": _HEADER + "(assert (<= 0 X_1 1))\n(assert (<= (* Y_0 Y_1) 1))  ; <-\n",
    "non-linear division": _HEADER + "(assert (<= 0 X_1 1))\n(assert (<= (/ 1 Y_1) 1))  ; <-\n",
    "division by zero": _HEADER + "(assert (<= 0 X_1 1))\n(assert (<= (/ Y_1 0) 1))  ; <-\n",
    "one-argument comparison": _HEADER + "(assert (<= 0 X_1 1))\n(assert (<= Y_1))  ; <-\n",
    "duplicate declaration": _HEADER + "(declare-const Y_1 Real)  ; <-\n",
    "declaration gap": "(declare-const X_0 Real)\n(declare-const X_2 Real)  ; <-\n",
    "unsupported sort": "(declare-const X_0 Int)  ; <-\n",
    "unsupported name": "(declare-const X_0 Real)\n(declare-const in_1 Real)  ; <-\n",
    "top-level atom": _HEADER + "assert  ; <-\n",
    "empty command": _HEADER + "()  ; <-\n",
    "assert arity": _HEADER + "(assert (<= 0 X_1 1) (<= Y_0 1))  ; <-\n",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_text_reports_the_line(name):
    text = MALFORMED[name]
    line = _line_of(text)
    with pytest.raises(InvalidInputError) as info:
        parse_vnnlib_text(text)
    message = str(info.value)
    assert message.startswith("<string>, line ")
    assert f", line {line}, column " in message, message


def test_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.vnnlib"
    text = MALFORMED["unknown operator"]
    path.write_text(text)
    with pytest.raises(InvalidInputError, match=r"broken\.vnnlib, line 7, column 10: unknown "
                                                r"operator 'not'"):
        parse_vnnlib(path)
    assert _line_of(text) == 7


@pytest.mark.parametrize("fragment,name", [
    ("unbalanced ')'", "extra closing paren"), ("never closed", "unclosed paren"),
    ("unknown command 'check-model'", "unknown command"),
    ("invalid number '0.5.3'", "bad number"), ("undeclared variable 'Y_2'", "undeclared variable"),
    ("mixes inputs and outputs (X_0 and Y_0)", "mixes inputs and outputs"),
    ("several inputs (X_0, X_1)", "two inputs"), ("X_1 has no upper bound", "missing upper bound"),
    ("non-linear", "non-linear product"), ("declared twice", "duplicate declaration"),
    ("X_1 is not declared", "declaration gap"),
])
def test_error_messages_say_what_is_wrong(fragment, name):
    with pytest.raises(InvalidInputError) as info:
        parse_vnnlib_text(MALFORMED[name])
    assert fragment in str(info.value)


def test_input_index_out_of_range_and_count_mismatch():
    text = _decls(3, 2) + "(assert (<= 0 X_0 1))\n"
    with pytest.raises(InvalidInputError, match=r"line 3, column 16: 'X_2' is out of range: "
                                                r"the network has 2 inputs"):
        parse_vnnlib_text(text, num_inputs=2)
    with pytest.raises(InvalidInputError, match="declares 3 inputs but the network has 4"):
        parse_vnnlib_text(text, num_inputs=4)
    with pytest.raises(InvalidInputError, match="declares 2 outputs but the network has 10"):
        parse_vnnlib_text(text, num_outputs=10)
    with pytest.raises(InvalidInputError, match="'Y_1' is out of range"):
        parse_vnnlib_text(text, num_outputs=1)


def test_missing_bound_in_one_term_names_the_term():
    text = _decls(1, 1) + "(assert (or (and (<= 0 X_0 1) (<= Y_0 0)) (and (>= X_0 0) (<= Y_0 1))))\n"
    with pytest.raises(InvalidInputError, match=r"line 1, .*X_0 has no upper bound in DNF term 2 of 2"):
        parse_vnnlib_text(text)


def test_unreadable_files(tmp_path):
    with pytest.raises(InvalidInputError, match="not found"):
        parse_vnnlib(tmp_path / "missing.vnnlib")
    bad = tmp_path / "bad.vnnlib.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(InvalidInputError, match="gzip"):
        parse_vnnlib(bad)


# --- counterexamples --------------------------------------------------------------------------


def test_counterexample_format_and_round_trip(tmp_path):
    x = np.array([0.1, -2.5e-7, 1 / 3, 0.0])
    y = np.array([3.0, -1e300, 2 / 7])
    text = format_counterexample(x, y)
    assert not text.startswith("sat")
    lines = text.splitlines()
    assert lines[0] == "((X_0 0.1)" and lines[1] == " (X_1 -2.5e-07)"
    assert lines[4] == " (Y_0 3.0)" and lines[-1] == f" (Y_2 {2 / 7!r}))"
    x2, y2 = read_counterexample(text)
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)

    path = tmp_path / "result.txt"
    write_counterexample(path, x, y)
    content = path.read_text()
    assert content == "sat\n" + text
    for source in (path, str(path), content):
        x3, y3 = read_counterexample(source)
        np.testing.assert_array_equal(x3, x)
        np.testing.assert_array_equal(y3, y)


def test_counterexample_reader_is_lenient_about_layout_and_strict_about_content():
    x, y = read_counterexample("sat\n(\n(Y_0 2)\n(X_1 -1.5)\n(X_0 1e-3)\n)\n")
    np.testing.assert_array_equal(x, [1e-3, -1.5])
    np.testing.assert_array_equal(y, [2.0])
    with pytest.raises(InvalidInputError, match="'unsat', not a counterexample"):
        read_counterexample("unsat\n()")
    with pytest.raises(InvalidInputError, match=r"line 3, .*X_1 is missing"):
        read_counterexample("sat\n((X_0 1)\n (X_2 3)\n (Y_0 1))")
    with pytest.raises(InvalidInputError, match=r"line 2, .*invalid number 'abc'"):
        read_counterexample("sat\n((X_0 abc))")
    with pytest.raises(InvalidInputError, match="finite"):
        format_counterexample([np.nan], [0.0])
