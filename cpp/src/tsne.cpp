// Barnes-Hut t-SNE (see cnnvis/tsne.hpp for the contract and the meaning of theta).
//
// Layout of the work per gradient evaluation:
//  1. Morton codes of the embedding (64-bit, 32 bits per axis in 2-D, 21 in 3-D), sorted by
//     (code, index): a parallel stable counting pass into 4096 buckets by the top bits, then each
//     bucket sorted on its own (inside the subtree tasks of step 2), and the positions copied in
//     that order: points that are close in the plane are close in memory.
//  2. A flat tree over the sorted points, stored in depth-first order with a "next" index (the
//     node after the subtree), so a walk is a forward scan without a stack. Chains of
//     single-child cells are collapsed, so every cell is as tight as the Morton grid allows.
//  3. Groups: the largest cells holding at most kGroupSize points. Each group walks the tree once
//     and collects an interaction list (cell summaries and single points); then every point of
//     the group is evaluated against that list by a vectorised loop in single precision, in
//     coordinates relative to the group's centre (differences stay accurate), summed in double.
//  4. Groups are handed out to threads dynamically; each point's result depends only on its group,
//     and all totals are summed in a fixed order (Z per group, then over groups in point order;
//     the mean and box of the new embedding per fixed block of 512 rows, then over blocks), so
//     the output does not depend on the threads. The optimiser's step, the new mean and box run
//     in the gradient's pass, and the recentring in the next tree build's first pass: every O(n)
//     pass of an iteration is parallel. The passes run on a thread pool that the optimiser
//     starts once (ThreadPool), not on threads started per pass.
#include "cnnvis/tsne.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
// Compiled twice, for AVX2 and for the baseline; chosen at load time. No FMA: each operation is
// rounded exactly as in the baseline build, so both give the same bytes.
#define CNNVIS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CNNVIS_CLONES
#endif
#if defined(__GNUC__)
#define CNNVIS_INLINE __attribute__((always_inline))
#else
#define CNNVIS_INLINE
#endif

namespace cnnvis::tsne {

typedef double v4d __attribute__((vector_size(32)));

namespace {

constexpr int kLeafSize = 8;     // points per tree leaf at most (unless all in one finest cell)
constexpr int kGroupSize = 32;   // points sharing one tree walk at most (same exception)
constexpr int kLanes = 16;       // width of the interaction-list kernel; lists are padded to it
constexpr std::size_t kStepBlock = 512;        // rows per block of the gradient/step pass
constexpr std::size_t kParallelPoints = 8192;  // light O(n) passes use threads from this n on
constexpr std::size_t kBuckets = 4096;         // the sort's first split (top 12 bits of the code)

// Runs fn(item, thread) for item in [0, n_items) on the pool's threads, items handed out
// dynamically. Callers must make each item's result independent of the thread that ran it.
// At most max_threads of them.
template <class Fn>
void dynamic_for(ThreadPool& pool, std::size_t n_items, Fn&& fn, int max_threads = 1 << 30) {
  const auto t = static_cast<int>(std::min<std::size_t>(
      static_cast<std::size_t>(std::min(pool.size(), max_threads)), std::max<std::size_t>(1, n_items)));
  std::atomic<std::size_t> next{0};
  pool.run(t, [&](int tid) {
    for (;;) {
      const std::size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n_items) break;
      fn(i, tid);
    }
  });
}

// Same, over [0, n) in blocks of `block`: fn(begin, end, thread).
template <class Fn>
void dynamic_blocks(std::size_t n, std::size_t block, ThreadPool& pool, Fn&& fn) {
  const std::size_t nb = (n + block - 1) / block;
  dynamic_for(pool, nb, [&](std::size_t b, int tid) {
    fn(b * block, std::min(n, (b + 1) * block), tid);
  });
}

}  // namespace

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

// ----------------------------------------------------------------------------------------------
// Affinities
// ----------------------------------------------------------------------------------------------

void conditional_p(const double* d2, std::size_t m, int k, double perplexity, int n_threads,
                   double* p, double* reached) {
  if (!(perplexity > 0.0)) throw InvalidArgument("perplexity must be positive");
  const std::size_t K = static_cast<std::size_t>(k);
  const double target = std::log(perplexity);
  ThreadPool pool(n_threads);
  dynamic_blocks(m, 256, pool, [&](std::size_t b, std::size_t e, int) {
    std::vector<double> sh(K);
    for (std::size_t i = b; i < e; ++i) {
      const double* r = d2 + i * K;
      double* pi = p + i * K;
      const double dmin = *std::min_element(r, r + K);
      double mean = 0.0;
      for (std::size_t j = 0; j < K; ++j) {
        sh[j] = r[j] - dmin;
        mean += sh[j];
      }
      mean /= static_cast<double>(K);
      double beta = mean > 0.0 ? 1.0 / mean : 1.0;
      double lo = 0.0, hi = std::numeric_limits<double>::infinity(), H = 0.0;
      for (int it = 0; it < 200; ++it) {
        double sum = 0.0, sdp = 0.0;
        for (std::size_t j = 0; j < K; ++j) {
          const double v = std::exp(-beta * sh[j]);
          pi[j] = v;
          sum += v;
          sdp += v * sh[j];
        }
        H = std::log(sum) + beta * sdp / sum;
        if (std::fabs(H - target) < 1e-9) break;
        if (H > target) {
          lo = beta;
          beta = std::isinf(hi) ? beta * 2.0 : 0.5 * (beta + hi);
        } else {
          hi = beta;
          beta = 0.5 * (beta + lo);
        }
      }
      double sum = 0.0;
      for (std::size_t j = 0; j < K; ++j) sum += pi[j];
      for (std::size_t j = 0; j < K; ++j) pi[j] /= sum;
      if (reached) reached[i] = std::exp(H);
    }
  });
}

