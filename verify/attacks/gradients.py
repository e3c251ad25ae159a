"""Margins and their input gradients on the network IR (batched, float64).

The *margin* of an input says how far it is from being adversarial:

* untargeted, away from label ``c``: ``max_{j≠c} z_j − z_c``;
* targeted at ``t``: ``z_t − max_{j≠t} z_j``;
* one-logit (sigmoid) networks: ``z`` when moving from class 0, ``−z`` from class 1.

An input is adversarial (with margin ``m``) when its margin is ≥ ``m`` (> 0).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..network import Affine, MaxPool, Network, ReLU


def margin_coefficients(logits: np.ndarray, label: int | np.ndarray,
                        target: int | np.ndarray | None) -> np.ndarray:
    """Per input, the coefficient vector ``w`` with margin = ``w · logits`` (the active pair).

    ``label`` and ``target`` are one class for the whole batch or one class per input."""
    batch, n_out = logits.shape
    rows = np.arange(batch)
    labels = np.broadcast_to(np.asarray(label, dtype=np.int64), (batch,))
    coef = np.zeros((batch, n_out))
    if n_out == 1:
        coef[:, 0] = np.where(labels == 0, 1.0, -1.0)
        return coef
    others = logits.copy()
    if target is None:
        others[rows, labels] = -np.inf
        coef[rows, np.argmax(others, axis=1)] += 1.0
        coef[rows, labels] -= 1.0
    else:
        targets = np.broadcast_to(np.asarray(target, dtype=np.int64), (batch,))
        others[rows, targets] = -np.inf
        coef[rows, targets] += 1.0
        coef[rows, np.argmax(others, axis=1)] -= 1.0
    return coef


def margins_of_logits(logits: np.ndarray, label: int | np.ndarray,
                      target: int | np.ndarray | None = None) -> np.ndarray:
    """The margin of each row of a batch of logits."""
    return np.sum(margin_coefficients(logits, label, target) * logits, axis=1)


def margins(network: Network, x: np.ndarray, label: int | np.ndarray,
            target: int | np.ndarray | None = None) -> np.ndarray:
    return margins_of_logits(network.forward(x), label, target)


def margin_and_gradient(network: Network, x: np.ndarray, label: int | np.ndarray,
                        target: int | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Margins of a batch and their gradients with respect to the (flat) inputs."""
    values = network.forward_all(x)
    coef = margin_coefficients(values[-1], label, target)
    return logit_form_and_gradient(network, values, coef)


def logit_form_and_gradient(network: Network, values: list[np.ndarray], coef: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray]:
    """``coef · logits`` per input of a batch and its gradient, given ``values`` from
    :meth:`Network.forward_all` (``coef``: one row per input, or one row for all)."""
    coef = np.broadcast_to(coef, values[-1].shape)
    grad = coef
    for layer, inp in zip(reversed(network.layers), reversed(values[:-1])):
        if isinstance(layer, Affine):
            W = layer.weight
            grad = np.asarray((W.T @ grad.T).T) if sp.issparse(W) else grad @ W
        elif isinstance(layer, ReLU):
            grad = grad * ((inp > 0) if layer.mask is None else ((inp > 0) | ~layer.mask))
        elif isinstance(layer, MaxPool):
            padded = np.concatenate([inp, np.full((inp.shape[0], 1), -np.inf)], axis=1)
            winner = layer.index[np.arange(layer.n_out), np.argmax(padded[:, layer.index], axis=2)]
            back = np.zeros_like(inp)
            for b in range(inp.shape[0]):
                np.add.at(back[b], winner[b], grad[b])
            grad = back
    return np.sum(coef * values[-1], axis=1), grad
