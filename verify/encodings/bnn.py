"""Exact encodings of binarized networks (BNNs): one cardinality formula, three renderings.

A BNN in the IR is ``Binarize -> SignBlock ... SignBlock -> Affine(±1 weights)``: pixels
become ±1 bits, each hidden neuron outputs ``+1`` iff ``Σ_i w_i v_i >= T`` (integer ``w`` in
{-1, 0, 1}, integer ``T``; batch norm folded in exactly), and the logits are integer sums.

**The formula** (:func:`bnn_formula`). Boolean variable ``x`` true ⇔ the value is ``+1``.
For a row ``a`` with entries in {-1, 0, 1} over ±1 values, write ``l_i = x_i`` if
``a_i = +1`` and ``¬x_i`` if ``a_i = -1``; then ``Σ a_i v_i = 2·#true(l) - m`` (``m`` nonzero
entries), so ``Σ a_i v_i >= θ`` ⇔ ``#true(l) >= ⌈(θ + m) / 2⌉``: one cardinality
constraint. Values that the region fixes are constants and leave the sum first.

* A hidden neuron is *stable* when the range of its count over the region already decides
  it (the first layer's range uses the flip budget: at most ``k`` of its inputs move). A
  stable neuron is a constant; an unstable one gets a variable ``h`` and the pair
  ``h ⇒ #l >= C`` and ``¬h ⇒ #¬l >= m - C + 1`` (i.e. ``h ⇔ #l >= C``).
* Logits: ``s_j - s_c = Σ (w_j - w_c)_i v_i`` has coefficients in {-2, 0, 2}, so every
  pairwise comparison is again one cardinality constraint. The label is the *first* index of
  the largest logit (``argmax``), so class ``j`` beats class ``c`` when ``s_j >= s_c`` for
  ``j < c`` and ``s_j > s_c`` for ``j > c`` (a real-valued output bias shifts these integer
  thresholds; it is accepted only when float32 evaluation agrees with them on every pair of
  reachable logits, checked exhaustively).
* *Label change* from ``c``: an indicator ``a_j ⇒ (j beats c)`` per other class and the
  clause ``∨ a_j``. *Target* ``t``: ``t`` beats every other class, as hard constraints.
* *Flip budget* ``k``: with ``f_i`` the literal "pixel i differs from the input",
  ``#f <= k`` (as ``#¬f >= n - k``), optionally guarded by a selector literal so that
  incremental solving can tighten ``k`` under assumptions.

**Renderings**: :func:`to_problem` turns the formula into a MIP (Narodytska et al.: one
continuous column per unstable neuron holding its count, bounded by the region's range,
linked to the binary output by big-M rows) or a pure 0-1 IP (the cardinality rows directly
on binaries, no continuous columns); both minimise the number of flipped pixels when asked.
:mod:`verify.backends.sat` renders it as CNF with native cardinality constraints or with a
clausal cardinality encoding from ``pysat.card``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidInputError, UnsupportedLayerError
from ..network import Affine, Binarize, Network, Quantize, SignBlock
from ..cnf import AtLeast, CnfFormula
from ..problem import Problem, ProblemBuilder

ENCODINGS = ("cnf", "mip", "ip")


@dataclass
class Neuron:
    """An unstable binarized neuron: variable ``var`` ⇔ ``#true(lits) >= bound``."""

    var: int
    lits: np.ndarray
    bound: int
    lo: int
    hi: int

    def constraints(self) -> tuple[AtLeast, AtLeast]:
        """``var ⇒ #l >= C`` and ``¬var ⇒ #¬l >= m - C + 1``."""
        m = len(self.lits)
        return (AtLeast(self.lits, self.bound, self.var, self.lo, self.hi),
                AtLeast(-self.lits, m - self.bound + 1, -self.var, m - self.hi, m - self.lo))


