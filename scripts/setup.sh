#!/usr/bin/env bash
# Sets up cnnvis on a fresh Debian machine: the system libraries for headless OpenGL and Xvfb
# (when run as root), a virtual environment in .venv, PyTorch, and cnnvis with its extension.
# Re-running is cheap: what is there already is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS="libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 xvfb xauth libxkbcommon-x11-0 libxcb-cursor0
  libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-randr0 libxcb-render-util0 libxcb-image0
  libxcb-xinerama0 libdbus-1-3 libfontconfig1 libglib2.0-0"
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  missing=$(for p in $DEBS; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -c "import torch, torchvision" 2>/dev/null ||
  python -m pip install -q torch==2.14.1 torchvision==0.29.1
python -m pip install -q ".[viewer,test]"
echo "cnnvis is installed in .venv ($(python -c 'import cnnvis; print(cnnvis.__version__)'))"
