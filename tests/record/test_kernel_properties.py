"""Property tests of every recording entry point of the C++ core (``cpp/bindings/topk.cpp``):
whatever the arrays (dtype, shape, layout, read-only, NaN/inf, huge or negative values, empty)
and whatever the integers (past int64 too), a call gives a correct result or a ValueError,
TypeError or MemoryError with a message, and never writes outside the arrays it was given."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cnnvis import _core

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
I64 = np.iinfo(np.int64)

# integers an array may hold: small and near the int64 edges; a caller may pass any Python int
int64s = st.one_of(
    st.integers(-3, 12),
    st.integers(I64.min, I64.max),
    st.sampled_from([I64.max, I64.max - 1, I64.max - 4, I64.min]),
)
big_ints = st.one_of(int64s, st.sampled_from([2**63, 2**64 - 1, 2**70, -(2**70)]))
floats32 = st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True)
DTYPES = ["float32", "float64", "int64", "int32", "uint8", "uint64", "bool", ">f4", ">i8", "q", "l"]


def refused(fn):
    """fn() or None where it refuses its input with a ValueError, TypeError or MemoryError that
    says why; anything else (another exception, a crash) fails the test."""
    try:
        return fn()
    except (ValueError, TypeError, MemoryError) as e:
        assert str(e), f"{type(e).__name__} without a message"
        return None


@st.composite
def hostile_arrays(draw, dtypes=DTYPES, max_dims=4, max_side=4):
    """Any small array: dtype, shape (empty too), values (extremes, NaN), layout and flags."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side))
    if dtype.kind == "f":
        elements = st.floats(width=8 * min(dtype.itemsize, 8), allow_nan=True)
    elif dtype.kind == "b":
        elements = st.booleans()
    else:
        info = np.iinfo(dtype)
        elements = st.one_of(st.integers(-2, 8).filter(lambda v: info.min <= v <= info.max),
                             st.integers(int(info.min), int(info.max)))  # fmt: skip
    a = draw(hnp.arrays(dtype, shape, elements=elements))
    layout = draw(st.sampled_from(["c", "f", "strided", "readonly"]))
    if layout == "f":
        a = np.asfortranarray(a)
    elif layout == "strided" and a.ndim:
        a = np.repeat(a, 2, axis=0)[::2]
    elif layout == "readonly":
        a.flags.writeable = False
    return a


def guarded(values: np.ndarray, pad: int = 4):
    """(the whole buffer, a view of ``values`` in its middle): the pads must stay untouched."""
    whole = np.full(values.size + 2 * pad, 0x5A, dtype=values.dtype)
    view = whole[pad : pad + values.size]
    view[:] = values
    return whole, view


def pads_untouched(whole: np.ndarray, pad: int = 4) -> bool:
    return bool((whole[:pad] == 0x5A).all() and (whole[-pad:] == 0x5A).all())


# -- reservoir_offer ----------------------------------------------------------------------------


@st.composite
def reservoirs(draw):
    k = draw(st.integers(1, 3))
    n_rows = draw(st.integers(0, 6))
    edge = st.one_of(st.integers(-2, 8), st.sampled_from([I64.max, I64.max - 3, I64.min]))
    caps = np.array(draw(st.lists(edge, min_size=k, max_size=k)), np.int64)
    offset = np.array(draw(st.lists(edge, min_size=k, max_size=k)), np.int64)
    seen = np.array(draw(st.lists(edge, min_size=k, max_size=k)), np.int64)
    labels = np.array(draw(st.lists(st.integers(-1, k), max_size=6)), np.int64)
    return labels, seen, caps, offset, np.full(n_rows, -1, np.int64)


def _offer(seen, caps, offset, rows=4):
    one = np.array([0], np.int64)
    return one, np.array([seen]), np.array([caps]), np.array([offset]), np.full(rows, -1, np.int64)


@SETTINGS
@given(reservoirs(), big_ints, st.integers(0, 2**64 - 1))
@example(_offer(0, I64.max - 3, 4), 100, 1)  # offset + caps overflows int64 (issue 14)
@example(_offer(I64.max, 4, 0), 100, 1)  # the count overflows
@example(_offer(0, 4, 0), I64.max, 1)  # start + i overflows
def test_reservoir_offer_keeps_inside_its_rows(res, start, seed):
    labels, seen, caps, offset, position = res
    whole, pos = guarded(position)
    seen_before = seen.copy()
    rng = np.array([seed], np.uint64)
    row = refused(lambda: _core.reservoir_offer(labels, start, seen, caps, offset, pos, rng))
    assert pads_untouched(whole)
    if row is None:
        return
    assert 0 <= start and (caps >= 0).all() and (offset >= 0).all()
    assert (offset + caps <= len(pos)).all() and (labels < len(seen)).all()
    np.testing.assert_array_equal(seen - seen_before, np.bincount(labels, minlength=len(seen)))
    for i, r in enumerate(row):  # a sample holds the row it was given, inside its class's rows
        if r >= 0:
            c = labels[i]
            assert pos[r] == start + i and offset[c] <= r < offset[c] + caps[c]
    for c in range(len(seen)):  # a class never holds more than its cap, nor another's samples
        held = pos[offset[c] : offset[c] + caps[c]]
        assert (held >= -1).all()


