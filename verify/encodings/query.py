"""A whole exact query: bounds over the region, network encoding, output property, objective.

>>> q = build_query(network, image, norm="card")            # min changed pixels, untargeted
>>> result = get_backend("highs").solve(q.problem)
>>> q.decode(result.x)                                       # the adversarial image (flat)
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..bounds import STAGES, Bounds
from ..network import Network
from ..problem import Problem, ProblemBuilder
from ..regions import Box, Region
from .objectives import add_distance_objective, normalise_norm
from .properties import (DEFAULT_MARGIN, Case, DisjunctionEncoding, PropertyEncoding,
                         add_label_change, add_output_disjunction)
from .relu import NetworkEncoding, encode_network, quantise_inputs
from .tightening import compute_bounds


@dataclass
class Query:
    problem: Problem
    encoding: NetworkEncoding
    property: PropertyEncoding | DisjunctionEncoding
    bounds: Bounds
    norm: str | None
    bounds_time_s: float
    build_time_s: float

    def decode(self, x: np.ndarray) -> np.ndarray:
        """The input image (flat, in [0, 1]) of a solution vector."""
        return self.encoding.input_image(x)

    def summary(self) -> dict:
        return {
            "norm": self.norm, "label": getattr(self.property, "label", None),
            "target": getattr(self.property, "target", None),
            "margin": self.property.margin, "region": self.encoding.region.describe(),
            "proven_infeasible_by_bounds": self.property.proven_infeasible,
            "bounds": self.bounds.report(), "bounds_time_s": self.bounds_time_s,
            "build_time_s": self.build_time_s, **self.problem.summary(),
        }


def build_query(network: Network, image: np.ndarray, norm: str | None = None,
                target: int | None = None, label: int | None = None, region: Region | None = None,
                margin: float = DEFAULT_MARGIN, bound_stages=STAGES,
                bounds: Bounds | None = None, pixel_levels: int | None = None,
                bound_time_limit: float | None = None) -> Query:
    """Encode "the label of ``network`` on some x in ``region`` is not ``label`` (is ``target``)",
    minimising the ``norm`` distance of x to ``image`` (``norm=None``: feasibility only).

    ``label`` defaults to the network's prediction on ``image``; ``region`` to the full box
    [0, 1]^n. ``pixel_levels`` (e.g. 256) restricts pixels to that many evenly spaced values.
    ``bound_time_limit`` caps the LP stage of the bounds (seconds; the bounds stay sound).
    Affine layers are multiplied out first (:meth:`Network.merged_affine`).
    """
    network = network.merged_affine()
    center = network.flatten_input(image)[0]
    if label is None:
        label = network.label(center)
    region = region if region is not None else Box(center)
    norm = normalise_norm(norm) if norm is not None else None
    t0 = time.perf_counter()
    if bounds is None:
        bounds = compute_bounds(network, region, bound_stages, time_limit=bound_time_limit)
    t1 = time.perf_counter()
    builder = ProblemBuilder(f"{network.name}-{norm or 'feasibility'}")
    enc = encode_network(builder, network, region, bounds)
    prop = add_label_change(builder, enc, label, target, margin)
    if pixel_levels:
        quantise_inputs(builder, enc, pixel_levels)
    if norm is not None:
        add_distance_objective(builder, enc, norm)
    problem = builder.build()
    t2 = time.perf_counter()
    return Query(problem, enc, prop, bounds, norm, t1 - t0, t2 - t1)


def build_case_query(network: Network, region: Region, cases: list[Case], margin: float = 0.0,
                     bounds: Bounds | None = None, bound_stages=STAGES) -> Query:
    """Encode "some x in ``region`` has logits with ``A_k z ≤ b_k − margin`` for some case k"
    (feasibility only: the first feasible point answers it). A VNN-LIB property case.

    ``network`` must already be merged (:meth:`Network.merged_affine`) when ``bounds`` are given,
    since the bounds are per layer of the network they were computed on.
    """
    t0 = time.perf_counter()
    if bounds is None:
        network = network.merged_affine()
        bounds = compute_bounds(network, region, bound_stages)
    t1 = time.perf_counter()
    builder = ProblemBuilder(f"{network.name}-property")
    enc = encode_network(builder, network, region, bounds)
    prop = add_output_disjunction(builder, enc, cases, margin)
    problem = builder.build()
    return Query(problem, enc, prop, bounds, None, t1 - t0, time.perf_counter() - t1)
