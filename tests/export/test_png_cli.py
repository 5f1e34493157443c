"""`python -m cnnvis export png` as a user runs it on a headless machine: EGL, no display."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from PIL import Image

from child_env import child_env


def test_export_png_headless_through_egl(demo_session, tmp_path):
    no_display = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env = child_env(no_display, EGL_PLATFORM="surfaceless")
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
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert "nope" in run.stderr
