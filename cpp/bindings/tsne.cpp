#include "common.hpp"
#include "cnnvis/tsne.hpp"

void init_tsne(pybind11::module_& m) { (void)m; }
