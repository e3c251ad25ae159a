"""VNN-LIB properties: a parser into a solver-ready normal form, and counterexample files.

VNN-LIB is the property format of VNN-COMP, a subset of SMT-LIB 2. A file declares the
network's inputs ``X_0 … X_{n-1}`` and outputs ``Y_0 … Y_{m-1}`` and asserts formulas over
them. The conjunction of the asserts describes the **unsafe** set: the property is ``sat``
when some input satisfying the asserts gives outputs satisfying them too (a counterexample),
``unsat`` when no such input exists.

Grammar accepted
----------------
Comments run from ``;`` to the end of the line. ``.gz`` files (any file starting with the
gzip magic bytes) are decompressed. The file is a sequence of commands::

    command  := (declare-const NAME Real) | (declare-fun NAME () Real) | (assert formula)
              | (set-logic …) | (set-info …) | (set-option …) | (check-sat) | (get-model)
              | (exit)                                   ; the last six are ignored
    NAME     := X_i | Y_j                                ; i, j decimal indices from 0
    formula  := (and formula*) | (or formula*) | true | false
              | (CMP expr expr expr*)                    ; a chain: e1 CMP e2 CMP e3 …
    CMP      := <= | >= | = | < | >                      ; < and > are read as <= and >=
    expr     := NUMBER | NAME | (+ expr+) | (- expr) | (- expr expr+)
              | (* expr+)                                ; at most one factor with variables
              | (/ expr expr+)                           ; divisors constant and non-zero
    NUMBER   := [+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?

Strict comparisons are treated as non-strict: ``(< a b)`` means ``a <= b``. Exact
verification of a closed set is the usual reading in VNN-COMP, and a real-valued solver
cannot represent an open set anyway. Arithmetic is done in float64, so ``(<= (+ Y_0 0.1)
0.3)`` becomes ``Y_0 <= 0.3 - 0.1``. Variables must be declared before they are used, and the
declared inputs (outputs) must be ``X_0 … X_{n-1}`` (``Y_0 … Y_{m-1}``) without gaps.
Quoted symbols ``|…|`` and string literals are not supported.

VNN-LIB 2.0
-----------
A file with a ``(vnnlib-version <2.x>)`` line or a ``(declare-network …)`` command is read as
VNN-LIB 2.0 (:func:`detect_version`; a file mixing 1.0 declarations with these is refused)::

    command  := (vnnlib-version <2.0>) | (declare-network NET decl+) | (assert formula) | …
    decl     := (declare-input NAME TYPE [d0,d1,…] ["onnx name"])
              | (declare-output NAME TYPE [d0,d1,…] ["onnx name"])
    TYPE     := Real | float16 | float32 | float64 | …   ; read as reals
    variable := NAME[i0,i1,…]                            ; one index per dimension
              | NAME                                     ; a scalar tensor (shape [])
    CMP      := … | ==                                   ; == is =

One network with one input and one output tensor is supported (the toolkit's models have one
of each): ``declare-hidden``, several networks, inputs or outputs, non-real element types
and ``!=`` are refused with their position. An element's flat index is its C-order
(row-major) position in the declared shape, batch dimension included, so ``X[0,i]`` of shape
``[1, n]`` is the 1.0 ``X_i``; the declared size must equal the network's number of inputs
(outputs). Everything else — formulas, the normal form, the errors — is as for 1.0, and
:attr:`VnnProperty.version`, ``input_shape`` / ``output_shape`` and the tensor names record
the declaration. :func:`convert_to_v2` writes the 2.0 form of a 1.0 property.

Normal form
-----------
The conjunction of all asserts is expanded into disjunctive normal form (``and`` distributed
over ``or``). Every DNF term is a conjunction of linear atoms ``a·v <= r``; each atom must be

* an **input atom**, over exactly one input: ``c*X_i <= d`` with ``c != 0`` of either sign,
  i.e. a lower or an upper bound of ``X_i`` (bounds are tightened: the largest lower and the
  smallest upper bound win, ``=`` gives both), or
* an **output atom**, over outputs only: a row of ``A y <= b`` (``>=`` atoms are negated), or
* a **constant atom** (no variable left, e.g. ``(<= 1 2)``): true ones are dropped, a false
  one makes its term infeasible.

Atoms mixing inputs and outputs, or relating several inputs, are rejected
(:class:`~verify.errors.InvalidInputError`). In every term each input needs a lower *and* an
upper bound (the input set must be a bounded box; the error points at the input's
declaration). A term whose box is empty (some lower bound above its upper bound) or with a
false constant atom can never hold and is dropped (the expansion of ``and`` over ``or``
legitimately yields such terms); if every term is dropped the property is trivially
``unsat`` and is represented with **zero cases** (:attr:`VnnProperty.trivially_unsat`),
except when some dropped term had an empty box: then no input at all satisfies the file's
bounds, which is almost surely a mistake (swapped or mistyped bounds), and parsing raises an
:class:`~verify.errors.InvalidInputError` that names the inputs and their bounds instead of
answering a vacuous ``unsat``. Arithmetic that leaves the float64 range (an infinite or NaN
coefficient, constant or bound) is an error at its constraint. Terms with identical boxes
are grouped into one :class:`PropertyCase` whose ``disjuncts`` are the terms' output
constraints, in file order. A term without output atoms gives a disjunct with zero rows (every output is unsafe: any
input of the box is a counterexample). Rows keep the order of the file. The DNF may have at
most ``max_dnf_terms`` (:data:`MAX_DNF_TERMS` by default) terms, checked before it is built.

When ``num_inputs`` / ``num_outputs`` are given, a declaration beyond them is an error at that
declaration, and fewer declared variables than expected is an error naming both counts.
``PropertyCase`` and ``VnnProperty`` compare by identity (their fields are arrays).

So ``VnnProperty`` is ``sat`` iff for some case ``k`` and some input ``x`` with
``lower_k <= x <= upper_k``, the outputs ``y = f(x)`` satisfy ``A y <= b`` for some
``(A, b)`` in ``disjuncts_k``.

Every malformed file raises :class:`~verify.errors.InvalidInputError` with a message
``"<file>, line L, column C: <what is wrong>"``. The reader and the formula evaluator are
iterative, so deeply nested formulas do not hit Python's recursion limit.

Counterexamples
---------------
A VNN-COMP result file with a counterexample is a line ``sat`` followed by the assignment as
an s-expression, one ``(X_i value)`` per input, then one ``(Y_j value)`` per output::

    sat
    ((X_0 0.5)
     (X_1 -0.25)
     (Y_0 1.75))

:func:`format_counterexample` returns only the assignment (without ``sat``); callers that write
a result file themselves write ``"sat\\n" + format_counterexample(x, y)``, which is what
:func:`write_counterexample` does. Values are written with ``repr`` precision (they read back
to the same float64).

A result file names its verdict with the word of the property's version
(:data:`RESULT_WORDS`, :func:`result_word`): 1.0 ``sat`` / ``unsat``, 2.0 ``violated`` /
``holds``, both ``timeout`` and ``unknown``. For a 2.0 property the counterexample names the
tensors' elements, ``((X[0,0] 0.5) … (Y[0,3] 1.75))`` (:func:`counterexample_text`);
:func:`read_counterexample` reads both forms.
"""
from __future__ import annotations

