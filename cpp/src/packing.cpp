#include "cnnvis/packing.hpp"