@SETTINGS
@given(st.lists(hostile_arrays(max_dims=2), min_size=6, max_size=6), big_ints)
def test_reservoir_offer_refuses_any_bad_array(arrays, start):
    labels, seen, caps, offset, position, rng = arrays
    refused(lambda: _core.reservoir_offer(labels, start, seen, caps, offset, position, rng))


# -- gather_boxes -------------------------------------------------------------------------------


@SETTINGS
@given(
    st.tuples(st.integers(0, 3), st.integers(0, 6), st.integers(0, 6), st.integers(1, 3)),
    st.lists(st.tuples(int64s, int64s, int64s), max_size=4),
    big_ints,
    big_ints,
)
@example((2, 5, 5, 3), [(0, I64.max, 0)], 2, 2)  # y0 + h overflows int64 (issue 14)
@example((2, 5, 5, 3), [(0, 0, I64.max - 1)], 2, 2)
def test_gather_boxes_reads_only_inside_the_store(shape, boxes, h, w):
    store = np.arange(int(np.prod(shape)), dtype=np.int64).astype(np.uint8).reshape(shape)
    slot, y0, x0 = (np.array([b[i] for b in boxes], dtype=np.int64) for i in range(3))
    out = refused(lambda: _core.gather_boxes(store, slot, y0, x0, h, w))
    if out is None:
        return
    assert out.shape == (len(boxes), h, w, shape[3])
    for i in range(len(boxes)):
        np.testing.assert_array_equal(out[i], store[slot[i], y0[i] : y0[i] + h, x0[i] : x0[i] + w])


@SETTINGS
@given(st.lists(hostile_arrays(), min_size=4, max_size=4), big_ints, big_ints)
def test_gather_boxes_refuses_any_bad_array(arrays, h, w):
    refused(lambda: _core.gather_boxes(*arrays, h, w))


# -- spatial_stats, softmax_top, quantize_images ------------------------------------------------


@SETTINGS
@given(hostile_arrays(dtypes=["float32", "float32", "float64", ">f4"], max_dims=3, max_side=9))
def test_spatial_stats_matches_numpy(x):
    got = refused(lambda: _core.spatial_stats(x))
    if got is None:
        return
    mean, mx, arg = got
    x = np.asarray(x, np.float32)
    for i, j in np.ndindex(x.shape[:2]):
        row = x[i, j]
        if np.isnan(row).any():
            assert np.isnan(mean[i, j]) and np.isnan(mx[i, j])
            continue
        assert mx[i, j] == row.max() and arg[i, j] == int(np.argmax(row == row.max()))
        if np.isfinite(row).all() and np.abs(row).max() < 1e30:
            ref = row.astype(np.float64).mean()
            assert abs(mean[i, j] - ref) <= 1e-5 * np.abs(row).max() + 1e-30


@SETTINGS
@given(
    hostile_arrays(dtypes=["float32", "float32", "float64"], max_dims=2, max_side=5),
    st.sampled_from(["fresh", "aliased", "wrong"]),
)
def test_softmax_top_matches_numpy(z, outputs):
    rows = z.shape[0] if z.ndim else 0
    top, prob = np.zeros(rows, np.int64), np.zeros(rows, np.float32)
    if outputs == "aliased" and z.dtype == np.float32 and z.flags.c_contiguous and z.size:
        prob = z.reshape(-1)[:rows]  # overlaps the logits it would overwrite
    elif outputs == "wrong":
        top = top.astype(np.int32)
    ok = refused(lambda: _core.softmax_top(z, top, prob))
    if not ok:
        return
    zz = z.astype(np.float64)
    assert np.isfinite(zz).all()
    np.testing.assert_array_equal(top, np.argmax(zz, axis=1))
    ref = 1.0 / np.exp(zz - zz.max(axis=1, keepdims=True)).sum(axis=1)
    np.testing.assert_allclose(prob, ref, rtol=1e-5)


