"""The C++ recording kernels (accumulate and its top-k merge, spatial stats, image quantisation,
box gather) against numpy and torch."""

import numpy as np
import pytest

from cnnvis import _core
from cnnvis.record.patches import _unique_rows
from cnnvis.record.record import _Column


def _empty(c, k):
    return (
        np.full((c, k), -np.inf, np.float32),
        np.full((c, k), -1, np.int64),
        np.zeros((c, k), np.int64),
        np.tile(np.arange(k, dtype=np.int64), (c, 1)),
    )


def _merge(vals, smp, loc, slot, mx, lc, start):
    """Only the top-k part of ``_core.accumulate`` (zero means, one class, no reservoir rows)."""
    b, c = mx.shape
    ok = _core.accumulate(
        vals, smp, loc, slot, np.zeros((1, c)), np.zeros((1, c), np.float32),
        np.zeros(slot.shape, np.uint8), np.zeros((b, c), np.float32), mx, lc, start,
        np.zeros(b, np.int64), np.full(b, -1, np.int64), np.zeros(b, np.uint8),
    )  # fmt: skip
    assert ok


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
    with pytest.raises(ValueError, match="must have shape"):
        _merge(vals, smp, loc, slot, np.zeros((4, 2), np.float32), lc, 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        _merge(np.asfortranarray(np.zeros((3, 2), np.float32)), smp, loc, slot, mx,
                         lc, 0)  # fmt: skip
    ro = vals.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _merge(ro, smp, loc, slot, mx, lc, 0)


def test_column_grows():
    col = _Column(np.int64)
    parts = [np.arange(i, i + 3000) for i in range(0, 30000, 3000)]
    for p in parts:
        col.append(p)
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
    with pytest.raises(ValueError, match="out"):
        _core.spatial_stats(x, (np.zeros((1, 2), np.float32),) * 3)


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


def test_spatial_stats_writes_into_given_buffers():
    x = np.random.default_rng(1).standard_normal((3, 4, 10)).astype(np.float32)
    bufs = (np.zeros((3, 4), np.float32), np.zeros((3, 4), np.float32), np.zeros((3, 4), np.int64))
    got = _core.spatial_stats(x, bufs)
    fresh = _core.spatial_stats(x)
    for g, b, f in zip(got, bufs, fresh):
        assert np.shares_memory(g, b)
        np.testing.assert_array_equal(b, f)
    with pytest.raises(ValueError, match="out max must have shape"):
        _core.spatial_stats(x, (bufs[0], np.zeros((2, 4), np.float32), bufs[2]))
    with pytest.raises(ValueError, match="out argmax has dtype"):
        _core.spatial_stats(x, (bufs[0], bufs[1], np.zeros((3, 4), np.float32)))


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


def test_accumulate_against_numpy():
    """Class sums, reservoir rows, the top-k lists and the new-entry flags over three batches."""
    rng = np.random.default_rng(3)
    nc, k, n_classes, b = 6, 4, 3, 10
    st = _state(nc, k, n_classes, rows=7)
    ref_sums = np.zeros((n_classes, nc))
    all_max, all_loc = [], []
    for batch in range(3):
        start = batch * b
        mean = rng.standard_normal((b, nc)).astype(np.float32)
        mx = rng.integers(0, 5, (b, nc)).astype(np.float32)  # many ties
        loc = rng.integers(0, 50, (b, nc))
        labels = rng.integers(0, n_classes, b)
        rows = np.full(b, -1, np.int64)
        rows[[1, 4]] = [batch, 6 - batch]
        need = np.zeros(b, np.uint8)
        st["pending"][:] = 0
        assert _core.accumulate(**st, mean=mean, batch_max=mx, batch_loc=loc, start=start,
                                labels=labels, pooled_row=rows, need=need)  # fmt: skip
        np.add.at(ref_sums, labels, mean.astype(np.float64))
        np.testing.assert_array_equal(st["class_sums"], ref_sums)
        np.testing.assert_array_equal(st["pooled"][[batch, 6 - batch]], mean[[1, 4]])
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


def test_accumulate_refuses_nan_and_bad_rows():
    st = _state(2, 3, 2, rows=2)
    mean = np.zeros((2, 2), np.float32)
    mean[1, 0] = np.inf
    kw = dict(batch_max=np.zeros((2, 2), np.float32), batch_loc=np.zeros((2, 2), np.int64),
              start=0, labels=np.array([0, 1]), pooled_row=np.array([0, 1]),
              need=np.zeros(2, np.uint8))  # fmt: skip
    assert not _core.accumulate(**st, mean=mean, **kw)
    assert (st["samples"] == -1).all() and (st["class_sums"] == 0).all()  # nothing changed
    mean[1, 0] = 0
    with pytest.raises(ValueError, match="label 2"):
        _core.accumulate(**st, mean=mean, **{**kw, "labels": np.array([0, 2])})
    with pytest.raises(ValueError, match="pooled row 2"):
        _core.accumulate(**st, mean=mean, **{**kw, "pooled_row": np.array([2, -1])})
    with pytest.raises(ValueError, match="float64"):
        _core.accumulate(**{**st, "class_sums": np.zeros((2, 2), np.float32)}, mean=mean, **kw)


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
