"""verify.graph: DAG networks lowered exactly onto the chain IR with masked ReLUs.

* the lowering computes the graph's function (every operation, skip connections, values used
  by several nodes, concatenation on inner axes), and a chain graph lowers to the very chain;
* every consumer treats pass-through entries as identities: forward, gradients, interval /
  symbolic / LP bounds, the MIP (no binaries for them), the engine (never unstable);
* brute force on tiny residual networks (every phase pattern of the graph's own kinks, one LP
  per piece, independent of the lowering) agrees with the MIP's minimal adversarial distances
  and with certify through the MIP and through ``--engine bab``.
"""
from __future__ import annotations

import itertools
import pickle

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from scipy.optimize import linprog

from brute_force import _property_rows
from verify.attacks.gradients import margin_and_gradient
from verify.encodings.tightening import compute_bounds
from verify.engine.crown import root_bounds
from verify.engine.model import compile_network
from verify.errors import InvalidInputError
from verify.graph import Graph, from_network, to_network
from verify.network import Affine, Binarize, MaxPool, Network, ReLU
from verify.regions import LinfBall


def _w(rng, *shape, scale=1.0):
    """float32-representable weights (as an ONNX file stores them)."""
    return (scale * rng.standard_normal(shape)).astype(np.float32).astype(np.float64)


def random_graph(rng) -> Graph:
    """Every operation: affine on carried values, ReLU of a value used again, Add/Sub with
    constants, LeakyReLU, Clip (two-sided, one-sided, per entry), Abs, Concat on an inner axis,
    a MaxPool, reshapes, and a value (the input) used at the very end."""
    g = Graph((2, 3, 3))
    x = g.input_name
    h = g.affine("c1", x, _w(rng, 18, 18), _w(rng, 18), (2, 3, 3))
    r = g.relu("r1", h)
    y = g.affine("c2", r, _w(rng, 18, 18), 0.1, (2, 3, 3))
    s = g.add("a1", y, h)
    s2 = g.add("a2", s, x, 1.0, -1.0, 0.3)
    lk = g.leaky_relu("lk", s2, 0.1)
    c = g.clip("cl", s, 0.0, 6.0)
    c2 = g.clip("cl2", lk, -np.inf, np.linspace(-1, 1, 18))
    ab = g.abs("ab", c2)
    cat = g.concat("cat", [ab, c, x], axis=1)                      # (2, 9, 3)
    mp = g.maxpool("mp", g.reshape("flat", cat, (54,)), np.array([[0, 1], [2, -1], [5, 9]]), (3,))
    both = g.concat("cat2", [mp, g.reshape("flat2", cat, (54,))], axis=0)
    g.affine("out", both, _w(rng, 4, 57), 0.0, (4,))
    return g


def test_lowering_is_exact_for_every_operation():
    rng = np.random.default_rng(0)
    g = random_graph(rng)
    x = rng.normal(size=(400, 18)) * 3
    net = to_network(g)
    assert np.abs(net.forward(x) - g.forward(x)).max() < 1e-10
    assert np.abs(net.merged_affine().forward(x) - g.forward(x)).max() < 1e-10
    assert any(isinstance(l, ReLU) and l.mask is not None for l in net.layers)
    # every intermediate value too
    for node in g.nodes:
        g.output = node.name
        assert np.abs(to_network(g).forward(x) - g.forward(x)).max() < 1e-10, node.name
    assert net.num_relus == sum(l.num_relus for l in net.layers if isinstance(l, ReLU))


def test_chain_graph_lowers_to_the_same_chain():
    rng = np.random.default_rng(2)
    conv = {"kernel": _w(rng, 2, 2, 1, 1)}          # kept by identity, whatever it holds
    net = Network((6,), [Affine(_w(rng, 6, 6), _w(rng, 6), (6,), "d1", "conv2d", conv),
                         ReLU((6,), "r"),
                         MaxPool(np.array([[0, 1], [2, 3], [4, 5]]), 6, (3,), "mp"),
                         Affine(_w(rng, 2, 3), _w(rng, 2), (2,), "d2")], "softmax", "chain")
    again = to_network(from_network(net), net.name, net.output_activation)
    assert [type(l) for l in again.layers] == [type(l) for l in net.layers]
    assert all(getattr(l, "mask", None) is None for l in again.layers)
    for a, b in zip(again.layers, net.layers):
        if isinstance(a, Affine):
            assert a.weight is b.weight and a.conv is b.conv and a.kind == b.kind


def test_bnn_layers_only_in_a_chain():
    g = Graph((4,))
    b = g.layer("bin", g.input_name, Binarize(0.5, (4,)))
    g.affine("d", b, np.ones((2, 4)), 0.0, (2,))
    assert isinstance(to_network(g).layers[0], Binarize)
    g = Graph((4,))
    b = g.layer("bin", g.input_name, Binarize(0.5, (4,)))
    g.add("skip", b, g.input_name)
    with pytest.raises(InvalidInputError, match="chain"):
        to_network(g)


