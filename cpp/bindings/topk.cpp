// Bindings for the recording's top-k merge: arrays are updated in place, so they must be
// C-contiguous, writeable and of the exact dtype (no silent copies).
#include "cnnvis/topk.hpp"

#include <string>

#include "common.hpp"

namespace py = pybind11;
using cnnvis::bind::fail;

namespace {

template <class T>
T* inplace(py::array& a, const char* name, py::ssize_t rows, py::ssize_t cols) {
  if (!py::isinstance<py::array_t<T>>(a) || !a.dtype().is(py::dtype::of<T>()))
    fail(std::string(name) + " has dtype " + std::string(py::str(a.dtype())) + ", expected " +
         std::string(py::str(py::dtype::of<T>())));
  if (a.ndim() != 2 || a.shape(0) != rows || a.shape(1) != cols)
    fail(std::string(name) + " must have shape (" + std::to_string(rows) + ", " +
         std::to_string(cols) + ")");
  if (!(a.flags() & py::array::c_style)) fail(std::string(name) + " must be C-contiguous");
  if (!a.writeable()) fail(std::string(name) + " must be writeable");
  return static_cast<T*>(a.mutable_data());
}

}  // namespace

void init_topk(py::module_& m) {
  m.def(
      "topk_merge",
      [](py::array values, py::array samples, py::array locs, py::array slots, py::array batch_max,
         py::array batch_loc, std::int64_t start) {
        if (values.ndim() != 2) fail("values must be a 2-D array (channels, k)");
        const py::ssize_t nc = values.shape(0), k = values.shape(1);
        if (k < 1) fail("k must be at least 1");
        if (batch_max.ndim() != 2) fail("batch_max must be a 2-D array (batch, channels)");
        const py::ssize_t b = batch_max.shape(0);
        cnnvis::topk::Lists lists{inplace<float>(values, "values", nc, k),
                                  inplace<std::int64_t>(samples, "samples", nc, k),
                                  inplace<std::int64_t>(locs, "locs", nc, k),
                                  inplace<std::int64_t>(slots, "slots", nc, k),
                                  static_cast<std::size_t>(nc), static_cast<std::size_t>(k)};
        const float* mx = inplace<float>(batch_max, "batch_max", b, nc);
        const std::int64_t* loc = inplace<std::int64_t>(batch_loc, "batch_loc", b, nc);
        py::gil_scoped_release release;
        return cnnvis::topk::merge(lists, mx, loc, static_cast<std::size_t>(b), start);
      },
      py::arg("values"), py::arg("samples"), py::arg("locs"), py::arg("slots"),
      py::arg("batch_max"), py::arg("batch_loc"), py::arg("start"),
      "Merges a batch's per-channel maxima (batch, channels) and their locations into the "
      "per-channel top-k lists (channels, k), in place; returns the number of insertions.");
}
