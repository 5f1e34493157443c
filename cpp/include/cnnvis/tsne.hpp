#pragma once
// tsne: to be written (see the issue for this algorithm).
#include "cnnvis/common.hpp"

namespace cnnvis {}
