// Edge bundling: biclustering of a signed bipartite weight matrix (CNNVis-style bundled
// connections) and force-directed edge bundling of segments or polylines (Holten & van Wijk 2009).
// Pure C++17: no Python here.
#pragma once

#include <cstdint>
#include <vector>

#include "cnnvis/common.hpp"

namespace cnnvis {

// ---------------------------------------------------------------------------------------------
// Biclustering
//
// Edges are the entries of a dense n_rows x n_cols matrix with |w| >= threshold and w != 0; their
// sign is the sign of w. A bicluster (rows R, cols C, sign s) claims exactly the present edges of
// sign s inside R x C. The result satisfies:
//   * every edge is claimed by exactly one bicluster or listed once as a direct edge;
//   * a bicluster claims edges of its own sign only (other-sign entries inside R x C stay with
//     whatever covers them: another bicluster of the other sign or a direct edge);
//   * two biclusters of the same sign never claim the same edge (their rectangles share no
//     present same-sign edge);
//   * claimed edges / (|R| |C|) >= min_density for every bicluster;
//   * each bicluster saves at least min_gain drawn edges: claimed - (|R| + |C|) >= min_gain.
// ---------------------------------------------------------------------------------------------

struct BiclusterOptions {
  double threshold = 0.0;    // edges: |w| >= threshold (and w != 0)
  double min_density = 0.8;  // in (0, 1]
  std::int64_t min_gain = 1; // >= 1
  int max_refine = 8;        // alternating row/column refinement rounds per candidate
  int patience = 6;          // growth steps without a better gain before a seed stops growing
  int n_threads = 1;
};

struct Bicluster {
  std::vector<std::int64_t> rows;  // sorted
  std::vector<std::int64_t> cols;  // sorted
  int sign = 1;                    // +1 or -1
  std::int64_t n_edges = 0;        // edges claimed
};

struct BiclusterOutput {
  std::vector<Bicluster> biclusters;     // positive first, then negative, in discovery order
  std::vector<std::int64_t> direct;      // flattened (row, col) pairs, row-major order
  std::int64_t n_edges = 0;              // all edges (|w| >= threshold, w != 0)
};

BiclusterOutput bicluster_edges(const double* weights, std::int64_t n_rows, std::int64_t n_cols,
                                const BiclusterOptions& options, const Interrupt& interrupt);

// ---------------------------------------------------------------------------------------------
// Force-directed edge bundling
//
// Input: m polylines of p >= 2 points each (p == 2: straight segments), row-major (m, p, 2).
// Cycle c (0-based) works on max(2^c, p - 2) interior points per edge, runs
// round(n_iter * iter_rate^c) iterations with step step * step_rate^c. Each iteration moves every
// interior point by the compatibility-weighted mean of unit vectors towards the matching points of
// compatible edges, each weighted down by bandwidth / distance beyond the bandwidth (Holten & van
// Wijk's electrostatic force, normalised), and relaxes it with an implicit spring along the edge
// whose rest shape is the input polyline (straight for a segment); endpoints never move.
// Compatibility (angle, scale, position, visibility) is computed once from the chords (first to
// last point) in a frame scaled to the bounding-box diagonal; candidates come from direction bins
// with a midpoint grid each, pairs below compat_threshold are dropped and at most max_neighbors
// (the most compatible; ties: lower index) kept per edge.
// Every iteration reads the previous positions only, so the output does not depend on threads.
// ---------------------------------------------------------------------------------------------

struct FdebOptions {
  int n_cycles = 6;
  int n_iter = 30;
  double iter_rate = 1.0;
  double step = 0.04;             // first-cycle step, in bounding-box diagonals
  double step_rate = 0.5;         // step factor per cycle
  double stiffness = 0.005;       // spring constant K (larger: straighter edges)
  double bandwidth = 0.02;        // pull falls off as bandwidth / distance beyond it (diagonals)
  double compat_threshold = 0.6;  // in (0, 1)
  int max_neighbors = 32;
  bool directed = false;          // true: edges pointing opposite ways never attract
  std::int64_t n_points = 0;      // points per output polyline; 0: the last cycle's count
  int n_threads = 1;
};

struct FdebOutput {
  std::vector<double> polylines;  // (m, n_points, 2)
  std::int64_t n_points = 0;
  std::int64_t n_pairs = 0;       // compatible (directed) pairs kept
};

FdebOutput bundle_edges(const double* polylines, std::int64_t m, std::int64_t p,
                        const FdebOptions& options, const Interrupt& interrupt);

// Resamples polylines (m, p, 2) to q points each, equally spaced by arc length.
std::vector<double> resample_polylines(const double* polylines, std::int64_t m, std::int64_t p,
                                       std::int64_t q);

}  // namespace cnnvis