import bisect
import gzip
import itertools
import math
import os
import re
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InvalidInputError

__all__ = ["PropertyCase", "VnnProperty", "parse_vnnlib", "parse_vnnlib_text",
           "format_counterexample", "counterexample_text", "write_counterexample",
           "read_counterexample", "write_robustness_property", "detect_version", "convert_to_v2",
           "result_word", "RESULT_WORDS", "VERSIONS", "MAX_DNF_TERMS"]

#: Default limit on the number of DNF terms a property may expand to.
MAX_DNF_TERMS = 100_000

_TOKEN_RE = re.compile(r";[^\n]*|[()]|[^\s();]+")
_NEWLINE_RE = re.compile(r"\n")
_VAR_RE = re.compile(r"([XY])_([0-9]+)\Z")
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")                       # a 2.0 tensor name
_ELEMENT_RE = re.compile(r"([A-Za-z][A-Za-z0-9_]*)\[([0-9]+(?:,[0-9]+)*)?\]\Z")  # X[0,12]
_VERSION_RE = re.compile(r"<?\s*([0-9]+(?:\.[0-9]+)*)\s*>?\Z")
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")

_BOOL_OPS = frozenset({"and", "or"})
_CMP_OPS = frozenset({"<=", ">=", "<", ">", "=", "=="})
_ARITH_OPS = frozenset({"+", "-", "*", "/"})
_IGNORED_COMMANDS = frozenset({"set-logic", "set-info", "set-option", "check-sat", "get-model",
                               "exit"})
#: Element types of VNN-LIB 2.0 declarations read as reals (the toolkit reasons over the reals
#: and replays counterexamples in the model's float32 runtime).
_REAL_TYPES = frozenset({"Real", "real", "float16", "float32", "float64", "bfloat16", "double",
                         "float"})

#: The two versions read, and the words a result file of each uses for the verdicts.
VERSIONS = ("1.0", "2.0")
RESULT_WORDS = {
    "1.0": {"sat": "sat", "unsat": "unsat", "timeout": "timeout", "unknown": "unknown"},
    "2.0": {"sat": "violated", "unsat": "holds", "timeout": "timeout", "unknown": "unknown"},
}
_FORMULA, _EXPR = 0, 1


# --------------------------------------------------------------------------------------------
# Public data


@dataclass(eq=False)
class PropertyCase:
    """One input box and a disjunction over the outputs: some ``(A, b)`` with ``A @ y <= b``."""

    lower: np.ndarray                                 # (num_inputs,) float64
    upper: np.ndarray                                 # (num_inputs,) float64
    disjuncts: list[tuple[np.ndarray, np.ndarray]]    # A (m_k, num_outputs), b (m_k,)


@dataclass(eq=False)
class VnnProperty:
    """A parsed VNN-LIB property: ``sat`` iff some case is ``sat`` (no case: trivially unsat)."""

    num_inputs: int
    num_outputs: int
    cases: list[PropertyCase]
    source: str                                       # the path, or "<string>"
    #: the file's VNN-LIB version, "1.0" or "2.0" (see :func:`detect_version`)
    version: str = "1.0"
    #: 2.0: the declared network's name and its input and output tensors (name, shape); 1.0
    #: files have the names X and Y and flat shapes
    network: str = ""
    input_name: str = "X"
    output_name: str = "Y"
    input_shape: tuple = ()
    output_shape: tuple = ()

    def result_word(self, verdict: str) -> str:
        """The word a result file of this property's version uses for ``verdict`` (``sat``,
        ``unsat``, ``timeout``, ``unknown``): 1.0 keeps them, 2.0 says ``violated`` for
        ``sat`` and ``holds`` for ``unsat``."""
        return result_word(verdict, self.version)

    @property
    def trivially_unsat(self) -> bool:
        """True when every DNF term was infeasible on its own (empty box, false constant)."""
        return not self.cases

    def robustness_label(self) -> int | None:
        """The label ``c`` if the property is the VNN-COMP robustness form, else None.

        The form: in every case each disjunct is the single row ``Y_c - Y_j <= 0`` (i.e.
        ``Y_j >= Y_c``, any positive scaling) for one and the same ``c``, and the disjuncts of
        a case cover either every ``j != c`` (untargeted) or a single ``j`` (targeted).
        """
        if not self.cases:
            return None
        label: int | None = None
        others_all = set(range(self.num_outputs))
        for case in self.cases:
            others: set[int] = set()
            for A, b in case.disjuncts:
                if A.shape[0] != 1 or b[0] != 0.0:
                    return None
                row = A[0]
                nz = np.flatnonzero(row)
                if nz.size != 2:
                    return None
                i, j = int(nz[0]), int(nz[1])
                if row[i] < 0:
                    i, j = j, i
                if not (row[i] > 0 and row[j] == -row[i]):
                    return None
                if label is None:
                    label = i
                elif i != label:
                    return None
                others.add(j)
            if not others or (len(others) != 1 and others != others_all - {label}):
                return None
        return label


# --------------------------------------------------------------------------------------------
# Reader: tokens with positions, s-expressions


class _Atom:
    __slots__ = ("text", "pos")

    def __init__(self, text: str, pos: int):
        self.text = text
        self.pos = pos


class _List:
    __slots__ = ("items", "pos")

    def __init__(self, pos: int):
        self.items: list = []
        self.pos = pos


class _Row:
    """The atom ``sum(coefs[k] * var_k) <= rhs``; ``k = 2*i`` for ``X_i``, ``2*j+1`` for ``Y_j``."""

    __slots__ = ("coefs", "rhs", "pos")

    def __init__(self, coefs: dict, rhs: float, pos: int):
        self.coefs = coefs
        self.rhs = rhs
        self.pos = pos


def _var_name(key: int) -> str:
    return f"Y_{key >> 1}" if key & 1 else f"X_{key >> 1}"


class _Source:
    """Text plus the means to turn an offset into "file, line L, column C" in errors."""

    def __init__(self, text: str, source: str):
        self.text = text
        self.source = source
        self._line_ends: list[int] | None = None

    def where(self, pos: int) -> tuple[int, int]:
        if self._line_ends is None:
            self._line_ends = [m.end() for m in _NEWLINE_RE.finditer(self.text)]
        before = bisect.bisect_right(self._line_ends, pos)      # newlines before pos
        start = self._line_ends[before - 1] if before else 0
        return before + 1, pos - start + 1

    def error(self, pos: int | None, message: str) -> InvalidInputError:
        if pos is None:
            return InvalidInputError(f"{self.source}: {message}")
        line, col = self.where(pos)
        return InvalidInputError(f"{self.source}, line {line}, column {col}: {message}")

    def read(self) -> list:
        """The top-level items (atoms and lists) of the text, comments dropped."""
        root: list = []
        items = root
        stack: list[_List] = []
        for m in _TOKEN_RE.finditer(self.text):
            tok = m.group()
            c = tok[0]
            if c == ";":
                continue
            if c == "(":
                node = _List(m.start())
                items.append(node)
                stack.append(node)
                items = node.items
            elif c == ")":
                if not stack:
                    raise self.error(m.start(), "unbalanced ')': there is no '(' to close")
                stack.pop()
                items = stack[-1].items if stack else root
            else:
                items.append(_Atom(tok, m.start()))
        if stack:
            raise self.error(stack[0].pos, "unbalanced '(': this parenthesis is never closed")
        return root

    def number(self, atom: _Atom) -> float:
        if not _NUMBER_RE.match(atom.text):
            raise self.error(atom.pos, f"invalid number '{atom.text}'")
        value = float(atom.text)
        if not math.isfinite(value):
            raise self.error(atom.pos, f"number out of the float64 range: '{atom.text}'")
        return value


