#include "common.hpp"
#include "cnnvis/reorder.hpp"

void init_reorder(pybind11::module_& m) { (void)m; }
