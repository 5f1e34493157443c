#include "common.hpp"
#include "cnnvis/packing.hpp"

void init_packing(pybind11::module_& m) { (void)m; }
