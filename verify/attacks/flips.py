"""Greedy flip search on a binarized network (BNN): the attack that the BNN tasks also use
as their first, incomplete step.

The search works on the ±1 bits that the network's first :class:`~verify.network.Binarize`
layer makes of the input: each step scores every single flip at once and keeps one that
lowers the margin most. What it needs of its caller is :class:`FlipProblem`; a
:class:`FlipSearch` is the plain one the attack builds, and the BNN tasks' ``BnnTask``
provides the same attributes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np

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
    net, first = task.network, (task.parts.blocks[0] if task.parts.blocks else None)
    if first is None:
        return net.forward_from(1, v[None, :] * (1 - 2 * np.eye(len(v))))
    w = first.weight.astype(np.float64)
    moved = (w @ v)[None, :] - 2.0 * (w * v[None, :]).T                  # (pixels, units)
    return net.forward_from(2, np.where(moved >= first.threshold[None, :], 1.0, -1.0))


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