SparseP joint_p(const std::int32_t* idx, const double* pcond, std::size_t n, int k, int n_threads) {
  const std::size_t K = static_cast<std::size_t>(k);
  SparseP P;
  P.n = n;
  ThreadPool pool(n >= kParallelPoints ? n_threads : 1);
  // Row i gathers its own K entries (first) and one entry per point that lists i. The latter
  // arrive in any order (atomic counters); each row is then sorted by (column, value), which
  // has one answer, so the result does not depend on the threads.
  std::vector<std::int64_t> cnt(n + 1, 0);
  parallel_for(pool, n, pool.size(), [&](std::size_t b, std::size_t e, int) {
    for (std::size_t i = b; i < e; ++i)
      for (std::size_t a = 0; a < K; ++a) {
        const auto j = idx[i * K + a];
        if (j < 0 || static_cast<std::size_t>(j) >= n || static_cast<std::size_t>(j) == i)
          throw InvalidArgument(
              "neighbour index out of range or a point listed as its own neighbour");
        __atomic_fetch_add(&cnt[static_cast<std::size_t>(j) + 1], 1, __ATOMIC_RELAXED);
      }
  });
  for (std::size_t i = 0; i < n; ++i) cnt[i + 1] += cnt[i] + static_cast<std::int64_t>(K);
  std::vector<std::pair<std::int32_t, double>> ent(static_cast<std::size_t>(cnt[n]));
  std::vector<std::int64_t> pos(n);
  for (std::size_t i = 0; i < n; ++i) pos[i] = cnt[i] + static_cast<std::int64_t>(K);
  parallel_for(pool, n, pool.size(), [&](std::size_t b, std::size_t e, int) {
    for (std::size_t i = b; i < e; ++i)
      for (std::size_t a = 0; a < K; ++a) {
        const auto j = static_cast<std::size_t>(idx[i * K + a]);
        const double v = pcond[i * K + a];
        ent[static_cast<std::size_t>(cnt[i]) + a] = {static_cast<std::int32_t>(j), v};
        const auto at = __atomic_fetch_add(&pos[j], 1, __ATOMIC_RELAXED);
        ent[static_cast<std::size_t>(at)] = {static_cast<std::int32_t>(i), v};
      }
  });
  // Per row: sort, merge equal columns in place; then the rows' lengths give indptr.
  std::vector<std::int64_t> len(n);
  const double scale = 1.0 / (2.0 * static_cast<double>(n));
  parallel_for(pool, n, pool.size(), [&](std::size_t b, std::size_t e, int) {
    for (std::size_t i = b; i < e; ++i) {
      auto rb = ent.begin() + cnt[i], re = ent.begin() + cnt[i + 1];
      std::sort(rb, re, [](const auto& x, const auto& y) {
        return x.first < y.first || (x.first == y.first && x.second < y.second);
      });
      auto out = rb;
      for (auto it = rb; it != re;) {
        double sm = it->second;
        auto jt = it + 1;
        // at most two entries per column: p_{j|i} and p_{i|j}; a + b == b + a exactly
        for (; jt != re && jt->first == it->first; ++jt) sm += jt->second;
        *out++ = {it->first, sm * scale};
        it = jt;
      }
      len[i] = out - rb;
    }
  });
  P.indptr.assign(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i) P.indptr[i + 1] = P.indptr[i] + len[i];
  const auto nnz = static_cast<std::size_t>(P.indptr[n]);
  P.indices.resize(nnz);
  P.data.resize(nnz);
  parallel_for(pool, n, pool.size(), [&](std::size_t b, std::size_t e, int) {
    for (std::size_t i = b; i < e; ++i) {
      const auto from = static_cast<std::size_t>(cnt[i]);
      const auto to = static_cast<std::size_t>(P.indptr[i]);
      for (std::int64_t a = 0; a < len[i]; ++a) {
        P.indices[to + static_cast<std::size_t>(a)] = ent[from + static_cast<std::size_t>(a)].first;
        P.data[to + static_cast<std::size_t>(a)] = ent[from + static_cast<std::size_t>(a)].second;
      }
    }
  });
  return P;
}

SparseP make_sparse(std::size_t n, const std::int64_t* indptr, const std::int32_t* indices,
                    const double* data, std::size_t nnz) {
  if (indptr[0] != 0 || static_cast<std::size_t>(indptr[n]) != nnz)
    throw InvalidArgument("P: indptr must start at 0 and end at nnz");
  for (std::size_t i = 0; i < n; ++i)
    if (indptr[i + 1] < indptr[i]) throw InvalidArgument("P: indptr must be non-decreasing");
  for (std::size_t a = 0; a < nnz; ++a) {
    if (indices[a] < 0 || static_cast<std::size_t>(indices[a]) >= n)
      throw InvalidArgument("P: column index out of range");
    if (!(data[a] >= 0.0) || !std::isfinite(data[a]))
      throw InvalidArgument("P: values must be finite and non-negative");
  }
  SparseP P;
  P.n = n;
  P.indptr.assign(indptr, indptr + n + 1);
  P.indices.assign(indices, indices + nnz);
  P.data.assign(data, data + nnz);
  return P;
}

// ----------------------------------------------------------------------------------------------
// The tree
// ----------------------------------------------------------------------------------------------

namespace {

inline std::uint64_t spread2(std::uint64_t x) {  // 32 bits -> even bits of 64
  x &= 0xffffffffULL;
  x = (x | (x << 16)) & 0x0000ffff0000ffffULL;
  x = (x | (x << 8)) & 0x00ff00ff00ff00ffULL;
  x = (x | (x << 4)) & 0x0f0f0f0f0f0f0f0fULL;
  x = (x | (x << 2)) & 0x3333333333333333ULL;
  x = (x | (x << 1)) & 0x5555555555555555ULL;
  return x;
}
inline std::uint64_t spread3(std::uint64_t x) {  // 21 bits -> every third bit of 63
  x &= 0x1fffffULL;
  x = (x | (x << 32)) & 0x1f00000000ffffULL;
  x = (x | (x << 16)) & 0x1f0000ff0000ffULL;
  x = (x | (x << 8)) & 0x100f00f00f00f00fULL;
  x = (x | (x << 4)) & 0x10c30c30c30c30c3ULL;
  x = (x | (x << 2)) & 0x1249249249249249ULL;
  return x;
}

template <int D>
struct Node {
  double c[D];         // centre of mass
  double mass;         // number of points
  double width2;       // squared side length of the cell
  std::uint32_t next;  // index of the node after this subtree
  std::uint32_t begin, end;  // range of sorted points
  std::uint32_t leaf;
};

template <int D>
struct Tree {
  static constexpr int B = (D == 2) ? 32 : 21;  // bits per axis
  static constexpr int kBucketShift = D * B - 12;  // code >> this: the bucket (kBuckets)
  std::vector<Node<D>> nodes;
  std::vector<std::uint32_t> order, tmp_order;  // sorted position -> original index
  std::vector<std::uint64_t> codes, tmp_codes;
  // the sort's bucket split: per thread chunk, counts and starts of each bucket in lcodes/lorder
  std::vector<std::uint32_t> hist, hstart, bucket_start, lorder;
  std::vector<std::uint64_t> lcodes;

  // The bucket holding sorted position x (from the counts only).
  std::size_t bucket_of(std::uint32_t x) const {
    return static_cast<std::size_t>(
        std::upper_bound(bucket_start.begin(), bucket_start.end(), x) - bucket_start.begin() - 1);
  }
  std::vector<double> pos;            // positions in sorted order, n x D
  std::vector<std::uint32_t> groups;  // node indices of the groups, in point order
  double side = 0.0;
  std::size_t n = 0;

