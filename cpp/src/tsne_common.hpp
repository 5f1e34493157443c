// Internals shared by the parts of the Barnes-Hut t-SNE: cnnvis/tsne.hpp is the contract,
// the parts are tsne_knn.cpp (exact neighbours), tsne_affinities.cpp (P), tsne_tree.hpp (the
// Morton tree and interaction lists), tsne_gradient.hpp/.cpp (the gradient and KL) and
// tsne_optimizer.cpp (gradient descent, placing new points).
//
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
#pragma once

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

// Four doubles in one vector register. GCC and Clang have vector extensions; elsewhere (MSVC) a
// struct with the same element-wise operations gives the same bits (IEEE, no contraction).
#if CNNVIS_GNU
typedef double v4d __attribute__((vector_size(32)));
#else
struct v4d {
  double v[4];
  double& operator[](int i) { return v[i]; }
  double operator[](int i) const { return v[i]; }
};
inline v4d operator+(v4d a, const v4d& b) {
  for (int i = 0; i < 4; ++i) a.v[i] += b.v[i];
  return a;
}
inline v4d operator*(v4d a, const v4d& b) {
  for (int i = 0; i < 4; ++i) a.v[i] *= b.v[i];
  return a;
}
inline v4d operator/(v4d a, const v4d& b) {
  for (int i = 0; i < 4; ++i) a.v[i] /= b.v[i];
  return a;
}
inline v4d operator-(double s, const v4d& b) {  // the scalar is broadcast, as GCC does
  v4d r;
  for (int i = 0; i < 4; ++i) r.v[i] = s - b.v[i];
  return r;
}
inline v4d& operator+=(v4d& a, const v4d& b) { return a = a + b; }
#endif

// Relaxed atomic increment of a plain integer (GCC/Clang builtins; Interlocked on MSVC).
inline std::int64_t fetch_add_relaxed(std::int64_t* p, std::int64_t v) {
#if CNNVIS_GNU
  return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
#elif defined(_MSC_VER)
  return _InterlockedExchangeAdd64(reinterpret_cast<volatile long long*>(p), v);
#else
  return reinterpret_cast<std::atomic<std::int64_t>*>(p)->fetch_add(v, std::memory_order_relaxed);
#endif
}

namespace internal {


constexpr int kLeafSize = 8;     // points per tree leaf at most (unless all in one finest cell)
// Points sharing one tree walk at most (same exception). The walk, not the vector kernel, was
// the larger cost at 32; 128 takes 25-45% off an iteration from 5,000 to 250,000 points (the
// lists grow less than the walks shrink; benchmarks/README.md).
constexpr int kGroupSize = 128;
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


}  // namespace internal

}  // namespace cnnvis::tsne
