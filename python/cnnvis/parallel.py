"""The one rule for thread counts (``n_jobs``), shared by every threaded entry point.

Ground floor: imports nothing from cnnvis. The C++ core applies the same rule
(``cnnvis::resolve_n_jobs`` in ``cpp/include/cnnvis/common.hpp``) and never starts more threads
than cores, whatever it is asked; this side adds the warning and the affinity-aware core count.
"""

from __future__ import annotations

import operator
import os
import warnings

__all__ = ["MAX_N_JOBS", "available_cores", "resolve_n_jobs"]

#: Larger requests are refused as absurd rather than capped (they are beyond a C int).
MAX_N_JOBS = 2**31 - 1


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no sched_getaffinity on macOS and Windows
        return max(1, os.cpu_count() or 1)


def resolve_n_jobs(n_jobs: object, name: str = "n_jobs") -> int:
    """Threads to use for ``n_jobs``.

    ``-1`` means every available core; ``1`` and up are used as given up to the number of cores
    (more is capped, with a :class:`RuntimeWarning`: extra threads only add switching); ``0``,
    values below ``-1`` and values beyond :data:`MAX_N_JOBS` raise :class:`ValueError`, and
    non-integers :class:`TypeError`.
    """
    if isinstance(n_jobs, bool):
        raise TypeError(f"{name} must be an integer, got bool")
    try:
        n = operator.index(n_jobs)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(n_jobs).__name__}") from None
    if n == -1:
        return available_cores()
    if n < 1:
        raise ValueError(f"{name} must be >= 1, or -1 for every core, got {n}")
    if n > MAX_N_JOBS:
        raise ValueError(f"{name}={n} is not a thread count (at most {MAX_N_JOBS})")
    cores = available_cores()
    if n > cores:
        warnings.warn(
            f"{name}={n} is more than the {cores} available cores; using {cores}",
            RuntimeWarning,
            stacklevel=3,
        )
        return cores
    return n