  int digit(std::uint64_t code, int level) const {
    return static_cast<int>((code >> (D * (B - 1 - level))) & ((1u << D) - 1));
  }

  // box: the bounding box (lo[0..D), hi[0..D)) of Y when the caller knows it, else nullptr.
  // shift: if given, Y (which must then be writable) is first recentred in place,
  // Y[i] -= shift, in the same pass; box is then the box after that shift.
  void build(const double* Y, std::size_t n_points, ThreadPool& pool, const double* box = nullptr,
             double* Ymut = nullptr, const double* shift = nullptr) {
    n = n_points;
    // light O(n) passes: threads only pay off from a few thousand points
    const int lt = n >= kParallelPoints ? pool.size() : 1;
    double lo[D], hi[D];
    if (box) {
      for (int a = 0; a < D; ++a) {
        lo[a] = box[a];
        hi[a] = box[D + a];
      }
    } else {
      // min and max are exact: the box does not depend on how the points are split
      std::vector<double> part(static_cast<std::size_t>(lt) * 2 * D);
      parallel_for(pool, n, lt, [&](std::size_t b, std::size_t e, int t) {
        double* l = &part[static_cast<std::size_t>(t) * 2 * D];
        double* h = l + D;
        for (int a = 0; a < D; ++a) {
          l[a] = std::numeric_limits<double>::infinity();
          h[a] = -std::numeric_limits<double>::infinity();
        }
        for (std::size_t i = b; i < e; ++i)
          for (int a = 0; a < D; ++a) {
            l[a] = std::min(l[a], Y[i * D + a]);
            h[a] = std::max(h[a], Y[i * D + a]);
          }
      });
      const std::size_t used = std::min<std::size_t>(static_cast<std::size_t>(lt), n);
      for (int a = 0; a < D; ++a) {
        lo[a] = part[static_cast<std::size_t>(a)];
        hi[a] = part[static_cast<std::size_t>(D + a)];
      }
      for (std::size_t t = 1; t < used; ++t)
        for (int a = 0; a < D; ++a) {
          lo[a] = std::min(lo[a], part[t * 2 * D + static_cast<std::size_t>(a)]);
          hi[a] = std::max(hi[a], part[t * 2 * D + static_cast<std::size_t>(D + a)]);
        }
    }
    side = 0.0;
    for (int a = 0; a < D; ++a) side = std::max(side, hi[a] - lo[a]);
    side = side > 0.0 ? side * (1.0 + 1e-12) : 1.0;  // all points coincide: any cell
    const double scale = std::ldexp(1.0, B) / side;
    const double qmax = std::ldexp(1.0, B) - 1.0;
    codes.resize(n);
    order.resize(n);
    tmp_codes.resize(n);
    tmp_order.resize(n);
    pos.resize(n * D);
    // Sorting by (code, index), which has one answer however it is computed: each thread chunk
    // computes its codes and groups its points by bucket (the top 12 bits of the code) with a
    // counting sort of its own; the subtree tasks below gather each of their buckets from the
    // chunks in chunk order (so by index within a bucket) and sort it.
    const std::size_t H = kBuckets + 1;
    hist.assign(static_cast<std::size_t>(lt) * H, 0);
    hstart.resize(static_cast<std::size_t>(lt) * H);
    lcodes.resize(n);
    lorder.resize(n);
    parallel_for(pool, n, lt, [&](std::size_t b, std::size_t e, int t) {
      std::uint32_t* h = &hist[static_cast<std::size_t>(t) * H];
      std::uint32_t* hs = &hstart[static_cast<std::size_t>(t) * H];
      for (std::size_t i = b; i < e; ++i) {
        if (shift)
          for (int a = 0; a < D; ++a) Ymut[i * D + a] -= shift[a];
        std::uint64_t code = 0;
        for (int a = 0; a < D; ++a) {
          const double q = std::min(qmax, std::floor((Y[i * D + a] - lo[a]) * scale));
          const auto qi = static_cast<std::uint64_t>(std::max(0.0, q));
          code |= (D == 2 ? spread2(qi) : spread3(qi)) << a;
        }
        tmp_codes[i] = code;
        ++h[code >> kBucketShift];
      }
      auto at = static_cast<std::uint32_t>(b);
      for (std::size_t k = 0; k < kBuckets; ++k) {
        hs[k] = at;
        at += h[k];
      }
      hs[kBuckets] = at;
      std::vector<std::uint32_t> cur(hs, hs + kBuckets);
      for (std::size_t i = b; i < e; ++i) {
        const std::uint32_t dst = cur[tmp_codes[i] >> kBucketShift]++;
        lcodes[dst] = tmp_codes[i];
        lorder[dst] = static_cast<std::uint32_t>(i);
      }
    });
    bucket_start.resize(H);
    {
      std::uint32_t s = 0;
      for (std::size_t k = 0; k < kBuckets; ++k) {
        bucket_start[k] = s;
        for (int t = 0; t < lt; ++t) s += hist[static_cast<std::size_t>(t) * H + k];
      }
      bucket_start[kBuckets] = s;
    }
    // The top of the tree is built serially from the bucket counts alone (O(1) per node)
    // down to ranges of at most `cut` points or within one bucket (whole buckets either way);
    // those ranges are then sorted, copied and built into subtrees in parallel, and copied into
    // place (with their groups) in parallel.
    // The split depends on n and the data only, and the tree (and every sum in it) is the same
    // as if built in one piece, for any thread count.
    const auto cut = static_cast<std::uint32_t>(
        std::max<std::size_t>(static_cast<std::size_t>(kGroupSize), n / 64));
    top.clear();
    stubs.clear();
    build_top(0, static_cast<std::uint32_t>(n), 0, cut);
    if (subs.size() < stubs.size()) {
      subs.resize(stubs.size());
      sub_groups.resize(stubs.size());
    }
    stub_sum.resize(stubs.size() * D);
    // Each subtree: built, summed (children before parents), its root's sums kept for the top,
    // then its centres of mass divided out, and its groups listed.
    dynamic_for(pool, stubs.size(), [&](std::size_t t, int) {
      const std::uint32_t sb = stubs[t].b, se = stubs[t].e;
      for (std::size_t k = bucket_of(sb); k <= bucket_of(se - 1); ++k) {
        const std::uint32_t b = bucket_start[k], e = bucket_start[k + 1];
        std::uint32_t dst = b;
        for (int ct = 0; ct < lt; ++ct) {
          const std::size_t hb = static_cast<std::size_t>(ct) * H + k;
          const std::uint32_t from = hstart[hb], cnt = hist[hb];
          std::copy(lcodes.begin() + from, lcodes.begin() + from + cnt, codes.begin() + dst);
          std::copy(lorder.begin() + from, lorder.begin() + from + cnt, order.begin() + dst);
          dst += cnt;
        }
        if (e - b > 1) sort_range(b, e);
      }
      for (std::size_t p = sb; p < se; ++p)
        for (int a = 0; a < D; ++a)
          pos[p * D + a] = Y[static_cast<std::size_t>(order[p]) * D + a];
      auto& sub = subs[t];
      sub.clear();
      build_node(sub, stubs[t].b, stubs[t].e, stubs[t].level);
      sum_masses(sub, 0, sub.size());
      for (int a = 0; a < D; ++a) stub_sum[t * D + static_cast<std::size_t>(a)] = sub[0].c[a];
      for (auto& nd : sub)
        for (int a = 0; a < D; ++a) nd.c[a] /= nd.mass;
      // Groups: the largest cells with at most kGroupSize points (or leaves). Top nodes hold
      // more than `cut` >= kGroupSize points, so every group lies in a subtree.
      auto& gs = sub_groups[t];
      gs.clear();
      for (std::uint32_t k = 0; k < sub.size();) {
        if (sub[k].leaf || sub[k].end - sub[k].begin <= static_cast<std::uint32_t>(kGroupSize)) {
          gs.push_back(k);
          k = sub[k].next;
        } else {
          ++k;
        }
      }
    });
    // top nodes: children first (reverse order), the same sums in the same order as if the whole
    // tree were summed in one piece (top nodes are never leaves)
    for (std::size_t k = top.size(); k-- > 0;) {
      Node<D>& nd = top[k];
      if (nd.leaf == 2) continue;
      double sm[D] = {};
      for (auto ch = static_cast<std::uint32_t>(k) + 1; ch < nd.next;) {
        const Node<D>& cn = top[ch];
        const double* cs = cn.leaf == 2 ? &stub_sum[static_cast<std::size_t>(cn.next) * D] : cn.c;
        for (int a = 0; a < D; ++a) sm[a] += cs[a];
        ch = cn.leaf == 2 ? ch + 1 : cn.next;
      }
      nd.mass = static_cast<double>(nd.end - nd.begin);
      for (int a = 0; a < D; ++a) nd.c[a] = sm[a];
    }
    for (auto& nd : top)  // parents above read their children's sums: divide afterwards
      if (nd.leaf != 2)
        for (int a = 0; a < D; ++a) nd.c[a] /= nd.mass;
    // Where each piece goes in the flat depth-first array: the top nodes here, the subtrees and
    // their groups copied in parallel.
    stub_at.resize(stubs.size());
    top_at.resize(top.size());
    top_next.resize(top.size());
    group_at.resize(stubs.size() + 1);
    std::uint32_t total = 0;
    place(0, total);
    nodes.resize(total);
    group_at[0] = 0;
    for (std::size_t t = 0; t < stubs.size(); ++t)
      group_at[t + 1] = group_at[t] + static_cast<std::uint32_t>(sub_groups[t].size());
    groups.resize(group_at[stubs.size()]);
    for (std::size_t k = 0; k < top.size(); ++k) {
      const Node<D>& tn = top[k];
      if (tn.leaf == 2) continue;
      nodes[top_at[k]] = tn;
      nodes[top_at[k]].next = top_next[k];
    }
    dynamic_for(pool, stubs.size(), [&](std::size_t t, int) {
      const std::uint32_t off = stub_at[t];
      const auto& sub = subs[t];
      Node<D>* out = nodes.data() + off;
      for (std::size_t k = 0; k < sub.size(); ++k) {
        out[k] = sub[k];
        out[k].next += off;
      }
      std::uint32_t* g = groups.data() + group_at[t];
      for (std::size_t k = 0; k < sub_groups[t].size(); ++k) g[k] = sub_groups[t][k] + off;
    }, lt);
  }

