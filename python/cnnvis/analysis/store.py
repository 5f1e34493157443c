"""Where an analysis is kept: a part of its session (checksummed in the manifest), or plain files
(``analysis.json`` and ``analysis.npz``, each written atomically) in a folder that is not a
session. :mod:`cnnvis.analysis.core` turns the analysis into these documents and back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ANALYSIS_FILE", "FORMAT", "FORMAT_VERSION", "PROJECTIONS_FILE", "has_analysis"]

#: File name of the saved analysis inside a session folder.
ANALYSIS_FILE = "analysis.json"
#: File name of the saved projections inside a session folder.
PROJECTIONS_FILE = "analysis.npz"
#: Name of the session part (``cnnvis.io.write_part``).
PART = "analysis"
FORMAT = "cnnvis-analysis"
FORMAT_VERSION = 1


# -- files ------------------------------------------------------------------------------------
def _is_session(d: Path) -> bool:
    return (d / "manifest.json").is_file()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (for folders that are not sessions)."""
    from cnnvis.io import atomic_file

    with atomic_file(path) as f:
        f.write(data)


def write_analysis(d: Path, doc: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    if _is_session(d):  # a session: a part, checksummed in its manifest
        from cnnvis.io import write_part

        write_part(d, PART, json_obj=doc, arrays=arrays or None)
        return
    import io

    if arrays:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        _atomic_write_bytes(d / PROJECTIONS_FILE, buf.getvalue())
    elif (d / PROJECTIONS_FILE).exists():
        (d / PROJECTIONS_FILE).unlink()
    _atomic_write_bytes(d / ANALYSIS_FILE, json.dumps(doc, indent=1).encode("utf-8"))


def read_analysis(d: Path) -> tuple[Any, dict[str, np.ndarray]]:
    path = d / ANALYSIS_FILE
    if _is_session(d):
        from cnnvis.io import has_part, read_part

        if not has_part(d, PART):
            raise FileNotFoundError(f"the session at {str(d)!r} holds no analysis yet")
        doc, arrays = read_part(d, PART)
        return doc, dict(arrays or {})
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} does not exist: run analyze() and save() first")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"{str(path)!r} is not valid JSON ({exc}); delete it to start over"
        ) from None
    arrays = {}
    if (d / PROJECTIONS_FILE).is_file():
        with np.load(d / PROJECTIONS_FILE, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    return doc, arrays


def has_analysis(session_dir: str | os.PathLike) -> bool:
    """Whether a folder (a session or a plain folder) holds a saved analysis."""
    d = Path(session_dir)
    if _is_session(d):
        from cnnvis.io import has_part

        return has_part(d, PART)
    return (d / ANALYSIS_FILE).is_file()
