#include "common.hpp"
#include "cnnvis/bundling.hpp"

void init_bundling(pybind11::module_& m) { (void)m; }
