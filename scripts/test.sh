#!/usr/bin/env bash
# Sets up (scripts/setup.sh), then lints and runs the whole test suite, the Qt tests under Xvfb.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
ruff check python tests benchmarks
ruff format --check python tests benchmarks
export EGL_PLATFORM=surfaceless
xvfb-run -a -s "-screen 0 1920x1080x24" python -m pytest -q -ra "$@"