_NUMBER_CHARS = frozenset("0123456789+-.eE")


def _looks_numeric(text: str) -> bool:
    """Meant as a number (to report it as a bad number rather than an unknown symbol)."""
    return text[0].isdigit() or (any(c.isdigit() for c in text)
                                 and all(c in _NUMBER_CHARS for c in text))


# --------------------------------------------------------------------------------------------
# Parser


class _Parser:
    def __init__(self, src: _Source, num_inputs: int | None, num_outputs: int | None,
                 max_dnf_terms: int):
        self.src = src
        self.expected = (num_inputs, num_outputs)
        self.max_terms = max_dnf_terms
        self.decls: tuple[dict[int, int], dict[int, int]] = ({}, {})   # index -> position
        self.keys: dict[str, int] = {}                                  # name -> variable key
        self.version: str | None = None          # from (vnnlib-version ...) or the declarations
        self.version_pos: int | None = None
        # 2.0: tensor name -> (is_out, shape, position of its declaration)
        self.tensors: dict[str, tuple[int, tuple[int, ...], int]] = {}
        self.network = ""

    # -- commands ----------------------------------------------------------------------------

    def parse(self) -> VnnProperty:
        src = self.src
        asserts: list = []
        first_assert: int | None = None
        for node in src.read():
            if isinstance(node, _Atom):
                raise src.error(node.pos, f"expected a command in parentheses, found '{node.text}'")
            name = self.head(node, "command", "a command name")
            head = node.items[0]
            if name == "assert":
                if len(node.items) != 2:
                    raise src.error(node.pos, f"'assert' takes one formula, got {len(node.items) - 1}")
                if first_assert is None:
                    first_assert = node.pos
                asserts.append(self.formula(node.items[1]))
            elif name in ("declare-const", "declare-fun"):
                self.set_version("1.0", node.pos, f"({name} ...)")
                if name == "declare-const" and len(node.items) != 3:
                    raise src.error(node.pos, "expected (declare-const NAME Real)")
                if name == "declare-fun" and (len(node.items) != 4 or not isinstance(
                        node.items[2], _List) or node.items[2].items):
                    raise src.error(node.pos, "expected (declare-fun NAME () Real)")
                self.declare(node.items[1], node.items[-1])
            elif name == "vnnlib-version":
                self.read_version(node)
            elif name == "declare-network":
                if asserts:
                    raise src.error(node.pos, "VNN-LIB 2.0 declares the networks before the "
                                              "assertions")
                self.set_version("2.0", node.pos, "(declare-network ...)")
                self.declare_network(node)
            elif name in _IGNORED_COMMANDS:
                continue
            else:
                raise src.error(head.pos, f"unknown command '{name}' (expected declare-const "
                                          "or assert; VNN-LIB 2.0: vnnlib-version, "
                                          "declare-network or assert)")
        if self.version == "2.0" and not self.tensors:
            raise src.error(self.version_pos, "a VNN-LIB 2.0 file must declare the network "
                                              "with (declare-network NAME (declare-input ...) "
                                              "(declare-output ...))")
        num_in = self.check_declared(0)
        num_out = self.check_declared(1)
        terms = self.conj(asserts, first_assert) if asserts else [()]
        cases = self.build_cases(terms, num_in, num_out)
        prop = VnnProperty(num_in, num_out, cases, src.source, self.version or "1.0")
        if self.version == "2.0":
            (xi, (_, xs, _)), (yo, (_, ys, _)) = sorted(self.tensors.items(),
                                                        key=lambda kv: kv[1][0])
            prop.network, prop.input_name, prop.output_name = self.network, xi, yo
            prop.input_shape, prop.output_shape = xs, ys
        else:
            prop.input_shape, prop.output_shape = (num_in,), (num_out,)
        return prop

    # -- VNN-LIB 2.0 ---------------------------------------------------------------------------

    def set_version(self, version: str, pos: int, what: str) -> None:
        """Fix the file's version from a declaration; declarations of both versions clash."""
        if self.version is None:
            self.version, self.version_pos = version, pos
        elif self.version != version:
            other = "2.0 (vnnlib-version or declare-network)" if version == "1.0" else \
                "1.0 (declare-const)"
            raise self.src.error(pos, f"{what} is VNN-LIB {version} syntax, but the file is "
                                      f"VNN-LIB {other} before this point")

    def read_version(self, node: _List) -> None:
        src = self.src
        text = " ".join(i.text for i in node.items[1:] if isinstance(i, _Atom))
        m = _VERSION_RE.match(text)
        if len(node.items) < 2 or not m:
            raise src.error(node.pos, "expected (vnnlib-version <2.0>)")
        number = m.group(1)
        major = number.split(".")[0]
        if major != "2":
            raise src.error(node.pos, f"VNN-LIB version {number} is not supported (1.0 files "
                                      "have no version line; 2.x files start with "
                                      "(vnnlib-version <2.0>))")
        if self.version == "1.0":
            raise src.error(node.pos, "(vnnlib-version ...) after VNN-LIB 1.0 declarations")
        self.version, self.version_pos = "2.0", node.pos

    def declare_network(self, node: _List) -> None:
        """``(declare-network NAME (declare-input X TYPE [shape] ["onnx name"]) …
        (declare-output Y TYPE [shape] ["onnx name"]))``: exactly one network with one input
        and one output tensor (the toolkit's models have one of each)."""
        src = self.src
        if self.tensors:
            raise src.error(node.pos, "a second (declare-network ...): properties over several "
                                      "networks are not supported (one network, one input, "
                                      "one output)")
        items = node.items
        if len(items) < 2 or not isinstance(items[1], _Atom) or not _NAME_RE.match(items[1].text):
            raise src.error(node.pos, "expected (declare-network NAME (declare-input ...) "
                                      "(declare-output ...))")
        self.network = items[1].text
        for decl in items[2:]:
            if (not isinstance(decl, _List) or not decl.items
                    or not isinstance(decl.items[0], _Atom)):
                raise src.error(decl.pos, "expected (declare-input ...) or (declare-output ...) "
                                          "inside (declare-network ...)")
            kind = decl.items[0].text
            if kind == "declare-hidden":
                raise src.error(decl.pos, "(declare-hidden ...): properties over hidden nodes are "
                                          "not supported (only the network's input and output)")
            if kind not in ("declare-input", "declare-output"):
                raise src.error(decl.pos, f"unknown declaration '{kind}' in (declare-network ...) "
                                          "(expected declare-input or declare-output)")
            is_out = int(kind == "declare-output")
            if any(t[0] == is_out for t in self.tensors.values()):
                what = "outputs" if is_out else "inputs"
                raise src.error(decl.pos, f"a second {kind[8:]}: networks with several {what} "
                                          "are not supported")
            self.declare_tensor(decl, is_out)
        for is_out, kind in ((0, "declare-input"), (1, "declare-output")):
            if not any(t[0] == is_out for t in self.tensors.values()):
                raise src.error(node.pos, f"network '{self.network}' has no ({kind} ...)")

    def declare_tensor(self, decl: _List, is_out: int) -> None:
        src = self.src
        kind = decl.items[0].text
        parts = decl.items[1:]
        if len(parts) < 3 or not all(isinstance(p, _Atom) for p in parts):
            raise src.error(decl.pos, f"expected ({kind} NAME TYPE [d0,d1,...])")
        name, etype = parts[0], parts[1]
        if not _NAME_RE.match(name.text):
            raise src.error(name.pos, f"invalid tensor name '{name.text}' (a letter, then "
                                      "letters, digits or '_')")
        if name.text in self.tensors:
            raise src.error(name.pos, f"'{name.text}' is declared twice")
        if etype.text not in _REAL_TYPES:
            raise src.error(etype.pos, f"element type '{etype.text}' is not supported (Real or a "
                                       "floating-point type such as float32)")
        rest = parts[2:]
        if rest and rest[-1].text.startswith('"'):
            rest = rest[:-1]                       # the ONNX node's name: matched by order
        shape_text = "".join(p.text for p in rest)
        if not (shape_text.startswith("[") and shape_text.endswith("]")):
            raise src.error(parts[2].pos, f"expected the shape of '{name.text}' as [d0,d1,...]")
        inner = shape_text[1:-1].replace(" ", "")
        try:
            shape = tuple(int(d) for d in inner.split(",")) if inner else ()
        except ValueError:
            raise src.error(parts[2].pos, f"invalid shape '{shape_text}' (non-negative integers "
                                          "separated by commas)") from None
        if any(d <= 0 for d in shape):
            raise src.error(parts[2].pos, f"invalid shape '{shape_text}': every dimension must "
                                          "be positive")
        size = math.prod(shape)
        expected = self.expected[is_out]
        if expected is not None and size != expected:
            what = "outputs" if is_out else "inputs"
            raise src.error(name.pos, f"'{name.text}' has shape {shape_text} ({size} values) but "
                                      f"the network has {expected} {what}")
        self.tensors[name.text] = (is_out, shape, name.pos)
        self.decls[is_out].update(dict.fromkeys(range(size), name.pos))

    def element_key(self, atom: _Atom) -> int | None:
        """The variable key of a 2.0 reference ``NAME[i,j,…]`` (a scalar tensor also by its
        bare name); None when ``atom`` is no tensor reference."""
        text = atom.text
        m = _ELEMENT_RE.match(text)
        name = m.group(1) if m else text
        tensor = self.tensors.get(name)
        if tensor is None:
            if m:
                raise self.src.error(atom.pos, f"undeclared tensor '{name}' (declare it in "
                                               "(declare-network ...) before using it)")
            return None
        is_out, shape, _ = tensor
        index = tuple(int(i) for i in m.group(2).split(",")) if m and m.group(2) else ()
        if not m and shape and math.prod(shape) != 1:
            raise self.src.error(atom.pos, f"'{name}' has shape {list(shape)}: refer to an "
                                           f"element, e.g. {name}[{','.join('0' * len(shape))}]")
        if shape == () and index in ((), (0,)):
            index = ()                             # a scalar: NAME or NAME[0]
        elif m and len(index) != len(shape):
            raise self.src.error(atom.pos, f"'{text}' has {len(index)} indices but '{name}' has "
                                           f"shape {list(shape)} ({len(shape)} dimensions)")
        if any(i >= d for i, d in zip(index, shape)):
            raise self.src.error(atom.pos, f"'{text}' is out of range: '{name}' has shape "
                                           f"{list(shape)}")
        flat = 0
        for i, d in zip(index, shape):
            flat = flat * d + i
        return 2 * flat + is_out

    def declare(self, name_node, sort_node) -> None:
        src = self.src
        if not isinstance(name_node, _Atom):
            raise src.error(name_node.pos, "expected a variable name")
        m = _VAR_RE.match(name_node.text)
        if not m:
            raise src.error(name_node.pos, f"unsupported variable name '{name_node.text}' "
                                           "(VNN-LIB variables are X_i for inputs, Y_j for outputs)")
        if not isinstance(sort_node, _Atom) or sort_node.text != "Real":
            found = sort_node.text if isinstance(sort_node, _Atom) else "(…)"
            raise src.error(sort_node.pos, f"unsupported sort '{found}' (only Real)")
        is_out = m.group(1) == "Y"
        index = int(m.group(2))
        decls = self.decls[is_out]
        if index in decls or name_node.text in self.keys:
            raise src.error(name_node.pos, f"'{name_node.text}' is declared twice")
        expected = self.expected[is_out]
        if expected is not None and index >= expected:
            what = "outputs" if is_out else "inputs"
            raise src.error(name_node.pos, f"'{name_node.text}' is out of range: the network has "
                                           f"{expected} {what} ({m.group(1)}_0..{m.group(1)}_"
                                           f"{expected - 1})")
        decls[index] = name_node.pos
        self.keys[name_node.text] = 2 * index + is_out

    def check_declared(self, is_out: int) -> int:
        decls = self.decls[is_out]
        letter, what = ("Y", "outputs") if is_out else ("X", "inputs")
        count = len(decls)
        if decls:
            top = max(decls)
            if top + 1 != count:
                missing = next(i for i in range(top) if i not in decls)
                raise self.src.error(decls[top], f"{what} must be declared as {letter}_0.."
                                     f"{letter}_{top} without gaps, but {letter}_{missing} "
                                     "is not declared")
        expected = self.expected[is_out]
        if expected is not None and count != expected:
            raise self.src.error(None, f"the property declares {count} {what} but the network "
                                       f"has {expected} {what}")
        return count

    # -- formulas: iterative post-order evaluation ----------------------------------------------

    def formula(self, root) -> list[tuple]:
        """The DNF of a formula: a list of terms; a term is a tuple of groups (deques of rows)."""
        stack: list[list] = [[root, _FORMULA, None, None]]
        while True:
            frame = stack[-1]
            node, ctx, op, results = frame
            if op is None:
                if isinstance(node, _Atom):
                    value = self.leaf(node, ctx)
                    stack.pop()
                    if not stack:
                        return value
                    stack[-1][3].append(value)
                    continue
                op = frame[2] = self.operator(node, ctx)
                results = frame[3] = []
            done = len(results)
            if done + 1 < len(node.items):
                child_ctx = _FORMULA if op in _BOOL_OPS else _EXPR
                stack.append([node.items[done + 1], child_ctx, None, None])
                continue
            value = self.combine(node, op, results)
            stack.pop()
            if not stack:
                return value
            stack[-1][3].append(value)

    def head(self, node: _List, what: str, expected: str) -> str:
        """The name that opens a parenthesised ``node`` (a clear error if there is none)."""
        if not node.items:
            raise self.src.error(node.pos, f"empty {what} '()'")
        head = node.items[0]
        if not isinstance(head, _Atom):
            raise self.src.error(node.pos, f"expected {expected} after '('")
        return head.text

    def operator(self, node: _List, ctx: int) -> str:
        src = self.src
        op = self.head(node, "expression", "an operator")
        head = node.items[0]
        if ctx == _FORMULA:
            if op in _BOOL_OPS or op in _CMP_OPS:
                return op
            if op == "!=":
                raise src.error(head.pos, "'!=' is not supported: comparisons are read as "
                                          "closed sets, and the closure of a != b is everything")
            if op in _ARITH_OPS:
                raise src.error(head.pos, f"expected a formula (and, or, a comparison), found "
                                          f"the arithmetic operator '{op}'")
            raise src.error(head.pos, f"unknown operator '{op}' (formulas use and, or, <=, >=, "
                                      "=, <, >)")
        if op in _ARITH_OPS:
            return op
        if op in _BOOL_OPS or op in _CMP_OPS:
            raise src.error(head.pos, f"expected a linear expression, found '{op}'")
        raise src.error(head.pos, f"unknown operator '{op}' in a linear expression (expressions "
                                  "use +, -, * and / by constants)")

    def leaf(self, atom: _Atom, ctx: int):
        text = atom.text
        if ctx == _FORMULA:
            if text == "true":
                return [()]
            if text == "false":
                return []
            raise self.src.error(atom.pos, f"expected a formula, found '{text}'")
        key = self.keys.get(text)
        if key is None and self.tensors:
            key = self.element_key(atom)
        if key is not None:
            return {key: 1.0}, 0.0
        if _NUMBER_RE.match(text) or _looks_numeric(text):
            return {}, self.src.number(atom)
        if _VAR_RE.match(text):
            raise self.src.error(atom.pos, f"undeclared variable '{text}' (declare it with "
                                           f"(declare-const {text} Real) before using it)")
        raise self.src.error(atom.pos, f"unknown symbol '{text}'")

    def combine(self, node: _List, op: str, results: list):
        src = self.src
        n = len(results)
        if op == "and":
            return self.conj(results, node.pos)
        if op == "or":
            terms = [t for dnf in results for t in dnf]
            self.check_size(len(terms), node.pos)
            return terms
        if op in _CMP_OPS:
            if n < 2:
                raise src.error(node.pos, f"'{op}' needs at least two arguments, got {n}")
            rows = []
            for a, b in zip(results, results[1:]):
                if op == "<=" or op == "<":
                    rows.append(_difference_row(a, b, node.pos))
                elif op == ">=" or op == ">":
                    rows.append(_difference_row(b, a, node.pos))
                else:
                    rows.append(_difference_row(a, b, node.pos))
                    rows.append(_difference_row(b, a, node.pos))
            return [(deque(rows),)]
        # Linear arithmetic: values are (coefs, constant).
        if n == 0 or (op == "/" and n < 2):
            raise src.error(node.pos, f"'{op}' needs {'two' if op == '/' else 'one'} or more "
                                      f"arguments, got {n}")
        if op == "+":
            return _linear_sum(results, [1.0] * n)
        if op == "-":
            if n == 1:
                return _linear_sum(results, [-1.0])
            return _linear_sum(results, [1.0] + [-1.0] * (n - 1))
        if op == "*":
            factor = 1.0
            variable = None
            for r in results:
                if r[0]:
                    if variable is not None:
                        raise src.error(node.pos, "non-linear product: at most one factor of "
                                                  "'*' may contain variables")
                    variable = r
                else:
                    factor *= r[1]
            if variable is None:
                return {}, factor
            return _linear_sum([variable], [factor])
        # op == "/"
        divisor = 1.0
        for r in results[1:]:
            if r[0]:
                raise src.error(node.pos, "non-linear division: divisors must be constants")
            divisor *= r[1]
        if divisor == 0.0:
            raise src.error(node.pos, "division by zero")
        return _linear_sum(results[:1], [1.0 / divisor])

    def check_size(self, size: int, pos: int | None) -> None:
        if size > self.max_terms:
            raise self.src.error(pos, f"the formula expands to {size} terms in disjunctive "
                                      f"normal form, more than the limit of {self.max_terms}")

    def conj(self, dnfs: list, pos: int | None) -> list[tuple]:
        """The DNF of the conjunction of ``dnfs``.

        The groups (deques of rows) of single-term operands are merged, in order, into one
        group: the largest one, extended in place on both sides, so that long chains of
        nested ``and`` cost linear time (a single-term DNF's groups are never shared with
        another term). Multi-term operands are distributed, their groups shared between the
        product terms.
        """
        singles: list[deque] = []
        multi: list[list] = []
        for dnf in dnfs:
            if not dnf:
                return []
            if len(dnf) == 1:
                singles.extend(dnf[0])
            else:
                multi.append(dnf)
        base: tuple = ()
        if singles:
            at = max(range(len(singles)), key=lambda i: len(singles[i]))
            largest = singles[at]
            for g in reversed(singles[:at]):
                largest.extendleft(reversed(g))
            for g in singles[at + 1:]:
                largest.extend(g)
            base = (largest,)
        if not multi:
            return [base]
        self.check_size(math.prod(len(d) for d in multi), pos)
        out = []
        for combo in itertools.product(*multi):
            term = base
            for t in combo:
                term = term + t
            out.append(term)
        return out

    # -- normal form -------------------------------------------------------------------------------

    def group_info(self, group: deque, num_in: int, num_out: int):
        src = self.src
        lo = hi = None
        rows: list[list[float]] = []
        rhs: list[float] = []
        feasible = True
        for r in group:
            coefs = r.coefs
            if not (math.isfinite(r.rhs) and all(map(math.isfinite, coefs.values()))):
                raise src.error(r.pos, "this constraint's arithmetic leaves the float64 range (a "
                                       "coefficient or constant became infinite or NaN)")
            if not coefs:
                if not 0.0 <= r.rhs:
                    feasible = False
                continue
            inputs = [k for k in coefs if not k & 1]
            if inputs:
                if len(inputs) != len(coefs):
                    outs = [k for k in coefs if k & 1]
                    raise src.error(r.pos, f"a constraint mixes inputs and outputs "
                                           f"({_var_name(inputs[0])} and {_var_name(outs[0])}); "
                                           "input constraints must be bounds on one X_i and "
                                           "output constraints must not involve inputs")
                if len(inputs) > 1:
                    raise src.error(r.pos, f"an input constraint relates several inputs "
                                           f"({', '.join(_var_name(k) for k in inputs)}); only "
                                           "bounds on a single X_i are supported")
                key = inputs[0]
                a = coefs[key]
                v = r.rhs / a
                i = key >> 1
                if not math.isfinite(v):
                    raise src.error(r.pos, f"the bound on {_var_name(key)} is {r.rhs!r} / {a!r}, "
                                           "outside the float64 range")
                if lo is None:
                    lo = [-math.inf] * num_in
                    hi = [math.inf] * num_in
                if a > 0:
                    if v < hi[i]:
                        hi[i] = v
                elif v > lo[i]:
                    lo[i] = v
            else:
                row = [0.0] * num_out
                for k, a in coefs.items():
                    row[k >> 1] = a
                rows.append(row)
                rhs.append(r.rhs)
        A = np.array(rows, dtype=np.float64).reshape(len(rows), num_out)
        b = np.array(rhs, dtype=np.float64)
        lo_arr = None if lo is None else np.array(lo, dtype=np.float64)
        hi_arr = None if hi is None else np.array(hi, dtype=np.float64)
        return lo_arr, hi_arr, A, b, feasible

    def build_cases(self, terms: list[tuple], num_in: int, num_out: int) -> list[PropertyCase]:
        info: dict[int, tuple] = {}
        keep: list = []                # groups stay alive while their id() is a cache key
        cases: dict[tuple[bytes, bytes], PropertyCase] = {}
        empty: list[tuple[int, np.ndarray, np.ndarray]] = []  # the first empty box: (term, lo, hi)
        for t, term in enumerate(terms):
            lo = np.full(num_in, -np.inf)
            hi = np.full(num_in, np.inf)
            As: list[np.ndarray] = []
            bs: list[np.ndarray] = []
            feasible = True
            for group in term:
                gi = info.get(id(group))
                if gi is None:
                    gi = info[id(group)] = self.group_info(group, num_in, num_out)
                    keep.append(group)
                g_lo, g_hi, A, b, ok = gi
                feasible = feasible and ok
                if g_lo is not None:
                    np.maximum(lo, g_lo, out=lo)
                    np.minimum(hi, g_hi, out=hi)
                if A.shape[0]:
                    As.append(A)
                    bs.append(b)
            if feasible and np.any(lo > hi) and not empty:
                empty.append((t, lo, hi))
            if not feasible or np.any(lo > hi):
                continue                                   # this term can never hold
            unbounded = np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi)))
            if unbounded.size:
                i = int(unbounded[0])
                side = "lower" if not np.isfinite(lo[i]) else "upper"
                where = f" in DNF term {t + 1} of {len(terms)}" if len(terms) > 1 else ""
                raise self.src.error(self.decls[0][i], f"input X_{i} has no {side} bound{where} "
                                     "(every input needs a lower and an upper bound; the "
                                     "position given is the declaration of the input)")
            A = np.vstack(As) if As else np.zeros((0, num_out))
            b = np.concatenate(bs) if bs else np.zeros(0)
            lo += 0.0                                      # -0.0 -> 0.0 for the grouping key
            hi += 0.0
            key = (lo.tobytes(), hi.tobytes())
            case = cases.get(key)
            if case is None:
                case = cases[key] = PropertyCase(lo, hi, [])
            case.disjuncts.append((A, b))
        if not cases and empty:
            self.empty_box_error(empty[0], len(terms))
        return list(cases.values())

    def empty_box_error(self, first: tuple[int, np.ndarray, np.ndarray], num_terms: int) -> None:
        """No term survives and some term's input box is empty (a lower bound above an upper
        one): almost surely swapped or mistyped bounds, not a property meant to be vacuously
        ``unsat``, so an error that names the inputs and their bounds."""
        t, lo, hi = first
        bad = np.flatnonzero(lo > hi)
        listed = ", ".join(f"X_{i}: lower {float(lo[i])!r} > upper {float(hi[i])!r}"
                           for i in bad[:5])
        more = f" and {bad.size - 5} more" if bad.size > 5 else ""
        where = (f" (DNF term {t + 1} of {num_terms}; no term can hold)"
                 if num_terms > 1 else "")
        raise self.src.error(self.decls[0][int(bad[0])],
                             f"the input box is empty{where}: {listed}{more}; no input satisfies "
                             "the bounds, so the property would be vacuously unsat (check the "
                             "bounds: swapped lower and upper?; the position given is the "
                             "declaration of the input)")


