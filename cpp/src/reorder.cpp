#include "cnnvis/reorder.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <numeric>
#include <random>
#include <string>

#if defined(__SSE__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

namespace cnnvis::reorder {

namespace {

constexpr float kInfF = std::numeric_limits<float>::infinity();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr std::size_t kHeldKarpMaxN = 40;  // 2^n subsets must index a size_t table

// Rows of the Held-Karp table are padded to a multiple of 4 floats so the inner minimum runs in
// four independent lanes (vectorisable without reassociation, hence bit-identical results).
std::size_t hk_stride(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

// Distances whose sums stay finite and whose float32 copies stay distinct. Sums of n distances
// near the largest double overflow to inf, and the exact solver's float32 table overflows from
// about 3e38 / n and flushes distances below about 1e-38 to 0; inf sums make every comparison of
// the searches a tie and the paths they recover incomplete. Outside a safe range the matrix is
// scaled by a power of two, which is exact: the order found is the one of the true distances
// (but for distances below about 1e-270 of the largest, which round towards 0). Inside it,
// dist is used as it is, bit for bit.
struct Tamed {
  const double* dist;
  double unscale = 1.0;  // multiply a length in scaled units by this to get the true one
  std::vector<double> copy;
  Tamed(const double* d, std::size_t n) : dist(d) {
    double dmax = 0;
    for (std::size_t k = 0; k < n * n; ++k) dmax = std::max(dmax, d[k]);
    const double high = std::numeric_limits<float>::max() / 4 / static_cast<double>(n + 8);
    const double low = 0x1p-64;
    if (!(dmax > high) && !(dmax > 0 && dmax < low)) return;
    const int shift = std::ilogb(dmax) - (dmax > high ? std::ilogb(high) - 1 : 0);
    copy.resize(n * n);
    for (std::size_t k = 0; k < n * n; ++k) copy[k] = std::ldexp(d[k], -shift);
    dist = copy.data();
    unscale = std::ldexp(1.0, shift);
  }
};

int popcount(std::uint64_t x) {
  int c = 0;
  while (x) {
    x &= x - 1;
    ++c;
  }
  return c;
}

// min over i of row[i] + dj[i]; row holds +inf outside the subset and in the padding. The
// minimum of the same set of sums is the same in any lane order, so SIMD and scalar agree bit
// for bit (path recovery compares row[i] + dj[i] against it exactly).
#if defined(__SSE__) || defined(_M_X64)
inline float hk_cell(const float* row, const float* dj, std::size_t stride) {
  __m128 acc = _mm_set1_ps(kInfF);
  for (std::size_t i = 0; i < stride; i += 4)
    acc = _mm_min_ps(acc, _mm_add_ps(_mm_loadu_ps(row + i), _mm_loadu_ps(dj + i)));
  alignas(16) float lane[4];
  _mm_store_ps(lane, acc);
  return std::min(std::min(lane[0], lane[1]), std::min(lane[2], lane[3]));
}
#else
inline float hk_cell(const float* row, const float* dj, std::size_t stride) {
  float a0 = kInfF, a1 = kInfF, a2 = kInfF, a3 = kInfF;
  for (std::size_t i = 0; i < stride; i += 4) {
    a0 = std::min(a0, row[i] + dj[i]);
    a1 = std::min(a1, row[i + 1] + dj[i + 1]);
    a2 = std::min(a2, row[i + 2] + dj[i + 2]);
    a3 = std::min(a3, row[i + 3] + dj[i + 3]);
  }
  return std::min(std::min(a0, a1), std::min(a2, a3));
}
#endif

inline void hk_subset(float* dp, const float* D, std::size_t n, std::size_t stride,
                      std::uint64_t S) {
  float* out = dp + S * stride;
  for (std::size_t j = 0; j < n; ++j) {
    if (!((S >> j) & 1u)) continue;
    const std::uint64_t Sp = S ^ (std::uint64_t{1} << j);
    out[j] = hk_cell(dp + Sp * stride, D + j * stride, stride);
  }
}

// Exact open path over a float32 distance table D (stride x stride, padding unused).
std::vector<std::int64_t> hk_solve(const float* D, std::size_t n, int n_threads,
                                   const Interrupt& interrupt) {
  std::vector<std::int64_t> order;
  if (n == 0) return order;
  if (n == 1) return {0};
  const std::size_t stride = hk_stride(n);
  const std::uint64_t n_sets = std::uint64_t{1} << n;
  std::vector<float> dp(static_cast<std::size_t>(n_sets) * stride, kInfF);
  for (std::size_t j = 0; j < n; ++j) dp[(std::uint64_t{1} << j) * stride + j] = 0.0f;

  const int threads = std::max(1, n_threads);
  if (threads == 1 || n < 12) {
    // Increasing S: every proper subset is done before S.
    const std::uint64_t check_every = std::uint64_t{1} << 14;
    for (std::uint64_t S = 3; S < n_sets; ++S) {
      if ((S & (check_every - 1)) == 0) check_interrupt(interrupt);
      if ((S & (S - 1)) == 0) continue;  // singletons are set
      hk_subset(dp.data(), D, n, stride, S);
    }
  } else {
    // Layer by subset size; blocks of masks dealt round-robin to threads for balance.
    constexpr int kBlockBits = 10;
    const std::uint64_t n_blocks = n_sets >> kBlockBits;
    for (std::size_t k = 2; k <= n; ++k) {
      check_interrupt(interrupt);
      parallel_for(static_cast<std::size_t>(threads), threads,
                   [&](std::size_t b, std::size_t e, int) {
                     for (std::size_t t = b; t < e; ++t)
                       for (std::uint64_t blk = t; blk < n_blocks; blk += threads) {
                         const std::uint64_t lo = blk << kBlockBits, hi = lo + (1u << kBlockBits);
                         for (std::uint64_t S = lo; S < hi; ++S)
                           if (popcount(S) == static_cast<int>(k))
                             hk_subset(dp.data(), D, n, stride, S);
                       }
                   });
    }
  }

  // Recover the path by recomputing each argmin (same float operations, so equality is exact).
  const std::uint64_t full = n_sets - 1;
  std::size_t j = 0;
  float best = kInfF;
  for (std::size_t i = 0; i < n; ++i)
    if (dp[full * stride + i] < best) {
      best = dp[full * stride + i];
      j = i;
    }
  order.reserve(n);
  std::uint64_t S = full;
  order.push_back(static_cast<std::int64_t>(j));
  while (S & (S - 1)) {
    const std::uint64_t Sp = S ^ (std::uint64_t{1} << j);
    const float target = dp[S * stride + j];
    const float* row = dp.data() + Sp * stride;
    const float* dj = D + j * stride;
    std::size_t pick = n;
    for (std::size_t i = 0; i < n; ++i)
      if (((Sp >> i) & 1u) && row[i] + dj[i] == target) {
        pick = i;
        break;
      }
    if (pick == n) throw std::logic_error("Held-Karp path recovery failed");
    order.push_back(static_cast<std::int64_t>(pick));
    S = Sp;
    j = pick;
  }
  std::reverse(order.begin(), order.end());
  return order;
}

std::vector<float> hk_table(const double* dist, std::size_t n, const std::vector<int>* idx,
                            std::size_t full_n) {
  const std::size_t stride = hk_stride(n);
  std::vector<float> D(stride * stride, 0.0f);
  for (std::size_t a = 0; a < n; ++a)
    for (std::size_t b = 0; b < n; ++b) {
      const std::size_t ia = idx ? static_cast<std::size_t>((*idx)[a]) : a;
      const std::size_t ib = idx ? static_cast<std::size_t>((*idx)[b]) : b;
      D[a * stride + b] = static_cast<float>(dist[ia * full_n + ib]);
    }
  return D;
}

// Exact path over a subset of points; returns point indices.
std::vector<int> exact_subset(const double* dist, std::size_t full_n, const std::vector<int>& idx) {
  if (idx.size() <= 2) return idx;
  const auto D = hk_table(dist, idx.size(), &idx, full_n);
  const auto local = hk_solve(D.data(), idx.size(), 1, {});
  std::vector<int> out(idx.size());
  for (std::size_t k = 0; k < idx.size(); ++k) out[k] = idx[static_cast<std::size_t>(local[k])];
  return out;
}

// ---------------------------------------------------------------- hierarchy (CNNVis start)

struct Dendrogram {
  std::vector<std::array<int, 2>> children;  // node n + k has children[k]
  std::vector<int> size;                     // of every node, leaves included
};

// Average linkage by the nearest-neighbour chain, O(n^2) time and memory. Ties go to the
// previous chain element, then to the lower index, so the tree is deterministic.
Dendrogram average_linkage(const double* dist, std::size_t n) {
  Dendrogram tree;
  tree.size.assign(n, 1);
  if (n < 2) return tree;
  std::vector<double> M(dist, dist + n * n);
  std::vector<int> node(n), weight(n, 1);
  std::iota(node.begin(), node.end(), 0);
  std::vector<char> alive(n, 1);
  std::vector<int> chain;
  std::size_t remaining = n, first_alive = 0;
  while (remaining > 1) {
    if (chain.empty()) {
      while (!alive[first_alive]) ++first_alive;
      chain.push_back(static_cast<int>(first_alive));
    }
    const int a = chain.back();
    const int prev = chain.size() >= 2 ? chain[chain.size() - 2] : -1;
    int best = prev;
    double bd = prev >= 0 ? M[static_cast<std::size_t>(a) * n + prev] : kInf;
    const double* row = M.data() + static_cast<std::size_t>(a) * n;
    for (std::size_t k = 0; k < n; ++k)
      if (alive[k] && static_cast<int>(k) != a && row[k] < bd) {
        bd = row[k];
        best = static_cast<int>(k);
      }
    if (best != prev) {
      chain.push_back(best);
      continue;
    }
    chain.pop_back();
    chain.pop_back();
    const int keep = std::min(a, prev), gone = std::max(a, prev);
    const double wk = weight[keep], wg = weight[gone];
    for (std::size_t k = 0; k < n; ++k) {
      if (!alive[k] || static_cast<int>(k) == keep || static_cast<int>(k) == gone) continue;
      const double v = (wk * M[static_cast<std::size_t>(keep) * n + k] +
                        wg * M[static_cast<std::size_t>(gone) * n + k]) /
                       (wk + wg);
      M[static_cast<std::size_t>(keep) * n + k] = v;
      M[k * n + static_cast<std::size_t>(keep)] = v;
    }
    tree.children.push_back({node[keep], node[gone]});
    tree.size.push_back(weight[keep] + weight[gone]);
    node[keep] = static_cast<int>(n + tree.children.size() - 1);
    weight[keep] += weight[gone];
    alive[gone] = 0;
    --remaining;
  }
  return tree;
}

void collect_leaves(const Dendrogram& t, std::size_t n, int node, std::vector<int>& out) {
  std::vector<int> stack{node};
  while (!stack.empty()) {
    const int v = stack.back();
    stack.pop_back();
    if (v < static_cast<int>(n)) {
      out.push_back(v);
    } else {
      const auto& c = t.children[static_cast<std::size_t>(v) - n];
      stack.push_back(c[1]);
      stack.push_back(c[0]);
    }
  }
}

// Orders paths exactly, each traversed either way, minimising the joins between them.
std::vector<int> join_paths(const double* dist, std::size_t n,
                            const std::vector<std::vector<int>>& parts) {
  const std::size_t m = parts.size();
  if (m == 1) return parts[0];
  const std::size_t states = 2 * m;
  const std::size_t n_sets = std::size_t{1} << m;
  std::vector<double> dp(n_sets * states, kInf);
  std::vector<int> parent(n_sets * states, -1);
  auto enter = [&](std::size_t k, int o) { return o ? parts[k].back() : parts[k].front(); };
  auto leave = [&](std::size_t k, int o) { return o ? parts[k].front() : parts[k].back(); };
  for (std::size_t k = 0; k < m; ++k)
    for (int o = 0; o < 2; ++o) dp[(std::size_t{1} << k) * states + 2 * k + o] = 0.0;
  for (std::size_t S = 1; S < n_sets; ++S)
    for (std::size_t s = 0; s < states; ++s) {
      const double v = dp[S * states + s];
      if (v == kInf) continue;
      const std::size_t k = s / 2;
      const int o = static_cast<int>(s % 2);
      const int from = leave(k, o);
      for (std::size_t q = 0; q < m; ++q) {
        if ((S >> q) & 1u) continue;
        const std::size_t T = S | (std::size_t{1} << q);
        for (int o2 = 0; o2 < 2; ++o2) {
          const double c = v + dist[static_cast<std::size_t>(from) * n + enter(q, o2)];
          const std::size_t cell = T * states + 2 * q + o2;
          if (c < dp[cell]) {
            dp[cell] = c;
            parent[cell] = static_cast<int>(s);
          }
        }
      }
    }
  std::size_t S = n_sets - 1, s = 0;
  for (std::size_t t = 1; t < states; ++t)
    if (dp[S * states + t] < dp[S * states + s]) s = t;
  std::vector<std::size_t> seq;
  while (true) {
    seq.push_back(s);
    const int p = parent[S * states + s];
    if (p < 0) break;
    S ^= std::size_t{1} << (s / 2);
    s = static_cast<std::size_t>(p);
  }
  std::reverse(seq.begin(), seq.end());
  std::vector<int> out;
  for (std::size_t t : seq) {
    const auto& part = parts[t / 2];
    if (t % 2)
      out.insert(out.end(), part.rbegin(), part.rend());
    else
      out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

std::vector<int> order_node(const double* dist, std::size_t n, const Dendrogram& t, int node,
                            std::size_t group, std::size_t fan_out) {
  if (static_cast<std::size_t>(t.size[static_cast<std::size_t>(node)]) <= group) {
    std::vector<int> leaves;
    collect_leaves(t, n, node, leaves);
    return exact_subset(dist, n, leaves);
  }
  std::vector<int> parts{node};
  while (parts.size() < fan_out) {
    std::size_t pick = parts.size();
    int pick_size = static_cast<int>(group);
    for (std::size_t k = 0; k < parts.size(); ++k)
      if (t.size[static_cast<std::size_t>(parts[k])] > pick_size) {
        pick_size = t.size[static_cast<std::size_t>(parts[k])];
        pick = k;
      }
    if (pick == parts.size()) break;
    const auto c = t.children[static_cast<std::size_t>(parts[pick]) - n];
    parts[pick] = c[0];
    parts.insert(parts.begin() + static_cast<std::ptrdiff_t>(pick) + 1, c[1]);
  }
  std::vector<std::vector<int>> paths;
  for (int p : parts) paths.push_back(order_node(dist, n, t, p, group, fan_out));
  return join_paths(dist, n, paths);
}

// ---------------------------------------------------------------- local search

// A cyclic tour in an array with positions; the open path is closed through a dummy point at
// distance 0 from all others, so the path ends are free to move.
struct Tour {
  int N = 0;
  std::vector<int> t, p;
  void set(const std::vector<int>& cycle) {
    t = cycle;
    N = static_cast<int>(t.size());
    p.assign(t.size(), 0);
    for (int i = 0; i < N; ++i) p[static_cast<std::size_t>(t[static_cast<std::size_t>(i)])] = i;
  }
  int succ(int c) const {
    const int q = p[static_cast<std::size_t>(c)] + 1;
    return t[static_cast<std::size_t>(q == N ? 0 : q)];
  }
  int pred(int c) const {
    const int q = p[static_cast<std::size_t>(c)];
    return t[static_cast<std::size_t>(q == 0 ? N - 1 : q - 1)];
  }
  // Reverses the forward path a..b (or, equivalently for the cycle, its shorter complement).
  void reverse_path(int a, int b) {
    int i = p[static_cast<std::size_t>(a)], j = p[static_cast<std::size_t>(b)];
    int len = j - i;
    if (len < 0) len += N;
    len += 1;
    if (2 * len > N) {
      const int ni = j + 1 == N ? 0 : j + 1, nj = i == 0 ? N - 1 : i - 1;
      i = ni;
      j = nj;
      len = N - len;
    }
    for (int k = 0; k < len / 2; ++k) {
      const int ci = t[static_cast<std::size_t>(i)], cj = t[static_cast<std::size_t>(j)];
      t[static_cast<std::size_t>(i)] = cj;
      p[static_cast<std::size_t>(cj)] = i;
      t[static_cast<std::size_t>(j)] = ci;
      p[static_cast<std::size_t>(ci)] = j;
      if (++i == N) i = 0;
      if (--j < 0) j = N - 1;
    }
  }
  // Removes edges (a,b), (c,d) and adds (a,c), (b,d); needs b, d on the same side of a, c.
  void move2(int a, int b, int c, int d) {
    if (succ(a) == b)
      reverse_path(b, c);
    else
      reverse_path(a, d);
  }
};

class LocalSearch {
 public:
  LocalSearch(const std::vector<double>& D, int N, const std::vector<int>& nb, int K, double eps)
      : D_(D), N_(N), nb_(nb), K_(K), eps_(eps), active_(static_cast<std::size_t>(N), 0) {}

  Tour tour;
  bool logging = false;

  double d(int a, int b) const {
    return D_[static_cast<std::size_t>(a) * static_cast<std::size_t>(N_) +
              static_cast<std::size_t>(b)];
  }
  void push(int c) {
    if (!active_[static_cast<std::size_t>(c)]) {
      active_[static_cast<std::size_t>(c)] = 1;
      queue_.push_back(c);
    }
  }
  void push_all() {
    for (int k = 0; k < N_; ++k) push(tour.t[static_cast<std::size_t>(k)]);
  }
  void clear_log() { log_.clear(); }
  void undo() {
    for (auto it = log_.rbegin(); it != log_.rend(); ++it)
      tour.move2((*it)[0], (*it)[2], (*it)[1], (*it)[3]);
    log_.clear();
  }

  // Runs until no move improves; returns the total gain.
  double run() {
    double gain = 0;
    std::size_t head = 0;
    while (head < queue_.size()) {
      const int a = queue_[head++];
      active_[static_cast<std::size_t>(a)] = 0;
      double g = two_opt(a);
      if (g <= 0) g = or_opt(a);
      if (g > 0) {
        gain += g;
        push(a);
      }
      if (head > 4096 && head * 2 > queue_.size()) {
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(head));
        head = 0;
      }
    }
    queue_.clear();
    return gain;
  }

  // Double bridge on a stretch of the tour: p S X y -> p X S y. Returns the length change.
  double segment_swap(int p, int l1, int l2) {
    const int s1 = tour.succ(p);
    int s2 = s1;
    for (int k = 1; k < l1; ++k) s2 = tour.succ(s2);
    const int n1 = tour.succ(s2);
    int x = n1;
    for (int k = 1; k < l2; ++k) x = tour.succ(x);
    const int y = tour.succ(x);
    const double delta =
        d(p, n1) + d(x, s1) + d(s2, y) - d(p, s1) - d(s2, n1) - d(x, y);
    move_segment(p, s1, s2, n1, x, y, false);
    for (int c : {p, s1, s2, n1, x, y}) push(c);
    return delta;
  }

 private:
  void move2(int a, int b, int c, int d) {
    tour.move2(a, b, c, d);
    if (logging) log_.push_back({a, b, c, d});
  }

  // Tour p S n1 .. x y with S = s1..s2 (forward): becomes p n1 .. x S y (or S reversed).
  void move_segment(int p, int s1, int s2, int n1, int x, int y, bool reversed) {
    move2(p, s1, x, y);   // p x .. n1 s2 .. s1 y
    move2(p, x, n1, s2);  // p n1 .. x s2 .. s1 y
    if (!reversed) move2(x, s2, s1, y);
  }

  const int* neighbours(int a) const { return nb_.data() + static_cast<std::size_t>(a) * K_; }

  double two_opt(int a) {
    const int* na = neighbours(a);
    for (int dir = 0; dir < 2; ++dir) {
      const int b = dir ? tour.pred(a) : tour.succ(a);
      const double dab = d(a, b);
      for (int k = 0; k < K_; ++k) {
        const int c = na[k];
        if (c < 0) break;
        const double g1 = dab - d(a, c);
        if (g1 <= eps_) break;
        const int e = dir ? tour.pred(c) : tour.succ(c);
        if (c == b || e == a) continue;
        const double gain = g1 + d(c, e) - d(b, e);
        if (gain > eps_) {
          move2(a, b, c, e);
          push(b);
          push(c);
          push(e);
          return gain;
        }
      }
    }
    return 0;
  }

  bool in_segment(int c, int s1, int len) const {
    int off = tour.p[static_cast<std::size_t>(c)] - tour.p[static_cast<std::size_t>(s1)];
    if (off < 0) off += N_;
    return off < len;
  }

  double or_opt(int a) {
    for (int len = 1; len <= 3; ++len) {
      if (N_ < len + 4) break;
      for (int mode = 0; mode < 2; ++mode) {
        if (len == 1 && mode == 1) continue;
        int s1 = a, s2 = a;
        if (mode == 0)
          for (int k = 1; k < len; ++k) s2 = tour.succ(s2);
        else
          for (int k = 1; k < len; ++k) s1 = tour.pred(s1);
        const int p = tour.pred(s1), n1 = tour.succ(s2);
        const double g = d(p, s1) + d(s2, n1) - d(p, n1);
        if (g <= eps_) continue;
        for (int end = 0; end < 2; ++end) {
          const int from = end ? s2 : s1;
          const int* nf = neighbours(from);
          for (int k = 0; k < K_; ++k) {
            const int c = nf[k];
            if (c < 0) break;
            if (d(from, c) >= g - eps_) break;
            if (in_segment(c, s1, len)) continue;
            for (int side = 0; side < 2; ++side) {
              const int e = side ? tour.pred(c) : tour.succ(c);
              if (in_segment(e, s1, len)) continue;
              const int x = side ? e : c, y = side ? c : e;  // succ(x) == y
              if (y == p) continue;
              const double dxy = d(x, y);
              const double add_fwd = d(x, s1) + d(s2, y) - dxy;
              const double add_rev = d(x, s2) + d(s1, y) - dxy;
              const bool rev = add_rev < add_fwd;
              const double gain = g - (rev ? add_rev : add_fwd);
              if (gain > eps_) {
                move_segment(p, s1, s2, n1, x, y, rev);
                for (int q : {p, s1, s2, n1, x, y}) push(q);
                return gain;
              }
            }
          }
        }
      }
    }
    return 0;
  }

  const std::vector<double>& D_;
  int N_;
  const std::vector<int>& nb_;
  int K_;
  double eps_;
  std::vector<char> active_;
  std::vector<int> queue_;
  std::vector<std::array<int, 4>> log_;
};

std::uint64_t draw(std::mt19937_64& rng, std::uint64_t k) { return rng() % k; }

}  // namespace

std::size_t held_karp_bytes(std::size_t n) {
  if (n == 0) return 0;
  if (n > kHeldKarpMaxN) return std::numeric_limits<std::size_t>::max();  // beyond any memory
  const std::size_t s = hk_stride(n);
  return ((std::size_t{1} << n) * s + s * s) * sizeof(float);
}

std::size_t held_karp_max_n(std::size_t memory_limit) {
  std::size_t n = 0;
  while (n < kHeldKarpMaxN && held_karp_bytes(n + 1) <= memory_limit) ++n;
  return n;
}

std::vector<std::int64_t> held_karp_path(const double* dist, std::size_t n,
                                         std::size_t memory_limit, int n_threads,
                                         const Interrupt& interrupt) {
  const std::size_t need = held_karp_bytes(n);
  if (n > kHeldKarpMaxN)
    throw MemoryLimit("exact reordering of n=" + std::to_string(n) + " rows needs a Held-Karp " +
                      "table of n 2^n floats, beyond any memory (at most n=" +
                      std::to_string(kHeldKarpMaxN) + "); use method='heuristic'");
  if (need > memory_limit) {
    throw MemoryLimit("exact reordering of n=" + std::to_string(n) + " rows needs " +
                      std::to_string(need / (1024.0 * 1024.0)) +
                      " MiB for the Held-Karp table but memory_limit allows " +
                      std::to_string(memory_limit / (1024.0 * 1024.0)) +
                      " MiB (at most n=" + std::to_string(held_karp_max_n(memory_limit)) +
                      "); use method='heuristic' or raise memory_limit");
  }
  Tamed tamed(dist, n);
  const auto D = hk_table(tamed.dist, n, nullptr, n);
  try {
    return hk_solve(D.data(), n, resolve_n_jobs(n_threads), interrupt);
  } catch (const std::bad_alloc&) {
    throw MemoryLimit("exact reordering of n=" + std::to_string(n) + " rows needs " +
                      std::to_string(need / (1024.0 * 1024.0)) +
                      " MiB for the Held-Karp table, more than this machine can allocate; use "
                      "method='heuristic' or a smaller memory_limit");
  }
}

double path_length(const double* dist, std::size_t n, const std::vector<std::int64_t>& order) {
  double s = 0;
  for (std::size_t k = 1; k < order.size(); ++k)
    s += dist[static_cast<std::size_t>(order[k - 1]) * n + static_cast<std::size_t>(order[k])];
  return s;
}

std::vector<std::int64_t> nearest_neighbour_path(const double* dist, std::size_t n,
                                                 std::size_t start) {
  std::vector<std::int64_t> order;
  if (n == 0) return order;
  std::vector<char> used(n, 0);
  std::size_t cur = start;
  used[cur] = 1;
  order.push_back(static_cast<std::int64_t>(cur));
  for (std::size_t step = 1; step < n; ++step) {
    std::size_t best = n;
    double bd = kInf;
    for (std::size_t k = 0; k < n; ++k)
      if (!used[k] && (best == n || dist[cur * n + k] < bd)) {
        bd = dist[cur * n + k];
        best = k;
      }
    used[best] = 1;
    order.push_back(static_cast<std::int64_t>(best));
    cur = best;
  }
  return order;
}

std::vector<std::int64_t> hierarchical_path(const double* dist, std::size_t n, int group_size,
                                            int fan_out) {
  if (group_size < 2 || group_size > 16)
    throw InvalidArgument("group_size must be in [2, 16], got " + std::to_string(group_size));
  if (fan_out < 2 || fan_out > 12)
    throw InvalidArgument("fan_out must be in [2, 12], got " + std::to_string(fan_out));
  if (n == 0) return {};
  if (n == 1) return {0};
  const Tamed tamed(dist, n);
  dist = tamed.dist;
  const Dendrogram tree = average_linkage(dist, n);
  const auto path =
      order_node(dist, n, tree, static_cast<int>(2 * n - 2), static_cast<std::size_t>(group_size),
                 static_cast<std::size_t>(fan_out));
  return std::vector<std::int64_t>(path.begin(), path.end());
}

namespace {

HeuristicResult heuristic_impl(const double* dist, std::size_t n, const HeuristicOptions& opt,
                               const Interrupt& interrupt) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  if (opt.neighbours < 1) throw InvalidArgument("neighbours must be >= 1");
  HeuristicResult res;
  if (n <= 3) {
    const auto D = hk_table(dist, n, nullptr, n);
    res.order = hk_solve(D.data(), n, 1, interrupt);
    res.length = res.nn_length = res.hierarchy_length = res.local_length =
        path_length(dist, n, res.order);
    return res;
  }
  const auto nn = nearest_neighbour_path(dist, n, 0);
  const auto hier = hierarchical_path(dist, n, opt.group_size, opt.fan_out);
  res.nn_length = path_length(dist, n, nn);
  res.hierarchy_length = path_length(dist, n, hier);
  const auto& start = res.hierarchy_length <= res.nn_length ? hier : nn;
  check_interrupt(interrupt);

  // Distances with the dummy point N-1 = n at distance 0.
  const int N = static_cast<int>(n) + 1;
  std::vector<double> D(static_cast<std::size_t>(N) * N, 0.0);
  double dmax = 0;
  for (std::size_t a = 0; a < n; ++a)
    for (std::size_t b = 0; b < n; ++b) {
      D[a * N + b] = dist[a * n + b];
      dmax = std::max(dmax, dist[a * n + b]);
    }
  const int K = std::min<int>(opt.neighbours, static_cast<int>(n) - 1) + 1;
  std::vector<int> nb(static_cast<std::size_t>(N) * K, -1);
  {
    std::vector<int> idx;
    for (std::size_t a = 0; a < n; ++a) {
      idx.clear();
      for (std::size_t b = 0; b < n; ++b)
        if (b != a) idx.push_back(static_cast<int>(b));
      const auto less = [&](int u, int v) {
        const double du = dist[a * n + u], dv = dist[a * n + v];
        return du < dv || (du == dv && u < v);
      };
      std::partial_sort(idx.begin(), idx.begin() + (K - 1), idx.end(), less);
      nb[a * K] = static_cast<int>(n);  // the dummy comes first (distance 0)
      for (int k = 1; k < K; ++k) nb[a * K + k] = idx[static_cast<std::size_t>(k - 1)];
    }
  }
  const double eps = 1e-12 * std::max(dmax, 1e-300);
  LocalSearch ls(D, N, nb, K, eps);
  std::vector<int> cycle(start.begin(), start.end());
  cycle.push_back(static_cast<int>(n));
  ls.tour.set(cycle);
  ls.push_all();
  const double start_len = path_length(dist, n, start);
  double cur = start_len - ls.run();
  res.local_length = cur;
  check_interrupt(interrupt);

  const auto ni = static_cast<std::int64_t>(n);
  const std::int64_t default_iter =
      std::min<std::int64_t>(20000 + 10 * ni, std::max<std::int64_t>(1000, 200 * ni));
  const std::int64_t max_iter = opt.max_iter >= 0 ? opt.max_iter : default_iter;
  std::mt19937_64 rng(opt.seed);
  const int max_seg = std::max(1, std::min(std::max(1, opt.kick_size), (N - 2) / 3));
  std::int64_t it = 0;
  for (; it < max_iter; ++it) {
    if ((it & 63) == 0) {
      check_interrupt(interrupt);
      if (opt.time_budget > 0 &&
          std::chrono::duration<double>(Clock::now() - t0).count() > opt.time_budget) {
        res.time_capped = true;
        break;
      }
    }
    ls.clear_log();
    ls.logging = true;
    const int p = static_cast<int>(draw(rng, static_cast<std::uint64_t>(N)));
    const int l1 = 1 + static_cast<int>(draw(rng, static_cast<std::uint64_t>(max_seg)));
    const int l2 = 1 + static_cast<int>(draw(rng, static_cast<std::uint64_t>(max_seg)));
    double delta = ls.segment_swap(p, l1, l2);
    delta -= ls.run();
    if (delta <= 0)
      cur += delta;
    else
      ls.undo();
  }
  ls.logging = false;
  res.iterations = it;
  // Open the cycle at the dummy point.
  const int pd = ls.tour.p[n];
  res.order.reserve(n);
  for (int k = 1; k < N; ++k)
    res.order.push_back(ls.tour.t[static_cast<std::size_t>((pd + k) % N)]);
  res.length = path_length(dist, n, res.order);
  return res;
}

}  // namespace

HeuristicResult heuristic_path(const double* dist, std::size_t n, const HeuristicOptions& opt,
                               const Interrupt& interrupt) {
  const Tamed tamed(dist, n);
  HeuristicResult res = heuristic_impl(tamed.dist, n, opt, interrupt);
  for (double* len : {&res.nn_length, &res.hierarchy_length, &res.local_length, &res.length})
    *len *= tamed.unscale;
  return res;
}

}  // namespace cnnvis::reorder
