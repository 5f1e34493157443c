// Approximate k nearest neighbours: a random-projection forest for the start, refined by
// NN-descent (Dong, Moses, Li, WWW 2011), as pynndescent does.
//
// 1. Forest: each tree splits its points by the hyperplane halfway between two random points of
//    the node (Annoy's split) until a node holds at most leaf_size points; every pair of points
//    sharing a leaf is a candidate. Points whose list is still short get random candidates.
// 2. NN-descent: a neighbour of a neighbour is likely a neighbour. Each round, every point takes
//    up to max_candidates of its "new" neighbours (not yet used in a round) and of its old ones,
//    plus the points that list it (reverse neighbours), and compares itself with the new
//    candidates of its candidates and with the old candidates of its new ones. Rounds stop when
//    fewer than delta * n * k lists change, or after max_iter rounds.
//
// Determinism: the same input and seed give the same bytes for any thread count. Every point's
// list is a bounded max-heap on (distance, index); which candidates are compared depends only on
// the seed and on the lists at the start of the round (a point updates only its own list, by
// "pulling" from its candidates' candidates, instead of the original's symmetric "push" that
// races), and the k smallest of a set do not depend on the order it was seen in.
//
// Memory O(n k): the lists (n k x 9 bytes), four candidate tables (n x max_candidates int32
// each), the trees' point orders (n_trees x n int32), one n-entry visit stamp per thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cnnvis/common.hpp"

namespace cnnvis::knn {

struct ApproxParams {
  int n_trees = 0;         // 0: chosen from n (more trees for more points)
  int leaf_size = 0;       // 0: chosen from k
  int max_candidates = 0;  // 0: chosen from k
  int max_iter = 3;        // NN-descent rounds at most
  double delta = 0.001;    // stop when fewer than delta * n * k list entries changed in a round
  std::uint64_t seed = 0;
  // Below this many points the exact search is as fast and gives the true neighbours (tests
  // lower it to run the approximate machinery on small inputs).
  std::size_t exact_below = 4096;
};

// k approximate nearest neighbours of each row of X (n x d, row-major) among the other rows.
// Writes idx (n x k, int32) and squared Euclidean distances d2 (n x k), each row sorted by
// (distance, index), a point never its own neighbour. Below params.exact_below points, or when
// 4 k >= n, the search is exact (the same bytes as cnnvis::tsne::knn_exact). interrupt is called between passes and
// blocks of work on the calling thread; it stops the search by throwing.
void knn_approx(const double* X, std::size_t n, std::size_t d, int k, const ApproxParams& params,
                int n_threads, std::int32_t* idx, double* d2, const Interrupt& interrupt);

}  // namespace cnnvis::knn