@SETTINGS
@given(
    hnp.arrays(np.float32, hnp.array_shapes(min_dims=4, max_dims=4, max_side=4), elements=floats32),
    st.lists(floats32, min_size=2, max_size=2),
    st.lists(int64s, max_size=5),
)
def test_quantize_images_matches_float32_arithmetic(x, range_, index):
    c = x.shape[1]
    low = np.full(c, range_[0], np.float32)
    high = np.full(c, range_[1], np.float32)
    idx = np.array(index, dtype=np.int64)
    out = refused(lambda: _core.quantize_images(x, low, high, idx))
    if out is None:
        assert ((idx < 0) | (idx >= x.shape[0])).any()
        return
    with np.errstate(all="ignore"):
        v = (x[idx] - low[:, None, None]) / (high - low)[:, None, None]
        v = np.where(v > 1, np.float32(1), v)
        v = np.where(v >= 0, v, np.float32(0))
        ref = np.rint(v * np.float32(255)).astype(np.uint8).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(out, ref)


@SETTINGS
@given(st.lists(hostile_arrays(), min_size=5, max_size=5))
def test_quantize_images_refuses_any_bad_array(arrays):
    refused(lambda: _core.quantize_images(*arrays[:4], out=arrays[4]))


# -- Fold ---------------------------------------------------------------------------------------


def layer_arrays(c: int, k: int, n_classes: int, rows: int) -> list[np.ndarray]:
    return [
        np.full((c, k), -np.inf, np.float32),
        np.full((c, k), -1, np.int64),
        np.zeros((c, k), np.int64),
        np.tile(np.arange(k, dtype=np.int64), (c, 1)),
        np.zeros((n_classes, c)),
        np.zeros((rows, c), np.float32),
        np.zeros((c, k), np.uint8),
    ]


def reservoir_arrays(n_classes: int, rows: int) -> list[np.ndarray]:
    base, extra = divmod(rows, n_classes)
    caps = base + (np.arange(n_classes) < extra).astype(np.int64)
    offset = np.concatenate([[0], np.cumsum(caps)[:-1]]).astype(np.int64)
    return [np.zeros(n_classes, np.int64), caps, offset, np.full(rows, -1, np.int64),
            np.array([7], np.uint64)]  # fmt: skip


@SETTINGS
@given(
    st.integers(0, 6),  # which layer array (or reservoir array, 7..11) to replace
    hostile_arrays(max_dims=3),
    st.booleans(),  # replace a reservoir array rather than a layer's
)
def test_fold_refuses_any_bad_state_array(which, bad, in_reservoir):
    layer, res = layer_arrays(2, 3, 2, 4), reservoir_arrays(2, 4)
    if in_reservoir:
        res[which % 5] = bad
    else:
        layer[which] = bad
    refused(lambda: _core.Fold([tuple(layer)], tuple(res)))


@SETTINGS
@given(
    big_ints,  # start
    st.lists(st.integers(-1, 3), min_size=1, max_size=5),  # labels (2 classes)
    st.lists(floats32, min_size=1, max_size=40),  # outputs' values
    st.sampled_from(["ok", "slots", "samples", "alias", "layer"]),
    big_ints,  # a layer index for stats
)
def test_fold_gives_a_consistent_state_or_an_error(start, labels, values, tamper, layer_index):
    c, k, n_classes, rows = 2, 3, 2, 4
    layer, res = layer_arrays(c, k, n_classes, rows), reservoir_arrays(n_classes, rows)
    if tamper == "alias":  # the samples are also the slots: a write could become an index
        layer[1] = layer[3]
    fold = refused(lambda: _core.Fold([tuple(layer)], tuple(res)))
    if fold is None:
        assert tamper == "alias"
        return
    b = len(labels)
    x = np.resize(np.array(values, np.float32), (b, c, 3))
    if tamper == "slots":
        layer[3][0, 0] = 1 << 40
    elif tamper == "samples":
        layer[1][1, 2] = start if start <= I64.max else 0
    if tamper == "layer":
        refused(lambda: fold.stats(layer_index, x))
    need, pooled_row = np.zeros(b, np.uint8), np.zeros(b, np.int64)
    lab = np.array(labels, np.int64)
    fold.stats(0, x)
    bad = refused(lambda: fold.fold(start, lab, need, pooled_row))
    valid = tamper in ("ok", "layer") and 0 <= start <= 2**62 and ((lab >= 0) & (lab < 2)).all()
    if bad is None:
        assert not valid
        return
    assert 0 <= start and (lab >= 0).all() and (lab < n_classes).all()
    _values, samples, _locs, slots, sums, _pooled, _pending = layer
    for row in slots:
        assert sorted(row) == list(range(k))
    means = _core.spatial_stats(x)[0]  # the means the fold uses (spatial_stats is tested above)
    if bad == -1:
        assert np.isfinite(means).all()
        assert ((samples == -1) | ((samples >= start) & (samples < start + b))).all()
        ref = np.zeros((n_classes, c))
        np.add.at(ref, lab, means.astype(np.float64))
        np.testing.assert_array_equal(sums, ref)
    else:
        assert bad == 0 and not np.isfinite(means).all() and (sums == 0).all()