def _difference_row(a, b, pos: int) -> _Row:
    """The atom ``a <= b`` as ``(a - b)·v <= const_b - const_a``."""
    coefs = dict(a[0])
    for k, v in b[0].items():
        c = coefs.get(k, 0.0) - v
        if c == 0.0:
            coefs.pop(k, None)
        else:
            coefs[k] = c
    return _Row(coefs, b[1] - a[1], pos)


def _linear_sum(values: list, weights: list[float]):
    coefs: dict[int, float] = {}
    const = 0.0
    for (c, k0), w in zip(values, weights):
        const += w * k0
        for k, v in c.items():
            coefs[k] = coefs.get(k, 0.0) + w * v
    if any(v == 0.0 for v in coefs.values()):
        coefs = {k: v for k, v in coefs.items() if v != 0.0}
    return coefs, const + 0.0


# --------------------------------------------------------------------------------------------
# Public functions


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: file not found") from None
    except OSError as e:
        raise InvalidInputError(f"{path}: cannot read the file ({e})") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise InvalidInputError(f"{path}: corrupt gzip file ({e})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInputError(f"{path}: not a UTF-8 text file (byte {e.start})") from None


def parse_vnnlib_text(text: str, num_inputs: int | None = None, num_outputs: int | None = None,
                      *, source: str = "<string>",
                      max_dnf_terms: int = MAX_DNF_TERMS) -> VnnProperty:
    """Parse VNN-LIB ``text`` (see the module docstring for the grammar and the normal form).

    ``num_inputs`` / ``num_outputs``, when given, must equal the declared counts. ``source``
    names the text in error messages.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"VNN-LIB text must be a str, got {type(text).__name__}")
    return _Parser(_Source(text, source), num_inputs, num_outputs, max_dnf_terms).parse()


def parse_vnnlib(source: str | os.PathLike, num_inputs: int | None = None,
                 num_outputs: int | None = None, *,
                 max_dnf_terms: int = MAX_DNF_TERMS) -> VnnProperty:
    """Parse a ``.vnnlib`` file (gzip-compressed or not) into a :class:`VnnProperty`."""
    path = Path(source)
    return parse_vnnlib_text(_read_text(path), num_inputs, num_outputs, source=str(path),
                             max_dnf_terms=max_dnf_terms)


def detect_version(text: str) -> str:
    """``"2.0"`` when the text has a ``(vnnlib-version …)`` or ``(declare-network …)`` command,
    else ``"1.0"`` (the parser decides the same way, and refuses files that mix the two)."""
    for node in _Source(text, "<string>").read():
        if isinstance(node, _List) and node.items and isinstance(node.items[0], _Atom) \
                and node.items[0].text in ("vnnlib-version", "declare-network"):
            return "2.0"
    return "1.0"


def _v2_number(text: str) -> str:
    """A number as VNN-LIB 2.0 writes reals: digits, a point and digits (``0`` → ``0.0``,
    ``1e-05`` → ``1.0e-05``); the same float64 value."""
    r = repr(float(text) + 0.0)
    mantissa, e, exponent = r.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + e + exponent


def convert_to_v2(text: str, input_shape: tuple, output_shape: tuple, *, network: str = "N",
                  element_type: str = "float32", source: str = "<string>") -> str:
    """The VNN-LIB 2.0 form of a 1.0 property: one ``(declare-network …)`` with the input ``X``
    and the output ``Y`` of the given shapes (e.g. the ONNX model's, batch dimension
    included), ``X_i`` / ``Y_j`` replaced by the elements at flat index ``i`` / ``j`` in C
    order, ``=`` by ``==`` and numbers in the 2.0 form (the same float64 values). The
    assertions keep their structure and order, and the leading comments are kept, so the two
    files state the same property (:func:`parse_vnnlib_text` gives the same cases).
    """
    if not _NAME_RE.match(network):
        raise InvalidInputError(f"invalid network name {network!r}")
    if element_type not in _REAL_TYPES:
        raise InvalidInputError(f"element type {element_type!r} is not a real type")
    shapes = (tuple(int(d) for d in input_shape), tuple(int(d) for d in output_shape))
    prop = parse_vnnlib_text(text, math.prod(shapes[0]), math.prod(shapes[1]), source=source)
    if prop.version != "1.0":
        raise InvalidInputError(f"{source} is already VNN-LIB {prop.version}")
    names = ([_element_names("X", shapes[0])], [_element_names("Y", shapes[1])])
    header = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(";"):
            break
        header.append(line.rstrip())
    while header and not header[-1]:
        header.pop()
    out = header + (["; VNN-LIB 2.0 form of a 1.0 property (X_i, Y_j: the elements in C order)"]
                    if header else []) + ["", "(vnnlib-version <2.0>)", "",
                                          f"(declare-network {network}",
                                          f"    (declare-input X {element_type} "
                                          f"[{','.join(map(str, shapes[0]))}])",
                                          f"    (declare-output Y {element_type} "
                                          f"[{','.join(map(str, shapes[1]))}]))", ""]

    def atom(a: _Atom) -> str:
        m = _VAR_RE.match(a.text)
        if m:
            return names[m.group(1) == "Y"][0][int(m.group(2))]
        if a.text == "=":
            return "=="
        if _NUMBER_RE.match(a.text):
            return _v2_number(a.text)
        return a.text

    for node in _Source(text, source).read():
        if not (isinstance(node, _List) and node.items and isinstance(node.items[0], _Atom)
                and node.items[0].text == "assert"):
            continue
        parts: list[str] = []
        stack: list = [node]
        while stack:                               # iterative: deep formulas are fine
            item = stack.pop()
            if isinstance(item, str):
                parts.append(item)
            elif isinstance(item, _Atom):
                parts.append(atom(item))
            else:
                stack.append(")")
                for k, child in enumerate(reversed(item.items)):
                    stack.append(child)
                    if k < len(item.items) - 1:
                        stack.append(" ")
                stack.append("(")
        out.append("".join(parts))
    return "\n".join(out) + "\n"


def _finite_vector(values, what: str) -> np.ndarray:
    try:
        v = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"{what} must be numeric ({e})") from None
    if not np.all(np.isfinite(v)):
        raise InvalidInputError(f"{what} must be finite")
    return v


def result_word(verdict: str, version: str = "1.0") -> str:
    """The word a result file of VNN-LIB ``version`` uses for ``verdict`` (one of ``sat``,
    ``unsat``, ``timeout``, ``unknown``; :data:`RESULT_WORDS`)."""
    words = RESULT_WORDS.get(version)
    if words is None:
        raise InvalidInputError(f"unknown VNN-LIB version {version!r} (choose {', '.join(VERSIONS)})")
    if verdict not in words:
        raise InvalidInputError(f"unknown verdict {verdict!r} (choose {', '.join(words)})")
    return words[verdict]


def _element_names(name: str, shape: tuple) -> list[str]:
    """``NAME[i,j,…]`` for every element of a tensor, in C order (a scalar: ``NAME``)."""
    if not shape:
        return [name]
    return [f"{name}[{','.join(map(str, idx))}]" for idx in np.ndindex(*shape)]


def format_counterexample(x: np.ndarray, y: np.ndarray, prop: VnnProperty | None = None) -> str:
    """The VNN-COMP counterexample ``((X_0 v) … (Y_0 v) …)``, one pair a line, ending in a
    newline, **without** the leading verdict line (a result file is ``"sat\\n"`` + this; see
    :func:`counterexample_text`).

    For a VNN-LIB 2.0 ``prop`` the names are its tensors' elements, ``(X[0,0,3] v)``, in C
    order of the declared shapes (the flat order of ``x`` and ``y``)."""
    xs = _finite_vector(x, "counterexample inputs")
    ys = _finite_vector(y, "counterexample outputs")
    if prop is not None and prop.version == "2.0":
        if xs.size != math.prod(prop.input_shape) or ys.size != math.prod(prop.output_shape):
            raise InvalidInputError(f"the counterexample has {xs.size} inputs and {ys.size} "
                                    f"outputs; {prop.source} declares shapes "
                                    f"{list(prop.input_shape)} and {list(prop.output_shape)}")
        x_names = _element_names(prop.input_name, prop.input_shape)
        y_names = _element_names(prop.output_name, prop.output_shape)
    else:
        x_names = [f"X_{i}" for i in range(xs.size)]
        y_names = [f"Y_{j}" for j in range(ys.size)]
    pairs = [f"({n} {float(v)!r})" for n, v in zip(x_names, xs)]
    pairs += [f"({n} {float(v)!r})" for n, v in zip(y_names, ys)]
    return "(" + "\n ".join(pairs) + ")\n"


def counterexample_text(x: np.ndarray, y: np.ndarray, prop: VnnProperty | None = None) -> str:
    """A whole result file with a counterexample: the verdict word of ``prop``'s version
    (``sat`` for 1.0 and without a property, ``violated`` for 2.0), then the assignment."""
    word = prop.result_word("sat") if prop is not None else "sat"
    return f"{word}\n" + format_counterexample(x, y, prop)


def _write_text(path: str | os.PathLike, text: str) -> None:
    p = Path(path)
    try:
        if p.suffix == ".gz":
            with gzip.open(p, "wt", encoding="utf-8") as f:
                f.write(text)
        else:
            p.write_text(text, encoding="utf-8")
    except OSError as e:
        raise InvalidInputError(f"{p}: cannot write the file ({e})") from None


def write_counterexample(path: str | os.PathLike, x: np.ndarray, y: np.ndarray,
                         prop: VnnProperty | None = None) -> None:
    """Write a VNN-COMP result file: the line ``sat`` (``violated`` for a 2.0 ``prop``), then
    :func:`format_counterexample`."""
    _write_text(path, counterexample_text(x, y, prop))


def read_counterexample(path_or_text: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(x, y)`` back from a counterexample, with or without the leading ``sat`` (or
    2.0 ``violated``) line.

    A ``str`` containing ``(`` is taken as the text itself; any other ``str`` or path-like as
    a file name. Names are ``X_i`` / ``Y_j`` (1.0) or tensor elements ``NAME[i,j,…]`` (2.0:
    the first tensor named is the input, the second the output; each flattened in C order).
    """
    if isinstance(path_or_text, str) and "(" in path_or_text:
        src = _Source(path_or_text, "<string>")
    else:
        path = Path(path_or_text)
        src = _Source(_read_text(path), str(path))
    items = src.read()
    if items and isinstance(items[0], _Atom):
        word = items[0].text
        if word.lower() not in ("sat", "violated"):
            raise src.error(items[0].pos, f"the result is '{word}', not a counterexample "
                                          "(expected 'sat' or 'violated' and an assignment)")
        items = items[1:]
    if len(items) == 1 and isinstance(items[0], _List) and all(
            isinstance(p, _List) for p in items[0].items) and items[0].items:
        items = items[0].items                               # the outer parentheses
    if not items:
        raise src.error(None, "no assignment found")
    for pair in items:
        if (not isinstance(pair, _List) or len(pair.items) != 2
                or not all(isinstance(p, _Atom) for p in pair.items)):
            raise src.error(pair.pos, "expected a pair (NAME value)")
    if not _VAR_RE.match(items[0].items[0].text):
        return _read_tensor_assignment(src, items)
    values: tuple[dict[int, float], dict[int, float]] = ({}, {})
    positions: tuple[dict[int, int], dict[int, int]] = ({}, {})
    for pair in items:
        name, value = pair.items
        m = _VAR_RE.match(name.text)
        if not m:
            raise src.error(name.pos, f"unexpected name '{name.text}' (expected X_i or Y_j)")
        is_out = m.group(1) == "Y"
        index = int(m.group(2))
        if index in values[is_out]:
            raise src.error(name.pos, f"'{name.text}' is assigned twice")
        values[is_out][index] = src.number(value)
        positions[is_out][index] = name.pos
    arrays = []
    for is_out, letter in ((0, "X"), (1, "Y")):
        got = values[is_out]
        n = len(got)
        if got and max(got) != n - 1:
            missing = next(i for i in range(n) if i not in got)
            raise src.error(positions[is_out][max(got)], f"{letter}_{missing} is missing from "
                                                         "the assignment")
        arrays.append(np.array([got[i] for i in range(n)], dtype=np.float64))
    return arrays[0], arrays[1]


def _read_tensor_assignment(src: _Source, items: list) -> tuple[np.ndarray, np.ndarray]:
    """A 2.0 assignment ``((X[0,0] v) … (Y[0,0] v) …)``: two tensors, each complete."""
    tensors: dict[str, dict[tuple, float]] = {}
    for pair in items:
        name, value = pair.items
        m = _ELEMENT_RE.match(name.text)
        if m is None and not _NAME_RE.match(name.text):
            raise src.error(name.pos, f"unexpected name '{name.text}' (expected X_i, Y_j or a "
                                      "tensor element NAME[i,j,...])")
        tensor = m.group(1) if m else name.text
        index = tuple(int(i) for i in m.group(2).split(",")) if m and m.group(2) else ()
        got = tensors.setdefault(tensor, {})
        if len(tensors) > 2:
            raise src.error(name.pos, f"a third tensor '{tensor}' (expected the input and the "
                                      "output)")
        if got and len(next(iter(got))) != len(index):
            raise src.error(name.pos, f"'{name.text}' has {len(index)} indices, other elements "
                                      f"of '{tensor}' {len(next(iter(got)))}")
        if index in got:
            raise src.error(name.pos, f"'{name.text}' is assigned twice")
        got[index] = src.number(value)
    if len(tensors) != 2:
        raise src.error(None, "expected the assignment of an input and an output tensor")
    arrays = []
    for tensor, got in tensors.items():
        shape = tuple(max(idx[d] for idx in got) + 1 for d in range(len(next(iter(got)))))
        if len(got) != math.prod(shape):
            missing = next(idx for idx in np.ndindex(*shape) if idx not in got)
            raise src.error(None, f"{tensor}[{','.join(map(str, missing))}] is missing from the "
                                  "assignment")
        arrays.append(np.array([got[idx] for idx in np.ndindex(*shape)], dtype=np.float64))
    return arrays[0], arrays[1]


def write_robustness_property(path: str | os.PathLike, image: np.ndarray, label: int,
                              eps: float, num_outputs: int, lower: float | np.ndarray = 0.0,
                              upper: float | np.ndarray = 1.0) -> None:
    """Write the VNN-COMP (mnist_fc style) robustness property of ``image`` around ``label``.

    Input ``X_i`` (the image flattened in C order) lies in ``[max(lower, x_i - eps),
    min(upper, x_i + eps)]``; the unsafe set is ``(or (and (>= Y_j Y_label)) …)`` over every
    ``j != label``. ``lower`` / ``upper`` are scalars or arrays broadcastable to the image. A
    ``.gz`` path is written gzip-compressed.
    """
    x = _finite_vector(image, "the image")
    if isinstance(num_outputs, bool) or int(num_outputs) != num_outputs or num_outputs < 2:
        raise InvalidInputError(f"num_outputs must be an integer >= 2, got {num_outputs}")
    num_outputs = int(num_outputs)
    if isinstance(label, bool) or int(label) != label or not 0 <= label < num_outputs:
        raise InvalidInputError(f"label must be an integer in [0, {num_outputs}), got {label}")
    label = int(label)
    if not (math.isfinite(eps) and eps >= 0):
        raise InvalidInputError(f"eps must be finite and >= 0, got {eps}")
    try:
        lo_lim = np.broadcast_to(np.asarray(lower, dtype=np.float64), np.shape(image)).ravel()
        hi_lim = np.broadcast_to(np.asarray(upper, dtype=np.float64), np.shape(image)).ravel()
    except ValueError as e:
        raise InvalidInputError(f"lower/upper do not match the image shape ({e})") from None
    lo = np.maximum(lo_lim, x - eps)
    hi = np.minimum(hi_lim, x + eps)
    if np.any(lo > hi) or not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        i = int(np.flatnonzero(~(lo <= hi))[0]) if np.any(~(lo <= hi)) else 0
        raise InvalidInputError(f"the input box is empty or unbounded at X_{i}: the image value "
                                f"{x[i]!r} is farther than eps from [lower, upper]")
    lines = [f"; Robustness property: label {label}, eps {float(eps)!r}, "
             f"{x.size} inputs, {num_outputs} outputs.",
             "; Unsafe (sat) if some input in the box makes another output >= Y_label.", ""]
    lines += [f"(declare-const X_{i} Real)" for i in range(x.size)]
    lines.append("")
    lines += [f"(declare-const Y_{j} Real)" for j in range(num_outputs)]
    lines.append("")
    for i in range(x.size):
        lines.append(f"(assert (<= X_{i} {float(hi[i])!r}))")
        lines.append(f"(assert (>= X_{i} {float(lo[i])!r}))")
    lines.append("")
    lines.append("(assert (or")
    lines += [f"    (and (>= Y_{j} Y_{label}))" for j in range(num_outputs) if j != label]
    lines.append("))")
    _write_text(path, "\n".join(lines) + "\n")
