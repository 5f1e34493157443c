#!/usr/bin/env bash
# Builds cnnvis._core with AddressSanitizer and UndefinedBehaviorSanitizer into build/sanitize
# and runs the core and kernel tests (tests/layout with its property tests, the recording
# kernels with theirs) against it. Any memory error or undefined behaviour stops the run with a report.
# usage: bash scripts/sanitize.sh [pytest args]   (after scripts/setup.sh; uses .venv if there)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -z "${VIRTUAL_ENV:-}" ] && [ -f .venv/bin/activate ] && . .venv/bin/activate
PY=${PYTHON:-python}
build=${BUILD_DIR:-build/sanitize}

# pybind11 is a build requirement only: the environment may not have it yet.
"$PY" -c 'import pybind11' 2>/dev/null || "$PY" -m pip install -q pybind11
# So is CMake: a machine without one gets it from PyPI, into the same environment.
command -v cmake >/dev/null || "$PY" -m pip install -q cmake ninja
generator=(); command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCNNVIS_SANITIZE=ON \
  -Dpybind11_DIR="$("$PY" -c 'import pybind11; print(pybind11.get_cmake_dir())')" \
  -DPython_EXECUTABLE="$(command -v "$PY")" >/dev/null
cmake --build "$build" -j "${JOBS:-2}"

# A copy of the package with the sanitized extension, found before any installed cnnvis.
pkg="$build/pkg"
rm -rf "$pkg" && mkdir -p "$pkg"
cp -r python/cnnvis "$pkg/"
rm -f "$pkg"/cnnvis/_core*.so
cp "$build"/_core*.so "$pkg/cnnvis/"

# The sanitizer runtimes must be loaded before the interpreter's own libraries.
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
asan=$("$cxx" -print-file-name=libasan.so)
ubsan=$("$cxx" -print-file-name=libubsan.so)
export LD_PRELOAD="$asan $ubsan"
# Python's allocator keeps memory for the interpreter's lifetime: leaks are not checked.
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export PYTHONPATH="$PWD/$pkg" PYTHONMALLOC=malloc
"$PY" -c 'import cnnvis._core as c, sys; print("sanitized core:", c.__file__)'
"$PY" -m pytest -q -p no:cacheprovider -m "not slow" \
  tests/layout tests/record/test_topk_merge.py tests/record/test_kernel_properties.py "$@"
