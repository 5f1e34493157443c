#include "cnnvis/tsne.hpp"
