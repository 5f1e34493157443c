// Approximate k nearest neighbours: random-projection forest, then NN-descent (cnnvis/knn.hpp).
#include "cnnvis/knn.hpp"

#include "tsne_common.hpp"

namespace cnnvis::knn {

namespace {

using tsne::internal::dynamic_for;

// splitmix64's finaliser: a well-mixed 64-bit hash, the source of every random choice here.
inline std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
inline std::uint64_t hash3(std::uint64_t seed, std::uint64_t a, std::uint64_t b) {
  return mix(seed ^ mix(a ^ mix(b)));
}

// Squared distance in single precision with eight independent sums (vectorised by the
// compiler; the same bits on any target since nothing is reassociated). The search runs on a
// float copy of the data: half the memory traffic, twice the lanes; the result's distances are
// recomputed in double.
CNNVIS_INLINE inline float sqdist(const float* a, const float* b, std::size_t d) {
  float s[8] = {};
  std::size_t t = 0;
  for (; t + 8 <= d; t += 8)
    for (int l = 0; l < 8; ++l) {
      const float e = a[t + l] - b[t + l];
      s[l] += e * e;
    }
  for (; t < d; ++t) {
    const float e = a[t] - b[t];
    s[0] += e * e;
  }
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

inline double sqdist_exact(const double* a, const double* b, std::size_t d) {
  double s = 0.0;
  for (std::size_t t = 0; t < d; ++t) {
    const double e = a[t] - b[t];
    s += e * e;
  }
  return s;
}

// X in single precision, scaled by a power of two (exact, order-preserving) so that the largest
// magnitude is about 1: no overflow of huge inputs' squares in float.
std::vector<float> to_float(const double* X, std::size_t n, std::size_t d) {
  double big = 0.0;
  for (std::size_t i = 0; i < n * d; ++i) big = std::max(big, std::fabs(X[i]));
  int e = 0;
  if (big > 0.0) std::frexp(big, &e);
  std::vector<float> out(n * d);
  for (std::size_t i = 0; i < n * d; ++i) out[i] = static_cast<float>(std::ldexp(X[i], -e));
  return out;
}

inline bool before(float da, std::int32_t ja, float db, std::int32_t jb) {
  return da < db || (da == db && ja < jb);
}

// Every point's neighbour list: a max-heap on (distance, index) of at most k entries, each with
// a flag "new" (not yet used as a candidate in an NN-descent round). Distances are kept in
// single precision for the selection; the result's are recomputed in double.
struct Lists {
  std::size_t k;
  std::vector<float> dist;
  std::vector<std::int32_t> id;
  std::vector<std::uint8_t> fresh;
  std::vector<std::int32_t> fill;
  Lists(std::size_t n, std::size_t k_) : k(k_), dist(n * k_), id(n * k_), fresh(n * k_), fill(n) {}

  void sift_down(std::size_t u) {
    float* d = &dist[u * k];
    std::int32_t* j = &id[u * k];
    std::uint8_t* f = &fresh[u * k];
    const float dv = d[0];
    const std::int32_t jv = j[0];
    const std::uint8_t fv = f[0];
    std::size_t i = 0;
    for (;;) {
      std::size_t c = 2 * i + 1;
      if (c >= k) break;
      if (c + 1 < k && before(d[c], j[c], d[c + 1], j[c + 1])) ++c;
      if (!before(dv, jv, d[c], j[c])) break;
      d[i] = d[c], j[i] = j[c], f[i] = f[c];
      i = c;
    }
    d[i] = dv, j[i] = jv, f[i] = fv;
  }

  void sift_up(std::size_t u, std::size_t i) {
    float* d = &dist[u * k];
    std::int32_t* j = &id[u * k];
    std::uint8_t* f = &fresh[u * k];
    while (i > 0) {
      const std::size_t p = (i - 1) / 2;
      if (!before(d[p], j[p], d[i], j[i])) break;
      std::swap(d[p], d[i]), std::swap(j[p], j[i]), std::swap(f[p], f[i]);
      i = p;
    }
  }

  // Offers w at distance dw to u's list; true if it entered. Without `known_new`, the list is
  // first searched for w (the forest meets a pair in several trees).
  bool offer(std::size_t u, std::int32_t w, float dw, bool known_new) {
    const std::size_t f = static_cast<std::size_t>(fill[u]);
    const std::size_t base = u * k;
    if (f == k && !before(dw, w, dist[base], id[base])) return false;
    if (!known_new)
      for (std::size_t a = 0; a < f; ++a)
        if (id[base + a] == w) return false;
    if (f < k) {
      dist[base + f] = dw, id[base + f] = w, fresh[base + f] = 1;
      ++fill[u];
      sift_up(u, f);
    } else {
      dist[base] = dw, id[base] = w, fresh[base] = 1;
      sift_down(u);
    }
    return true;
  }
};

// Runs fn(item, thread) over [0, n_items) on the pool; the calling thread asks `interrupt`
// every `every` items it takes, and a stop makes the other threads skip what is left.
template <class Fn>
void guarded_for(ThreadPool& pool, std::size_t n_items, std::size_t every,
                 const Interrupt& interrupt, Fn&& fn) {
  std::atomic<bool> stop{false};
  std::size_t taken = 0;  // by thread 0 only
  dynamic_for(pool, n_items, [&](std::size_t item, int tid) {
    if (stop.load(std::memory_order_relaxed)) return;
    if (tid == 0 && interrupt && taken++ % every == 0) {
      try {
        interrupt();
      } catch (...) {
        stop = true;
        throw;
      }
    }
    fn(item, tid);
  });
}

// ---------------------------------------------------------------------------------------------
// The forest
// ---------------------------------------------------------------------------------------------

struct Tree {
  std::vector<std::int32_t> order;         // the points, leaf after leaf
  std::vector<std::size_t> leaf_bounds;    // begin, end of each leaf in order
};

// Splits [lo, hi) of t.order by the hyperplane halfway between two random points of it; returns
// the size of the lower side. Points on the plane (and every point when the two coincide) take
// a random side; a split that leaves a side empty becomes an arbitrary halving.
std::size_t split(const float* X, std::size_t d, std::int32_t* o, std::size_t m,
                  std::uint64_t& state, std::vector<double>& normal, std::vector<std::int32_t>& tmp) {
  const std::size_t ia = mix(state++) % m;
  std::size_t ib = mix(state++) % (m - 1);
  if (ib >= ia) ++ib;
  const float* a = X + static_cast<std::size_t>(o[ia]) * d;
  const float* b = X + static_cast<std::size_t>(o[ib]) * d;
  double offset = 0.0;
  for (std::size_t t = 0; t < d; ++t) {
    normal[t] = static_cast<double>(a[t]) - b[t];
    offset += normal[t] * (0.5 * (static_cast<double>(a[t]) + b[t]));
  }
  tmp.clear();
  std::size_t low = 0;
  for (std::size_t i = 0; i < m; ++i) {
    const float* x = X + static_cast<std::size_t>(o[i]) * d;
    double s = -offset;
    for (std::size_t t = 0; t < d; ++t) s += normal[t] * x[t];
    const bool high = s > 0.0 || (s == 0.0 && (mix(state++) & 1u));
    if (high)
      tmp.push_back(o[i]);
    else
      o[low++] = o[i];
  }
  std::copy(tmp.begin(), tmp.end(), o + low);
  return (low == 0 || low == m) ? m / 2 : low;
}

Tree build_tree(const float* X, std::size_t n, std::size_t d, std::size_t leaf_size,
                std::uint64_t seed) {
  Tree t;
  t.order.resize(n);
  std::iota(t.order.begin(), t.order.end(), 0);
  std::vector<double> normal(d);
  std::vector<std::int32_t> tmp;
  std::vector<std::pair<std::size_t, std::size_t>> stack{{0, n}};
  std::uint64_t state = seed;
  while (!stack.empty()) {
    const auto [lo, hi] = stack.back();
    stack.pop_back();
    if (hi - lo <= leaf_size) {
      t.leaf_bounds.push_back(lo);
      t.leaf_bounds.push_back(hi);
      continue;
    }
    const std::size_t mid = lo + split(X, d, t.order.data() + lo, hi - lo, state, normal, tmp);
    stack.emplace_back(mid, hi);
    stack.emplace_back(lo, mid);
  }
  return t;
}

// Every pair of points in one leaf, offered both ways.
CNNVIS_CLONES void join_leaf(const float* X, std::size_t d, const std::int32_t* pts,
                             std::size_t m, Lists& L) {
  for (std::size_t a = 0; a < m; ++a) {
    const float* xa = X + static_cast<std::size_t>(pts[a]) * d;
    for (std::size_t b = a + 1; b < m; ++b) {
      const float dist = sqdist(xa, X + static_cast<std::size_t>(pts[b]) * d, d);
      L.offer(static_cast<std::size_t>(pts[a]), pts[b], dist, false);
      L.offer(static_cast<std::size_t>(pts[b]), pts[a], dist, false);
    }
  }
}

std::vector<Tree> build_forest(const float* X, std::size_t n, std::size_t d, std::size_t n_trees,
                               std::size_t leaf_size, std::uint64_t seed, ThreadPool& pool,
                               const Interrupt& interrupt) {
  std::vector<Tree> trees(n_trees);
  guarded_for(pool, n_trees, 1, interrupt, [&](std::size_t t, int) {
    trees[t] = build_tree(X, n, d, leaf_size, hash3(seed, 0x7eee, t));
  });
  return trees;
}

// The forest's candidates, tree after tree (each tree's leaves in parallel: a point is in one
// leaf per tree, so no two threads touch one list), then random ones for short lists.
void forest_start(const float* X, std::size_t n, std::size_t d, const std::vector<Tree>& trees,
                  std::uint64_t seed, ThreadPool& pool, const Interrupt& interrupt, Lists& L) {
  for (const Tree& t : trees) {
    const std::size_t n_leaves = t.leaf_bounds.size() / 2;
    guarded_for(pool, n_leaves, 256, interrupt, [&](std::size_t leaf, int) {
      const std::size_t lo = t.leaf_bounds[2 * leaf], hi = t.leaf_bounds[2 * leaf + 1];
      join_leaf(X, d, t.order.data() + lo, hi - lo, L);
    });
  }
  guarded_for(pool, (n + 1023) / 1024, 16, interrupt, [&](std::size_t blk, int) {
    for (std::size_t u = blk * 1024; u < std::min(n, (blk + 1) * 1024); ++u)
      for (std::uint64_t a = 0; static_cast<std::size_t>(L.fill[u]) < L.k; ++a) {
        const auto w = static_cast<std::int32_t>(hash3(seed, u, a) % n);
        if (static_cast<std::size_t>(w) == u) continue;
        L.offer(u, w, sqdist(X + u * d, X + static_cast<std::size_t>(w) * d, d), false);
      }
  });
}

// Renumbers the points in the order of the first tree's leaves, so that points compared with
// each other are mostly close in memory (the data outgrow the cache from about 10^5 points):
// returns the permuted data and perm (perm[internal] = original); the trees are renumbered.
std::vector<float> renumber(const float* X, std::size_t n, std::size_t d, std::vector<Tree>& trees,
                            std::vector<std::int32_t>& perm) {
  perm = trees[0].order;
  std::vector<std::int32_t> inv(n);
  for (std::size_t i = 0; i < n; ++i) inv[static_cast<std::size_t>(perm[i])] = static_cast<std::int32_t>(i);
  std::vector<float> Xp(n * d);
  for (std::size_t i = 0; i < n; ++i)
    std::copy_n(X + static_cast<std::size_t>(perm[i]) * d, d, Xp.data() + i * d);
  for (Tree& t : trees)
    for (auto& o : t.order) o = inv[static_cast<std::size_t>(o)];
  return Xp;
}

// ---------------------------------------------------------------------------------------------
// NN-descent
// ---------------------------------------------------------------------------------------------

// n rows of at most R point indices each.
struct Table {
  std::size_t R;
  std::vector<std::int32_t> v;
  std::vector<std::int32_t> count;
  Table(std::size_t n, std::size_t R_) : R(R_), v(n * R_), count(n) {}
  const std::int32_t* row(std::size_t u) const { return &v[u * R]; }
  std::size_t size(std::size_t u) const { return static_cast<std::size_t>(count[u]); }
};

// Keeps the R candidates of smallest priority hash3(salt, owner, candidate) (a seeded sample).
void keep_sample(std::vector<std::pair<std::uint64_t, std::int32_t>>& c, std::size_t R) {
  if (c.size() > R) {
    std::nth_element(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(R), c.end());
    c.resize(R);
  }
}

// Step 1 of a round: each point's sample of new and of old neighbours; the sampled new ones
// become old.
void sample_lists(Lists& L, std::uint64_t salt, ThreadPool& pool, Table& nw, Table& old) {
  const std::size_t n = L.fill.size(), k = L.k;
  dynamic_for(pool, (n + 1023) / 1024, [&](std::size_t blk, int) {
    std::vector<std::pair<std::uint64_t, std::int32_t>> cn, co;  // (priority, slot)
    for (std::size_t u = blk * 1024; u < std::min(n, (blk + 1) * 1024); ++u) {
      cn.clear(), co.clear();
      for (std::size_t a = 0; a < k; ++a) {
        const std::int32_t j = L.id[u * k + a];
        (L.fresh[u * k + a] ? cn : co).emplace_back(hash3(salt, u, static_cast<std::uint64_t>(j)),
                                                    static_cast<std::int32_t>(a));
      }
      keep_sample(cn, nw.R);
      keep_sample(co, old.R);
      std::sort(cn.begin(), cn.end());
      std::sort(co.begin(), co.end());
      nw.count[u] = static_cast<std::int32_t>(cn.size());
      old.count[u] = static_cast<std::int32_t>(co.size());
      for (std::size_t a = 0; a < cn.size(); ++a) {
        nw.v[u * nw.R + a] = L.id[u * k + static_cast<std::size_t>(cn[a].second)];
        L.fresh[u * k + static_cast<std::size_t>(cn[a].second)] = 0;
      }
      for (std::size_t a = 0; a < co.size(); ++a)
        old.v[u * old.R + a] = L.id[u * k + static_cast<std::size_t>(co[a].second)];
    }
  });
}

// Step 2: the reverse table (u lists v  =>  v's reverse row holds u), a seeded sample of R.
void reverse_table(const Table& fwd, std::uint64_t salt, ThreadPool& pool,
                   std::vector<std::int64_t>& start, std::vector<std::int32_t>& src, Table& rev) {
  const std::size_t n = fwd.count.size();
  std::fill(start.begin(), start.end(), 0);
  for (std::size_t u = 0; u < n; ++u)
    for (std::size_t a = 0; a < fwd.size(u); ++a) ++start[static_cast<std::size_t>(fwd.row(u)[a]) + 1];
  for (std::size_t v = 0; v < n; ++v) start[v + 1] += start[v];
  src.resize(static_cast<std::size_t>(start[n]));
  for (std::size_t u = 0; u < n; ++u)
    for (std::size_t a = 0; a < fwd.size(u); ++a) {
      auto& at = start[static_cast<std::size_t>(fwd.row(u)[a])];
      src[static_cast<std::size_t>(at++)] = static_cast<std::int32_t>(u);
    }
  for (std::size_t v = n; v > 0; --v) start[v] = start[v - 1];  // undo the shift of the fill
  start[0] = 0;
  dynamic_for(pool, (n + 1023) / 1024, [&](std::size_t blk, int) {
    std::vector<std::pair<std::uint64_t, std::int32_t>> c;
    for (std::size_t v = blk * 1024; v < std::min(n, (blk + 1) * 1024); ++v) {
      c.clear();
      for (auto s = start[v]; s < start[v + 1]; ++s) {
        const std::int32_t u = src[static_cast<std::size_t>(s)];
        c.emplace_back(hash3(salt, v, static_cast<std::uint64_t>(u)), u);
      }
      keep_sample(c, rev.R);
      std::sort(c.begin(), c.end());
      rev.count[v] = static_cast<std::int32_t>(c.size());
      for (std::size_t a = 0; a < c.size(); ++a) rev.v[v * rev.R + a] = c[a].second;
    }
  });
}

struct Candidates {
  Table new_fwd, new_rev, old_fwd, old_rev;
  Candidates(std::size_t n, std::size_t R)
      : new_fwd(n, R), new_rev(n, R), old_fwd(n, R), old_rev(n, R) {}
};

// Step 3 for one point u: compares u with its new candidates, their candidates, and the new
// candidates of its old ones (the "local join" seen from u). Only u's list changes. stamp marks
// the points already compared with u (epoch u + 1). Returns how many entered u's list.
CNNVIS_CLONES std::size_t join_point(const float* X, std::size_t d, std::size_t u,
                                     const Candidates& C, Lists& L, std::uint32_t* stamp) {
  const auto epoch = static_cast<std::uint32_t>(u + 1);
  const std::size_t k = L.k;
  stamp[u] = epoch;
  for (std::size_t a = 0; a < k; ++a) stamp[L.id[u * k + a]] = epoch;
  const float* xu = X + u * d;
  std::size_t entered = 0;
  const auto consider = [&](std::int32_t w) {
    if (stamp[w] == epoch) return;
    stamp[w] = epoch;
    entered += L.offer(u, w, sqdist(xu, X + static_cast<std::size_t>(w) * d, d), true);
  };
  const auto each = [](const Table& t, std::size_t v, const auto& fn) {
    for (std::size_t a = 0; a < t.size(v); ++a) fn(t.row(v)[a]);
  };
  const auto from_new = [&](std::int32_t v) {
    const auto sv = static_cast<std::size_t>(v);
    consider(v);
    each(C.new_fwd, sv, consider);
    each(C.new_rev, sv, consider);
    each(C.old_fwd, sv, consider);
    each(C.old_rev, sv, consider);
  };
  const auto from_old = [&](std::int32_t v) {
    each(C.new_fwd, static_cast<std::size_t>(v), consider);
    each(C.new_rev, static_cast<std::size_t>(v), consider);
  };
  each(C.new_fwd, u, from_new);
  each(C.new_rev, u, from_new);
  each(C.old_fwd, u, from_old);
  each(C.old_rev, u, from_old);
  return entered;
}

void nn_descent(const float* X, std::size_t n, std::size_t d, const ApproxParams& prm,
                std::size_t R, ThreadPool& pool, const Interrupt& interrupt, Lists& L) {
  Candidates C(n, R);
  std::vector<std::int64_t> start(n + 1);
  std::vector<std::int32_t> src;
  std::vector<std::vector<std::uint32_t>> stamps(static_cast<std::size_t>(pool.size()));
  constexpr std::size_t kBlock = 256;
  for (int round = 0; round < prm.max_iter; ++round) {
    check_interrupt(interrupt);
    const std::uint64_t salt = hash3(prm.seed, 0xde5ce17, static_cast<std::uint64_t>(round));
    sample_lists(L, salt, pool, C.new_fwd, C.old_fwd);
    reverse_table(C.new_fwd, salt + 1, pool, start, src, C.new_rev);
    reverse_table(C.old_fwd, salt + 2, pool, start, src, C.old_rev);
    for (auto& s : stamps) s.assign(n, 0u);
    const std::size_t nb = (n + kBlock - 1) / kBlock;
    std::vector<std::size_t> entered(nb, 0);
    guarded_for(pool, nb, 8, interrupt, [&](std::size_t b, int tid) {
      std::uint32_t* stamp = stamps[static_cast<std::size_t>(tid)].data();
      for (std::size_t u = b * kBlock; u < std::min(n, (b + 1) * kBlock); ++u)
        entered[b] += join_point(X, d, u, C, L, stamp);
    });
    const std::size_t changed = std::accumulate(entered.begin(), entered.end(), std::size_t{0});
    if (static_cast<double>(changed) <= prm.delta * static_cast<double>(n) * static_cast<double>(L.k))
      break;
  }
}

}  // namespace

void knn_approx(const double* X, std::size_t n, std::size_t d, int k, const ApproxParams& params,
                int n_threads, std::int32_t* idx, double* d2, const Interrupt& interrupt) {
  if (k < 1 || n < 2 || static_cast<std::size_t>(k) > n - 1)
    throw InvalidArgument("knn: k must be in [1, " + std::to_string(n < 2 ? 0 : n - 1) +
                          "], got " + std::to_string(k));
  if (d == 0) throw InvalidArgument("knn: the data must have at least one column");
  const auto K = static_cast<std::size_t>(k);
  // Few points, or a k near n: the exact search is as fast, and exact.
  if (n < params.exact_below || 4 * K >= n) {
    tsne::knn_exact(X, n, d, nullptr, 0, k, n_threads, idx, d2, interrupt);
    return;
  }
  ApproxParams prm = params;
  // Defaults measured on 64-D Gaussian clusters (hard: high intrinsic dimension), see
  // benchmarks/README.md: 16 trees of leaves of 2k points reach recall ~0.8 at 20,000 points,
  // three NN-descent rounds with 20 candidates bring it to 0.997 at 20,000 and 40,000 points.
  if (prm.n_trees <= 0) prm.n_trees = 16;
  const std::size_t leaf_size = prm.leaf_size > 0 ? static_cast<std::size_t>(prm.leaf_size)
                                                  : std::max<std::size_t>(2 * K, 64);
  const std::size_t R = prm.max_candidates > 0 ? static_cast<std::size_t>(prm.max_candidates)
                                               : std::min<std::size_t>(K, 20);
  ThreadPool pool(n_threads);
  Lists L(n, K);
  std::vector<std::int32_t> perm;
  {
    std::vector<Tree> trees;
    std::vector<float> Xp;
    {
      const std::vector<float> Xf = to_float(X, n, d);
      trees = build_forest(Xf.data(), n, d, static_cast<std::size_t>(prm.n_trees),
                           std::max<std::size_t>(leaf_size, 2), prm.seed, pool, interrupt);
      Xp = renumber(Xf.data(), n, d, trees, perm);
    }
    forest_start(Xp.data(), n, d, trees, prm.seed, pool, interrupt, L);
    trees.clear();
    trees.shrink_to_fit();
    nn_descent(Xp.data(), n, d, prm, R, pool, interrupt, L);
  }
  // Exact double distances of the chosen neighbours, in the caller's numbering, each row sorted
  // by (distance, index).
  guarded_for(pool, (n + 1023) / 1024, 16, interrupt, [&](std::size_t blk, int) {
    std::vector<std::pair<double, std::int32_t>> row(K);
    for (std::size_t u = blk * 1024; u < std::min(n, (blk + 1) * 1024); ++u) {
      const auto orig = static_cast<std::size_t>(perm[u]);
      for (std::size_t a = 0; a < K; ++a) {
        const std::int32_t j = perm[static_cast<std::size_t>(L.id[u * K + a])];
        row[a] = {sqdist_exact(X + orig * d, X + static_cast<std::size_t>(j) * d, d), j};
      }
      std::sort(row.begin(), row.end());
      for (std::size_t a = 0; a < K; ++a) idx[orig * K + a] = row[a].second, d2[orig * K + a] = row[a].first;
    }
  });
}

}  // namespace cnnvis::knn
