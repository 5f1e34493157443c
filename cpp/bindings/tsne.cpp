// Bindings of the t-SNE core. Private building blocks (underscore names) composed by
// cnnvis.layout.TSNE: validation of shapes, dtypes, finiteness and sizes happens here, the work
// runs without the GIL and stops on Ctrl-C between iterations.
#include "cnnvis/tsne.hpp"
#include "cnnvis/knn.hpp"

#include <pybind11/stl.h>

#include <limits>
#include <memory>
#include <optional>

#include "common.hpp"

namespace py = pybind11;
using cnnvis::bind::as_int;
using cnnvis::bind::F64Array;
using cnnvis::bind::fail;
using cnnvis::bind::n_jobs_arg;
using cnnvis::bind::real_arg;
using cnnvis::bind::require_finite;
using cnnvis::bind::require_ndim;
using I32Array = py::array_t<std::int32_t, py::array::c_style | py::array::forcecast>;
using I64Array = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

namespace {

constexpr double kBig = std::numeric_limits<double>::max();
constexpr std::size_t kMaxPoints = static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max());

void check_points(const F64Array& X, const char* name) {
  require_ndim(X, 2, name);
  if (X.shape(0) < 1) fail(std::string(name) + " must have at least one row");
  if (X.shape(1) < 1) fail(std::string(name) + " must have at least one column");
  if (static_cast<std::size_t>(X.shape(0)) >= kMaxPoints)
    throw cnnvis::MemoryLimit(std::string(name) + " has too many rows (limit 2^31 - 1)");
  require_finite(X, name);
}

void check_embedding(const F64Array& Y, std::size_t n, const char* name) {
  require_ndim(Y, 2, name);
  if (static_cast<std::size_t>(Y.shape(0)) != n)
    fail(std::string(name) + " must have " + std::to_string(n) + " rows, got " +
         std::to_string(Y.shape(0)));
  if (Y.shape(1) != 2 && Y.shape(1) != 3) fail(std::string(name) + " must have 2 or 3 columns");
  require_finite(Y, name);
}

cnnvis::tsne::SparseP to_sparse(const I64Array& indptr, const I32Array& indices,
                                const F64Array& data) {
  require_ndim(indptr, 1, "indptr");
  require_ndim(indices, 1, "indices");
  require_ndim(data, 1, "data");
  if (indptr.shape(0) < 1) fail("indptr must have n + 1 entries");
  if (indices.shape(0) != data.shape(0)) fail("indices and data must have the same length");
  const auto n = static_cast<std::size_t>(indptr.shape(0) - 1);
  return cnnvis::tsne::make_sparse(n, indptr.data(), indices.data(), data.data(),
                                   static_cast<std::size_t>(data.shape(0)));
}

py::array_t<double> matrix(const std::vector<double>& v, std::size_t rows, std::size_t cols) {
  py::array_t<double> out({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)});
  std::copy(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(rows * cols), out.mutable_data());
  return out;
}

}  // namespace

