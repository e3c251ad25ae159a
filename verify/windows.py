"""Sliding 2-D windows (convolutions and pooling) as index arrays and sparse matrices, for
every model reader (:mod:`verify.keras_io`, :mod:`verify.onnx`).

A value of shape (C, H, W) is flat in ``layout`` order: ``"CHW"`` (ONNX) or ``"HWC"`` (Keras).
Padding is explicit, ``(top, left, bottom, right)``; :func:`same_pads` gives the padding of
"same" windows (TensorFlow/Keras ``"same"`` is ONNX ``SAME_UPPER``).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class Unsupported(Exception):
    """A layer or operator the network IR cannot represent (the message says why); readers
    collect these and report every one at once."""


def flat_index(chw: tuple, layout: str) -> np.ndarray:
    """Array (C, H, W) holding the flat position of each element in ``layout`` order."""
    C, H, W = chw
    if layout == "CHW":
        return np.arange(C * H * W).reshape(C, H, W)
    return np.arange(H * W * C).reshape(H, W, C).transpose(2, 0, 1)


def same_pads(hw: tuple, kernel: tuple, strides: tuple, upper: bool = True) -> tuple:
    """``(top, left, bottom, right)`` so that the output has ``ceil(size / stride)`` rows and
    columns; the odd pixel of padding goes at the end (``upper``) or the start."""
    begin, end = [], []
    for size, k, s in zip(hw, kernel, strides):
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        small, big = total // 2, total - total // 2
        begin.append(small if upper else big)
        end.append(big if upper else small)
    return (begin[0], begin[1], end[0], end[1])


def windows(chw: tuple, kernel: tuple, strides: tuple, pads: tuple, layout: str = "CHW"):
    """Output size and the input positions of every window.

    Returns ``(Ho, Wo, idx)`` with ``idx`` of shape (C, Ho, Wo, kh, kw): the flat input
    index (in ``layout`` order) of each window entry, ``-1`` where it lies in the padding.
    """
    C, H, W = chw
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel, strides, pads
    if min(sh, sw) <= 0:
        raise Unsupported(f"strides {strides} must be positive")
    Ho = (H + pt + pb - kh) // sh + 1
    Wo = (W + pl + pr - kw) // sw + 1
    if Ho <= 0 or Wo <= 0:
        raise Unsupported(f"window {kernel} with strides {strides} and pads {list(pads)} does "
                          f"not fit the input {H}x{W}")
    hh = (np.arange(Ho) * sh - pt)[:, None, None, None] + np.arange(kh)[None, None, :, None]
    ww = (np.arange(Wo) * sw - pl)[None, :, None, None] + np.arange(kw)[None, None, None, :]
    valid = (hh >= 0) & (hh < H) & (ww >= 0) & (ww < W)                  # (Ho, Wo, kh, kw)
    idx = flat_index(chw, layout)[:, np.clip(hh, 0, H - 1), np.clip(ww, 0, W - 1)]
    return Ho, Wo, np.where(valid[None], idx, -1)


def pool_index(chw: tuple, kernel: tuple, strides: tuple, pads: tuple, layout: str = "CHW"):
    """``((C, Ho, Wo), idx)`` with one row of ``idx`` per pooled output, in ``layout`` order,
    listing its window's flat input indices (``-1`` in the padding)."""
    Ho, Wo, idx = windows(chw, kernel, strides, pads, layout)          # (C, Ho, Wo, kh, kw)
    if layout == "HWC":
        idx = idx.transpose(1, 2, 0, 3, 4)
    return (chw[0], Ho, Wo), idx.reshape(chw[0] * Ho * Wo, -1)


def average_matrix(idx: np.ndarray, n_in: int, counts: np.ndarray | None = None) -> sp.csr_matrix:
    """The average pool of :func:`pool_index`'s windows as a sparse matrix: each output is the
    sum of its window's real entries divided by ``counts`` (default: their number)."""
    keep = idx >= 0
    if np.any(keep.sum(axis=1) == 0):
        raise Unsupported("a window lies entirely in the padding")
    counts = keep.sum(axis=1) if counts is None else counts
    rows = np.broadcast_to(np.arange(idx.shape[0])[:, None], idx.shape)
    vals = np.broadcast_to((1.0 / counts)[:, None], idx.shape)
    return sp.csr_matrix((vals[keep], (rows[keep], idx[keep])), shape=(idx.shape[0], n_in))


def conv_matrix(kernel: np.ndarray, chw: tuple, strides: tuple, pads: tuple,
                layout: str = "CHW") -> tuple[sp.csr_matrix, tuple]:
    """A 2-D convolution (no bias) as a sparse matrix.

    ``kernel`` is (F, C, kh, kw) (ONNX order), ``chw`` the input (C, H, W), ``pads``
    (top, left, bottom, right); input and output are flat in ``layout`` order ("CHW" or
    "HWC"). Returns the matrix (F*Ho*Wo, C*H*W) and the output (F, Ho, Wo).
    """
    F, C, kh, kw = kernel.shape
    Ho, Wo, idx = windows(chw, (kh, kw), strides, pads, layout)       # (C, Ho, Wo, kh, kw)
    out_idx = flat_index((F, Ho, Wo), layout)
    rows = out_idx[:, None, :, :, None, None]                            # (F, 1, Ho, Wo, 1, 1)
    cols = idx[None]                                                     # (1, C, Ho, Wo, kh, kw)
    vals = np.asarray(kernel, np.float64)[:, :, None, None, :, :]        # (F, C, 1, 1, kh, kw)
    rows, cols, vals = np.broadcast_arrays(rows, cols, vals)
    keep = cols >= 0
    weight = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(F * Ho * Wo, int(np.prod(chw))))
    return weight, (F, Ho, Wo)
