"""The C++ recording kernels (the fold of a batch into the layers' state and its top-k merge,
the reservoir, spatial stats, the softmax of the logits, image quantisation, box gather) against
numpy and torch."""

import numpy as np
import pytest

from cnnvis import _core
from cnnvis.record.patches import _unique_rows
from cnnvis.record.summaries import Column


def _empty(c, k):
    return (
        np.full((c, k), -np.inf, np.float32),
        np.full((c, k), -1, np.int64),
        np.zeros((c, k), np.int64),
        np.tile(np.arange(k, dtype=np.int64), (c, 1)),
    )


def _merge(vals, smp, loc, slot, mx, lc, start):
    """Only the top-k part of a fold (zero means, one class, no reservoir rows)."""
    b, c = mx.shape[0], vals.shape[0]
    fold = _core.Fold([(vals, smp, loc, slot, np.zeros((1, c)), np.zeros((0, c), np.float32),
                        np.zeros(slot.shape, np.uint8))], tuple(_reservoir([0]).values()))  # fmt: skip
    fold.set_stats(0, np.zeros(mx.shape, np.float32), mx, lc)
    assert _run(fold, start, np.zeros(b, np.int64))[0] == -1


def _run(fold, start, labels, outputs=None, n_layers=1):
    """One fold, after stats() of the outputs given: (its result, the need flags, the reservoir
    rows)."""
    for i, x in enumerate(outputs or []):
        if x is not None:
            fold.stats(i, x)
    need, rows = np.zeros(len(labels), np.uint8), np.zeros(len(labels), np.int64)
    bad = fold.fold(start, labels, need, rows)
    return bad, need, rows


@pytest.mark.parametrize("seed", range(5))
def test_merge_equals_stable_sort_with_ties(seed):
    rng = np.random.default_rng(seed)
    c, k, b = 7, 4, 9
    vals, smp, loc, slot = _empty(c, k)
    ref_v, ref_s, ref_l = vals.copy(), smp.copy(), loc.copy()
    start = 0
    for _ in range(6):
        mx = rng.integers(0, 5, (b, c)).astype(np.float32)  # few values: many ties
        lc = rng.integers(0, 100, (b, c))
        _merge(vals, smp, loc, slot, mx, lc, start)
        av = np.concatenate([ref_v, mx.T], 1)
        asmp = np.concatenate([ref_s, np.tile(np.arange(start, start + b), (c, 1))], 1)
        al = np.concatenate([ref_l, lc.T], 1)
        order = np.argsort(-av, axis=1, kind="stable")[:, :k]
        ref_v, ref_s, ref_l = (np.take_along_axis(a, order, 1) for a in (av, asmp, al))
        start += b
        np.testing.assert_array_equal(vals, ref_v)
        np.testing.assert_array_equal(smp, ref_s)
        np.testing.assert_array_equal(loc, ref_l)
        for row in slot:  # slots stay a permutation: an entry takes the slot it evicts
            assert sorted(row) == list(range(k))


def test_merge_ties_keep_earlier_sample():
    vals, smp, loc, slot = _empty(1, 2)
    mx = np.array([[1.0], [1.0], [1.0]], np.float32)
    _merge(vals, smp, loc, slot, mx, np.zeros((3, 1), np.int64), 10)
    assert smp.tolist() == [[10, 11]]