  struct Stub {
    std::uint32_t b, e;
    int level;
  };
  std::vector<Node<D>> top;
  std::vector<Stub> stubs;
  std::vector<std::vector<Node<D>>> subs;
  std::vector<std::vector<std::uint32_t>> sub_groups;  // per stub: its groups (local indices)
  std::vector<double> stub_sum;  // per stub: the sums of its root (before division)
  std::vector<std::uint32_t> stub_at, group_at;  // per stub: first node, first group
  std::vector<std::uint32_t> top_at, top_next;   // per top node: index and next in `nodes`

  // Sums of positions (in c) and masses for nodes [b, e) of v, children after parents.
  void sum_masses(std::vector<Node<D>>& v, std::size_t b, std::size_t e) const {
    for (std::size_t k = e; k-- > b;) {
      Node<D>& nd = v[k];
      double s[D] = {};
      if (nd.leaf) {
        for (std::uint32_t p = nd.begin; p < nd.end; ++p)
          for (int a = 0; a < D; ++a) s[a] += pos[p * D + a];
      } else {
        for (std::uint32_t ch = static_cast<std::uint32_t>(k) + 1; ch < nd.next; ch = v[ch].next)
          for (int a = 0; a < D; ++a) s[a] += v[ch].c[a];
      }
      nd.mass = static_cast<double>(nd.end - nd.begin);
      for (int a = 0; a < D; ++a) nd.c[a] = s[a];
    }
  }

  // Assigns top node k (and, recursively, its children or its subtree) its place in `nodes`,
  // from index at on; at is advanced past it.
  void place(std::uint32_t k, std::uint32_t& at) {
    const Node<D>& t = top[k];
    if (t.leaf == 2) {  // a stub: next holds the stub's number
      stub_at[t.next] = at;
      at += static_cast<std::uint32_t>(subs[t.next].size());
      return;
    }
    top_at[k] = at++;
    for (std::uint32_t ch = k + 1; ch < t.next; ch = top[ch].leaf == 2 ? ch + 1 : top[ch].next)
      place(ch, at);
    top_next[k] = at;
  }

  // Sorts [b, e) of codes/order by (code, order); order is increasing within the range on entry,
  // so a stable sort by code is enough. Small ranges: insertion sort; large: LSD radix sort.
  void sort_range(std::uint32_t b, std::uint32_t e) {
    std::uint64_t* c = codes.data();
    std::uint32_t* o = order.data();
    if (e - b <= 64) {
      for (std::uint32_t i = b + 1; i < e; ++i) {
        const std::uint64_t ci = c[i];
        const std::uint32_t oi = o[i];
        std::uint32_t j = i;
        for (; j > b && c[j - 1] > ci; --j) {
          c[j] = c[j - 1];
          o[j] = o[j - 1];
        }
        c[j] = ci;
        o[j] = oi;
      }
      return;
    }
    std::uint64_t* tc = tmp_codes.data();  // the same range of the scratch arrays (free now)
    std::uint32_t* to = tmp_order.data();
    std::uint32_t h[256];
    for (int sh = 0; sh < kBucketShift; sh += 8) {
      std::fill(h, h + 256, 0u);
      for (std::uint32_t i = b; i < e; ++i) ++h[(c[i] >> sh) & 0xff];
      if (std::find(h, h + 256, e - b) != h + 256) continue;  // one digit value: skip
      std::uint32_t s = b;
      for (auto& v : h) {
        const std::uint32_t cnt = v;
        v = s;
        s += cnt;
      }
      for (std::uint32_t i = b; i < e; ++i) {
        const std::uint32_t dst = h[(c[i] >> sh) & 0xff]++;
        tc[dst] = c[i];
        to[dst] = o[i];
      }
      std::copy(tc + b, tc + e, c + b);
      std::copy(to + b, to + e, o + b);
    }
  }

