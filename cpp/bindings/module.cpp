// The extension cnnvis._core: one init function per algorithm family, each in its own file.
#include <pybind11/pybind11.h>

#include "cnnvis/common.hpp"

namespace py = pybind11;

void init_tsne(py::module_& m);
void init_reorder(py::module_& m);
void init_packing(py::module_& m);
void init_bundling(py::module_& m);
void init_topk(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "cnnvis C++ core: t-SNE, row reordering, rectangle packing, edge bundling, recording kernels.";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const cnnvis::MemoryLimit& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    } catch (const cnnvis::InvalidArgument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  init_tsne(m);
  init_reorder(m);
  init_packing(m);
  init_bundling(m);
  init_topk(m);
}