def test_merge_rejects_copies_and_bad_shapes():
    vals, smp, loc, slot = _empty(3, 2)
    mx = np.zeros((4, 3), np.float32)
    lc = np.zeros((4, 3), np.int64)
    with pytest.raises(ValueError, match="values has dtype float64"):
        _merge(vals.astype(np.float64), smp, loc, slot, mx, lc, 0)
    with pytest.raises(ValueError, match=r"mean, max and loc must be arrays \(batch, 3\)"):
        _merge(vals, smp, loc, slot, np.zeros((4, 2), np.float32), lc, 0)
    with pytest.raises(ValueError, match="locs must have shape"):
        _merge(vals, smp, loc[:2], slot, mx, lc, 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        _merge(np.asfortranarray(np.zeros((3, 2), np.float32)), smp, loc, slot, mx,
                         lc, 0)  # fmt: skip
    ro = vals.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _merge(ro, smp, loc, slot, mx, lc, 0)


def test_column_grows():
    col = Column(np.int64)
    parts = [np.arange(i, i + 3000) for i in range(0, 30000, 3000)]
    for p in parts:
        col.extend(len(p))[:] = p
    np.testing.assert_array_equal(col.values(), np.concatenate(parts))


def test_unique_rows_matches_numpy():
    rng = np.random.default_rng(0)
    table = np.concatenate(
        [
            rng.integers(0, 50, (500, 1)),
            rng.integers(0, 8, (500, 2)),
            rng.integers(8, 17, (500, 2)),
        ],
        axis=1,
    )
    keys, key_of = _unique_rows(table, 17, 17)
    ref, ref_of = np.unique(table, axis=0, return_inverse=True)
    np.testing.assert_array_equal(keys, ref)
    np.testing.assert_array_equal(key_of, ref_of.reshape(-1))
    # too large for one int64 key: the np.unique fallback gives the same
    keys2, key_of2 = _unique_rows(table, 2**20, 2**20)
    np.testing.assert_array_equal(keys2, ref)
    np.testing.assert_array_equal(key_of2, ref_of.reshape(-1))


@pytest.mark.parametrize("length", [1, 3, 8, 16, 17, 256])
def test_spatial_stats_against_torch(length):
    import torch

    rng = np.random.default_rng(length)
    x = rng.standard_normal((6, 5, length)).astype(np.float32)
    x[0, 0] = 2.0  # all equal: the first index
    x[1, 2, -1] = x[1, 2, 0] = 9.0  # a tie at both ends: the first
    x[2, 1] = -np.inf  # nothing above -inf: index 0
    if length > 12:
        x[3, 3, 12] = x[3, 3, 3] = 7.0  # a tie in two SIMD lanes: the earlier index
        x[4, 4, 9] = x[4, 4, 1] = 7.0  # a tie within one lane
    mean, mx, arg = _core.spatial_stats(x)
    t = torch.from_numpy(x)
    np.testing.assert_allclose(mean, t.mean(2).numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(mx, t.amax(2).numpy())
    np.testing.assert_array_equal(arg, t.argmax(2).numpy())
    assert arg[0, 0] == 0 and arg[1, 2] == 0 and arg[2, 1] == 0
    if length > 12:
        assert arg[3, 3] == 3 and arg[4, 4] == 1


def test_spatial_stats_nan_and_bad_input():
    x = np.zeros((1, 2, 9), np.float32)
    x[0, 1, 4] = np.nan
    mean, mx, _arg = _core.spatial_stats(x)
    assert np.isfinite(mean[0, 0]) and np.isnan(mean[0, 1]) and np.isnan(mx[0, 1])
    with pytest.raises(ValueError, match="float32"):
        _core.spatial_stats(x.astype(np.float64))
    with pytest.raises(ValueError, match="3-D"):
        _core.spatial_stats(x[0])
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.spatial_stats(np.zeros((2, 9, 3), np.float32).transpose(0, 2, 1))


def test_gather_boxes_against_slicing():
    rng = np.random.default_rng(0)
    store = rng.integers(0, 256, (4, 10, 12, 3), dtype=np.uint8)
    slot = np.array([3, 0, 3, 1])
    y0, x0 = np.array([0, 5, 2, 7]), np.array([0, 8, 4, 1])
    out = _core.gather_boxes(store, slot, y0, x0, 3, 4)
    expect = np.stack([store[s, y : y + 3, x : x + 4] for s, y, x in zip(slot, y0, x0)])
    np.testing.assert_array_equal(out, expect)
    full = _core.gather_boxes(store, slot, y0 * 0, x0 * 0, 10, 12)
    np.testing.assert_array_equal(full, store[slot])
    with pytest.raises(ValueError, match="outside the store"):
        _core.gather_boxes(store, slot, y0, x0 + 5, 3, 4)
    with pytest.raises(ValueError, match="outside the store"):
        _core.gather_boxes(store, np.array([4]), np.array([0]), np.array([0]), 3, 4)
    with pytest.raises(ValueError, match="does not fit"):
        _core.gather_boxes(store, slot, y0, x0, 11, 4)
    with pytest.raises(ValueError, match="uint8"):
        _core.gather_boxes(store.astype(np.int16), slot, y0, x0, 3, 4)


def _state(n_channels, k, n_classes, rows):
    return dict(
        values=np.full((n_channels, k), -np.inf, np.float32),
        samples=np.full((n_channels, k), -1, np.int64),
        locs=np.zeros((n_channels, k), np.int64),
        slots=np.tile(np.arange(k, dtype=np.int64), (n_channels, 1)),
        class_sums=np.zeros((n_classes, n_channels), np.float64),
        pooled=np.zeros((rows, n_channels), np.float32),
        pending=np.zeros((n_channels, k), np.uint8),
    )


def _fold(*states):
    """A fold over these layer states, with a reservoir splitting their pooled rows among the
    classes."""
    keys = ("values", "samples", "locs", "slots", "class_sums", "pooled", "pending")
    n_classes, n_rows = states[0]["class_sums"].shape[0], states[0]["pooled"].shape[0]
    caps = [n_rows // n_classes + (c < n_rows % n_classes) for c in range(n_classes)]
    reservoir = _reservoir(caps)
    fold = _core.Fold([tuple(st[k] for k in keys) for st in states], tuple(reservoir.values()))
    return fold, reservoir


def test_fold_against_numpy():
    """Class sums, reservoir rows, the top-k lists and the new-entry flags over three batches;
    the reservoir rows are those reservoir_offer gives."""
    rng = np.random.default_rng(3)
    nc, k, n_classes, b = 6, 4, 3, 10
    st = _state(nc, k, n_classes, rows=7)
    fold, res = _fold(st)
    twin = _reservoir([3, 2, 2])
    ref_sums = np.zeros((n_classes, nc))
    all_max, all_loc = [], []
    for batch in range(3):
        start = batch * b
        mean = rng.standard_normal((b, nc)).astype(np.float32)
        mx = rng.integers(0, 5, (b, nc)).astype(np.float32)  # many ties
        loc = rng.integers(0, 50, (b, nc))
        labels = rng.integers(0, n_classes, b)
        st["pending"][:] = 0
        fold.set_stats(0, mean, mx, loc)
        bad, need, rows = _run(fold, start, labels)
        assert bad == -1
        np.testing.assert_array_equal(rows, _core.reservoir_offer(labels, start, **twin))
        np.testing.assert_array_equal(res["position"], twin["position"])
        np.add.at(ref_sums, labels, mean.astype(np.float64))
        np.testing.assert_array_equal(st["class_sums"], ref_sums)
        np.testing.assert_array_equal(st["pooled"][rows[rows >= 0]], mean[rows >= 0])
        all_max.append(mx)
        all_loc.append(loc)
        vals, locs = np.concatenate(all_max), np.concatenate(all_loc)
        for c in range(nc):
            order = np.argsort(-vals[:, c], kind="stable")[:k]  # ties: the earlier sample
            np.testing.assert_array_equal(st["samples"][c], order)
            np.testing.assert_array_equal(st["locs"][c], locs[order, c])
        fresh = st["samples"] >= start
        assert set(np.flatnonzero(need)) == set((st["samples"][fresh] - start).tolist())
        by_slot = np.zeros_like(st["pending"])
        np.put_along_axis(by_slot, st["slots"], fresh.astype(np.uint8), axis=1)
        np.testing.assert_array_equal(st["pending"], by_slot)
    assert (rows == -1).any() and (rows >= 0).any()  # the reservoir was full and drew


@pytest.mark.parametrize("shape", [(9, 5, 3, 7), (9, 5, 16), (9, 5, 37), (9, 5)])
def test_fold_stats_of_outputs_equal_spatial_stats(shape):
    """stats() summarises an output as spatial_stats does (the location only where the maximum
    can enter a list), so the lists end up the same over several batches."""
    rng = np.random.default_rng(len(shape) * 100 + shape[-1])
    nc, k = shape[1], 3
    a, b = _state(nc, k, 2, rows=4), _state(nc, k, 2, rows=4)
    (fold_a, _), (fold_b, _) = _fold(a), _fold(b)
    for batch in range(4):
        x = rng.standard_normal(shape).astype(np.float32)
        x.reshape(-1)[::5] = 2.5  # ties within rows and across samples: the first index wins
        labels = rng.integers(0, 2, shape[0])
        start = batch * shape[0]
        fold_b.set_stats(0, *_core.spatial_stats(x.reshape(shape[0], nc, -1)))
        got_a, got_b = _run(fold_a, start, labels, [x]), _run(fold_b, start, labels)
        for u, v in zip(got_a, got_b):
            np.testing.assert_array_equal(u, v)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    flat = x.reshape(shape[0], nc, -1)
    assert (a["locs"] < flat.shape[2]).all() and a["samples"].min() >= 0


def test_fold_names_the_first_bad_layer_and_refuses_bad_input():
    first, second = _state(2, 3, 2, rows=2), _state(2, 3, 2, rows=2)
    ok = np.ones((2, 2), np.float32)
    mean = np.zeros((2, 2), np.float32)
    mean[1, 0] = np.inf
    mx, loc = np.zeros((2, 2), np.float32), np.zeros((2, 2), np.int64)
    labels = np.array([0, 1])
    fold, _ = _fold(first, second)
    fold.set_stats(0, ok, ok, loc)
    fold.set_stats(1, mean, mx, loc)
    assert _run(fold, 0, labels, n_layers=2)[0] == 1
    assert (first["class_sums"] == 1).all()  # the layer before it is folded
    assert (second["samples"] == -1).all() and (second["class_sums"] == 0).all()  # unchanged
    with pytest.raises(ValueError, match="layer 0 has no summaries of this batch"):
        _run(fold, 2, labels, n_layers=2)  # a fold uses up the summaries
    mean[1, 0] = 0
    one, _ = _fold(_state(2, 3, 2, rows=2))
    for start, lab, match in [
        (0, np.array([0, 2]), "label 2 of sample 1 is out of range: labels must be in 0..1"),
        (-1, labels, "start must be"),
    ]:
        one.set_stats(0, mean, mx, loc)
        with pytest.raises(ValueError, match=match):
            _run(one, start, lab)
    one.set_stats(0, mean, mx, loc)
    with pytest.raises(ValueError, match="pooled_row must have shape"):
        one.fold(0, labels, np.zeros(2, np.uint8), np.zeros(3, np.int64))
    keys = ("values", "samples", "locs", "slots", "class_sums", "pooled", "pending")
    res = tuple(_reservoir([1, 1]).values())
    with pytest.raises(ValueError, match="layer 0: class_sums has dtype float32"):
        _fold({**second, "class_sums": np.zeros((2, 2), np.float32)})
    with pytest.raises(ValueError, match="layer 1: every layer must have the same classes"):
        _fold(first, _state(2, 3, 3, rows=2))
    with pytest.raises(ValueError, match="layer 0: expected a tuple"):
        _core.Fold([tuple(first[k] for k in keys)[:6]], res)
    with pytest.raises(ValueError, match="at least one layer"):
        _core.Fold([], res)
    with pytest.raises(ValueError, match="one count per class"):
        _core.Fold([tuple(first[k] for k in keys)], tuple(_reservoir([1, 0, 1]).values()))
    with pytest.raises(ValueError, match="one position per pooled row"):
        _core.Fold([tuple(first[k] for k in keys)], tuple(_reservoir([1, 2]).values()))
    with pytest.raises(ValueError, match="layer 2 outside 0..1"):
        fold.set_stats(2, mean, mx, loc)
    with pytest.raises(ValueError, match="one batch"):
        fold.set_stats(0, mean, mx[:1], loc)
    fold.set_stats(0, mean, mx, loc)
    fold.set_stats(1, mean[:1], mx[:1], loc[:1])
    with pytest.raises(ValueError, match="of one batch"):
        _run(fold, 2, labels, n_layers=2)
    for x, match in [
        (np.zeros((2, 3), np.float32), "must have 2 channels"),
        (np.zeros((2, 2, 4), np.float64), "expected float32"),
        (np.zeros((2, 4, 2), np.float32).transpose(0, 2, 1), "C-contiguous"),
        (np.zeros((2, 2, 0), np.float32), "at least one sample and one value"),
        (np.zeros(2, np.float32), "C-contiguous array"),
    ]:
        with pytest.raises(ValueError, match=match):
            fold.stats(0, x)
        with pytest.raises(ValueError, match=match):
            _run(fold, 2, labels, [x, None])


def test_fold_refuses_state_that_would_index_out_of_bounds():
    """The lists and the reservoir are numpy arrays Python may change between folds: a slot
    outside 0..k-1 or a sample from the batch on (a batch folded twice) is refused before
    anything is written."""
    st = _state(2, 3, 2, rows=2)
    fold, res = _fold(st)
    stats = (np.ones((4, 2), np.float32), np.ones((4, 2), np.float32), np.zeros((4, 2), np.int64))
    labels = np.zeros(4, np.int64)
    fold.set_stats(0, *stats)
    assert _run(fold, 0, labels)[0] == -1
    fold.set_stats(0, *stats)
    with pytest.raises(ValueError, match="batches must be offered in order"):
        _run(fold, 2, labels)  # samples 0..3 were offered: not a new batch
    res["position"][:] = -1
    with pytest.raises(ValueError, match="the lists hold sample 2 outside -1..1: batches must"):
        _run(fold, 2, labels)
    st["slots"][1, 0] = 3
    with pytest.raises(ValueError, match="slot 3 outside 0..2"):
        _run(fold, 4, labels)
    st["slots"][1, 0] = 0
    before = {key: v.copy() for key, v in st.items()}
    with pytest.raises(ValueError, match="label"):
        _run(fold, 4, np.full(4, 5, np.int64))
    for key in st:
        np.testing.assert_array_equal(st[key], before[key])


def _reservoir(caps):
    caps = np.asarray(caps, np.int64)
    offset = np.concatenate([[0], np.cumsum(caps)[:-1]]).astype(np.int64)
    return dict(seen=np.zeros(len(caps), np.int64), caps=caps, offset=offset,
                position=np.full(int(caps.sum()), -1, np.int64),
                rng=np.array([7], np.uint64))  # fmt: skip


def test_reservoir_fills_free_rows_in_order_then_replaces():
    r = _reservoir([3, 2])
    rows = _core.reservoir_offer(np.array([0, 1, 0, 0, 1]), 0, **r)
    np.testing.assert_array_equal(rows, [0, 3, 1, 2, 4])  # free rows: no draw
    np.testing.assert_array_equal(r["position"], [0, 2, 3, 1, 4])
    np.testing.assert_array_equal(r["seen"], [3, 2])
    for start in range(5, 500, 5):  # full: each later sample replaces a row or is dropped
        rows = _core.reservoir_offer(np.array([0, 0, 0, 0, 0]), start, **r)
        kept = rows >= 0
        # a row taken twice in one batch belongs to the later sample only
        assert len(set(rows[kept].tolist())) == kept.sum()
        np.testing.assert_array_equal(r["position"][rows[kept]], start + np.flatnonzero(kept))
        assert set(rows[kept].tolist()) <= {0, 1, 2}
    assert r["position"][:3].min() > 100  # the reservoir reaches late samples


def test_reservoir_keeps_each_sample_with_equal_probability():
    """Algorithm R: each of n samples of a class ends in its 4 rows with probability 4 / n."""
    n, trials = 40, 3000
    counts = np.zeros(n)
    for seed in range(trials):
        r = _reservoir([4])
        r["rng"][0] = seed
        for start in range(0, n, 8):
            _core.reservoir_offer(np.zeros(8, np.int64), start, **r)
        counts[r["position"]] += 1
    expect = trials * 4 / n  # 300 per sample, standard deviation about 16
    assert np.abs(counts - expect).max() < 6 * np.sqrt(expect)
    again = _reservoir([4])
    again["rng"][0] = trials - 1
    for start in range(0, n, 8):
        _core.reservoir_offer(np.zeros(8, np.int64), start, **again)
    np.testing.assert_array_equal(again["position"], r["position"])  # same seed, same sample


def test_reservoir_refuses_bad_input():
    r = _reservoir([2, 2])
    with pytest.raises(ValueError, match="label 2 outside 0..1"):
        _core.reservoir_offer(np.array([0, 2]), 0, **r)
    _core.reservoir_offer(np.array([0, 1]), 0, **r)
    with pytest.raises(ValueError, match="in order"):
        _core.reservoir_offer(np.array([0]), 0, **r)
    with pytest.raises(ValueError, match="must lie inside position"):
        _core.reservoir_offer(np.array([0]), 2, **{**r, "caps": np.array([2, 3])})
    with pytest.raises(ValueError, match="rng"):
        _core.reservoir_offer(np.array([0]), 2, **{**r, "rng": np.zeros(1, np.int64)})


def test_softmax_top_against_torch():
    import torch

    rng = np.random.default_rng(2)
    z = rng.normal(0, 5, (33, 10)).astype(np.float32)
    z[3, [2, 7]] = 40.0  # a tie: the first index
    top, prob = np.zeros(33, np.int64), np.zeros(33, np.float32)
    assert _core.softmax_top(z, top, prob)
    p = torch.softmax(torch.from_numpy(z), 1)
    np.testing.assert_array_equal(top, p.argmax(1).numpy())
    np.testing.assert_allclose(prob, p.max(1).values.numpy(), rtol=1e-6)
    assert top[3] == 2
    z[5, 1] = np.nan
    before = prob.copy()
    assert not _core.softmax_top(z, top, prob)
    np.testing.assert_array_equal(prob, before)  # nothing written
    with pytest.raises(ValueError, match="float32"):
        _core.softmax_top(z.astype(np.float64), top, prob)
    with pytest.raises(ValueError, match="top must have shape"):
        _core.softmax_top(z, top[:5], prob)


def test_quantize_images_matches_torch_arithmetic():
    import torch

    rng = np.random.default_rng(5)
    x = rng.normal(0.3, 0.6, (7, 3, 9, 11)).astype(np.float32)  # values outside the range too
    x[0, 0, 0, :4] = [0.5 / 255, 1.5 / 255, 2.5 / 255, np.nan]  # halves round to even; NaN -> 0
    low = np.array([0.0, -0.5, 0.2], np.float32)
    high = np.array([1.0, 1.5, 0.9], np.float32)
    index = np.array([6, 0, 3, 0])
    got = _core.quantize_images(x, low, high, index)
    t = torch.from_numpy(x[index]) - torch.from_numpy(low).view(1, -1, 1, 1)
    t.div_(torch.from_numpy(high - low).view(1, -1, 1, 1)).clamp_(0, 1).mul_(255).round_()
    expect = torch.nan_to_num(t, nan=0.0).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(got, expect)
    assert got.shape == (4, 9, 11, 3) and got[1, 0, 3, 0] == 0
    with pytest.raises(ValueError, match="outside the batch"):
        _core.quantize_images(x, low, high, np.array([7]))
    with pytest.raises(ValueError, match="low must be"):
        _core.quantize_images(x, low[:2], high, index)
    with pytest.raises(ValueError, match="float32"):
        _core.quantize_images(x.astype(np.float64), low, high, index)
    # into the caller's rows: the same bytes, nothing else written
    store = np.full((6, 9, 11, 3), 7, np.uint8)
    assert _core.quantize_images(x, low, high, index, out=store[1:5]) is not None
    np.testing.assert_array_equal(store[1:5], expect)
    assert (store[0] == 7).all() and (store[5] == 7).all()
    with pytest.raises(ValueError, match=r"out must have shape \(4, 9, 11, 3\)"):
        _core.quantize_images(x, low, high, index, out=store[:3])
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        _core.quantize_images(
            x, low, high, index, out=np.zeros((4, 11, 9, 3), np.uint8).transpose(0, 2, 1, 3)
        )
    with pytest.raises(TypeError, match="out must be a numpy array"):
        _core.quantize_images(x, low, high, index, out=[0] * 4)
    with pytest.raises(ValueError, match="out has dtype"):
        _core.quantize_images(x, low, high, index, out=np.zeros((4, 9, 11, 3), np.int16))


def test_fold_with_rows_drawn_by_the_caller():
    """offer=False (a reservoir drawn over every process's samples): the reservoir is left
    alone, the given rows get the means, and rows outside the buffer are refused."""
    rng = np.random.default_rng(5)
    st = _state(4, 3, 2, rows=5)
    fold, res = _fold(st)
    mean = rng.standard_normal((3, 4)).astype(np.float32)
    fold.set_stats(0, mean, mean, np.zeros((3, 4), np.int64))
    rows = np.array([4, -1, 0], np.int64)
    need = np.zeros(3, np.uint8)
    assert fold.fold(10, np.array([1, 0, 0]), need, rows, offer=False) == -1
    np.testing.assert_array_equal(rows, [4, -1, 0])  # read, not written
    np.testing.assert_array_equal(st["pooled"][[4, 0]], mean[[0, 2]])
    assert (res["seen"] == 0).all() and (res["position"] == -1).all()
    fold.set_stats(0, mean, mean, np.zeros((3, 4), np.int64))
    with pytest.raises(ValueError, match="pooled_row"):
        fold.fold(13, np.array([1, 0, 0]), need, np.array([5, -1, 0]), offer=False)
    fold.set_stats(0, mean, mean, np.zeros((3, 4), np.int64))
    with pytest.raises(ValueError, match="label 2 of sample 14"):
        fold.fold(13, np.array([1, 2, 0]), need, rows, offer=False)
