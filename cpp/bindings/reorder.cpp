// Bindings for row reordering: validation of the distance matrix, GIL release, Ctrl-C.
#include "cnnvis/reorder.hpp"

#include <cmath>
#include <string>

#include "common.hpp"

namespace py = pybind11;
using cnnvis::bind::as_int;
using cnnvis::bind::F64Array;
using cnnvis::bind::fail;

namespace {

// Square, finite, non-negative and symmetric (to a relative 1e-9) distance matrix.
std::size_t check_dist(const F64Array& dist) {
  cnnvis::bind::require_ndim(dist, 2, "dist");
  const auto n = static_cast<std::size_t>(dist.shape(0));
  if (static_cast<std::size_t>(dist.shape(1)) != n)
    fail("dist must be square, got shape (" + std::to_string(dist.shape(0)) + ", " +
         std::to_string(dist.shape(1)) + ")");
  cnnvis::bind::require_finite(dist, "dist");
  const double* d = dist.data();
  double scale = 0;
  for (std::size_t k = 0; k < n * n; ++k) {
    if (d[k] < 0)
      fail("dist must be non-negative, found " + std::to_string(d[k]) + " at (" +
           std::to_string(k / n) + ", " + std::to_string(k % n) + ")");
    scale = std::max(scale, d[k]);
  }
  const double tol = 1e-9 * scale;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = i + 1; j < n; ++j)
      if (std::abs(d[i * n + j] - d[j * n + i]) > tol)
        fail("dist must be symmetric: dist[" + std::to_string(i) + ", " + std::to_string(j) +
             "] = " + std::to_string(d[i * n + j]) + " but dist[" + std::to_string(j) + ", " +
             std::to_string(i) + "] = " + std::to_string(d[j * n + i]));
  return n;
}

py::array_t<std::int64_t> to_array(const std::vector<std::int64_t>& v) {
  py::array_t<std::int64_t> out(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

}  // namespace

void init_reorder(py::module_& m) {
  m.def(
      "held_karp_bytes",
      [](const py::object& n) { return cnnvis::reorder::held_karp_bytes(as_int<std::size_t>(n, "n")); },
      py::arg("n"), "Bytes of the Held-Karp table for n rows.");
  m.def(
      "held_karp_max_n",
      [](const py::object& memory_limit) {
        return cnnvis::reorder::held_karp_max_n(as_int<std::size_t>(memory_limit, "memory_limit"));
      },
      py::arg("memory_limit"), "Largest n whose Held-Karp table fits in memory_limit bytes.");

  m.def(
      "held_karp_path",
      [](const F64Array& dist, const py::object& memory_limit_arg, const py::object& n_jobs) {
        const std::size_t n = check_dist(dist);
        const auto memory_limit = as_int<std::size_t>(memory_limit_arg, "memory_limit");
        const int n_threads = cnnvis::bind::n_jobs_arg(n_jobs, "n_threads");
        std::vector<std::int64_t> order;
        {
          py::gil_scoped_release release;
          order = cnnvis::reorder::held_karp_path(dist.data(), n, memory_limit, n_threads,
                                                  cnnvis::bind::python_interrupt());
        }
        return to_array(order);
      },
      py::arg("dist"), py::arg("memory_limit"), py::arg("n_threads") = 1,
      "Exact shortest open path (Held-Karp).");

  m.def(
      "heuristic_path",
      [](const F64Array& dist, const py::object& max_iter, double time_budget,
         const py::object& seed, const py::object& neighbours, const py::object& group_size,
         const py::object& fan_out, const py::object& kick_size) {
        const std::size_t n = check_dist(dist);
        cnnvis::reorder::HeuristicOptions opt;
        opt.max_iter = as_int<std::int64_t>(max_iter, "max_iter");
        opt.time_budget = cnnvis::bind::finite_arg(time_budget, "time_budget");
        opt.seed = as_int<std::uint64_t>(seed, "seed");
        opt.neighbours = as_int<int>(neighbours, "neighbours");
        opt.group_size = as_int<int>(group_size, "group_size");
        opt.fan_out = as_int<int>(fan_out, "fan_out");
        opt.kick_size = as_int<int>(kick_size, "kick_size");
        cnnvis::reorder::HeuristicResult res;
        {
          py::gil_scoped_release release;
          res = cnnvis::reorder::heuristic_path(dist.data(), n, opt,
                                                cnnvis::bind::python_interrupt());
        }
        py::dict info;
        info["nn_length"] = res.nn_length;
        info["hierarchy_length"] = res.hierarchy_length;
        info["local_length"] = res.local_length;
        info["length"] = res.length;
        info["iterations"] = res.iterations;
        info["time_capped"] = res.time_capped;
        return py::make_tuple(to_array(res.order), info);
      },
      py::arg("dist"), py::arg("max_iter") = -1, py::arg("time_budget") = 2.0,
      py::arg("seed") = 0, py::arg("neighbours") = 10, py::arg("group_size") = 9,
      py::arg("fan_out") = 8, py::arg("kick_size") = 100,
      "Hierarchical start + iterated 2-opt/Or-opt local search.");

  m.def(
      "nearest_neighbour_path",
      [](const F64Array& dist, const py::object& start_arg) {
        const std::size_t n = check_dist(dist);
        const auto start = as_int<std::size_t>(start_arg, "start");
        if (n > 0 && start >= n) fail("start out of range");
        return to_array(cnnvis::reorder::nearest_neighbour_path(dist.data(), n, start));
      },
      py::arg("dist"), py::arg("start") = 0, "Greedy nearest-neighbour open path.");

  m.def(
      "hierarchical_path",
      [](const F64Array& dist, const py::object& group_size, const py::object& fan_out) {
        const std::size_t n = check_dist(dist);
        const int group = as_int<int>(group_size, "group_size");
        const int fan = as_int<int>(fan_out, "fan_out");
        std::vector<std::int64_t> order;
        {
          py::gil_scoped_release release;
          order = cnnvis::reorder::hierarchical_path(dist.data(), n, group, fan);
        }
        return to_array(order);
      },
      py::arg("dist"), py::arg("group_size") = 9, py::arg("fan_out") = 8,
      "CNNVis hierarchical order (no local search).");
}
