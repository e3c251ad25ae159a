"""Greedy flip search on a binarized network (BNN): the attack that the BNN tasks also use
as their first, incomplete step.

The search works on the ±1 bits that the network's first :class:`~verify.network.Binarize`
layer makes of the input: each step scores every single flip at once and keeps one that
lowers the margin most. :func:`directed_flips` (the BNN tasks' first step) scores the flips
on a smooth stand-in for the network instead, once per label it may reach, which finds far
closer examples (:func:`directed_search` is its walk, which the integer-input BNN tasks
reuse with moves over grey levels). What they need of their caller is :class:`FlipProblem`; a
:class:`FlipSearch` is the plain one the attack builds, and the BNN tasks' ``BnnTask``
provides the same attributes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np

from .. import interrupts
from ..encodings.bnn import BnnLayers, bnn_layers
from ..network import Network


class FlipProblem(Protocol):
    """What the flip search needs: the network and its BNN parts, the input, its label and
    target, the input's own bits, the image of some bits, and whether a label is wanted."""

    center: np.ndarray
    label: int
    target: int | None
    parts: BnnLayers

    @property
    def network(self) -> Network: ...

    @property
    def bits(self) -> np.ndarray: ...

    def image(self, bits: np.ndarray) -> np.ndarray: ...

    def reaches(self, label: int) -> bool: ...


@dataclass
class FlipSearch:
    """A flip search on ``network`` around ``center`` (flat, in [0, 1])."""

    network: Network
    center: np.ndarray
    label: int
    target: int | None
    parts: BnnLayers

    @classmethod
    def create(cls, network: Network, center: np.ndarray, label: int,
               target: int | None) -> "FlipSearch":
        return cls(network, center, label, target, bnn_layers(network))

    @cached_property
    def bits(self) -> np.ndarray:
        """The input's own bits (1 ⇔ +1)."""
        return input_bits(self)

    def reaches(self, label: int) -> bool:
        """Whether ``label`` is what the search looks for (the target, or any other label)."""
        return label == self.target if self.target is not None else label != self.label

    def image(self, bits: np.ndarray) -> np.ndarray:
        return flipped_image(self, bits)


def input_bits(task: FlipProblem) -> np.ndarray:
    """The bits (1 ⇔ +1) of ``task``'s input."""
    return (task.parts.binarize.forward(task.center[None])[0] > 0).astype(np.int8)


def flipped_image(task: FlipProblem, bits: np.ndarray) -> np.ndarray:
    """The input with the pixels whose bit differs flipped (to 0.0 or 1.0)."""
    out = task.center.copy()
    flipped = bits != task.bits
    out[flipped] = np.where(task.bits[flipped] == 1, 0.0, 1.0)
    return out


def single_flip_logits(task: FlipProblem, v: np.ndarray) -> np.ndarray:
    """Logits after flipping each single input value of ``v`` (±1), all at once: row i is
    ``v`` with entry i flipped. The first layer's sums move by one weight column each."""
    if not task.parts.blocks:
        return task.network.forward_from(1, v[None, :] * (1 - 2 * np.eye(len(v))))
    return logits_from_sums(task, first_layer_sums(task, v))


def logits_from_sums(task: FlipProblem, sums: np.ndarray) -> np.ndarray:
    """The network's logits when its first sign block's sums are ``sums`` (one row each)."""
    first = task.parts.blocks[0]
    return task.network.forward_from(2, np.where(sums >= first.threshold[None, :], 1.0, -1.0))


def first_layer_sums(task: FlipProblem, v: np.ndarray) -> np.ndarray:
    """The first sign block's sums ``W v`` after flipping each single input value of ``v``
    (±1), all at once: row i is the sums with entry i flipped (they move by one column)."""
    w = task.parts.blocks[0].weight.astype(np.float64)
    return (w @ v)[None, :] - 2.0 * (w * v[None, :]).T                  # (pixels, units)