def test_graph_checks_its_arguments():
    g = Graph((3,))
    with pytest.raises(InvalidInputError, match="does not map"):
        g.affine("a", g.input_name, np.ones((2, 4)), 0.0, (2,))
    with pytest.raises(InvalidInputError, match="not defined"):
        g.relu("r", "nowhere")
    h = g.affine("a", g.input_name, np.ones((2, 3)), 0.0, (2,))
    with pytest.raises(InvalidInputError, match="values"):
        g.add("s", h, g.input_name)
    with pytest.raises(InvalidInputError, match="lo <= hi"):
        g.clip("c", h, 1.0, 0.0)


def test_old_pickled_relu_has_no_mask():
    layer = ReLU((3,), "old")
    state = dict(layer.__dict__)
    del state["mask"]
    old = ReLU.__new__(ReLU)
    old.__dict__.update(state)          # what unpickling a ReLU from before masks gives
    assert old.mask is None and old.num_relus == 3
    assert np.array_equal(old.forward(np.array([[-1.0, 0.0, 2.0]])), [[0.0, 0.0, 2.0]])
    assert pickle.loads(pickle.dumps(ReLU((2,), "m", np.array([True, False])))).num_relus == 1


def test_masked_relu_consumers():
    rng = np.random.default_rng(1)
    net = to_network(random_graph(rng)).merged_affine()
    x = rng.random((5, 18))
    # gradients: against finite differences
    m, grad = margin_and_gradient(net, x, 0)
    eps = 1e-6
    for i in range(18):
        step = np.zeros(18)
        step[i] = eps
        num = (margin_and_gradient(net, x + step, 0)[0] - m) / eps
        assert np.allclose(num, grad[:, i], atol=1e-4 * (1 + np.abs(grad).max()))
    # bounds: pass-through entries keep negative values, are never unstable
    region = LinfBall(np.full(18, 0.5), 0.4)
    b = compute_bounds(net, region)
    pts = np.vstack([region.sample(rng, 2000), np.where(rng.random((100, 18)) < 0.5, region.lo, region.hi)])
    assert b.contains(net.forward_all(pts), tol=1e-9)
    k = next(i for i, l in enumerate(net.layers) if isinstance(l, ReLU) and l.mask is not None)
    passing = ~net.layers[k].mask
    assert np.any(b.lower[k + 1][passing] < 0)
    unstable = sum(int(np.sum((b.lower[i] < 0) & (b.upper[i] > 0) & l.relu_entries()))
                   for i, l in enumerate(net.layers) if isinstance(l, ReLU))
    assert b.unstable(net) == unstable
    cnet = compile_network(net)
    assert int(cnet.passthrough().sum()) == sum(l.mask.size - l.num_relus for l in net.layers
                                                if isinstance(l, ReLU) and l.mask is not None)
    rb = root_bounds(cnet, region)
    assert all(np.all(v >= lo - 1e-9) and np.all(v <= hi + 1e-9)
               for v, lo, hi in zip(net.forward_all(pts), rb.lower, rb.upper))


# -- brute force on tiny residual networks -------------------------------------------------------

def tiny_residual(rng):
    """x (3) → h = W1 x + b1 → y = W3 leaky(W2 relu(h) + b2 + x, 0.2) + b3, plus an ONNX model
    of it as torch exports it."""
    p = {"w1": _w(rng, 3, 3, scale=2.0), "b1": _w(rng, 3, scale=0.5), "w2": _w(rng, 3, 3, scale=2.0),
         "b2": _w(rng, 3, scale=0.5), "w3": _w(rng, 3, 3, scale=2.0), "b3": _w(rng, 3, scale=0.3)}
    g = Graph((3,))
    h = g.affine("h", g.input_name, p["w1"], p["b1"], (3,))
    r = g.relu("r", h)
    z = g.affine("z", r, p["w2"], p["b2"], (3,))
    s = g.add("s", z, g.input_name)
    lk = g.leaky_relu("lk", s, 0.2)
    g.affine("y", lk, p["w3"], p["b3"], (3,))
    n = lambda op, ins, out, **a: helper.make_node(op, ins, [out], name=f"/{out}/{op}", **a)  # noqa: E731
    nodes = [n("Gemm", ["input", "w1", "b1"], "h", transB=1), n("Relu", ["h"], "r"),
             n("Gemm", ["r", "w2", "b2"], "z", transB=1), n("Add", ["z", "input"], "s"),
             n("LeakyRelu", ["s"], "lk", alpha=0.2), n("Gemm", ["lk", "w3", "b3"], "y", transB=1)]
    graph = helper.make_graph(
        nodes, "tiny_residual", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        initializer=[numpy_helper.from_array(v.astype(np.float32), k) for k, v in p.items()])
    opsets = [helper.make_opsetid("", 17)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets))
    return g, model


