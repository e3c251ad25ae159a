"""Heuristic attacks on the network IR. Their answers are upper bounds, never proofs.

* :mod:`verify.attacks.gradients` — exact input gradients of linear functions of the logits
  (back-propagation through the IR's affine, ReLU and max-pool layers).
* :mod:`verify.attacks.search` — the fast searches the exact tasks start from: greedy pixel
  changes (L0) and projected-gradient / line searches for L1, L2 and L∞.
"""
