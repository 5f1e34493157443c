#include "cnnvis/bundling.hpp"