@dataclass
class BnnFormula:
    """The question "does some assignment of the free pixels satisfy the property?"."""

    num_vars: int
    neurons: list[Neuron]
    constraints: list[AtLeast]            # property and flip budget
    clauses: list[list[int]]
    pixel_vars: np.ndarray                # variable of each pixel, 0 where the pixel is fixed
    bits: np.ndarray                      # the input's own bits (1 ⇔ +1)
    stats: dict = field(default_factory=dict)

    @property
    def free(self) -> np.ndarray:
        return self.pixel_vars > 0

    def flip_literals(self) -> np.ndarray:
        """Per free pixel, the literal "this pixel differs from the input"."""
        v = self.pixel_vars[self.free]
        return np.where(self.bits[self.free] == 1, -v, v)

    def original_literals(self) -> np.ndarray:
        """Per free pixel, the literal that keeps it at the input's bit."""
        v = self.pixel_vars[self.free]
        return np.where(self.bits[self.free] == 1, v, -v)

    def all_constraints(self) -> list[AtLeast]:
        out = [c for n in self.neurons for c in n.constraints()]
        return out + self.constraints

    def bits_from(self, true_vars: np.ndarray) -> np.ndarray:
        """The input bits of a solution (``true_vars``: boolean per variable, index = var)."""
        bits = self.bits.copy()
        free = self.free
        bits[free] = true_vars[self.pixel_vars[free]].astype(bits.dtype)
        return bits

    def bits_from_columns(self, x: np.ndarray) -> np.ndarray:
        """The input bits of a MIP/IP solution (column ``var - 1`` holds variable ``var``)."""
        return self.bits_from(np.concatenate([[False], np.asarray(x)[:self.num_vars] > 0.5]))

    def to_cnf(self) -> CnfFormula:
        """The solver-neutral model the SAT backends solve (the same variables, so a SAT
        model reads back through :meth:`bits_from`); the search prefers the input's bits."""
        return CnfFormula(self.num_vars, self.clauses, self.all_constraints(),
                          self.original_literals())

    def size(self) -> dict:
        """Variables, clauses, cardinality constraints and their literals."""
        cons = self.all_constraints()
        return {"variables": self.num_vars, "clauses": len(self.clauses),
                "cardinality": len(cons), "card_literals": int(sum(len(c.lits) for c in cons))}


@dataclass
class BnnLayers:
    """A BNN split into its parts (see :func:`bnn_layers`)."""

    binarize: Binarize
    blocks: list[SignBlock]
    output: Affine
    weight: np.ndarray      # output weights (classes, inputs) as int8 ±1
    bias: np.ndarray        # output bias (float32 values)


def bnn_layers(network: Network) -> BnnLayers:
    """Check that ``network`` is ``Binarize -> SignBlock+ -> Affine(±1)`` and split it."""
    layers = network.layers
    problems = []
    if layers and isinstance(layers[0], Quantize):
        problems.append((layers[0].name, "8-bit integer inputs (IntegerInput): the BNN "
                         "encodings need binarised inputs (BinarizeInput); the network still "
                         "runs in Keras and in the IR"))
    elif not layers or not isinstance(layers[0], Binarize):
        problems.append((network.name, "a BNN must start with BinarizeInput"))
    blocks = [l for l in layers[1:-1]]
    for l in blocks:
        if not isinstance(l, SignBlock):
            problems.append((l.name, f"{type(l).__name__} between binarized blocks"))
    out = layers[-1] if layers else None
    if not isinstance(out, Affine) or out.kind != "binary_dense":
        problems.append((getattr(out, "name", "output"), "the last layer must be a BinaryDense "
                         "without batch norm (integer logits)"))
    if problems:
        raise UnsupportedLayerError(problems)
    weight = out.dense_weight()
    if not np.all(np.isin(weight, (-1.0, 1.0))):
        raise UnsupportedLayerError([(out.name, "output weights are not ±1")])
    bias = out.bias.astype(np.float32)
    if network.num_outputs < 2:
        raise UnsupportedLayerError([(out.name, "a BNN needs at least two output classes")])
    _check_output_bias(weight.shape[1], bias, out.name)
    return BnnLayers(layers[0], blocks, out, weight.astype(np.int8), bias)


