// Helpers shared by the binding files: array validation with messages a user can act on,
// the Ctrl-C hook for the core, and the GIL policy. The only place besides the binding files
// that includes Python headers.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

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

// A Python integer argument as T. pybind11's own conversion answers an int beyond T's range with
// an 'incompatible function arguments' dump; this names the argument and its range instead.
// Integer arguments of the bindings are therefore taken as py::object.
template <class T>
T as_int(const py::handle& value, const char* name) {
  static_assert(std::is_integral_v<T>, "as_int converts to integer types");
  PyObject* index = PyNumber_Index(value.ptr());
  if (index == nullptr) {
    PyErr_Clear();
    throw py::type_error(std::string(name) + " must be an integer, got " +
                         std::string(py::str(py::type::of(value).attr("__name__"))));
  }
  const auto number = py::reinterpret_steal<py::int_>(index);
  using Lim = std::numeric_limits<T>;
  const py::int_ lo(Lim::min()), hi(Lim::max());
  if (number < lo || number > hi)
    fail(std::string(name) + " must be in [" + std::to_string(Lim::min()) + ", " +
         std::to_string(Lim::max()) + "], got " + std::string(py::str(number)));
  return number.cast<T>();
}

// The thread count of an n_jobs argument by the core's one rule (cnnvis::resolve_n_jobs).
inline int n_jobs_arg(const py::handle& value, const char* name = "n_jobs") {
  return resolve_n_jobs(as_int<std::int64_t>(value, name), name);
}

// A float hyperparameter: finite, and inside [lo, hi] (open at lo when lo_open).
inline double real_arg(double value, const char* name, double lo, double hi, bool lo_open = false) {
  const bool low = lo_open ? !(value > lo) : !(value >= lo);
  if (!std::isfinite(value) || low || value > hi) {
    const auto repr = [](double v) { return std::string(py::repr(py::float_(v))); };
    const std::string bound =
        hi >= std::numeric_limits<double>::max()
            ? std::string(lo_open ? " > " : " >= ") + repr(lo)
            : std::string(" in ") + (lo_open ? "(" : "[") + repr(lo) + ", " + repr(hi) + "]";
    fail(std::string(name) + " must be a finite number" + bound + ", got " + repr(value));
  }
  return value;
}

// A finite float argument with no further bound.
inline double finite_arg(double value, const char* name) {
  const double big = std::numeric_limits<double>::max();
  return real_arg(value, name, -big, big);
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
