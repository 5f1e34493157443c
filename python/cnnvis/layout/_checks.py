"""Argument checks shared by the layout functions: numbers that must be finite and in range,
integers that must fit the C++ core. Each failure is a ValueError or TypeError naming the
argument, before any work starts."""

from __future__ import annotations

import math
import operator

__all__ = ["real", "integer", "seed"]

INT64 = (-(2**63), 2**63 - 1)
INT32_MAX = 2**31 - 1


def real(
    value: object,
    name: str,
    lo: float = -math.inf,
    hi: float = math.inf,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """``value`` as a finite float inside the interval from ``lo`` to ``hi``."""
    if isinstance(value, (bool, str, bytes, complex)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        v = float(value)  # numbers, numpy scalars and 0-d arrays
    except OverflowError:
        raise ValueError(f"{name} must be finite, got {value}") from None
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}") from None
    below = v <= lo if lo_open else v < lo
    above = v >= hi if hi_open else v > hi
    if not math.isfinite(v) or below or above:
        if hi == math.inf:
            bound = "" if lo == -math.inf else f" {'>' if lo_open else '>='} {lo:g}"
        else:
            bound = f" in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")
    return v


def integer(value: object, name: str, lo: int = INT64[0], hi: int = INT64[1]) -> int:
    """``value`` as an int in ``[lo, hi]`` (the default: what a C++ int64 holds)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got bool")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {v}")
    return v


def seed(random_state: object) -> int:
    """A 64-bit seed from ``random_state``; ``None`` draws a fresh one."""
    if random_state is None:
        import numpy as np

        return int(np.random.default_rng().integers(0, 2**31 - 1))
    return integer(random_state, "random_state", 0, 2**64 - 1)