  // The digit of bucket kb at level (level < 12 / D: the bucket holds the code's top 12 bits).
  static std::size_t bucket_digit(std::size_t kb, int level) {
    return (kb >> (12 - D * (level + 1))) & ((1u << D) - 1);
  }

  // The top of the tree over points [b, e) (a union of whole buckets), from the bucket counts
  // alone: down to ranges of at most `cut` points or within one bucket, which become stubs
  // (leaf == 2, next = stub number) built later as subtrees. The nodes are those build_node
  // would make from the full codes.
  void build_top(std::uint32_t b, std::uint32_t e, int level, std::uint32_t cut) {
    const std::size_t kb = bucket_of(b), ke = bucket_of(e - 1);
    const auto k = static_cast<std::uint32_t>(top.size());
    top.emplace_back();
    top.back().begin = b;
    top.back().end = e;
    if (e - b <= cut || kb == ke) {
      top.back().leaf = 2;
      top.back().next = static_cast<std::uint32_t>(stubs.size());
      stubs.push_back({b, e, level});
      return;
    }
    // kb != ke: they differ at some level above the bucket's last
    while (bucket_digit(kb, level) == bucket_digit(ke, level)) ++level;
    const double w = std::ldexp(side, -level);
    top.back().width2 = w * w;
    top.back().leaf = 0;  // more than cut >= kLeafSize points
    // children: the runs of buckets with one digit at this level, in digit order
    const int sh = 12 - D * (level + 1);
    for (std::size_t c = kb >> sh; c <= (ke >> sh); ++c) {
      const std::size_t cb = std::max(kb, c << sh), ce = std::min(ke + 1, (c + 1) << sh);
      const std::uint32_t pb = bucket_start[cb], pe = bucket_start[ce];
      if (pb < pe) build_top(pb, pe, level + 1, cut);
    }
    top[k].next = static_cast<std::uint32_t>(top.size());
  }

  // Appends the subtree of points [b, e) to out (depth-first, compressed single-child chains).
  void build_node(std::vector<Node<D>>& out, std::uint32_t b, std::uint32_t e, int level) {
    const auto k = static_cast<std::uint32_t>(out.size());
    while (level < B && digit(codes[b], level) == digit(codes[e - 1], level)) ++level;
    out.emplace_back();
    {
      Node<D>& nd = out.back();
      const double w = std::ldexp(side, -level);
      nd.width2 = w * w;
      nd.begin = b;
      nd.end = e;
      nd.leaf = (e - b <= static_cast<std::uint32_t>(kLeafSize) || level >= B) ? 1u : 0u;
    }
    if (!out[k].leaf) {
      std::uint32_t s = b;
      while (s < e) {
        const int dg = digit(codes[s], level);
        std::uint32_t lo = s + 1, hi = e;  // first index with a larger digit
        while (lo < hi) {
          const std::uint32_t mid = lo + (hi - lo) / 2;
          if (digit(codes[mid], level) <= dg)
            lo = mid + 1;
          else
            hi = mid;
        }
        build_node(out, s, lo, level + 1);
        s = lo;
      }
    }
    out[k].next = static_cast<std::uint32_t>(out.size());
  }
};

// Interaction list of one group, structure of arrays, coordinates relative to the group centre.
struct List {
  std::vector<float> x, y, z, m;
  std::size_t size = 0;
  void clear() { size = 0; }
  void reserve_more(std::size_t add) {
    if (size + add > x.size()) {
      const std::size_t cap = std::max<std::size_t>(2 * x.size(), size + add + kLanes);
      x.resize(cap);
      y.resize(cap);
      z.resize(cap);
      m.resize(cap);
    }
  }
  void pad() {
    const std::size_t L = (size + kLanes - 1) / kLanes * kLanes;
    reserve_more(L - size);
    for (std::size_t i = size; i < L; ++i) x[i] = y[i] = z[i] = m[i] = 0.0f;
    size = L;
  }
};

}  // namespace

namespace detail {

// For each of np points (px, py relative to the group centre): sums over the list of
//   m q, m q^2 dx, m q^2 dy   with q = 1 / (1 + |d|^2), d = p - list entry.
// Written to out[3 * i ...]. L is a multiple of kLanes.
CNNVIS_CLONES void repulse2(const float* lx, const float* ly, const float* lm, std::size_t L,
                            const float* px, const float* py, std::size_t np, double* out) {
  for (std::size_t i = 0; i < np; ++i) {
    float az[kLanes] = {}, ax[kLanes] = {}, ay[kLanes] = {};
    const float x = px[i], y = py[i];
    for (std::size_t k = 0; k < L; k += kLanes) {
      for (int l = 0; l < kLanes; ++l) {
        const float dx = x - lx[k + l], dy = y - ly[k + l];
        const float q = 1.0f / (1.0f + dx * dx + dy * dy);
        const float mq = lm[k + l] * q;
        az[l] += mq;
        const float mq2 = mq * q;
        ax[l] += mq2 * dx;
        ay[l] += mq2 * dy;
      }
    }
    double z = 0.0, fx = 0.0, fy = 0.0;
    for (int l = 0; l < kLanes; ++l) {
      z += az[l];
      fx += ax[l];
      fy += ay[l];
    }
    out[3 * i] = z;
    out[3 * i + 1] = fx;
    out[3 * i + 2] = fy;
  }
}

CNNVIS_CLONES void repulse3(const float* lx, const float* ly, const float* lz, const float* lm,
                            std::size_t L, const float* px, const float* py, const float* pz,
                            std::size_t np, double* out) {
  for (std::size_t i = 0; i < np; ++i) {
    float az[kLanes] = {}, ax[kLanes] = {}, ay[kLanes] = {}, azz[kLanes] = {};
    const float x = px[i], y = py[i], zc = pz[i];
    for (std::size_t k = 0; k < L; k += kLanes) {
      for (int l = 0; l < kLanes; ++l) {
        const float dx = x - lx[k + l], dy = y - ly[k + l], dz = zc - lz[k + l];
        const float q = 1.0f / (1.0f + dx * dx + dy * dy + dz * dz);
        const float mq = lm[k + l] * q;
        az[l] += mq;
        const float mq2 = mq * q;
        ax[l] += mq2 * dx;
        ay[l] += mq2 * dy;
        azz[l] += mq2 * dz;
      }
    }
    double z = 0.0, fx = 0.0, fy = 0.0, fz = 0.0;
    for (int l = 0; l < kLanes; ++l) {
      z += az[l];
      fx += ax[l];
      fy += ay[l];
      fz += azz[l];
    }
    out[4 * i] = z;
    out[4 * i + 1] = fx;
    out[4 * i + 2] = fy;
    out[4 * i + 3] = fz;
  }
}

}  // namespace detail

