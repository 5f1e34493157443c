// Bindings for rectangle packing: validation of sizes, GIL release, Ctrl-C.
#include "cnnvis/packing.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "common.hpp"

namespace py = pybind11;
using cnnvis::bind::as_int;
using cnnvis::bind::F64Array;
using cnnvis::bind::fail;

namespace {

// (n, 2) positive finite sizes split into widths and heights.
std::size_t split_sizes(const F64Array& sizes, std::vector<double>& w, std::vector<double>& h) {
  cnnvis::bind::require_ndim(sizes, 2, "sizes");
  if (sizes.shape(1) != 2)
    fail("sizes must have shape (n, 2) (width, height), got (" + std::to_string(sizes.shape(0)) +
         ", " + std::to_string(sizes.shape(1)) + ")");
  cnnvis::bind::require_finite(sizes, "sizes");
  const auto n = static_cast<std::size_t>(sizes.shape(0));
  const double* s = sizes.data();
  w.resize(n);
  h.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    w[i] = s[2 * i];
    h[i] = s[2 * i + 1];
    if (!(w[i] > 0) || !(h[i] > 0))
      fail("sizes must be positive, rectangle " + std::to_string(i) + " is " +
           std::to_string(w[i]) + " x " + std::to_string(h[i]));
  }
  return n;
}

py::tuple result(const cnnvis::packing::Placement& p) {
  const std::size_t n = p.x.size();
  py::array_t<double> xy({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(2)});
  double* o = xy.mutable_data();
  for (std::size_t i = 0; i < n; ++i) {
    o[2 * i] = p.x[i];
    o[2 * i + 1] = p.y[i];
  }
  return py::make_tuple(xy, p.width, p.height, p.variant);
}

}  // namespace

void init_packing(py::module_& m) {
  m.def(
      "pack_rectangles",
      [](const F64Array& sizes, double aspect, double tolerance, bool integral,
         const py::object& steps_arg, const py::object& n_jobs, const py::object& effort_arg,
         const py::object& variant_arg) {
        std::vector<double> w, h;
        const std::size_t n = split_sizes(sizes, w, h);
        cnnvis::bind::real_arg(aspect, "aspect", 0.0, 1e12, true);
        cnnvis::bind::real_arg(tolerance, "tolerance", 0.0, 1e12);
        const int steps = as_int<int>(steps_arg, "steps");
        if (steps < 1 || steps > 40) fail("steps must be in [1, 40]");
        const int n_threads = cnnvis::bind::n_jobs_arg(n_jobs, "n_threads");
        const int effort = as_int<int>(effort_arg, "effort");
        const int variant = as_int<int>(variant_arg, "variant");
        cnnvis::packing::PackOptions opt;
        opt.aspect = aspect;
        opt.tolerance = tolerance;
        opt.integral = integral;
        opt.steps = steps;
        opt.n_threads = n_threads;
        opt.effort = effort;
        opt.variant = variant;
        cnnvis::packing::Placement p;
        {
          py::gil_scoped_release release;
          p = cnnvis::packing::pack(w.data(), h.data(), n, opt, cnnvis::bind::python_interrupt());
        }
        return result(p);
      },
      py::arg("sizes"), py::arg("aspect") = 1.0, py::arg("tolerance") = 0.1,
      py::arg("integral") = false, py::arg("steps") = 7, py::arg("n_threads") = 1,
      py::arg("effort") = 1, py::arg("variant") = -1,
      "MaxRects variants with a bisection over the box area: (xy, width, height, variant).");

  m.def(
      "pack_in_box",
      [](const F64Array& sizes, double width, double height, const py::object& n_jobs) {
        std::vector<double> w, h;
        const std::size_t n = split_sizes(sizes, w, h);
        const int n_threads = cnnvis::bind::n_jobs_arg(n_jobs, "n_threads");
        cnnvis::packing::Placement p;
        {
          py::gil_scoped_release release;
          p = cnnvis::packing::pack_in_box(w.data(), h.data(), n, width, height, n_threads,
                                           cnnvis::bind::python_interrupt());
        }
        return result(p);
      },
      py::arg("sizes"), py::arg("width"), py::arg("height"), py::arg("n_threads") = 1,
      "Packs into a fixed box or raises ValueError: (xy, width, height, variant).");

  m.def(
      "shelf_pack",
      [](const F64Array& sizes, double aspect, double tolerance) {
        std::vector<double> w, h;
        const std::size_t n = split_sizes(sizes, w, h);
        cnnvis::bind::real_arg(aspect, "aspect", 0.0, 1e12, true);
        cnnvis::bind::real_arg(tolerance, "tolerance", 0.0, 1e12);
        return result(cnnvis::packing::shelf_pack(w.data(), h.data(), n, aspect, tolerance));
      },
      py::arg("sizes"), py::arg("aspect") = 1.0, py::arg("tolerance") = 0.1,
      "Shelf packer (rows, tallest first), the reference floor: (xy, width, height, variant).");
}
