"""Encoders: (network, input region, property, objective) → solver-neutral :class:`~verify.problem.Problem`.

* :mod:`verify.encodings.relu` — MIP encoding of ReLU networks (affine layers, ReLU with
  per-neuron asymmetric big-M, max-pooling), driven by a dispatch table on layer type.
* :mod:`verify.encodings.properties` — output properties ("label ≠ c", "label = t").
* :mod:`verify.encodings.objectives` — distance objectives (card, L1, L2, L∞).
* :mod:`verify.encodings.query` — the whole query: bounds, encoding, property, objective.
* :mod:`verify.encodings.bnn` — binarized networks: one cardinality formula, rendered as CNF
  (:mod:`verify.backends.sat`), MIP or pure IP.
"""