def graph_pieces(g: Graph, n_in: int):
    """For every sign pattern of the graph's ReLU / LeakyReLU inputs: logits = A x + a on the
    polyhedron G x + g ≥ 0 — computed from the graph's own semantics, not the lowering."""
    kinks = [node for node in g.nodes if node.op in ("relu", "leaky_relu")]
    sizes = [node.size for node in kinks]
    for pattern in itertools.product([0, 1], repeat=sum(sizes)):
        vals = {g.input_name: (np.eye(n_in), np.zeros(n_in))}
        G, gg, pos = [], [], 0
        for node in g.nodes:
            ins = [vals[v] for v in node.inputs]
            if node.op == "affine":
                W, b = node.params["weight"], node.params["bias"]
                vals[node.name] = (W @ ins[0][0], W @ ins[0][1] + b)
            elif node.op == "add":
                p = node.params
                vals[node.name] = (p["scale_a"] * ins[0][0] + p["scale_b"] * ins[1][0],
                                   p["scale_a"] * ins[0][1] + p["scale_b"] * ins[1][1] + p["const"])
            else:
                A, a = ins[0]
                phase = np.array(pattern[pos:pos + node.size])
                pos += node.size
                sign = np.where(phase == 1, 1.0, -1.0)
                G.append(sign[:, None] * A)
                gg.append(sign * a)
                slope = np.where(phase == 1, 1.0, 0.0 if node.op == "relu" else node.params["alpha"])
                vals[node.name] = (slope[:, None] * A, slope * a)
        A, a = vals[g.output_name]
        yield A, a, np.vstack(G), np.concatenate(gg)


def brute_min_distance(pieces, center, norm, label, margin=1e-3) -> float:
    """The least L∞ / L1 distance from ``center`` (inputs in [0, 1]) to an input whose label is
    not ``label`` by ``margin``: one LP per piece and other label."""
    n = center.size
    best = np.inf
    for A, a, G, g in pieces:
        for H, h in _property_rows(A, a, label, None, margin):
            M, rhs = np.vstack([G, H]), np.concatenate([-g, margin - h])
            k = n if norm == "l1" else 1
            T = np.eye(n) if norm == "l1" else np.ones((n, 1))
            A_ub = np.vstack([np.c_[-M, np.zeros((M.shape[0], k))], np.c_[np.eye(n), -T],
                              np.c_[-np.eye(n), -T]])
            b_ub = np.r_[-rhs, center, -center]
            res = linprog(np.r_[np.zeros(n), np.ones(k)], A_ub=A_ub, b_ub=b_ub,
                          bounds=[(0, 1)] * n + [(0, None)] * k, method="highs")
            if res.status == 0:
                best = min(best, float(res.fun))
    return best


def test_tiny_residual_nets_agree_with_brute_force(tmp_path):
    from verify.models import load_model
    from verify.tasks.adversarial import min_adversarial
    from verify.tasks.robustness import certify

    rng = np.random.default_rng(5)
    checked = {"min": 0, "verified": 0, "counterexample": 0}
    for trial in range(3):
        g, model = tiny_residual(rng)
        path = tmp_path / f"residual{trial}.onnx"
        onnx.save(model, path)
        loaded = load_model(str(path))
        assert any(isinstance(l, ReLU) and l.mask is not None for l in loaded.network.layers)
        pieces = list(graph_pieces(g, 3))
        for x in rng.uniform(0.2, 0.8, size=(2, 3)):
            label = loaded.label(x)
            assert label == int(np.argmax(g.forward(x[None])[0]))
            for norm in ("linf", "l1"):
                want = brute_min_distance(pieces, x, norm, label)
                got = min_adversarial(loaded, x, norm=norm, backend="highs")
                if np.isinf(want):
                    assert got.status == "infeasible" or got.adversarial is None, (norm, got.status)
                    continue
                assert got.status == "optimal" and got.minimal, (norm, got.status)
                assert abs(got.objective - want) <= 2e-4 * max(1.0, want) + 1e-6, (norm, got.objective, want)
                checked["min"] += 1
                if norm != "linf" or want < 0.02:
                    continue
                for eps, expected in ((0.7 * want, "verified"), (min(1.3 * want, 1.0), "counterexample")):
                    for engine in ("mip", "bab"):
                        res = certify(loaded, x, eps=eps, norm="linf", engine=engine, backend="highs",
                                      time_limit=60)
                        assert res.status == expected, (engine, eps, want, res.status)
                    checked[expected] += 1
    assert checked["min"] >= 4 and checked["verified"] >= 2 and checked["counterexample"] >= 2, checked
