// Bindings for biclustering and force-directed edge bundling: validation, GIL release, Ctrl-C.
#include "cnnvis/bundling.hpp"

#include <string>

#include "common.hpp"

namespace py = pybind11;
using cnnvis::bind::as_int;
using cnnvis::bind::F64Array;
using cnnvis::bind::fail;
using cnnvis::bind::real_arg;

namespace {

constexpr double kBig = 1e300;

py::tuple bicluster_edges_py(const F64Array& weights, double threshold, double min_density,
                             const py::object& min_gain, const py::object& max_refine,
                             const py::object& patience, const py::object& n_jobs) {
  cnnvis::bind::require_ndim(weights, 2, "weights");
  cnnvis::bind::require_finite(weights, "weights");
  cnnvis::BiclusterOptions opt;
  if (!(threshold >= 0.0)) fail("threshold must be >= 0 (inf: no edges)");
  opt.threshold = threshold;
  opt.min_density = real_arg(min_density, "min_density", 0.0, 1.0, true);
  opt.min_gain = as_int<std::int64_t>(min_gain, "min_gain");
  opt.max_refine = as_int<int>(max_refine, "max_refine");
  opt.patience = as_int<int>(patience, "patience");
  opt.n_threads = cnnvis::bind::n_jobs_arg(n_jobs, "n_threads");
  const std::int64_t nr = weights.shape(0), nc = weights.shape(1);
  const double* data = weights.data();
  cnnvis::BiclusterOutput res;
  {
    py::gil_scoped_release release;
    res = cnnvis::bicluster_edges(data, nr, nc, opt, cnnvis::bind::python_interrupt());
  }
  py::list bics;
  for (auto& b : res.biclusters) {
    py::array_t<std::int64_t> rows(static_cast<py::ssize_t>(b.rows.size()));
    py::array_t<std::int64_t> cols(static_cast<py::ssize_t>(b.cols.size()));
    std::copy(b.rows.begin(), b.rows.end(), rows.mutable_data());
    std::copy(b.cols.begin(), b.cols.end(), cols.mutable_data());
    bics.append(py::make_tuple(rows, cols, b.sign, b.n_edges));
  }
  const auto k = static_cast<py::ssize_t>(res.direct.size() / 2);
  py::array_t<std::int64_t> direct({k, static_cast<py::ssize_t>(2)});
  std::copy(res.direct.begin(), res.direct.end(), direct.mutable_data());
  return py::make_tuple(bics, direct, res.n_edges);
}

py::tuple bundle_edges_py(const F64Array& polylines, const py::object& n_cycles,
                          const py::object& n_iter, double iter_rate, double step,
                          double step_rate, double stiffness, double bandwidth,
                          double compat_threshold, const py::object& max_neighbors,
                          bool directed, const py::object& n_points, const py::object& n_jobs) {
  cnnvis::bind::require_ndim(polylines, 3, "edges");
  if (polylines.shape(2) != 2)
    fail("edges must have shape (m, p, 2) with 2-D points, got last dimension " +
         std::to_string(polylines.shape(2)));
  if (polylines.shape(1) < 2)
    fail("each edge needs at least 2 points, got " + std::to_string(polylines.shape(1)));
  cnnvis::bind::require_finite(polylines, "edges");
  cnnvis::FdebOptions opt;
  opt.n_cycles = as_int<int>(n_cycles, "n_cycles");
  opt.n_iter = as_int<int>(n_iter, "n_iter");
  opt.iter_rate = real_arg(iter_rate, "iter_rate", 0.0, 1.0, true);
  opt.step = real_arg(step, "step", 0.0, kBig);
  opt.step_rate = real_arg(step_rate, "step_rate", 0.0, 1.0, true);
  opt.stiffness = real_arg(stiffness, "stiffness", 0.0, kBig, true);
  opt.bandwidth = real_arg(bandwidth, "bandwidth", 0.0, kBig, true);
  opt.compat_threshold = real_arg(compat_threshold, "compat_threshold", 0.0, 1.0, true);
  opt.max_neighbors = as_int<int>(max_neighbors, "max_neighbors");
  opt.directed = directed;
  opt.n_points = as_int<std::int64_t>(n_points, "n_points");
  opt.n_threads = cnnvis::bind::n_jobs_arg(n_jobs);
  const std::int64_t m = polylines.shape(0), p = polylines.shape(1);
  const double* data = polylines.data();
  cnnvis::FdebOutput res;
  {
    py::gil_scoped_release release;
    res = cnnvis::bundle_edges(data, m, p, opt, cnnvis::bind::python_interrupt());
  }
  py::array_t<double> out({static_cast<py::ssize_t>(m), static_cast<py::ssize_t>(res.n_points),
                           static_cast<py::ssize_t>(2)});
  std::copy(res.polylines.begin(), res.polylines.end(), out.mutable_data());
  return py::make_tuple(out, res.n_pairs);
}

py::array_t<double> resample_polylines_py(const F64Array& polylines, const py::object& n_points_arg) {
  const auto n_points = as_int<std::int64_t>(n_points_arg, "n_points");
  cnnvis::bind::require_ndim(polylines, 3, "polylines");
  if (polylines.shape(2) != 2) fail("polylines must have shape (m, p, 2)");
  if (polylines.shape(1) < 1) fail("polylines need at least 1 point each");
  cnnvis::bind::require_finite(polylines, "polylines");
  if (n_points < 2 || n_points > 100000) fail("n_points must be in [2, 100000]");
  const std::int64_t m = polylines.shape(0), p = polylines.shape(1);
  std::vector<double> res;
  {
    py::gil_scoped_release release;
    res = cnnvis::resample_polylines(polylines.data(), m, p, n_points);
  }
  py::array_t<double> out(
      {static_cast<py::ssize_t>(m), static_cast<py::ssize_t>(n_points), py::ssize_t{2}});
  std::copy(res.begin(), res.end(), out.mutable_data());
  return out;
}

}  // namespace

void init_bundling(pybind11::module_& m) {
  m.def("bicluster_edges", &bicluster_edges_py, py::arg("weights"), py::arg("threshold"),
        py::arg("min_density"), py::arg("min_gain"), py::arg("max_refine"), py::arg("patience"),
        py::arg("n_threads"),
        "Biclusters of a signed weight matrix: (list of (rows, cols, sign, n_edges), direct "
        "(k, 2), n_edges).");
  m.def("bundle_edges", &bundle_edges_py, py::arg("edges"), py::arg("n_cycles"),
        py::arg("n_iter"), py::arg("iter_rate"), py::arg("step"),
        py::arg("step_rate"), py::arg("stiffness"),
        py::arg("bandwidth"), py::arg("compat_threshold"), py::arg("max_neighbors"), py::arg("directed"),
        py::arg("n_points"), py::arg("n_threads"),
        "Force-directed edge bundling: (polylines (m, n_points, 2), compatible pairs).");
  m.def("resample_polylines", &resample_polylines_py, py::arg("polylines"), py::arg("n_points"),
        "Resamples polylines (m, p, 2) to n_points each, equally spaced by arc length.");
}
