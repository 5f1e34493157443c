// t-SNE part 4: the gradient (Barnes-Hut repulsion, sparse attraction) and its workspace,
// shared by the gradient entry points and the optimiser, which runs its step in the gradient's
// pass (gradient_then).
#pragma once

#include "tsne_tree.hpp"

namespace cnnvis::tsne {

namespace detail {

// The vector kernels (tsne_gradient.cpp), each compiled for AVX2 and the baseline.
CNNVIS_CLONES void repulse2(const float* lx, const float* ly, const float* lm, std::size_t L,
                            const float* px, const float* py, std::size_t np, double* out);
CNNVIS_CLONES void repulse3(const float* lx, const float* ly, const float* lz, const float* lm,
                            std::size_t L, const float* px, const float* py, const float* pz,
                            std::size_t np, double* out);
CNNVIS_CLONES void attract2(const double* Y, const std::int64_t* indptr, const std::int32_t* cols,
                            const double* vals, std::size_t b, std::size_t e, double* out);
CNNVIS_CLONES void attract3(const double* Y, const std::int64_t* indptr, const std::int32_t* cols,
                            const double* vals, std::size_t b, std::size_t e, double* out);

}  // namespace detail

struct Workspace {
  internal::Tree<2> tree2;
  internal::Tree<3> tree3;
  std::vector<internal::List> lists;
  std::vector<std::vector<float>> pts;  // per thread: group points, SoA
  std::vector<std::vector<double>> outs;
  std::vector<double> frep;       // per point (original order): repulsive sums
  std::vector<double> zgroup;     // per tree group: sum of z_i over its points (in point order)
  std::vector<double> rowsum;
  // Set by the optimiser for the next tree build only: the box of the recentred embedding and the
  // shift that recentres it (applied in the build's first pass).
  bool prepared = false;
  double box[6] = {}, shift[3] = {};
  double* Ymut = nullptr;
  std::unique_ptr<ThreadPool> pool;  // started at the first use, kept for the run
};

namespace internal {

// The workspace's pool with n_threads threads (at most the cores), started at the first use.
ThreadPool& pool_of(Workspace& ws, int n_threads);

// KL(P || Q) for a known normalisation Z of Q.
double kl_given_z_on(const SparseP& P, const double* Y, int dim, double Z, ThreadPool& pool);


// Repulsive sums for every point, frep[i] = sum_j q_ij^2 (y_i - y_j), and z_i = sum_{j != i} q_ij
// summed per group (zgroup[g]).
template <int D>
void repulsion(Tree<D>& tree, const double* Y, std::size_t n, double theta, ThreadPool& pool,
               Workspace& ws) {
  if (ws.prepared) {
    tree.build(Y, n, pool, ws.box, ws.Ymut, ws.shift);
    ws.prepared = false;
  } else {
    tree.build(Y, n, pool);
  }
  const int T = pool.size();
  if (ws.lists.size() < static_cast<std::size_t>(T)) {
    ws.lists.resize(static_cast<std::size_t>(T));
    ws.pts.resize(static_cast<std::size_t>(T));
    ws.outs.resize(static_cast<std::size_t>(T));
  }
  ws.zgroup.resize(tree.groups.size());
  ws.frep.resize(n * D);
  const double theta2 = theta * theta;
  const auto& nodes = tree.nodes;
  const std::uint32_t nn = static_cast<std::uint32_t>(nodes.size());
  dynamic_for(pool, tree.groups.size(), [&](std::size_t g, int tid) {
    const Node<D>& gn = nodes[tree.groups[g]];
    const std::uint32_t gb = gn.begin, ge = gn.end;
    double bmin[D], bmax[D], gc[D];
    for (int a = 0; a < D; ++a) bmin[a] = bmax[a] = tree.pos[gb * D + a];
    for (std::uint32_t p = gb + 1; p < ge; ++p)
      for (int a = 0; a < D; ++a) {
        bmin[a] = std::min(bmin[a], tree.pos[p * D + a]);
        bmax[a] = std::max(bmax[a], tree.pos[p * D + a]);
      }
    for (int a = 0; a < D; ++a) gc[a] = 0.5 * (bmin[a] + bmax[a]);
    List& L = ws.lists[static_cast<std::size_t>(tid)];
    L.clear();
    auto push = [&](const double* c, double mass) {
      L.reserve_more(1);
      L.x[L.size] = static_cast<float>(c[0] - gc[0]);
      L.y[L.size] = static_cast<float>(c[1] - gc[1]);
      if constexpr (D == 3) L.z[L.size] = static_cast<float>(c[2] - gc[2]);
      L.m[L.size] = static_cast<float>(mass);
      ++L.size;
    };
    for (std::uint32_t k = 0; k < nn;) {
      const Node<D>& nd = nodes[k];
      if (nd.end <= gb || nd.begin >= ge) {
        double d2 = 0.0;
        for (int a = 0; a < D; ++a) {
          const double v = std::max({0.0, bmin[a] - nd.c[a], nd.c[a] - bmax[a]});
          d2 += v * v;
        }
        if (nd.width2 < theta2 * d2) {
          push(nd.c, nd.mass);
          k = nd.next;
          continue;
        }
      }
      if (nd.leaf) {
        for (std::uint32_t p = nd.begin; p < nd.end; ++p) push(&tree.pos[p * D], 1.0);
        k = nd.next;
        continue;
      }
      ++k;
    }
    L.pad();
    const std::size_t np = ge - gb;
    auto& P = ws.pts[static_cast<std::size_t>(tid)];
    P.resize(np * D);
    for (std::size_t p = 0; p < np; ++p)
      for (int a = 0; a < D; ++a)
        P[a * np + p] = static_cast<float>(tree.pos[(gb + p) * D + a] - gc[a]);
    auto& out = ws.outs[static_cast<std::size_t>(tid)];
    out.resize(np * (D + 1));
    if constexpr (D == 2)
      detail::repulse2(L.x.data(), L.y.data(), L.m.data(), L.size, P.data(), P.data() + np, np,
                       out.data());
    else
      detail::repulse3(L.x.data(), L.y.data(), L.z.data(), L.m.data(), L.size, P.data(),
                       P.data() + np, P.data() + 2 * np, np, out.data());
    double zg = 0.0;
    for (std::size_t p = 0; p < np; ++p) {
      const std::size_t i = tree.order[gb + p];
      zg += out[p * (D + 1)] - 1.0;  // the point itself, q_ii = 1
      for (int a = 0; a < D; ++a) ws.frep[i * D + a] = out[p * (D + 1) + 1 + a];
    }
    ws.zgroup[g] = zg;
  });
}

// The gradient, then post(b, e) on each block of rows [b, e) as soon as their gradient is known
// (in the same parallel pass; post must not write Y).
template <int D, class Post>
double gradient_then(const SparseP& P, const double* Y, double theta, double exaggeration,
                     ThreadPool& pool, double* grad, Workspace& ws, Post&& post) {
  const std::size_t n = P.n;
  if (n == 0) return 0.0;
  if constexpr (D == 2)
    repulsion<2>(ws.tree2, Y, n, theta, pool, ws);
  else
    repulsion<3>(ws.tree3, Y, n, theta, pool, ws);
  double Z = 0.0;
  for (double zg : ws.zgroup) Z += zg;  // groups in point order: fixed for any thread count
  const double invZ = Z > 0.0 ? 1.0 / Z : 0.0;
  dynamic_blocks(n, kStepBlock, pool, [&](std::size_t b, std::size_t e, int) {
    double* att = grad + b * D;  // attractive sums first, then combined in place
    if constexpr (D == 2)
      detail::attract2(Y, P.indptr.data(), P.indices.data(), P.data.data(), b, e, att);
    else
      detail::attract3(Y, P.indptr.data(), P.indices.data(), P.data.data(), b, e, att);
    for (std::size_t i = b; i < e; ++i)
      for (int c = 0; c < D; ++c)
        grad[i * D + c] = exaggeration * grad[i * D + c] - ws.frep[i * D + c] * invZ;
    post(b, e);
  });
  return Z;
}

}  // namespace internal

}  // namespace cnnvis::tsne
