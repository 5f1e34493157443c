"""Hypothesis strategies for hostile input to the layout functions and the core, and the one
rule for judging an outcome: a result that passes its invariants, or a ValueError, TypeError or
MemoryError that says something. Every case runs in this process, so a crash of the core fails
the whole run (which is the point)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: Few examples each, no deadline: the suite stays quick, and the sanitizer run can use them too.
FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)

#: Values that break arithmetic: signed zeros, denormals, huge finite values, NaN and inf.
SPECIAL = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    5e-324,
    2.2e-308,
    1e-200,
    1e-30,
    1e30,
    1e200,
    1e307,
    1.7976931348623157e308,
    np.nan,
    np.inf,
    -np.inf,
]

#: Integers around every C boundary, and beyond int64 and uint64.
HOSTILE_INTS = [0, 1, -1, 2, 3, 7, -2, 2**31 - 1, 2**31, 2**32, 2**40, 2**63 - 1, 2**63]
HOSTILE_INTS += [2**64 - 1, 2**64, 2**70, -(2**63), -(2**70)]

DTYPES = [np.float64, np.float32, np.int64, np.int32, np.uint8, np.bool_, np.float16]


def hostile_ints() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(HOSTILE_INTS), st.integers(-3, 40))


def hostile_floats() -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from(SPECIAL), st.floats(-1e6, 1e6))


@st.composite
def arrays(draw: Any, shape: tuple[int, ...], *, finite: float = 0.7, positive: bool = False):
    """An array of ``shape``: mostly ordinary values, some special; any of DTYPES; C or F
    order, sometimes read-only, sometimes a non-contiguous view."""
    n = int(np.prod(shape))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = rng.normal(size=n) * 10 ** draw(st.integers(-3, 3))
    if positive:
        values = np.abs(values) + 0.5
    if n and not draw(st.booleans().map(lambda b: b or finite == 1.0)):
        k = draw(st.integers(1, max(1, n // 3)))
        where = rng.choice(n, size=min(k, n), replace=False)
        values[where] = rng.choice(SPECIAL, size=len(where))
    dtype = draw(st.sampled_from(DTYPES))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        a = values.reshape(shape).astype(dtype)
    layout = draw(st.sampled_from(["C", "F", "strided", "readonly"]))
    if layout == "F":
        a = np.asfortranarray(a)
    elif layout == "strided" and a.ndim >= 1:
        wide = np.repeat(a, 2, axis=0)
        a = wide[::2]
    elif layout == "readonly":
        a = a.copy()
        a.flags.writeable = False
    return a


def symmetric_distances(draw: Any, n: int) -> np.ndarray:
    """A square, symmetric, non-negative matrix with a scale anywhere from 1e-300 to 1e307."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    points = rng.normal(size=(n, 3))
    d = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))
    scale = draw(st.sampled_from([1.0, 1e-300, 1e-200, 5e-324, 1e30, 1e200, 1e307, 1e308]))
    with np.errstate(over="ignore", under="ignore"):
        d = d * scale
    if draw(st.booleans()):
        d = np.where(d > 0, np.float64(draw(st.sampled_from(SPECIAL[4:12]))), 0.0)
    return d


ALLOWED = (ValueError, TypeError, MemoryError)


def outcome(call: Callable[[], Any], check: Callable[[Any], None] | None = None) -> Any:
    """Runs ``call``: an allowed error must carry a message; a result must pass ``check``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = call()
        except ALLOWED as e:
            assert str(e).strip(), f"{type(e).__name__} without a message"
            assert "incompatible function arguments" not in str(e), str(e)
            return None
    if check is not None:
        check(result)
    return result


def is_permutation(order: Any, n: int) -> None:
    order = np.asarray(order)
    assert order.shape == (n,), order.shape
    assert sorted(order.tolist()) == list(range(n)), order


def no_overlap(xy: np.ndarray, sizes: np.ndarray, width: float, height: float) -> None:
    """Rectangles inside the box and pairwise disjoint (touching allowed), to a relative 1e-9."""
    xy = np.asarray(xy, dtype=np.float64)
    sizes = np.asarray(sizes, dtype=np.float64)
    assert xy.shape == sizes.shape and np.all(np.isfinite(xy))
    tol = 1e-9 * max(width, height, float(sizes.max(initial=0.0)))
    lo, hi = xy, xy + sizes
    assert (
        np.all(lo >= -tol) and np.all(hi[:, 0] <= width + tol) and np.all(hi[:, 1] <= height + tol)
    )
    for i in range(len(xy)):
        apart = (hi[i] <= lo[i + 1 :] + tol) | (hi[i + 1 :] <= lo[i] + tol)
        assert np.all(apart.any(axis=1)), f"rectangle {i} overlaps another"
