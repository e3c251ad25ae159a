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

**Integer inputs** (``Quantize -> SignBlock+ -> Affine``, the seed's 8-bit BNN): the question
is asked over an :class:`IntegerRegion` (each input's integer range ``[lo_i, hi_i]``, plus
an optional budget: at most ``k`` changed inputs, or ``B`` grey levels in all). A first-layer
neuron is ``Σ w_i x_i >= T`` over integers (:class:`IntNeuron`); its range over the region
(box, narrowed by the budget: the ``k`` largest moves, or ``B``) decides whether it is stable.
For CNF each free input gets order literals ``d_{i,t} ⇔ x_i >= t`` (:class:`IntegerPixels`),
so ``x_i = lo_i + Σ_t d_{i,t}`` and ``-x_i = Σ_t ¬d_{i,t} - hi_i``: the neuron is again ONE
cardinality constraint over literals, ``|x_i - c_i|`` is a count of literals (the L1 budget
is one more cardinality constraint) and ``changed_i`` (``¬changed_i ⇒ x_i = c_i``) is the
pixel's "flip" literal. The MIP and IP renderings use integer columns for the inputs instead
(:func:`to_problem`); the later layers and the property are the same in all three.
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
class IntegerRegion:
    """Where the integer inputs of an integer-input BNN may go: per input an integer range
    ``[lo, hi]`` holding the input's own value (``lo == hi``: fixed), and optionally a
    ``budget`` on the change: at most that many changed inputs (``norm="card"``) or that
    many grey levels in total (``norm="l1"``, the sum of ``|x_i - c_i|``)."""

    lo: np.ndarray
    hi: np.ndarray
    budget: int | None = None
    norm: str = "card"


@dataclass
class IntNeuron:
    """An unstable first-layer neuron over integer inputs: ``var ⇔ Σ w_i x_i >= threshold``
    over the free inputs ``cols`` (``w`` = ``weight``, ±1; the fixed inputs' part is already
    in ``threshold``), the sum lying in ``[lo, hi]`` over the region."""

    var: int
    cols: np.ndarray
    weight: np.ndarray
    threshold: int
    lo: int
    hi: int


@dataclass
class IntegerPixels:
    """The integer inputs of a formula in the order (unary) encoding.

    Free input ``i`` (``lo_i < hi_i``) has the literals ``d_{i,t} ⇔ x_i >= t`` for
    ``t = lo_i + 1 .. hi_i`` (variables ``first_i + t - lo_i - 1``, contiguous, chained
    ``d_{i,t+1} ⇒ d_{i,t}``), so ``x_i = lo_i + Σ_t d_{i,t}``, and ``changed_i`` with
    ``¬changed_i ⇒ x_i = c_i`` (two clauses). ``|x_i - c_i|`` is the number of order literals
    that differ from their value at ``c_i``: the L1 distance is a count of literals too."""

    center: np.ndarray       # int64, every input
    lo: np.ndarray
    hi: np.ndarray
    changed: np.ndarray      # variable "input i differs from c_i", 0 for fixed inputs
    first: np.ndarray        # variable of d_{i, lo_i + 1}, 0 for fixed inputs

    @property
    def free(self) -> np.ndarray:
        return self.hi > self.lo

    def order_vars(self, cols: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The order variables of the inputs ``cols`` (default: all free ones), concatenated,
        and the input each belongs to."""
        cols = np.flatnonzero(self.free) if cols is None else np.asarray(cols, dtype=np.int64)
        lens = (self.hi - self.lo)[cols]
        owner = np.repeat(cols, lens)
        starts = np.repeat(self.first[cols] - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
        return starts + np.arange(int(lens.sum())), owner

    def keep_literals(self) -> np.ndarray:
        """The order literals' values at the input's own values (``+d`` where ``c >= t``)."""
        ids, owner = self.order_vars()
        t = ids - self.first[owner] + self.lo[owner] + 1
        return np.where(self.center[owner] >= t, ids, -ids)

    def chain_clauses(self) -> list[list[int]]:
        """``d_{i,t+1} ⇒ d_{i,t}`` for every free input."""
        ids, owner = self.order_vars()
        nxt = np.flatnonzero(owner[1:] == owner[:-1])
        return np.stack([-ids[nxt + 1], ids[nxt]], axis=1).tolist()

    def changed_clauses(self) -> list[list[int]]:
        """``¬changed_i ⇒ d_{i,c_i}`` (if ``c_i > lo_i``) and ``⇒ ¬d_{i,c_i+1}`` (if ``c_i < hi_i``)."""
        free = np.flatnonzero(self.free)
        ch, c, lo, hi, first = (a[free] for a in (self.changed, self.center, self.lo, self.hi,
                                                   self.first))
        below = c > lo
        above = c < hi
        out = np.stack([ch[below], first[below] + c[below] - lo[below] - 1], axis=1).tolist()
        out += np.stack([ch[above], -(first[above] + c[above] - lo[above])], axis=1).tolist()
        return out

    def values(self, true_vars: np.ndarray) -> np.ndarray:
        """The input values of a solution (``true_vars``: boolean per variable)."""
        out = self.center.copy()
        ids, owner = self.order_vars()
        free = self.free
        out[free] = self.lo[free]
        np.add.at(out, owner, np.asarray(true_vars)[ids].astype(np.int64))
        return out


@dataclass
class BnnFormula:
    """The question "does some assignment of the free pixels satisfy the property?".

    For an integer-input BNN (``integer`` set) the first layer is ``first_layer`` (integer
    rows, rendered as cardinality constraints over order literals for CNF and as big-M rows
    over integer columns for MIP/IP), the "pixel" variables are the ``changed`` literals,
    ``bits`` holds the input's integer values, and the order variables come after the
    ``num_core`` others (the MIP renderings have no columns for them)."""

    num_vars: int
    neurons: list[Neuron]
    constraints: list[AtLeast]            # property and flip budget
    clauses: list[list[int]]
    pixel_vars: np.ndarray                # variable of each pixel, 0 where the pixel is fixed
    bits: np.ndarray                      # the input's own bits (1 ⇔ +1); integer: values
    stats: dict = field(default_factory=dict)
    integer: IntegerPixels | None = None
    first_layer: list[IntNeuron] = field(default_factory=list)
    l1_budget: int | None = None          # integer inputs: Σ |x_i - c_i| <= l1_budget
    num_core: int = 0                     # integer inputs: variables before the order ones
    #: what the logits read, ``(value, var)`` per last-hidden neuron: a ±1 constant where
    #: ``var`` is 0, else the neuron's variable (VNN-LIB output rows are written over them)
    outputs: tuple | None = None

    @property
    def free(self) -> np.ndarray:
        return self.pixel_vars > 0

    def flip_literals(self) -> np.ndarray:
        """Per free pixel, the literal "this pixel differs from the input"."""
        v = self.pixel_vars[self.free]
        if self.integer is not None:
            return v
        return np.where(self.bits[self.free] == 1, -v, v)

    def original_literals(self) -> np.ndarray:
        """Per free pixel, the literal that keeps it at the input's bit (integer inputs: at
        its value)."""
        v = self.pixel_vars[self.free]
        if self.integer is not None:
            return -v
        return np.where(self.bits[self.free] == 1, v, -v)

    def l1_literals(self) -> np.ndarray:
        """Integer inputs: the order literals that are true exactly for the grey levels that
        moved (their count is ``Σ |x_i - c_i|``)."""
        return -self.integer.keep_literals()

    def all_constraints(self) -> list[AtLeast]:
        out = [c for n in self.neurons for c in n.constraints()]
        return out + self.constraints

    def first_layer_constraints(self) -> list[AtLeast]:
        """Integer inputs: each first-layer neuron ``h ⇔ Σ w_i x_i >= T`` as a pair of
        cardinality constraints over order literals (``x_i = lo_i + Σ_t d_{i,t}``;
        ``-x_i = Σ_t ¬d_{i,t} - hi_i``)."""
        pix = self.integer
        out = []
        for n in self.first_layer:
            ids, owner = pix.order_vars(n.cols)
            sign = np.repeat(n.weight, (pix.hi - pix.lo)[n.cols])
            lits = np.where(sign > 0, ids, -ids)
            off = int(-pix.lo[n.cols][n.weight > 0].sum() + pix.hi[n.cols][n.weight < 0].sum())
            out.extend(Neuron(n.var, lits, n.threshold + off, n.lo + off,
                              n.hi + off).constraints())
        return out

    def bits_from(self, true_vars: np.ndarray) -> np.ndarray:
        """The input bits of a solution (``true_vars``: boolean per variable, index = var);
        integer inputs: the input values."""
        if self.integer is not None:
            return self.integer.values(true_vars)
        bits = self.bits.copy()
        free = self.free
        bits[free] = true_vars[self.pixel_vars[free]].astype(bits.dtype)
        return bits

    def bits_from_columns(self, x: np.ndarray) -> np.ndarray:
        """The input bits of a MIP/IP solution (column ``var - 1`` holds variable ``var``);
        integer inputs: the values in the integer pixel columns after the ``num_core``."""
        if self.integer is not None:
            out = self.bits.copy()
            free = self.free
            cols = np.asarray(x)[self.num_core:self.num_core + int(free.sum())]
            out[free] = np.rint(cols).astype(out.dtype)
            return out
        return self.bits_from(np.concatenate([[False], np.asarray(x)[:self.num_vars] > 0.5]))

    def to_cnf(self) -> CnfFormula:
        """The solver-neutral model the SAT backends solve (the same variables, so a SAT
        model reads back through :meth:`bits_from`); the search prefers the input's bits
        (integer inputs: its values, and no pixel changed)."""
        if self.integer is None:
            return CnfFormula(self.num_vars, self.clauses, self.all_constraints(),
                              self.original_literals())
        pix = self.integer
        clauses = self.clauses + pix.chain_clauses() + pix.changed_clauses()
        cons = self.first_layer_constraints() + self.all_constraints()
        if self.l1_budget is not None:
            cons.append(l1_budget(self, self.l1_budget))
        preferred = np.concatenate([pix.keep_literals(), self.original_literals()])
        return CnfFormula(self.num_vars, clauses, cons, preferred)

    def size(self) -> dict:
        """Variables, clauses, cardinality constraints and their literals."""
        cons = self.all_constraints()
        out = {"variables": self.num_vars, "clauses": len(self.clauses),
               "cardinality": len(cons), "card_literals": int(sum(len(c.lits) for c in cons))}
        if self.integer is not None:
            order = int((self.integer.hi - self.integer.lo).sum())
            out.update(order_variables=order, first_layer_unstable=len(self.first_layer),
                       cardinality=len(cons) + 2 * len(self.first_layer))
        return out


@dataclass
class BnnLayers:
    """A BNN split into its parts (see :func:`bnn_layers`)."""

    binarize: Binarize | Quantize     # the input step (Quantize: 8-bit integer inputs)
    blocks: list[SignBlock]
    output: Affine
    weight: np.ndarray      # output weights (classes, inputs) as int8 ±1
    bias: np.ndarray        # output bias (float32 values)

    @property
    def integer(self) -> bool:
        """Whether the first block reads integers (``round(levels * x)``), not ±1 bits."""
        return isinstance(self.binarize, Quantize)


def bnn_layers(network: Network, allow_integer: bool = False) -> BnnLayers:
    """Check that ``network`` is ``Binarize -> SignBlock+ -> Affine(±1)`` and split it.

    ``allow_integer``: also accept ``Quantize -> SignBlock+ -> Affine(±1)`` (8-bit integer
    inputs, :class:`~verify.layers.IntegerInput`); ``parts.binarize`` is then the
    :class:`~verify.network.Quantize` layer and ``parts.integer`` is true. Callers that
    work on bits (the flip search) leave it false and get a clear error."""
    layers = network.layers
    problems = []
    if layers and isinstance(layers[0], Quantize):
        if not allow_integer:
            problems.append((layers[0].name, "8-bit integer inputs (IntegerInput): this step "
                             "works on binarised inputs (BinarizeInput) only; certify, "
                             "min-adv-* and explain handle integer inputs"))
        elif not any(isinstance(l, SignBlock) for l in layers[1:-1]):
            problems.append((layers[0].name, "integer inputs need at least one hidden "
                             "BinaryDense-Sign block"))
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
                parts: BnnLayers | None = None,
                region: IntegerRegion | None = None) -> BnnFormula:
    """The formula "some assignment of the free pixels (at most ``budget`` of them flipped)
    makes the network's label differ from ``label`` (or equal ``target``)".

    ``image``: the input as the model takes it (pixels in [0, 1]); ``free``: boolean mask of
    the pixels allowed to change (default all); ``label``: default the network's own label of
    ``image``. Neurons that the budget makes stable are constants, so the budget is part of
    the question: tighter budgets can be added later with :func:`flip_budget`.

    Integer inputs (``parts.integer``): ``region`` gives each input's integer range and the
    budget (default: free inputs anywhere in ``0..levels``, at most ``budget`` of them
    changed); the first block's neurons are integer rows (:class:`IntNeuron`) whose ranges
    use the region and the budget.
    """
    parts = parts or bnn_layers(network, allow_integer=True)
    x = network.flatten_input(image)[0]
    origin = parts.binarize.forward(x[None])[0].astype(np.int64)        # ±1 (integer: values)
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
    neurons: list[Neuron] = []
    unstable = []
    blocks = parts.blocks
    first_layer: list[IntNeuron] = []
    l1 = None
    if parts.integer:
        region = _integer_region(parts, origin, free, budget, region)
        free = region.hi > region.lo
        budget = region.budget if region.norm == "card" else None
        l1 = region.budget if region.norm == "l1" else None
        bits = origin.copy()
        pixel_vars[free] = vars_.new(int(free.sum()))
        value, var, first_layer = _integer_first_block(blocks[0], origin, region, vars_)
        unstable.append(len(first_layer))
        blocks, first = blocks[1:], False
    else:
        if region is not None:
            raise InvalidInputError("an integer region applies to integer-input BNNs only")
        pixel_vars[free] = vars_.new(int(free.sum()))
        value = np.where(free, 0, origin)
        var = pixel_vars.copy()
        first = True
    for block in blocks:
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
    formula.outputs = (value, var)      # what the logits read: ±1 constants / variables (VNN-LIB rows)
    if parts.integer:
        formula.num_core = vars_.count
        first = np.zeros(n, dtype=np.int64)
        widths = (region.hi - region.lo)[free]
        if widths.size:
            first[free] = vars_.new(int(widths.sum()))[np.concatenate([[0], np.cumsum(widths)[:-1]])]
        formula.num_vars = vars_.count
        formula.integer = IntegerPixels(origin, region.lo, region.hi, pixel_vars, first)
        formula.first_layer = first_layer
        reach = np.maximum(region.hi - origin, origin - region.lo)
        if l1 is not None and l1 < int(reach.sum()):
            formula.l1_budget = int(l1)
        formula.stats.update(l1_budget=l1, region_levels=int(widths.sum()))
    if budget is not None and budget < int(free.sum()):
        constraints.append(flip_budget(formula, budget))
    return formula


def _integer_region(parts: BnnLayers, origin: np.ndarray, free: np.ndarray, budget: int | None,
                    region: IntegerRegion | None) -> IntegerRegion:
    """The region of an integer-input formula: ``region`` (default: ``0..levels`` for the free
    inputs, a card ``budget``), with the inputs outside ``free`` fixed; checked."""
    levels = int(parts.binarize.levels)
    if region is None:
        region = IntegerRegion(np.zeros_like(origin), np.full_like(origin, levels), budget, "card")
    lo = np.asarray(region.lo, dtype=np.int64).reshape(-1)
    hi = np.asarray(region.hi, dtype=np.int64).reshape(-1)
    if lo.shape != origin.shape or hi.shape != origin.shape:
        raise InvalidInputError(f"integer region has {lo.size} entries; the network has "
                                f"{origin.size} inputs")
    if np.any(lo > origin) or np.any(hi < origin):
        raise InvalidInputError("integer region does not contain the input's own values")
    if region.norm not in ("card", "l1"):
        raise InvalidInputError(f"integer budget norm must be 'card' or 'l1', not {region.norm!r}")
    if region.budget is not None and (int(region.budget) != region.budget or region.budget < 0):
        raise InvalidInputError(f"integer budget must be a whole number ≥ 0, got {region.budget}")
    lo, hi = np.where(free, lo, origin), np.where(free, hi, origin)
    if region.norm == "l1" and region.budget is not None:      # no input moves further
        lo = np.maximum(lo, origin - int(region.budget))
        hi = np.minimum(hi, origin + int(region.budget))
    return IntegerRegion(lo, hi, None if region.budget is None else int(region.budget),
                         region.norm)


def _top_sums(gain: np.ndarray, k: int) -> np.ndarray:
    """Per row, the sum of its ``k`` largest entries (entries ≥ 0)."""
    k = min(int(k), gain.shape[1])
    if k <= 0:
        return np.zeros(gain.shape[0], dtype=np.int64)
    return -np.partition(-gain, k - 1, axis=1)[:, :k].sum(axis=1)


def _integer_first_block(block: SignBlock, center: np.ndarray, region: IntegerRegion, vars_: _Vars):
    """The first block over integer inputs: each neuron's sum ``S = Σ w_i x_i`` ranges over
    the region (box, narrowed by the budget: at most ``k`` inputs move, each by at most its
    range — the ``k`` largest moves — or at most ``B`` grey levels in all); a neuron whose
    range does not cross its threshold is a constant. Returns the ±1/0 values, the
    variables of the unstable neurons and their :class:`IntNeuron` rows."""
    W = block.weight.astype(np.int64)
    T = block.threshold.astype(np.int64)
    lo, hi = region.lo, region.hi
    Wp, Wn = np.maximum(W, 0), np.maximum(-W, 0)
    smax, smin = Wp @ hi - Wn @ lo, Wp @ lo - Wn @ hi
    if region.budget is not None:
        s0 = W @ center
        if region.norm == "card":
            up = Wp * (hi - center)[None, :] + Wn * (center - lo)[None, :]
            down = Wp * (center - lo)[None, :] + Wn * (hi - center)[None, :]
            smax = np.minimum(smax, s0 + _top_sums(up, region.budget))
            smin = np.maximum(smin, s0 - _top_sums(down, region.budget))
        else:
            smax = np.minimum(smax, s0 + region.budget)
            smin = np.maximum(smin, s0 - region.budget)
    on, off = smin >= T, smax < T
    mid = ~(on | off)
    value = np.where(on, 1, np.where(off, -1, 0))
    var = np.zeros(block.n_out, dtype=np.int64)
    var[mid] = vars_.new(int(mid.sum()))
    free = hi > lo
    fixed_part = W[:, ~free] @ center[~free]
    rows = []
    for j in np.flatnonzero(mid):
        cols = np.flatnonzero(free & (W[j] != 0))
        c = int(fixed_part[j])
        rows.append(IntNeuron(int(var[j]), cols, W[j, cols], int(T[j]) - c, int(smin[j]) - c,
                              int(smax[j]) - c))
    return value, var, rows


def l1_budget(formula: BnnFormula, total: int, selector: int = 0) -> AtLeast:
    """Integer inputs: ``Σ |x_i - c_i| <= total`` grey levels, as a count of order literals
    (only when ``selector`` is true, if one is given)."""
    lits = formula.l1_literals()
    return AtLeast(-lits, len(lits) - int(total), selector)


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


OBJECTIVES = ("card", "l1", "linf", "l2")


def to_problem(formula: BnnFormula, encoding: str = "ip", minimize_flips: bool = False,
               name: str = "bnn", objective: str | None = None) -> Problem:
    """The formula as a 0-1 problem for the MIP backends.

    ``encoding="ip"``: every cardinality constraint as one row on binaries,
    ``Σ lits - C·[guard] >= 0`` (pure integer). ``encoding="mip"``: each unstable neuron
    also gets a continuous column ``z`` = its count (bounds: the count's range over the
    region) and big-M rows ``z >= C - (C - lo)(1 - h)``, ``z <= C - 1 + (hi - C + 1) h``, as in
    Narodytska et al.'s MILP. With ``minimize_flips`` the objective is the number of flipped
    pixels; otherwise it is a feasibility problem.

    Integer inputs (both encodings): one integer column ``x_i ∈ [lo_i, hi_i]`` per free
    input (block ``pixels``, after the ``num_core`` binaries), each unstable first-layer
    neuron as the big-M rows ``S - (T - lo) h >= lo`` and ``S - (hi - T + 1) h <= T - 1`` on
    ``S = Σ w_i x_i`` (``[lo, hi]``: its range over the region), ``changed_i`` linked by
    ``x_i - (hi_i - c_i) changed_i <= c_i`` and ``x_i + (c_i - lo_i) changed_i >= c_i``, the
    rest as for binarised inputs. ``objective``: ``"card"`` (= ``minimize_flips``: changed
    inputs), ``"l1"`` (``x - c = p - n``, ``Σ p + n``), ``"linf"`` (``t >= |x_i - c_i|``) or
    ``"l2"`` (``Σ (x_i - c_i)²``, quadratic: SCIP); an L1 budget is the row ``Σ p + n <= B``.
    """
    if encoding not in ("mip", "ip"):
        raise InvalidInputError(f"encoding must be 'mip' or 'ip' here, not {encoding!r}")
    objective = objective or ("card" if minimize_flips else None)
    if objective is not None and objective not in OBJECTIVES:
        raise InvalidInputError(f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
    if formula.integer is None and objective not in (None, "card"):
        raise InvalidInputError(f"a BNN with binarised inputs measures flips only, not {objective}")
    b = ProblemBuilder(name)
    if formula.integer is not None:
        b.add_vars("bits", formula.num_core, 0.0, 1.0, integer=True)
        _add_integer_inputs(b, formula, objective)
    else:
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
    if objective == "card":
        cols, coef, const = _literal_terms(formula.flip_literals())
        b.set_cost(cols, coef)
        b.offset = float(const)
    return b.build()


def _add_integer_inputs(b: ProblemBuilder, formula: BnnFormula, objective: str | None) -> None:
    """The integer columns, the first layer's big-M rows, the ``changed`` links and the
    distance columns of an integer-input formula (see :func:`to_problem`)."""
    pix = formula.integer
    free = np.flatnonzero(pix.free)
    c, lo, hi = pix.center[free], pix.lo[free], pix.hi[free]
    k = len(free)
    x = b.add_vars("pixels", k, lo.astype(float), hi.astype(float), integer=True)
    col_of = np.full(len(pix.center), -1, dtype=np.int64)
    col_of[free] = x
    for n in formula.first_layer:
        cols = np.append(col_of[n.cols], n.var - 1)
        w = n.weight.astype(float)
        # h = 1 ⇒ S >= T;  h = 0 ⇒ S <= T - 1
        b.add_rows(np.zeros(len(cols)), cols, np.append(w, -(n.threshold - n.lo)), n.lo, np.inf,
                   count=1)
        b.add_rows(np.zeros(len(cols)), cols, np.append(w, -(n.hi - n.threshold + 1)), -np.inf,
                   n.threshold - 1, count=1)
    ch = pix.changed[free] - 1
    pairs = np.repeat(np.arange(k), 2)
    both = np.stack([x, ch], axis=1).ravel()
    b.add_rows(pairs, both, np.stack([np.ones(k), -(hi - c)], axis=1).ravel(), -np.inf, c, count=k)
    b.add_rows(pairs, both, np.stack([np.ones(k), (c - lo).astype(float)], axis=1).ravel(), c,
               np.inf, count=k)
    if objective == "l1" or formula.l1_budget is not None:
        p = b.add_vars("up", k, 0.0, (hi - c).astype(float), cost=1.0 if objective == "l1" else 0.0)
        m = b.add_vars("down", k, 0.0, (c - lo).astype(float),
                       cost=1.0 if objective == "l1" else 0.0)
        trip = np.stack([x, p, m], axis=1).ravel()
        b.add_rows(np.repeat(np.arange(k), 3), trip, np.tile([1.0, -1.0, 1.0], k), c, c, count=k)
        if formula.l1_budget is not None:
            b.add_rows(np.zeros(2 * k), np.concatenate([p, m]), np.ones(2 * k), -np.inf,
                       formula.l1_budget, count=1)
    if objective == "linf":
        t = b.add_vars("linf", 1, 0.0, float(max(1, int((hi - lo).max(initial=0)))), cost=1.0)[0]
        both = np.stack([x, np.full(k, t)], axis=1).ravel()
        b.add_rows(pairs, both, np.tile([1.0, -1.0], k), -np.inf, c, count=k)
        b.add_rows(pairs, both, np.tile([1.0, 1.0], k), c, np.inf, count=k)
    elif objective == "l2":
        b.add_quadratic(x, x, np.full(k, 2.0))
        b.set_cost(x, -2.0 * c)
        b.offset = float(np.sum(c.astype(float) ** 2))


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