def smooth_logits(parts: BnnLayers, sums: np.ndarray, temperature: float) -> np.ndarray:
    """The logits of a smooth stand-in for the network, from the first block's sums (rows):
    every ``sign(z - t)`` becomes ``tanh((z - t) / (temperature · sqrt(fan_in)))``.

    The network's own logits are integers that most single flips leave unchanged, so a
    greedy search on them walks plateaus at random; the smooth logits also count how close
    each neuron is to switching, and so say which flips lead towards a switch. (A stand-in
    for the search only: nothing is claimed from it; every example is checked on the
    network.)"""
    def smooth_sign(z: np.ndarray, block) -> np.ndarray:
        return np.tanh((z - block.threshold) / (temperature * np.sqrt(block.weight.shape[1])))

    h = smooth_sign(sums, parts.blocks[0])
    for block in parts.blocks[1:]:
        h = smooth_sign(h @ block.weight.T.astype(np.float64), block)
    return h @ parts.weight.T.astype(np.float64) + parts.bias


#: The temperature of :func:`smooth_logits` in :func:`directed_flips`. Measured on the bundled
#: ``bnn`` (the first 20 test digits; flips found, summed over the digits, above the proven
#: minima or best known): temperature 0.1: 74, 0.2: 47, 0.3: 37, 0.5: 22 (at most 4 on one
#: digit; 0.28 s a digit), 1.0: 32; :func:`greedy_flips` on the network's own logits (coarse
#: and fine, pruned): 437.
SMOOTH_TEMPERATURE = 0.5


def directed_flips(task: FlipProblem, max_flips: int, deadline: float | None = None,
                   temperature: float = SMOOTH_TEMPERATURE) -> np.ndarray | None:
    """The fewest-flip adversarial bits found by greedy searches on the smooth logits
    (:func:`smooth_logits`), one per label the task may reach (the target; untargeted: every
    other label, and the label's margin against the best other), each result pruned; None
    if none is found within ``max_flips`` flips (or before ``deadline``, or a stop request),
    or the network has no sign block. See :func:`directed_search`; the moves are single
    flips of bits not flipped yet."""
    if not task.parts.blocks:                     # no sign block: nothing to smooth
        return None
    start = task.parts.binarize.forward(task.center[None])[0]

    def moves(v: np.ndarray):
        pixels = np.flatnonzero(v == start)       # no flipping back
        return pixels, -v[pixels], first_layer_sums(task, v)[pixels]

    return directed_search(task, start, moves, max_flips,
                           lambda v: prune_flips(task, (v > 0).astype(np.int8)),
                           lambda bits: int(np.count_nonzero(bits != task.bits)),
                           deadline, temperature)


def directed_search(task: FlipProblem, start: np.ndarray, moves, max_steps: int,
                    finish, size, deadline: float | None = None,
                    temperature: float = SMOOTH_TEMPERATURE):
    """Greedy searches from the first block's input ``start``, one per label the task may
    reach, on the network's smooth stand-in (:func:`smooth_logits`); the smallest example
    found (by ``size``), or None.

    ``moves(v)`` gives the single-pixel moves open from ``v``: pixels, their new values and
    the first block's sums after each (rows). Each step scores every move at once: the
    network's own labels first (a move that reaches a wanted label ends that search, and
    ``finish(v)`` makes the example, e.g. pruned), else the smooth margin
    ``s_label - s_goal`` (the label's own search: ``s_label - max_other``), and takes the
    lowest. A later search stops one step short of the best size so far. Nothing is claimed
    from the stand-in: each example is reached on the network's own labels."""
    net = task.network
    single = net.num_outputs == 1                  # one logit: its sign is the label
    goals: list[int | None]
    if single:
        goals = [None]
    elif task.target is not None:
        goals = [task.target]
    else:
        goals = [None] + [c for c in range(net.num_outputs) if c != task.label]
    best, best_size = None, max_steps + 1
    for goal in goals:
        v = start.copy()
        for _ in range(best_size - 1 if best is not None else max_steps):
            if (deadline is not None and time.perf_counter() > deadline) or interrupts.stop_requested():
                return best
            pixels, values, sums = moves(v)
            if pixels.size == 0:
                break
            labels = net.labels_from_logits(logits_from_sums(task, sums))
            hits = np.flatnonzero([task.reaches(int(c)) for c in labels])
            if hits.size:
                v[pixels[hits[0]]] = values[hits[0]]
                found = finish(v)
                found_size = size(found)
                if best is None or found_size < best_size:
                    best, best_size = found, found_size
                break
            soft = smooth_logits(task.parts, sums, temperature)
            if single:
                score = soft[:, 0] if task.label == 1 else -soft[:, 0]
            else:
                rival = (np.delete(soft, task.label, axis=1).max(axis=1) if goal is None
                         else soft[:, goal])
                score = soft[:, task.label] - rival
            k = int(np.argmin(score))
            v[pixels[k]] = values[k]
    return best