namespace detail {

// Attractive sums a_i = sum_j P_ij q_ij (y_i - y_j) for rows [b, e), four edges per vector; the
// lanes are summed in a fixed order. out holds (e - b) x D values.
// Always inlined, so that each clone below compiles it for its own target.
template <int D>
CNNVIS_INLINE inline void attract(const double* Y, const std::int64_t* indptr, const std::int32_t* cols,
                    const double* vals, std::size_t b, std::size_t e, double* out) {
  for (std::size_t i = b; i < e; ++i) {
    const double* yi = Y + D * i;
    v4d acc[D] = {};
    std::int64_t a = indptr[i];
    const std::int64_t end = indptr[i + 1];
    auto body = [&](const std::size_t* j, const v4d& w) CNNVIS_INLINE {
      v4d d[D];
      v4d den = {1.0, 1.0, 1.0, 1.0};  // 1 + dx dx + dy dy (+ dz dz), summed left to right
      const double *y0 = Y + D * j[0], *y1 = Y + D * j[1], *y2 = Y + D * j[2], *y3 = Y + D * j[3];
      for (int c = 0; c < D; ++c) {
        const v4d yj = {y0[c], y1[c], y2[c], y3[c]};
        d[c] = yi[c] - yj;  // the scalar is broadcast
        den += d[c] * d[c];
      }
      const v4d q = w / den;
      for (int c = 0; c < D; ++c) acc[c] += q * d[c];
    };
    for (; a + 4 <= end; a += 4) {  // full blocks of four edges
      const std::size_t j[4] = {static_cast<std::size_t>(cols[a]),
                                static_cast<std::size_t>(cols[a + 1]),
                                static_cast<std::size_t>(cols[a + 2]),
                                static_cast<std::size_t>(cols[a + 3])};
      v4d w;
      std::memcpy(&w, vals + a, sizeof(v4d));
      body(j, w);
    }
    if (a < end) {  // the last one to three edges; empty lanes have weight 0
      std::size_t j[4];
      double wt[4];
      for (int l = 0; l < 4; ++l) {
        const bool in = a + l < end;
        j[l] = in ? static_cast<std::size_t>(cols[a + l]) : i;
        wt[l] = in ? vals[a + l] : 0.0;
      }
      v4d w;
      std::memcpy(&w, wt, sizeof(v4d));
      body(j, w);
    }
    for (int c = 0; c < D; ++c)
      out[D * (i - b) + static_cast<std::size_t>(c)] = (acc[c][0] + acc[c][1]) + (acc[c][2] + acc[c][3]);
  }
}

// The two instances, each compiled for AVX2 and the baseline.
CNNVIS_CLONES void attract2(const double* Y, const std::int64_t* indptr, const std::int32_t* cols,
                            const double* vals, std::size_t b, std::size_t e, double* out) {
  attract<2>(Y, indptr, cols, vals, b, e, out);
}
CNNVIS_CLONES void attract3(const double* Y, const std::int64_t* indptr, const std::int32_t* cols,
                            const double* vals, std::size_t b, std::size_t e, double* out) {
  attract<3>(Y, indptr, cols, vals, b, e, out);
}

}  // namespace detail

