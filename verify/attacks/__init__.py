"""Heuristic attacks on the network IR. Their answers are upper bounds, never proofs.

* :mod:`verify.attacks.gradients` — exact input gradients of linear functions of the logits
  (back-propagation through the IR's affine, ReLU and max-pool layers).
* :mod:`verify.attacks.search` — the fast searches the exact tasks start from: greedy pixel
  changes (L0) and projected-gradient / line searches for L1, L2 and L∞.
* :mod:`verify.attacks.methods` — the attacks users know (FGSM, PGD for L∞/L2/L1, C&W L2,
  DeepFool, JSMA-style L0, greedy L0), batched and seeded; :mod:`verify.attacks.minmax` — MinMax.
* :mod:`verify.attacks.flips` — greedy bit flips on a binarized network (also the BNN
  tasks' first step).
* :mod:`verify.attacks.api` — :func:`~verify.attacks.api.attack`: success re-checked by Keras,
  distances in the exact tasks' units, an optional time limit (see :func:`verify.compare` for
  the exact minimum beside); :mod:`verify.attacks.catalog` — the methods by name, as plain data.
"""
