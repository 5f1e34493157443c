// Helpers shared by the binding files: array validation with messages a user can act on,
// the Ctrl-C hook for the core, and the GIL policy. The only place besides the binding files
// that includes Python headers.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>

#include "cnnvis/common.hpp"

namespace cnnvis::bind {

namespace py = pybind11;

// C-contiguous float64 array; pybind11 converts float32, other dtypes and strided input (a copy).
using F64Array = py::array_t<double, py::array::c_style | py::array::forcecast>;
using F32Array = py::array_t<float, py::array::c_style | py::array::forcecast>;
using I64Array = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

[[noreturn]] inline void fail(const std::string& msg) { throw InvalidArgument(msg); }

inline void require_ndim(const py::array& a, int ndim, const char* name) {
  if (a.ndim() != ndim)
    fail(std::string(name) + " must be a " + std::to_string(ndim) + "-D array, got " +
         std::to_string(a.ndim()) + "-D");
}

template <class T>
void require_finite(const py::array_t<T, py::array::c_style | py::array::forcecast>& a,
                    const char* name) {
  const T* p = a.data();
  const auto n = static_cast<std::size_t>(a.size());
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(static_cast<double>(p[i])))
      fail(std::string(name) + " contains NaN or infinite values (first at flat index " +
           std::to_string(i) + ")");
}

// Interrupt for the core: briefly takes the GIL and asks Python whether a signal (Ctrl-C) is
// pending; if so the KeyboardInterrupt is raised through the core back to the caller.
inline Interrupt python_interrupt() {
  return [] {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  };
}

}  // namespace cnnvis::bind
