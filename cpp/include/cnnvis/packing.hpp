// Rectangle packing: non-overlapping, axis-aligned, unrotated rectangles in a compact box.
//
// MaxRects (the free space kept as the list of maximal empty rectangles) with several placement
// rules and input orders, and a bisection over the box area at a requested aspect ratio; the best
// variant wins. A shelf packer (rows, tallest first) is the reference floor. Pure C++17.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "cnnvis/common.hpp"

namespace cnnvis::packing {

enum class Rule { ShortSide = 0, LongSide = 1, Area = 2, BottomLeft = 3 };
enum class Order { Area = 0, LongSide = 1, Height = 2, Width = 3, Perimeter = 4 };

struct Placement {
  std::vector<double> x, y;  // lower-left corners, input order
  double width = 0, height = 0;
  bool ok = false;
  std::string variant;
};

// Packs the rectangles (w[i], h[i]) into the box W x H in the given order and placement rule.
// ok = false when one does not fit. width/height are the extents actually used.
Placement maxrects(const double* w, const double* h, std::size_t n, double W, double H, Rule rule,
                   Order order);

// Shelf packer: rows of width W filled left to right, tallest first. width/height: extents used.
Placement shelf(const double* w, const double* h, std::size_t n, double W);

struct PackOptions {
  double aspect = 1.0;      // requested width / height
  double tolerance = 0.1;   // accepted relative deviation of the aspect
  bool integral = false;    // box sides rounded down to whole units (integer sizes)
  int steps = 7;            // bisection steps over the density per variant
  int n_threads = 1;
  int effort = 1;           // 0: bottom-left/height only, 1: + 3 more up to n = 400, 2: all 20
  int variant = -1;         // >= 0: only this one of the 20 rule x order variants
};

// Near-minimal-area box at the requested aspect (width = aspect * height within tolerance,
// unless a single rectangle forces otherwise). Deterministic for any n_threads.
Placement pack(const double* w, const double* h, std::size_t n, const PackOptions& options,
               const Interrupt& interrupt = {});

// Packs into the fixed box W x H; throws InvalidArgument when no variant fits everything.
Placement pack_in_box(const double* w, const double* h, std::size_t n, double W, double H,
                      int n_threads, const Interrupt& interrupt = {});

// Best shelf packing over a scan of strip widths at the requested aspect (the reference floor).
Placement shelf_pack(const double* w, const double* h, std::size_t n, double aspect,
                     double tolerance);

}  // namespace cnnvis::packing
