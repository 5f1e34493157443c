#!/usr/bin/env bash
# Fast developer build: compiles cnnvis._core with CMake into build/dev and drops the extension
# next to the sources, so `PYTHONPATH=python pytest` uses it without reinstalling.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build/dev}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Release} \
  -Dpybind11_DIR="$(python -c 'import pybind11; print(pybind11.get_cmake_dir())')" \
  -DPython_EXECUTABLE="$(command -v python)" "$@" >/dev/null
cmake --build "$build" -j 2
cp "$build"/_core*.so python/cnnvis/
echo "built $(ls python/cnnvis/_core*.so)"
