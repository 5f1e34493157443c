#include "cnnvis/reorder.hpp"