def greedy_flips(task: FlipProblem, max_flips: int, restarts: int = 3, seed: int = 0,
                 batch: int = 1, deadline: float | None = None) -> np.ndarray | None:
    """Bits within ``max_flips`` flips that the network labels adversarially, or None.

    Each step scores every single flip at once (the first layer's sums change by one column
    of its weights) and takes one that lowers the margin ``s_label - max_other`` (targeted:
    ``max_other - s_target``) most; ties, common with integer logits, are broken at random,
    with a few restarts. ``batch > 1`` flips that many of the best-scored pixels per step
    (scores taken one at a time, so coarser; far fewer steps for examples that need many
    flips — prune the result with :func:`prune_flips`). ``deadline`` (a
    ``time.perf_counter()`` value): the search gives up (None) once it passes.
    """
    net = task.network
    rng = np.random.default_rng(seed)
    start = task.parts.binarize.forward(task.center[None])[0]

    def margin(logits: np.ndarray) -> np.ndarray:
        labels = net.labels_from_logits(logits)
        if task.target is not None:
            others = np.delete(logits, task.target, axis=1).max(axis=1)
            score = others - logits[:, task.target]
            return np.where(labels == task.target, -np.inf, score)
        others = np.delete(logits, task.label, axis=1).max(axis=1)
        return np.where(labels != task.label, -np.inf, logits[:, task.label] - others)

    for _ in range(restarts):
        v = start.copy()
        for _ in range(max_flips):
            if deadline is not None and time.perf_counter() > deadline:
                return None
            scores = margin(single_flip_logits(task, v))
            scores[v != start] = np.inf                                       # no flipping back
            best = scores.min()
            if not np.isfinite(best) and best > 0:
                break
            if batch > 1 and best != -np.inf:
                # the batch best, ties in random order (a random key breaks them)
                order = np.lexsort((rng.random(len(scores)), scores))
                choice = order[:min(batch, max_flips - int(np.count_nonzero(v != start)))]
                choice = choice[np.isfinite(scores[choice])]
                if not choice.size:
                    break
            else:
                choice = rng.choice(np.flatnonzero(scores == best))
            v[choice] = -v[choice]
            if best == -np.inf:
                return (v > 0).astype(np.int8)
            if batch > 1 and task.reaches(int(net.labels_from_logits(net.forward_from(1, v[None]))[0])):
                return (v > 0).astype(np.int8)
            if np.count_nonzero(v != start) >= max_flips:
                break
    return None


def prune_flips(task: FlipProblem, bits: np.ndarray) -> np.ndarray:
    """Revert, one at a time, the flips of an adversarial ``bits`` that are not needed for it
    to stay adversarial on the network (a solver's answer often flips more than it needs)."""
    net = task.network
    bits = bits.copy()
    for p in np.flatnonzero(bits != task.bits):
        trial = bits.copy()
        trial[p] = task.bits[p]
        if task.reaches(net.label(task.image(trial))):
            bits = trial
    return bits