void init_tsne(pybind11::module_& m) {
  m.def(
      "_tsne_knn",
      [](const F64Array& X, const py::object& k_arg, const py::object& n_jobs_obj,
         std::optional<F64Array> queries) {
        check_points(X, "X");
        const auto k = as_int<std::int64_t>(k_arg, "k");
        const int n_jobs = n_jobs_arg(n_jobs_obj);
        const auto n = static_cast<std::size_t>(X.shape(0)), d = static_cast<std::size_t>(X.shape(1));
        std::size_t mq = n;
        const double* Q = nullptr;
        if (queries) {
          check_points(*queries, "queries");
          if (static_cast<std::size_t>(queries->shape(1)) != d)
            fail("queries must have as many columns as X");
          mq = static_cast<std::size_t>(queries->shape(0));
          Q = queries->data();
        }
        const std::size_t kmax = queries ? n : n - 1;
        if (k < 1 || static_cast<std::size_t>(k) > kmax)
          fail("k must be in [1, " + std::to_string(kmax) + "], got " + std::to_string(k));
        if (static_cast<std::size_t>(k) > std::numeric_limits<std::size_t>::max() / 16 / mq)
          throw cnnvis::MemoryLimit("k nearest neighbours of every query do not fit in memory");
        py::array_t<std::int32_t> idx({static_cast<py::ssize_t>(mq), static_cast<py::ssize_t>(k)});
        py::array_t<double> d2({static_cast<py::ssize_t>(mq), static_cast<py::ssize_t>(k)});
        auto* pi = idx.mutable_data();
        auto* pd = d2.mutable_data();
        {
          py::gil_scoped_release release;
          cnnvis::tsne::knn_exact(X.data(), n, d, Q, mq, static_cast<int>(k), n_jobs, pi, pd,
                                  cnnvis::bind::python_interrupt());
        }
        return py::make_tuple(idx, d2);
      },
      py::arg("X"), py::arg("k"), py::arg("n_jobs") = 1, py::arg("queries") = py::none(),
      "Exact k nearest neighbours (int32 indices, squared distances), rows sorted by distance.");

  m.def(
      "_knn_approx",
      [](const F64Array& X, const py::object& k_arg, const py::object& n_jobs_obj,
         const py::object& seed_arg, const py::object& n_trees_arg, const py::object& leaf_arg,
         const py::object& cand_arg, const py::object& iter_arg, const py::object& below_arg) {
        check_points(X, "X");
        const auto k = as_int<std::int64_t>(k_arg, "k");
        const int n_jobs = n_jobs_arg(n_jobs_obj);
        cnnvis::knn::ApproxParams prm;
        prm.seed = as_int<std::uint64_t>(seed_arg, "seed");
        const auto knob = [](const py::object& v, const char* name, int hi) {
          const int x = as_int<int>(v, name);
          if (x < 0 || x > hi)
            fail(std::string(name) + " must be in [0, " + std::to_string(hi) + "] (0: automatic), got " +
                 std::to_string(x));
          return x;
        };
        prm.n_trees = knob(n_trees_arg, "n_trees", 1024);
        prm.leaf_size = knob(leaf_arg, "leaf_size", 1 << 16);
        prm.max_candidates = knob(cand_arg, "max_candidates", 1 << 16);
        prm.max_iter = knob(iter_arg, "max_iter", 1000);
        prm.exact_below = static_cast<std::size_t>(knob(below_arg, "exact_below", 1 << 30));
        const auto n = static_cast<std::size_t>(X.shape(0)), d = static_cast<std::size_t>(X.shape(1));
        if (n < 2) fail("X must have at least 2 rows to have a neighbour");
        if (k < 1 || static_cast<std::size_t>(k) > n - 1)
          fail("k must be in [1, " + std::to_string(n - 1) + "] (n - 1), got " + std::to_string(k));
        if (static_cast<std::size_t>(k) > std::numeric_limits<std::size_t>::max() / 32 / n)
          throw cnnvis::MemoryLimit("k nearest neighbours of every point do not fit in memory");
        py::array_t<std::int32_t> idx({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(k)});
        py::array_t<double> d2({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(k)});
        auto* pi = idx.mutable_data();
        auto* pd = d2.mutable_data();
        {
          py::gil_scoped_release release;
          cnnvis::knn::knn_approx(X.data(), n, d, static_cast<int>(k), prm, n_jobs, pi, pd,
                                  cnnvis::bind::python_interrupt());
        }
        return py::make_tuple(idx, d2);
      },
      py::arg("X"), py::arg("k"), py::arg("n_jobs") = 1, py::arg("seed") = 0,
      py::arg("n_trees") = 0, py::arg("leaf_size") = 0, py::arg("max_candidates") = 0,
      py::arg("max_iter") = 3, py::arg("exact_below") = 4096,
      "Approximate k nearest neighbours (random-projection forest + NN-descent; exact below "
      "4096 points): int32 indices and squared distances, rows sorted by distance.");

  m.def(
      "_tsne_conditional_p",
      [](const F64Array& d2, double perplexity, const py::object& n_jobs_obj) {
        const int n_jobs = n_jobs_arg(n_jobs_obj);
        require_ndim(d2, 2, "d2");
        require_finite(d2, "d2");
        if (d2.shape(1) < 1) fail("d2 must have at least one column");
        real_arg(perplexity, "perplexity", 0.0, kBig, true);
        if (d2.shape(1) > std::numeric_limits<int>::max()) fail("d2 has too many columns");
        const auto mrows = static_cast<std::size_t>(d2.shape(0));
        const int k = static_cast<int>(d2.shape(1));
        py::array_t<double> p({d2.shape(0), d2.shape(1)});
        py::array_t<double> reached(d2.shape(0));
        auto* pp = p.mutable_data();
        auto* pr = reached.mutable_data();
        {
          py::gil_scoped_release release;
          cnnvis::tsne::conditional_p(d2.data(), mrows, k, perplexity, n_jobs, pp, pr);
        }
        return py::make_tuple(p, reached);
      },
      py::arg("d2"), py::arg("perplexity"), py::arg("n_jobs") = 1,
      "Row-normalised Gaussian affinities with bandwidths calibrated to the perplexity.");

  m.def(
      "_tsne_joint_p",
      [](const I32Array& idx, const F64Array& pcond, const py::object& n_jobs_obj) {
        const int n_jobs = n_jobs_arg(n_jobs_obj);
        require_ndim(idx, 2, "idx");
        require_ndim(pcond, 2, "pcond");
        if (idx.shape(0) != pcond.shape(0) || idx.shape(1) != pcond.shape(1))
          fail("idx and pcond must have the same shape");
        require_finite(pcond, "pcond");
        cnnvis::tsne::SparseP P;
        {
          py::gil_scoped_release release;
          P = cnnvis::tsne::joint_p(idx.data(), pcond.data(), static_cast<std::size_t>(idx.shape(0)),
                                    static_cast<int>(idx.shape(1)), n_jobs);
        }
        return py::make_tuple(py::array_t<std::int64_t>(static_cast<py::ssize_t>(P.indptr.size()), P.indptr.data()),
                              py::array_t<std::int32_t>(static_cast<py::ssize_t>(P.indices.size()), P.indices.data()),
                              py::array_t<double>(static_cast<py::ssize_t>(P.data.size()), P.data.data()));
      },
      py::arg("idx"), py::arg("pcond"), py::arg("n_jobs") = 1,
      "Symmetric joint affinities (p_j|i + p_i|j) / 2n as CSR (indptr, indices, data).");

  m.def(
      "_tsne_gradient",
      [](const I64Array& indptr, const I32Array& indices, const F64Array& data, const F64Array& Y,
         double theta, double exaggeration, const py::object& n_jobs_obj) {
        const int n_jobs = n_jobs_arg(n_jobs_obj);
        auto P = to_sparse(indptr, indices, data);
        check_embedding(Y, P.n, "Y");
        real_arg(theta, "theta", 0.0, kBig);
        real_arg(exaggeration, "exaggeration", 0.0, kBig, true);
        const int dim = static_cast<int>(Y.shape(1));
        std::vector<double> g(P.n * static_cast<std::size_t>(dim));
        double Z;
        {
          py::gil_scoped_release release;
          auto ws = cnnvis::tsne::make_workspace();
          Z = cnnvis::tsne::gradient(P, Y.data(), dim, theta, exaggeration, n_jobs, g.data(), *ws);
        }
        return py::make_tuple(matrix(g, P.n, static_cast<std::size_t>(dim)), Z);
      },
      py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("Y"), py::arg("theta"),
      py::arg("exaggeration") = 1.0, py::arg("n_jobs") = 1,
      "t-SNE gradient without the factor 4 (Barnes-Hut repulsion) and the normalisation Z.");

  m.def(
      "_tsne_exact_kl",
      [](const I64Array& indptr, const I32Array& indices, const F64Array& data, const F64Array& Y,
         const py::object& n_jobs_obj) {
        const int n_jobs = n_jobs_arg(n_jobs_obj);
        auto P = to_sparse(indptr, indices, data);
        check_embedding(Y, P.n, "Y");
        py::gil_scoped_release release;
        return cnnvis::tsne::exact_kl(P, Y.data(), static_cast<int>(Y.shape(1)), n_jobs);
      },
      py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("Y"), py::arg("n_jobs") = 1,
      "KL(P || Q) with the exact O(n^2) normalisation of Q.");

  py::class_<cnnvis::tsne::Optimizer>(m, "_TsneOptimizer")
      .def(py::init([](const I64Array& indptr, const I32Array& indices, const F64Array& data,
                       const F64Array& Y0, double theta, const py::object& n_jobs_obj) {
             const int n_jobs = n_jobs_arg(n_jobs_obj);
             auto P = to_sparse(indptr, indices, data);
             check_embedding(Y0, P.n, "Y0");
             real_arg(theta, "theta", 0.0, kBig);
             return std::make_unique<cnnvis::tsne::Optimizer>(std::move(P),
                                                              static_cast<int>(Y0.shape(1)),
                                                              Y0.data(), theta, n_jobs);
           }),
           py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("Y0"), py::arg("theta"),
           py::arg("n_jobs") = 1)
      .def(
          "run",
          [](cnnvis::tsne::Optimizer& self, const py::object& n_iter_arg, double exaggeration,
             double learning_rate, double momentum, double max_step_norm,
             std::optional<F64Array> anchor, double penalty) {
            const int n_iter = as_int<int>(n_iter_arg, "n_iter");
            if (n_iter < 0) fail("n_iter must be >= 0");
            real_arg(exaggeration, "exaggeration", 0.0, kBig, true);
            real_arg(learning_rate, "learning_rate", 0.0, kBig, true);
            real_arg(momentum, "momentum", 0.0, 1.0);
            real_arg(max_step_norm, "max_step_norm", 0.0, kBig);
            real_arg(penalty, "penalty", 0.0, kBig);
            cnnvis::tsne::Schedule s;
            s.n_iter = n_iter;
            s.exaggeration = exaggeration;
            s.learning_rate = learning_rate;
            s.momentum = momentum;
            s.max_step_norm = max_step_norm;
            if (anchor) {
              check_embedding(*anchor, self.n(), "anchor");
              if (anchor->shape(1) != self.dim()) fail("anchor must match the embedding's shape");
              s.anchor = anchor->data();
              s.penalty = penalty;
            }
            py::gil_scoped_release release;
            return self.run(s, cnnvis::bind::python_interrupt());
          },
          py::arg("n_iter"), py::arg("exaggeration"), py::arg("learning_rate"),
          py::arg("momentum"), py::arg("max_step_norm") = 5.0, py::arg("anchor") = py::none(),
          py::arg("penalty") = 0.0)
      .def("embedding",
           [](const cnnvis::tsne::Optimizer& self) {
             return matrix(self.embedding(), self.n(), static_cast<std::size_t>(self.dim()));
           })
      .def("kl_divergence",
           [](cnnvis::tsne::Optimizer& self) {
             py::gil_scoped_release release;
             return self.kl_divergence();
           })
      .def_property_readonly("last_z", &cnnvis::tsne::Optimizer::last_z);

  m.def(
      "_tsne_transform",
      [](const F64Array& Yref, const I32Array& idx, const F64Array& p, const F64Array& Y0,
         const py::object& n_iter_arg, double learning_rate, double theta,
         const py::object& n_jobs_obj) {
        const int n_iter = as_int<int>(n_iter_arg, "n_iter");
        const int n_jobs = n_jobs_arg(n_jobs_obj);
        real_arg(learning_rate, "learning_rate", 0.0, kBig, true);
        real_arg(theta, "theta", 0.0, kBig);
        require_ndim(Yref, 2, "Yref");
        check_embedding(Yref, static_cast<std::size_t>(Yref.shape(0)), "Yref");
        require_ndim(idx, 2, "idx");
        require_ndim(p, 2, "p");
        const auto n = static_cast<std::size_t>(Yref.shape(0));
        const auto mrows = static_cast<std::size_t>(idx.shape(0));
        if (p.shape(0) != idx.shape(0) || p.shape(1) != idx.shape(1))
          fail("idx and p must have the same shape");
        check_embedding(Y0, mrows, "Y0");
        if (Y0.shape(1) != Yref.shape(1)) fail("Y0 and Yref must have the same number of columns");
        const std::int32_t* pi = idx.data();
        for (py::ssize_t a = 0; a < idx.size(); ++a)
          if (pi[a] < 0 || static_cast<std::size_t>(pi[a]) >= n) fail("idx out of range");
        require_finite(p, "p");
        if (n_iter < 0) fail("n_iter must be >= 0");
        const int dim = static_cast<int>(Yref.shape(1));
        std::vector<double> Y(Y0.data(), Y0.data() + Y0.size());
        {
          py::gil_scoped_release release;
          cnnvis::tsne::transform(Yref.data(), n, dim, pi, p.data(), mrows,
                                  static_cast<int>(idx.shape(1)), Y.data(), n_iter, learning_rate,
                                  theta, n_jobs, cnnvis::bind::python_interrupt());
        }
        return matrix(Y, mrows, static_cast<std::size_t>(dim));
      },
      py::arg("Yref"), py::arg("idx"), py::arg("p"), py::arg("Y0"), py::arg("n_iter"),
      py::arg("learning_rate"), py::arg("theta"), py::arg("n_jobs") = 1,
      "Optimises new points against a fixed reference embedding.");
}
