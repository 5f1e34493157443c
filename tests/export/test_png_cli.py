"""`python -m cnnvis export png` as a user runs it on a headless machine: EGL, no display."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def test_export_png_headless_through_egl(demo_session, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["EGL_PLATFORM"] = "surfaceless"
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (env.get("PYTHONPATH", ""), str(ROOT / "python")) if p
    )
    out = tmp_path / "overview.png"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "cnnvis",
            "export",
            "png",
            str(demo_session),
            "--out",
            str(out),
            "--size",
            "1280x800",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape == (800, 1280, 3)
    # a real picture, not a blank canvas: many distinct colours, not all background
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50
    assert (image.reshape(-1, 3) != image[0, 0]).any(axis=1).mean() > 0.05


def test_export_png_of_a_missing_session_is_one_clear_line(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "cnnvis",
            "export",
            "png",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "x.png"),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT / "python")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert "nope" in run.stderr
