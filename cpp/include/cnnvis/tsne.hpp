// Barnes-Hut t-SNE: exact k-nearest neighbours, perplexity-calibrated affinities, a flat
// Morton-ordered quadtree/octree for the repulsive forces, and the gradient-descent optimiser.
//
// Pure C++17. Every result is bit-identical for any thread count: work is split per point (or per
// group of points sharing one tree walk) and every sum runs in a fixed order that does not depend
// on which thread computed it.
//
// Barnes-Hut acceptance (theta). The points are cut into groups of neighbouring points (the
// largest tree cells holding at most a few dozen points); each group walks the tree once. A cell
// that holds none of the group's points is summarised by its centre of mass when
//     cell side length  <  theta * (distance from the cell's centre of mass to the group's
//                                   bounding box),
// i.e. theta is compared with the FULL side length of the (square/cubic) cell, as scikit-learn
// and openTSNE do (bhtsne, MulticoreTSNE and FIt-SNE compare the half-width, a factor 2 apart).
// Because the distance is measured to the nearest point of the group's bounding box, the test is
// never looser than the per-point test with the same theta. theta = 0 gives the exact gradient.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "cnnvis/common.hpp"

namespace cnnvis::tsne {

// Exact k nearest neighbours by a blocked brute-force distance computation.
// X: n x d row-major. Writes idx (n x k, int32) and squared Euclidean distances d2 (n x k), each
// row sorted by (distance, index). With queries == nullptr the reference set is searched against
// itself and a point is never its own neighbour; otherwise Q (m x d) is searched against X.
void knn_exact(const double* X, std::size_t n, std::size_t d, const double* Q, std::size_t m,
               int k, int n_threads, std::int32_t* idx, double* d2, const Interrupt& interrupt);

// Conditional affinities p_{j|i} over each row's k neighbours (rows of d2, squared distances)
// with the Gaussian bandwidth found by binary search so that exp(entropy) = perplexity.
// Writes p (m x k, rows sum to 1) and the perplexity reached per row.
void conditional_p(const double* d2, std::size_t m, int k, double perplexity, int n_threads,
                   double* p, double* reached);

// Symmetric joint affinities in CSR form: P_ij = (p_{j|i} + p_{i|j}) / (2n), sums to 1.
struct SparseP {
  std::size_t n = 0;
  std::vector<std::int64_t> indptr;  // n + 1
  std::vector<std::int32_t> indices;
  std::vector<double> data;
};
SparseP joint_p(const std::int32_t* idx, const double* pcond, std::size_t n, int k,
                int n_threads = 1);

// Validates a CSR matrix given by the caller (throws InvalidArgument) and copies it.
SparseP make_sparse(std::size_t n, const std::int64_t* indptr, const std::int32_t* indices,
                    const double* data, std::size_t nnz);

// Reusable buffers of the gradient (tree, interaction lists, per-point partials).
struct Workspace;
struct WorkspaceDeleter {
  void operator()(Workspace* w) const;
};
using WorkspacePtr = std::unique_ptr<Workspace, WorkspaceDeleter>;
WorkspacePtr make_workspace();

// The t-SNE gradient without the conventional factor 4 (openTSNE's convention):
//   g_i = exaggeration * sum_j P_ij q_ij (y_i - y_j)  -  sum_j q_ij^2 (y_i - y_j) / Z,
// q_ij = 1 / (1 + |y_i - y_j|^2), Z = sum_{i != j} q_ij; the repulsion by Barnes-Hut.
// Returns Z. dim is 2 or 3.
double gradient(const SparseP& P, const double* Y, int dim, double theta, double exaggeration,
                int n_threads, double* grad, Workspace& ws);

// KL(P || Q) with the exact O(n^2) normalisation (for tests and benchmarks).
double exact_kl(const SparseP& P, const double* Y, int dim, int n_threads);

// KL(P || Q) given the normalisation Z (e.g. the Barnes-Hut estimate of the last gradient).
double kl_given_z(const SparseP& P, const double* Y, int dim, double Z, int n_threads);

struct Schedule {
  int n_iter = 0;
  double exaggeration = 1.0;
  double learning_rate = 200.0;
  double momentum = 0.8;
  double max_step_norm = 5.0;
  // Optional movement penalty penalty / (2n) * sum_i |y_i - anchor_i|^2 (dynamic t-SNE), applied
  // as a proximal step after each update: y <- (y + c anchor) / (1 + c), c = lr * penalty / n.
  const double* anchor = nullptr;
  double penalty = 0.0;
};

// Gradient descent with momentum, per-coordinate gains (delta-bar-delta, min 0.01) and per-point
// step clipping; the embedding is re-centred after each step.
class Optimizer {
 public:
  Optimizer(SparseP P, int dim, const double* Y0, double theta, int n_threads);
  // Runs sched.n_iter iterations; checks interrupt between iterations on the calling thread.
  // Returns the number of iterations done.
  int run(const Schedule& sched, const Interrupt& interrupt);
  // The current embedding, n x dim, in the caller's point order.
  std::vector<double> embedding() const;
  // KL divergence of the current embedding, with Z from a fresh Barnes-Hut evaluation.
  double kl_divergence();
  double last_z() const { return last_z_; }
  std::size_t n() const { return P_.n; }
  int dim() const { return dim_; }

 private:
  SparseP P_;
  int dim_;
  double theta_;
  int n_threads_;
  // Internally points are renumbered once, by the Morton order of the start, so that points
  // that attract each other are mostly close in memory; perm_[internal] = caller's index.
  std::vector<std::uint32_t> perm_;
  std::vector<double> Y_, Ynext_, update_, gains_, grad_, anchor_;
  WorkspacePtr ws_;
  double last_z_ = 0.0;
};

// Places m new points against a fixed reference embedding Yref (n x dim): point i is attracted
// to its reference neighbours idx (m x k) with weights p (m x k, rows sum to 1) and repelled from
// all reference points (Barnes-Hut), minimising KL(p_i || q_i) with q_i normalised per point.
// Ynew (m x dim) holds the start positions on entry and the result on return.
void transform(const double* Yref, std::size_t n, int dim, const std::int32_t* idx,
               const double* p, std::size_t m, int k, double* Ynew, int n_iter,
               double learning_rate, double theta, int n_threads, const Interrupt& interrupt);

}  // namespace cnnvis::tsne