struct Workspace {
  Tree<2> tree2;
  Tree<3> tree3;
  std::vector<List> lists;
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

void WorkspaceDeleter::operator()(Workspace* w) const { delete w; }

namespace {

ThreadPool& pool_of(Workspace& ws, int n_threads) {
  n_threads = std::min(std::max(1, n_threads), available_cores());
  if (!ws.pool || ws.pool->size() != n_threads) ws.pool = std::make_unique<ThreadPool>(n_threads);
  return *ws.pool;
}

}  // namespace
WorkspacePtr make_workspace() { return WorkspacePtr(new Workspace()); }

namespace {

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

template <int D>
double gradient_impl(const SparseP& P, const double* Y, double theta, double exaggeration,
                     int n_threads, double* grad, Workspace& ws) {
  return gradient_then<D>(P, Y, theta, exaggeration, pool_of(ws, n_threads), grad, ws,
                          [](std::size_t, std::size_t) {});
}

}  // namespace

double gradient(const SparseP& P, const double* Y, int dim, double theta, double exaggeration,
                int n_threads, double* grad, Workspace& ws) {
  if (dim == 2) return gradient_impl<2>(P, Y, theta, exaggeration, n_threads, grad, ws);
  if (dim == 3) return gradient_impl<3>(P, Y, theta, exaggeration, n_threads, grad, ws);
  throw InvalidArgument("n_components must be 2 or 3");
}

namespace {

double kl_given_z_on(const SparseP& P, const double* Y, int dim, double Z, ThreadPool& pool) {
  const std::size_t n = P.n;
  const std::size_t D = static_cast<std::size_t>(dim);
  std::vector<double> row(n, 0.0);
  const double logZ = std::log(Z);
  dynamic_blocks(n, 512, pool, [&](std::size_t b, std::size_t e, int) {
    for (std::size_t i = b; i < e; ++i) {
      double s = 0.0;
      for (std::int64_t a = P.indptr[i]; a < P.indptr[i + 1]; ++a) {
        const double pij = P.data[static_cast<std::size_t>(a)];
        if (!(pij > 0.0)) continue;
        const std::size_t j = static_cast<std::size_t>(P.indices[static_cast<std::size_t>(a)]);
        double d2 = 0.0;
        for (std::size_t c = 0; c < D; ++c) {
          const double v = Y[i * D + c] - Y[j * D + c];
          d2 += v * v;
        }
        s += pij * (std::log(pij) + std::log1p(d2) + logZ);
      }
      row[i] = s;
    }
  });
  double kl = 0.0;
  for (double v : row) kl += v;
  return kl;
}

}  // namespace

double kl_given_z(const SparseP& P, const double* Y, int dim, double Z, int n_threads) {
  ThreadPool pool(n_threads);
  return kl_given_z_on(P, Y, dim, Z, pool);
}

double exact_kl(const SparseP& P, const double* Y, int dim, int n_threads) {
  const std::size_t n = P.n;
  const std::size_t D = static_cast<std::size_t>(dim);
  std::vector<double> row(n, 0.0);
  ThreadPool pool(n_threads);
  dynamic_blocks(n, 64, pool, [&](std::size_t b, std::size_t e, int) {
    for (std::size_t i = b; i < e; ++i) {
      double s = 0.0;
      for (std::size_t j = 0; j < n; ++j) {
        if (j == i) continue;
        double d2 = 0.0;
        for (std::size_t c = 0; c < D; ++c) {
          const double v = Y[i * D + c] - Y[j * D + c];
          d2 += v * v;
        }
        s += 1.0 / (1.0 + d2);
      }
      row[i] = s;
    }
  });
  double Z = 0.0;
  for (double v : row) Z += v;
  return kl_given_z_on(P, Y, dim, Z, pool);
}

// ----------------------------------------------------------------------------------------------
// Optimiser
// ----------------------------------------------------------------------------------------------

Optimizer::Optimizer(SparseP P, int dim, const double* Y0, double theta, int n_threads)
    : dim_(dim), theta_(theta), n_threads_(std::min(std::max(1, n_threads), available_cores())), ws_(make_workspace()) {
  if (dim != 2 && dim != 3) throw InvalidArgument("n_components must be 2 or 3");
  const std::size_t n = P.n, D = static_cast<std::size_t>(dim);
  perm_.resize(n);
  if (n >= 2) {
    if (dim == 2) {
      ws_->tree2.build(Y0, n, pool_of(*ws_, n_threads_));
      perm_ = ws_->tree2.order;
    } else {
      ws_->tree3.build(Y0, n, pool_of(*ws_, n_threads_));
      perm_ = ws_->tree3.order;
    }
  } else {
    std::iota(perm_.begin(), perm_.end(), 0u);
  }
  std::vector<std::uint32_t> inv(n);
  for (std::size_t r = 0; r < n; ++r) inv[perm_[r]] = static_cast<std::uint32_t>(r);
  // P relabelled: row r is the caller's row perm_[r], columns renumbered and sorted.
  P_.n = n;
  P_.indptr.assign(n + 1, 0);
  for (std::size_t r = 0; r < n; ++r)
    P_.indptr[r + 1] = P_.indptr[r] + (P.indptr[perm_[r] + 1] - P.indptr[perm_[r]]);
  P_.indices.resize(P.indices.size());
  P_.data.resize(P.data.size());
  parallel_for(pool_of(*ws_, n_threads_), n, n_threads_, [&](std::size_t b, std::size_t e, int) {
    std::vector<std::pair<std::int32_t, double>> row;
    for (std::size_t r = b; r < e; ++r) {
      const std::size_t o = perm_[r];
      row.clear();
      for (std::int64_t a = P.indptr[o]; a < P.indptr[o + 1]; ++a)
        row.emplace_back(static_cast<std::int32_t>(inv[static_cast<std::size_t>(
                             P.indices[static_cast<std::size_t>(a)])]),
                         P.data[static_cast<std::size_t>(a)]);
      std::sort(row.begin(), row.end());
      auto at = static_cast<std::size_t>(P_.indptr[r]);
      for (const auto& [c, v] : row) {
        P_.indices[at] = c;
        P_.data[at++] = v;
      }
    }
  });
  Y_.resize(n * D);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t c = 0; c < D; ++c) Y_[r * D + c] = Y0[perm_[r] * D + c];
  update_.assign(n * D, 0.0);
  gains_.assign(n * D, 1.0);
  grad_.assign(n * D, 0.0);
}

std::vector<double> Optimizer::embedding() const {
  const std::size_t D = static_cast<std::size_t>(dim_);
  std::vector<double> out(Y_.size());
  for (std::size_t r = 0; r < P_.n; ++r)
    for (std::size_t c = 0; c < D; ++c) out[perm_[r] * D + c] = Y_[r * D + c];
  return out;
}

int Optimizer::run(const Schedule& s, const Interrupt& interrupt) {
  const std::size_t n = P_.n;
  const std::size_t D = static_cast<std::size_t>(dim_);
  if (n < 2) return s.n_iter;
  const double* anchor = nullptr;
  if (s.anchor) {
    anchor_.resize(n * D);
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t c = 0; c < D; ++c) anchor_[r * D + c] = s.anchor[perm_[r] * D + c];
    anchor = anchor_.data();
  }
  // Per fixed block of kStepBlock rows (the gradient pass's blocks): sums and box of the new
  // positions, combined in block order, so the mean does not depend on the threads.
  const std::size_t nblk = (n + kStepBlock - 1) / kStepBlock;
  std::vector<double> bsum(nblk * D), bbox(nblk * 2 * D);
  double mean[3] = {0.0, 0.0, 0.0};
  bool pending = false;  // Y_ still to be recentred by mean (done in the next tree build)
  for (int it = 0; it < s.n_iter; ++it) {
    check_interrupt(interrupt);
    const double prox =
        anchor ? s.learning_rate * s.penalty / static_cast<double>(n) : 0.0;
    Ynext_.resize(n * D);
    // One step for rows [b, e): gains, momentum, step clipping, the penalty's proximal step.
    // Reads Y_ and writes Ynext_, so it runs in the gradient's pass (other rows still read Y_).
    auto step = [&](std::size_t b, std::size_t e) {
      double sm[3] = {0.0, 0.0, 0.0};
      double lo[3], hi[3];
      for (std::size_t c = 0; c < D; ++c) {
        lo[c] = std::numeric_limits<double>::infinity();
        hi[c] = -std::numeric_limits<double>::infinity();
      }
      for (std::size_t i = b; i < e; ++i) {
        double norm2 = 0.0;
        for (std::size_t c = 0; c < D; ++c) {
          const std::size_t t = i * D + c;
          const double g = grad_[t];
          double& gain = gains_[t];
          gain = ((g > 0.0) != (update_[t] > 0.0)) ? gain + 0.2 : gain * 0.8;
          if (gain < 0.01) gain = 0.01;
          update_[t] = s.momentum * update_[t] - s.learning_rate * gain * g;
          norm2 += update_[t] * update_[t];
        }
        if (s.max_step_norm > 0.0 && norm2 > s.max_step_norm * s.max_step_norm) {
          const double f = s.max_step_norm / std::sqrt(norm2);
          for (std::size_t c = 0; c < D; ++c) update_[i * D + c] *= f;
        }
        for (std::size_t c = 0; c < D; ++c) {
          double y = Y_[i * D + c] + update_[i * D + c];
          if (prox > 0.0)  // proximal step of the movement penalty: stable for any weight
            y = (y + prox * anchor[i * D + c]) / (1.0 + prox);
          Ynext_[i * D + c] = y;
          sm[c] += y;
          lo[c] = std::min(lo[c], y);
          hi[c] = std::max(hi[c], y);
        }
      }
      const std::size_t k = b / kStepBlock;
      for (std::size_t c = 0; c < D; ++c) {
        bsum[k * D + c] = sm[c];
        bbox[k * 2 * D + c] = lo[c];
        bbox[k * 2 * D + D + c] = hi[c];
      }
    };
    if (pending) {  // recentre Y_ in the tree build's first pass, with the box known
      ws_->prepared = true;
      ws_->Ymut = Y_.data();
      for (std::size_t c = 0; c < D; ++c) ws_->shift[c] = mean[c];
    }
    if (dim_ == 2)
      last_z_ = gradient_then<2>(P_, Y_.data(), theta_, s.exaggeration, pool_of(*ws_, n_threads_),
                                 grad_.data(),
                                 *ws_, step);
    else
      last_z_ = gradient_then<3>(P_, Y_.data(), theta_, s.exaggeration, pool_of(*ws_, n_threads_),
                                 grad_.data(),
                                 *ws_, step);
    Y_.swap(Ynext_);
    double lo[3], hi[3];
    for (std::size_t c = 0; c < D; ++c) {
      mean[c] = 0.0;
      lo[c] = bbox[c];
      hi[c] = bbox[D + c];
    }
    for (std::size_t k = 0; k < nblk; ++k)
      for (std::size_t c = 0; c < D; ++c) {
        mean[c] += bsum[k * D + c];
        lo[c] = std::min(lo[c], bbox[k * 2 * D + c]);
        hi[c] = std::max(hi[c], bbox[k * 2 * D + D + c]);
      }
    // rounding is monotonic, so the box of (y - mean) is (box - mean) exactly
    for (std::size_t c = 0; c < D; ++c) {
      mean[c] /= static_cast<double>(n);
      ws_->box[c] = lo[c] - mean[c];
      ws_->box[D + c] = hi[c] - mean[c];
    }
    pending = true;
  }
  if (pending)
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t c = 0; c < D; ++c) Y_[i * D + c] -= mean[c];
  return s.n_iter;
}

