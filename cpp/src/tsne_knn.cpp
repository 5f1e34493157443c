// t-SNE part 1: exact k nearest neighbours (a blocked distance kernel, per-row selection).
#include "tsne_common.hpp"

namespace cnnvis::tsne {

using namespace internal;

// ----------------------------------------------------------------------------------------------
// Exact k nearest neighbours
// ----------------------------------------------------------------------------------------------

namespace detail {

// out (rows x 8) = A (rows x d, row-major, rows a multiple of 4) . panel (d x 8).
CNNVIS_CLONES void dot_panel(const double* A, std::size_t rows, std::size_t d,
                             const double* panel, double* out) {
  for (std::size_t r = 0; r < rows; r += 4) {
    v4d acc[4][2] = {};
    const double* a0 = A + r * d;
    for (std::size_t t = 0; t < d; ++t) {
      v4d p0, p1;
      std::memcpy(&p0, panel + t * 8, sizeof(v4d));
      std::memcpy(&p1, panel + t * 8 + 4, sizeof(v4d));
      for (int i = 0; i < 4; ++i) {
        const double a = a0[static_cast<std::size_t>(i) * d + t];
        const v4d av = {a, a, a, a};
        acc[i][0] += av * p0;
        acc[i][1] += av * p1;
      }
    }
    for (int i = 0; i < 4; ++i) {
      std::memcpy(out + (r + i) * 8, &acc[i][0], sizeof(v4d));
      std::memcpy(out + (r + i) * 8 + 4, &acc[i][1], sizeof(v4d));
    }
  }
}

}  // namespace detail

namespace {

struct Cand {
  double d;
  std::int32_t j;
};
inline bool cand_less(const Cand& a, const Cand& b) { return a.d < b.d || (a.d == b.d && a.j < b.j); }

}  // namespace

void knn_exact(const double* X, std::size_t n, std::size_t d, const double* Q, std::size_t m,
               int k, int n_threads, std::int32_t* idx, double* d2, const Interrupt& interrupt) {
  const bool self = (Q == nullptr);
  if (self) {
    Q = X;
    m = n;
  }
  if (k < 1 || static_cast<std::size_t>(k) > (self ? n - 1 : n))
    throw InvalidArgument("knn: k must be in [1, " + std::to_string(self ? n - 1 : n) + "], got " +
                          std::to_string(k));
  if (d == 0) throw InvalidArgument("knn: the data must have at least one column");
  const std::size_t K = static_cast<std::size_t>(k);

  // Centre on the reference mean (smaller norms, less cancellation in |x|^2 + |y|^2 - 2 x.y).
  std::vector<double> mean(d, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t t = 0; t < d; ++t) mean[t] += X[i * d + t];
  for (auto& v : mean) v /= static_cast<double>(n);

  // Reference panels: 8 columns (points) at a time, d x 8, zero padded.
  const std::size_t np = (n + 7) / 8;
  std::vector<double> panels(np * d * 8, 0.0), nref(np * 8, 0.0);
  for (std::size_t j = 0; j < n; ++j) {
    double s = 0.0;
    for (std::size_t t = 0; t < d; ++t) {
      const double v = X[j * d + t] - mean[t];
      panels[(j / 8) * d * 8 + t * 8 + (j % 8)] = v;
      s += v * v;
    }
    nref[j] = s;
  }
  // Queries, centred, padded to a multiple of 4 rows.
  const std::size_t mp = (m + 3) / 4 * 4;
  std::vector<double> A(mp * d, 0.0), nq(mp, 0.0);
  for (std::size_t i = 0; i < m; ++i) {
    double s = 0.0;
    for (std::size_t t = 0; t < d; ++t) {
      const double v = Q[i * d + t] - mean[t];
      A[i * d + t] = v;
      s += v * v;
    }
    nq[i] = s;
  }

  constexpr std::size_t RB = 64;  // query rows per block (a multiple of 4)
  const std::size_t nblocks = (m + RB - 1) / RB;
  std::atomic<bool> stop{false};
  ThreadPool pool(n_threads);
  dynamic_for(pool, nblocks, [&](std::size_t blk, int tid) {
    if (stop.load(std::memory_order_relaxed)) return;
    if (tid == 0 && interrupt) {
      try {
        interrupt();
      } catch (...) {
        stop = true;
        throw;
      }
    }
    const std::size_t r0 = blk * RB, r1 = std::min(m, r0 + RB), rows = (r1 - r0 + 3) / 4 * 4;
    std::vector<Cand> heaps(RB * K);
    std::vector<std::size_t> fill(RB, 0);
    std::vector<double> out(RB * 8);
    for (std::size_t p = 0; p < np; ++p) {
      detail::dot_panel(A.data() + r0 * d, rows, d, panels.data() + p * d * 8, out.data());
      const std::size_t jn = std::min<std::size_t>(8, n - p * 8);
      for (std::size_t r = 0; r < r1 - r0; ++r) {
        const std::size_t i = r0 + r;
        Cand* h = heaps.data() + r * K;
        std::size_t& f = fill[r];
        for (std::size_t c = 0; c < jn; ++c) {
          const std::size_t j = p * 8 + c;
          if (self && j == i) continue;
          const double dist = std::max(0.0, nq[i] + nref[j] - 2.0 * out[r * 8 + c]);
          const Cand cand{dist, static_cast<std::int32_t>(j)};
          if (f < K) {
            h[f++] = cand;
            std::push_heap(h, h + f, cand_less);
          } else if (dist < h[0].d) {
            std::pop_heap(h, h + K, cand_less);
            h[K - 1] = cand;
            std::push_heap(h, h + K, cand_less);
          }
        }
      }
    }
    // Exact distances of the chosen neighbours, then sort by (distance, index).
    for (std::size_t r = 0; r < r1 - r0; ++r) {
      const std::size_t i = r0 + r;
      Cand* h = heaps.data() + r * K;
      for (std::size_t a = 0; a < K; ++a) {
        const double* xi = Q + i * d;
        const double* xj = X + static_cast<std::size_t>(h[a].j) * d;
        double s = 0.0;
        for (std::size_t t = 0; t < d; ++t) {
          const double v = xi[t] - xj[t];
          s += v * v;
        }
        h[a].d = s;
      }
      std::sort(h, h + K, cand_less);
      for (std::size_t a = 0; a < K; ++a) {
        idx[i * K + a] = h[a].j;
        d2[i * K + a] = h[a].d;
      }
    }
  });
}

}  // namespace cnnvis::tsne