def _beats_threshold(bias: np.ndarray, j: int, c: int) -> int:
    """The integer θ with: class ``j`` beats class ``c`` ⇔ ``s_j - s_c >= θ`` (``s`` the
    integer sums before the bias; ties go to the smaller index, as argmax does)."""
    gap = float(bias[c]) - float(bias[j])
    return int(np.ceil(gap)) if j < c else int(np.floor(gap)) + 1


def _check_output_bias(n_in: int, bias: np.ndarray, name: str) -> None:
    """Accept a real output bias only if float32 logits compare exactly as the integer
    thresholds say, for every pair of classes and every reachable pair of sums."""
    if not np.any(bias):
        return
    sums = np.arange(-n_in, n_in + 1, 2, dtype=np.float32)
    for j in range(len(bias)):
        oj = sums + bias[j]
        for c in range(len(bias)):
            if j == c:
                continue
            oc = sums + bias[c]
            beats = (oj[:, None] >= oc[None, :]) if j < c else (oj[:, None] > oc[None, :])
            rule = (sums[:, None] - sums[None, :]) >= _beats_threshold(bias, j, c)
            if np.any(beats != rule):
                raise UnsupportedLayerError([(name, f"output bias makes classes {j} and {c} "
                                              "tie in float32 where the exact rule does not")])


class _Vars:
    def __init__(self):
        self.count = 0

    def new(self, n: int = 1) -> np.ndarray:
        ids = np.arange(self.count + 1, self.count + n + 1)
        self.count += n
        return ids


