"""The C++ top-k merge against a stable descending sort, and the record helpers around it."""

import numpy as np
import pytest

from cnnvis import _core
from cnnvis.record.record import _Column, _unique_rows


def _empty(c, k):
    return (
        np.full((c, k), -np.inf, np.float32),
        np.full((c, k), -1, np.int64),
        np.zeros((c, k), np.int64),
        np.tile(np.arange(k, dtype=np.int64), (c, 1)),
    )


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
        n = _core.topk_merge(vals, smp, loc, slot, mx, lc, start)
        av = np.concatenate([ref_v, mx.T], 1)
        asmp = np.concatenate([ref_s, np.tile(np.arange(start, start + b), (c, 1))], 1)
        al = np.concatenate([ref_l, lc.T], 1)
        order = np.argsort(-av, axis=1, kind="stable")[:, :k]
        ref_v, ref_s, ref_l = (np.take_along_axis(a, order, 1) for a in (av, asmp, al))
        start += b
        np.testing.assert_array_equal(vals, ref_v)
        np.testing.assert_array_equal(smp, ref_s)
        np.testing.assert_array_equal(loc, ref_l)
        assert n >= 0
        for row in slot:  # slots stay a permutation: an entry takes the slot it evicts
            assert sorted(row) == list(range(k))


def test_merge_ties_keep_earlier_sample():
    vals, smp, loc, slot = _empty(1, 2)
    mx = np.array([[1.0], [1.0], [1.0]], np.float32)
    assert _core.topk_merge(vals, smp, loc, slot, mx, np.zeros((3, 1), np.int64), 10) == 2
    assert smp.tolist() == [[10, 11]]


def test_merge_rejects_copies_and_bad_shapes():
    vals, smp, loc, slot = _empty(3, 2)
    mx = np.zeros((4, 3), np.float32)
    lc = np.zeros((4, 3), np.int64)
    with pytest.raises(ValueError, match="values has dtype float64"):
        _core.topk_merge(vals.astype(np.float64), smp, loc, slot, mx, lc, 0)
    with pytest.raises(ValueError, match="batch_max must have shape"):
        _core.topk_merge(vals, smp, loc, slot, np.zeros((4, 2), np.float32), lc, 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.topk_merge(np.asfortranarray(np.zeros((3, 2), np.float32)), smp, loc, slot, mx,
                         lc, 0)  # fmt: skip
    ro = vals.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _core.topk_merge(ro, smp, loc, slot, mx, lc, 0)


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