double Optimizer::kl_divergence() {
  if (P_.n < 2) return 0.0;
  const double Z =
      gradient(P_, Y_.data(), dim_, theta_, 1.0, n_threads_, grad_.data(), *ws_);
  return kl_given_z_on(P_, Y_.data(), dim_, Z, pool_of(*ws_, n_threads_));
}

// ----------------------------------------------------------------------------------------------
// Placing new points
// ----------------------------------------------------------------------------------------------

namespace {

template <int D>
void transform_impl(const double* Yref, std::size_t n, const std::int32_t* idx, const double* p,
                    std::size_t m, int k, double* Ynew, int n_iter, double lr, double theta,
                    int n_threads, const Interrupt& interrupt) {
  ThreadPool pool(n_threads);  // started once for all iterations
  Tree<D> tree;
  tree.build(Yref, n, pool);
  const auto& nodes = tree.nodes;
  const std::uint32_t nn = static_cast<std::uint32_t>(nodes.size());
  const double theta2 = theta * theta;
  const std::size_t K = static_cast<std::size_t>(k);
  std::vector<double> upd(m * D, 0.0), gains(m * D, 1.0);
  for (int it = 0; it < n_iter; ++it) {
    check_interrupt(interrupt);
    const double momentum = it < 50 ? 0.5 : 0.8;
    dynamic_blocks(m, 16, pool, [&](std::size_t b, std::size_t e, int) {
      for (std::size_t i = b; i < e; ++i) {
        double* y = Ynew + i * D;
        double z = 0.0, fr[D] = {}, fa[D] = {};
        for (std::uint32_t kk = 0; kk < nn;) {
          const Node<D>& nd = nodes[kk];
          double dd[D], d2 = 0.0;
          for (int a = 0; a < D; ++a) {
            dd[a] = y[a] - nd.c[a];
            d2 += dd[a] * dd[a];
          }
          if (nd.width2 < theta2 * d2 || nd.leaf) {
            if (nd.width2 < theta2 * d2) {
              const double q = 1.0 / (1.0 + d2);
              z += nd.mass * q;
              for (int a = 0; a < D; ++a) fr[a] += nd.mass * q * q * dd[a];
            } else {
              for (std::uint32_t s = nd.begin; s < nd.end; ++s) {
                double e2 = 0.0, de[D];
                for (int a = 0; a < D; ++a) {
                  de[a] = y[a] - tree.pos[s * D + a];
                  e2 += de[a] * de[a];
                }
                const double q = 1.0 / (1.0 + e2);
                z += q;
                for (int a = 0; a < D; ++a) fr[a] += q * q * de[a];
              }
            }
            kk = nd.next;
            continue;
          }
          ++kk;
        }
        for (std::size_t a2 = 0; a2 < K; ++a2) {
          const double* yj = Yref + static_cast<std::size_t>(idx[i * K + a2]) * D;
          double dd[D], d2 = 0.0;
          for (int a = 0; a < D; ++a) {
            dd[a] = y[a] - yj[a];
            d2 += dd[a] * dd[a];
          }
          const double w = p[i * K + a2] / (1.0 + d2);
          for (int a = 0; a < D; ++a) fa[a] += w * dd[a];
        }
        double norm2 = 0.0;
        for (int a = 0; a < D; ++a) {
          const std::size_t t = i * D + static_cast<std::size_t>(a);
          const double g = fa[a] - (z > 0.0 ? fr[a] / z : 0.0);
          gains[t] = ((g > 0.0) != (upd[t] > 0.0)) ? gains[t] + 0.2 : std::max(0.01, gains[t] * 0.8);
          upd[t] = momentum * upd[t] - lr * gains[t] * g;
          norm2 += upd[t] * upd[t];
        }
        if (norm2 > 1.0) {
          const double f = 1.0 / std::sqrt(norm2);
          for (int a = 0; a < D; ++a) upd[i * D + static_cast<std::size_t>(a)] *= f;
        }
        for (int a = 0; a < D; ++a) y[a] += upd[i * D + static_cast<std::size_t>(a)];
      }
    });
  }
}

}  // namespace

void transform(const double* Yref, std::size_t n, int dim, const std::int32_t* idx,
               const double* p, std::size_t m, int k, double* Ynew, int n_iter,
               double learning_rate, double theta, int n_threads, const Interrupt& interrupt) {
  if (n == 0 || m == 0) return;
  if (dim == 2)
    transform_impl<2>(Yref, n, idx, p, m, k, Ynew, n_iter, learning_rate, theta, n_threads,
                      interrupt);
  else if (dim == 3)
    transform_impl<3>(Yref, n, idx, p, m, k, Ynew, n_iter, learning_rate, theta, n_threads,
                      interrupt);
  else
    throw InvalidArgument("n_components must be 2 or 3");
}

}  // namespace cnnvis::tsne
