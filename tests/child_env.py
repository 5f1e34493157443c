"""The environment for child processes that run ``python -m cnnvis``.

They must import the same cnnvis as the tests: the installed package (with its built extension)
in CI, the source tree (with the extension built into it) in a developer checkout. Putting the
source tree on their path unconditionally would shadow an installed package with sources that
have no extension.
"""

from __future__ import annotations

import os
from pathlib import Path

import cnnvis

CNNVIS_HOME = str(Path(cnnvis.__file__).resolve().parents[1])


def child_env(base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """``base`` (default: this process's environment) plus ``extra``, with the folder the tested
    cnnvis comes from first on ``PYTHONPATH``."""
    env = {**(os.environ if base is None else base), **extra}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (CNNVIS_HOME, env.get("PYTHONPATH", "")) if p)
    return env