def _rows_as_counts(rows: np.ndarray, theta: np.ndarray, value: np.ndarray, var: np.ndarray,
                    origin: np.ndarray | None, budget: int | None):
    """For rows ``a`` (k, n) and thresholds θ: ``Σ a_i v_i >= θ`` as counts over literals.

    ``value`` holds ±1 for constant inputs and 0 for variable ones (``var`` their ids).
    Returns, per row, ``(lits, C, lo, hi)`` where the row holds ⇔ ``#true(lits) >= C`` and the
    count lies in [lo, hi] over the region. When the inputs are the pixels and a flip
    ``budget`` is given, ``origin`` (the input's ±1 values) narrows the range to at most
    ``budget`` changes from the count at the input.
    """
    rows = rows.astype(np.int64)
    const = value != 0
    c = rows[:, const] @ value[const].astype(np.int64)
    free = np.flatnonzero(~const)
    sub = rows[:, free]
    m = np.count_nonzero(sub, axis=1)
    need = -((-(theta - c + m)) // 2)                       # ⌈(θ - c + m) / 2⌉
    lo, hi = np.zeros_like(m), m.copy()
    if budget is not None and origin is not None:
        at_origin = np.count_nonzero(sub * origin[free][None, :] == 1, axis=1)
        lo, hi = np.maximum(lo, at_origin - budget), np.minimum(hi, at_origin + budget)
    lits = [var[free][sub[r] != 0] * sub[r][sub[r] != 0] for r in range(len(rows))]
    return lits, need, lo, hi


def bnn_formula(network: Network, image: np.ndarray, free: np.ndarray | None = None,
                budget: int | None = None, label: int | None = None, target: int | None = None,
                parts: BnnLayers | None = None) -> BnnFormula:
    """The formula "some assignment of the free pixels (at most ``budget`` of them flipped)
    makes the network's label differ from ``label`` (or equal ``target``)".

    ``image``: the input as the model takes it (pixels in [0, 1]); ``free``: boolean mask of
    the pixels allowed to change (default all); ``label``: default the network's own label of
    ``image``. Neurons that the budget makes stable are constants, so the budget is part of
    the question: tighter budgets can be added later with :func:`flip_budget`.
    """
    parts = parts or bnn_layers(network)
    x = network.flatten_input(image)[0]
    origin = parts.binarize.forward(x[None])[0].astype(np.int64)        # ±1
    bits = (origin > 0).astype(np.int8)
    n = len(origin)
    free = np.ones(n, bool) if free is None else np.asarray(free, bool).reshape(-1)
    if free.shape != (n,):
        raise InvalidInputError(f"free mask has {free.size} entries; the network has {n} inputs")
    if label is None:
        label = network.label(x)
    classes = parts.weight.shape[0]
    if target is not None and not 0 <= int(target) < classes:
        raise InvalidInputError(f"target {target} is not a class index (0..{classes - 1})")
    vars_ = _Vars()
    pixel_vars = np.zeros(n, dtype=np.int64)
    pixel_vars[free] = vars_.new(int(free.sum()))
    value = np.where(free, 0, origin)
    var = pixel_vars.copy()
    neurons: list[Neuron] = []
    unstable = []
    first = True
    for block in parts.blocks:
        lits, need, lo, hi = _rows_as_counts(block.weight, block.threshold, value, var,
                                             origin if first else None, budget)
        on, off = lo >= need, hi < need
        mid = ~(on | off)
        new_value = np.where(on, 1, np.where(off, -1, 0))
        new_var = np.zeros(block.n_out, dtype=np.int64)
        new_var[mid] = vars_.new(int(mid.sum()))
        for j in np.flatnonzero(mid):
            neurons.append(Neuron(int(new_var[j]), lits[j], int(need[j]), int(lo[j]), int(hi[j])))
        unstable.append(int(mid.sum()))
        value, var, first = new_value, new_var, False

    constraints: list[AtLeast] = []
    clauses: list[list[int]] = []
    w, b = parts.weight.astype(np.int64), parts.bias
    origin_last = origin if first else None        # no hidden blocks: logits read pixels

    def pairwise(winner: int, others: list[int]):
        rows = np.stack([(w[winner] - w[o]) // 2 for o in others])
        theta = np.array([_beats_threshold(b, winner, o) for o in others], dtype=np.int64)
        half = -((-theta) // 2)                                      # ⌈θ / 2⌉
        return _rows_as_counts(rows, half, value, var, origin_last, budget)

    if target is not None:
        target = int(target)
        others = [j for j in range(classes) if j != target]
        if target == label:
            raise InvalidInputError(f"target {target} is the label itself")
        lits, need, lo, hi = pairwise(target, others)
        for k in range(len(others)):
            if hi[k] < need[k]:
                clauses.append([])                                  # cannot beat that class
            elif lo[k] < need[k]:
                constraints.append(AtLeast(lits[k], int(need[k]), 0, int(lo[k]), int(hi[k])))
    else:
        any_other = []
        for j in (j for j in range(classes) if j != label):
            lits, need, lo, hi = pairwise(j, [label])
            lits, need, lo, hi = lits[0], int(need[0]), int(lo[0]), int(hi[0])
            if hi < need:
                continue                                            # j can never beat label
            a = int(vars_.new()[0])
            any_other.append(a)
            if lo < need:
                constraints.append(AtLeast(lits, need, a, lo, hi))
        clauses.append(any_other)                                   # empty: no class can win

    formula = BnnFormula(vars_.count, neurons, constraints, clauses, pixel_vars, bits,
                         {"unstable": unstable, "free_pixels": int(free.sum()), "budget": budget,
                          "label": int(label), "target": target})
    if budget is not None and budget < int(free.sum()):
        constraints.append(flip_budget(formula, budget))
    return formula


def flip_budget(formula: BnnFormula, k: int, selector: int = 0) -> AtLeast:
    """At most ``k`` flipped pixels (only when ``selector`` is true, if one is given: a budget
    to tighten under assumptions in an incremental solver)."""
    flips = formula.flip_literals()
    return AtLeast(-flips, len(flips) - int(k), selector)


# ---------------------------------------------------------------------------------------------
# MIP and pure-IP renderings

def _literal_terms(lits: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``Σ lits`` as ``cols, coefficients, constant`` over 0/1 columns (column = var - 1)."""
    lits = np.asarray(lits, dtype=np.int64)
    return np.abs(lits) - 1, np.where(lits > 0, 1.0, -1.0), int(np.count_nonzero(lits < 0))


def to_problem(formula: BnnFormula, encoding: str = "ip", minimize_flips: bool = False,
               name: str = "bnn") -> Problem:
    """The formula as a 0-1 problem for the MIP backends.

    ``encoding="ip"``: every cardinality constraint as one row on binaries,
    ``Σ lits - C·[guard] >= 0`` (pure integer). ``encoding="mip"``: each unstable neuron
    also gets a continuous column ``z`` = its count (bounds: the count's range over the
    region) and big-M rows ``z >= C - (C - lo)(1 - h)``, ``z <= C - 1 + (hi - C + 1) h``, as in
    Narodytska et al.'s MILP. With ``minimize_flips`` the objective is the number of flipped
    pixels; otherwise it is a feasibility problem.
    """
    if encoding not in ("mip", "ip"):
        raise InvalidInputError(f"encoding must be 'mip' or 'ip' here, not {encoding!r}")
    b = ProblemBuilder(name)
    b.add_vars("bits", formula.num_vars, 0.0, 1.0, integer=True)
    b.blocks["pixels"] = formula.pixel_vars[formula.free] - 1
    rows = formula.constraints if encoding == "mip" else formula.all_constraints()
    for con in rows:
        _add_at_least(b, con)
    if encoding == "mip":
        for neuron in formula.neurons:
            _add_neuron_bigm(b, neuron)
    for clause in formula.clauses:
        cols, coef, const = _literal_terms(np.asarray(clause, dtype=np.int64))
        b.add_rows(np.zeros(len(cols)), cols, coef, 1 - const, np.inf, count=1)
    if minimize_flips:
        cols, coef, const = _literal_terms(formula.flip_literals())
        b.set_cost(cols, coef)
        b.offset = float(const)
    return b.build()


def _add_at_least(b: ProblemBuilder, con: AtLeast) -> None:
    cols, coef, const = _literal_terms(con.lits)
    bound = con.bound - const
    if con.guard:
        gcol, gcoef, gconst = _literal_terms(np.array([con.guard]))
        # Σ lits >= C·[g], [g] = gcoef·x + gconst
        cols = np.concatenate([cols, gcol])
        coef = np.concatenate([coef, -con.bound * gcoef])
        bound = con.bound * gconst - const
    b.add_rows(np.zeros(len(cols)), cols, coef, bound, np.inf, count=1)


def _add_neuron_bigm(b: ProblemBuilder, neuron: Neuron) -> None:
    z = b.add_vars(None, 1, neuron.lo, neuron.hi)[0]
    cols, coef, const = _literal_terms(neuron.lits)
    h = neuron.var - 1
    C, lo, hi = neuron.bound, neuron.lo, neuron.hi
    # z = Σ lits
    b.add_rows(np.zeros(len(cols) + 1), np.append(cols, z), np.append(coef, -1.0), -const, -const,
               count=1)
    # h = 1 ⇒ z >= C:  z - (C - lo) h >= lo
    b.add_rows([0, 0], [z, h], [1.0, -(C - lo)], lo, np.inf, count=1)
    # h = 0 ⇒ z <= C - 1:  z - (hi - C + 1) h <= C - 1
    b.add_rows([0, 0], [z, h], [1.0, -(hi - C + 1)], -np.inf, C - 1, count=1)
