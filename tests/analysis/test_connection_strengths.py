"""Connection strengths checked against torch on tiny nets fed spatially constant inputs.

With padding-free convolutions, a spatially constant input stays constant through every layer, so
the change of the target's spatial mean when source channel i is raised by one is exactly the
documented strength (kernel sums, folded batch norm, pooling passed through, ...). torch computes
that change here; the analysis computes it from the weights and the graph.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from analysis_helpers import graph, layer_record, recording

from cnnvis.analysis import neuron_strengths


def _t(a):
    return torch.as_tensor(a, dtype=torch.float64)


def _response(f, n_in, size=6):
    """strength[i, j] = mean_spatial(f(e_i) - f(0))[j]."""
    zero = f(torch.zeros(1, n_in, size, size, dtype=torch.float64))
    cols = []
    for i in range(n_in):
        x = torch.zeros(1, n_in, size, size, dtype=torch.float64)
        x[0, i] = 1.0
        d = f(x) - zero
        cols.append(d.reshape(d.shape[0], d.shape[1], -1).mean(-1)[0].numpy())
    return np.stack(cols)  # (n_in, n_out)


def _rec(layers, g, w, n_classes=4):
    rng = np.random.default_rng(1)
    recs = [layer_record(n, "conv", rng.random((c, n_classes))) for n, c in layers]
    return recording(recs, graph=g, weights=w)


def test_conv_bn_relu_pool_conv_matches_torch():
    rng = np.random.default_rng(0)
    w2 = rng.normal(size=(5, 4, 2, 2))
    bn = {
        "weight": rng.uniform(0.5, 2, 4),
        "bias": rng.normal(size=4),
        "running_mean": rng.normal(size=4),
        "running_var": rng.uniform(0.1, 3, 4),
    }
    g = graph(
        [
            ("x", "input", 3, []),
            ("conv1", "conv", 4, ["x"]),
            ("bn1", "norm", 4, ["conv1"]),
            ("relu1", "act", 4, ["bn1"]),
            ("pool1", "pool", 4, ["relu1"]),
            ("drop", "dropout", 4, ["pool1"]),
            ("conv2", "conv", 5, ["drop"]),
        ]
    )
    w = {"conv1": {"weight": rng.normal(size=(4, 3, 3, 3))}, "bn1": bn, "conv2": {"weight": w2}}
    rec = _rec([("conv1", 4), ("conv2", 5)], g, w)

    def f(x):  # relu left out: the strengths are the linear part of the path
        y = F.batch_norm(
            x,
            _t(bn["running_mean"]),
            _t(bn["running_var"]),
            _t(bn["weight"]),
            _t(bn["bias"]),
            training=False,
            eps=1e-5,
        )
        return F.conv2d(F.max_pool2d(y, 2), _t(w2))

    expected = _response(f, 4, size=8)
    ns = neuron_strengths(rec, "conv1", "conv2")
    assert ns.strength.shape == (4, 5)
    np.testing.assert_allclose(ns.strength, expected, rtol=1e-10, atol=1e-12)
    # batch norm really is folded: without it the numbers differ
    assert not np.allclose(ns.strength, w2.sum((2, 3)).T)
    assert ns.notes == []

    eff = neuron_strengths(rec, "conv1", "conv2", kind="effective")
    mean_act = rec.class_means("conv1").astype(np.float64).mean(axis=1)
    np.testing.assert_allclose(eff.strength, expected * mean_act[:, None], rtol=1e-10)


def _residual(analysed_mid):
    rng = np.random.default_rng(2)
    wb, wc = rng.normal(size=(4, 4, 1, 1)), rng.normal(size=(3, 4, 1, 1))
    g = graph(
        [
            ("x", "input", 4, []),
            ("a", "conv", 4, ["x"]),
            ("b", "conv", 4, ["a"]),
            ("add", "add", 4, ["b", "a"]),
            ("relu", "act", 4, ["add"]),
            ("c", "conv", 3, ["relu"]),
        ]
    )
    w = {"a": {"weight": rng.normal(size=(4, 4, 1, 1))}, "b": {"weight": wb}, "c": {"weight": wc}}
    layers = [("a", 4), ("b", 4), ("c", 3)] if analysed_mid else [("a", 4), ("c", 3)]
    return _rec(layers, g, w), wb, wc


def test_residual_add_sums_the_skip_and_the_branch():
    rec, wb, wc = _residual(analysed_mid=False)
    expected = _response(lambda x: F.conv2d(F.conv2d(x, _t(wb)) + x, _t(wc)), 4)
    ns = neuron_strengths(rec, "a", "c", analysed=["a", "c"])
    np.testing.assert_allclose(ns.strength, expected, rtol=1e-10, atol=1e-12)


def test_residual_paths_avoid_other_analysed_layers():
    from cnnvis.analysis.connections import adjacent_pairs

    rec, wb, wc = _residual(analysed_mid=True)
    assert adjacent_pairs(rec.graph, ["a", "b", "c"]) == [("a", "b"), ("a", "c"), ("b", "c")]
    skip = neuron_strengths(rec, "a", "c", analysed=["a", "b", "c"])
    np.testing.assert_allclose(skip.strength, wc.sum((2, 3)).T, rtol=1e-12)  # identity skip only
    via_b = neuron_strengths(rec, "b", "c", analysed=["a", "b", "c"])
    np.testing.assert_allclose(via_b.strength, wc.sum((2, 3)).T, rtol=1e-12)


@pytest.mark.parametrize("swap", [False, True])
def test_concatenation_stacks_index_ranges_in_argument_order(swap):
    rng = np.random.default_rng(3)
    wp, wq, wr = (
        rng.normal(size=(2, 3, 3, 3)),
        rng.normal(size=(4, 3, 1, 1)),
        rng.normal(size=(5, 6, 2, 2)),
    )
    first, second = ("q", "p") if swap else ("p", "q")
    g = graph(
        [
            ("x", "input", 3, []),
            ("a", "conv", 3, ["x"]),
            ("p", "conv", 2, ["a"]),
            ("q", "conv", 4, ["a"]),
            ("cat", "cat", 6, [first, second]),
            ("r", "conv", 5, ["cat"]),
        ]
    )
    w = {
        "a": {"weight": rng.normal(size=(3, 3, 1, 1))},
        "p": {"weight": wp},
        "q": {"weight": wq},
        "r": {"weight": wr},
    }
    rec = _rec([("a", 3), ("r", 5)], g, w)

    def f(x):
        p = F.conv2d(x, _t(wp))
        q = F.conv2d(x, _t(wq))[:, :, 1:-1, 1:-1]
        parts = [q, p] if swap else [p, q]
        return F.conv2d(torch.cat(parts, 1), _t(wr))

    expected = _response(f, 3, size=8)
    ns = neuron_strengths(rec, "a", "r")
    np.testing.assert_allclose(ns.strength, expected, rtol=1e-10, atol=1e-12)


def test_linear_after_flatten_sums_each_channels_positions():
    rng = np.random.default_rng(4)
    wl = rng.normal(size=(5, 3 * 2 * 2))
    g = graph(
        [
            ("x", "input", 2, []),
            ("conv", "conv", 3, ["x"]),
            ("pool", "pool", 3, ["conv"]),
            ("flat", "flatten", 12, ["pool"]),
            ("fc", "linear", 5, ["flat"]),
        ]
    )
    w = {"conv": {"weight": rng.normal(size=(3, 2, 3, 3))}, "fc": {"weight": wl}}
    rec = _rec([("conv", 3), ("fc", 5)], g, w)
    expected = _response(lambda x: F.linear(torch.flatten(F.max_pool2d(x, 2), 1), _t(wl)), 3, 4)
    ns = neuron_strengths(rec, "conv", "fc")
    np.testing.assert_allclose(ns.strength, expected, rtol=1e-10)  # summed over positions
    np.testing.assert_allclose(ns.strength, wl.reshape(5, 3, 4).sum(-1).T, rtol=1e-12)


def test_depthwise_convolution_connects_each_channel_to_its_own():
    rng = np.random.default_rng(5)
    wd = rng.normal(size=(4, 1, 3, 3))
    g = graph([("x", "input", 4, []), ("a", "conv", 4, ["x"]), ("dw", "conv", 4, ["a"])])
    rec = _rec(
        [("a", 4), ("dw", 4)],
        g,
        {"a": {"weight": rng.normal(size=(4, 4, 1, 1))}, "dw": {"weight": wd}},
    )
    expected = _response(lambda x: F.conv2d(x, _t(wd), groups=4), 4)
    ns = neuron_strengths(rec, "a", "dw")
    np.testing.assert_allclose(ns.strength, expected, rtol=1e-10, atol=1e-12)
    assert np.count_nonzero(ns.strength - np.diag(np.diag(ns.strength))) == 0


def test_inexpressible_paths_and_missing_weights_raise_clearly():
    rng = np.random.default_rng(6)
    g = graph(
        [
            ("x", "input", 3, []),
            ("a", "conv", 3, ["x"]),
            ("odd", "weird", 7, ["a"]),
            ("b", "conv", 2, ["odd"]),
        ]
    )
    w = {
        "a": {"weight": rng.normal(size=(3, 3, 1, 1))},
        "b": {"weight": rng.normal(size=(2, 7, 1, 1))},
    }
    rec = _rec([("a", 3), ("b", 2)], g, w)
    with pytest.raises(ValueError, match="changes the channel count"):
        neuron_strengths(rec, "a", "b")
    g2 = graph([("x", "input", 3, []), ("a", "conv", 3, ["x"]), ("b", "conv", 2, ["a"])])
    rec2 = _rec([("a", 3), ("b", 2)], g2, {})
    with pytest.raises(ValueError, match="no weights for 'b'"):
        neuron_strengths(rec2, "a", "b")
    with pytest.raises(ValueError, match="no path"):
        neuron_strengths(rec2, "b", "a")


def test_cluster_aggregation_keeps_signs_apart():
    from cnnvis.analysis.connections import NeuronStrengths, aggregate

    s = np.array([[1.0, -2.0, 0.5], [-1.0, 3.0, 0.0]])
    ns = NeuronStrengths("a", "b", "weight", s)
    cc = aggregate(ns, np.array([0, 0]), np.array([0, 0, 1]), rel_threshold=0.0)
    # cluster pair (0, 0): neurons {0,1} x {0,1}: positives 1 + 3, negatives -2 - 1, 4 pairs
    np.testing.assert_allclose(cc.positive, [[4 / 4, 0.5 / 2]])
    np.testing.assert_allclose(cc.negative, [[-3 / 4, 0.0]])
    np.testing.assert_array_equal(cc.counts, [[4, 2]])
    drawn = {(i, j, sg) for i, j, sg, _ in cc.edges()}
    assert drawn == {(0, 0, 1), (0, 1, 1), (0, 0, -1)}
    covered = {(int(i), int(j), int(sg)) for i, j, sg in cc.direct_edges}
    for b in cc.biclusters:
        covered |= {
            (int(i), int(j), b.sign)
            for i in b.rows
            for j in b.cols
            if (int(i), int(j), b.sign) in drawn
        }
    assert covered == drawn


def test_squeeze_excitation_gate_is_ignored_and_noted():
    rng = np.random.default_rng(7)
    wb = rng.normal(size=(3, 4, 1, 1))
    g = graph(
        [
            ("x", "input", 4, []),
            ("a", "conv", 4, ["x"]),
            ("pool", "pool", 4, ["a"]),
            ("fc1", "conv", 2, ["pool"]),
            ("act", "act", 2, ["fc1"]),
            ("fc2", "conv", 4, ["act"]),
            ("gate", "act", 4, ["fc2"]),
            ("mul", "mul", 4, ["gate", "a"]),
            ("b", "conv", 3, ["mul"]),
        ]
    )
    for node, shape in {
        "a": (4, 6, 6),
        "pool": (4, 1, 1),
        "fc1": (2, 1, 1),
        "act": (2, 1, 1),
        "fc2": (4, 1, 1),
        "gate": (4, 1, 1),
        "mul": (4, 6, 6),
    }.items():
        g.nodes[node]["out_shape"] = shape
    w = {
        "a": {"weight": rng.normal(size=(4, 4, 1, 1))},
        "fc1": {"weight": rng.normal(size=(2, 4, 1, 1))},
        "fc2": {"weight": rng.normal(size=(4, 2, 1, 1))},
        "b": {"weight": wb},
    }
    rec = _rec([("a", 4), ("b", 3)], g, w)
    ns = neuron_strengths(rec, "a", "b")
    np.testing.assert_allclose(ns.strength, wb.sum((2, 3)).T, rtol=1e-12)
    assert len(ns.notes) == 1 and "gate ignored" in ns.notes[0]
