// Biclustering of signed bipartite weight matrices and force-directed edge bundling.
#include "cnnvis/bundling.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <queue>
#include <string>

namespace cnnvis {

namespace {

using u64 = std::uint64_t;
using i64 = std::int64_t;

// Portable SWAR popcount (no libgcc call when the target lacks a popcount instruction).
inline int popcount64(u64 x) {
  x = x - ((x >> 1) & 0x5555555555555555ULL);
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
  return static_cast<int>((x * 0x0101010101010101ULL) >> 56);
}

inline std::int64_t words_for(std::int64_t bits) { return (bits + 63) / 64; }

inline bool test_bit(const u64* b, i64 j) { return (b[j >> 6] >> (j & 63)) & 1u; }
inline void set_bit(u64* b, i64 j) { b[j >> 6] |= (u64{1} << (j & 63)); }
inline void clear_bit(u64* b, i64 j) { b[j >> 6] &= ~(u64{1} << (j & 63)); }

// Smallest integer count k with k >= density * size (robust to rounding of the product).
inline i64 need_count(double density, i64 size) {
  return static_cast<i64>(std::ceil(density * static_cast<double>(size) - 1e-9));
}

// Bit matrices of one sign: edges not yet claimed and edges already claimed, row-major and
// column-major. A view is one orientation of them ("a" is the seed side).
struct SignGraph {
  i64 n_rows = 0, n_cols = 0, wr = 0, wc = 0;
  std::vector<u64> row_free, col_free, row_taken, col_taken;
};

struct View {
  i64 na, nb, wa, wb;
  const u64* a_free;   // na x wb
  const u64* a_taken;  // na x wb
  const u64* b_free;   // nb x wa
  const u64* b_taken;  // nb x wa
  bool transposed;
};

View make_view(const SignGraph& g, bool transposed) {
  if (!transposed)
    return {g.n_rows, g.n_cols, g.wr, g.wc, g.row_free.data(), g.row_taken.data(),
            g.col_free.data(), g.col_taken.data(), false};
  return {g.n_cols, g.n_rows, g.wc, g.wr, g.col_free.data(), g.col_taken.data(),
          g.row_free.data(), g.row_taken.data(), true};
}

struct Candidate {
  i64 gain = std::numeric_limits<i64>::min();
  i64 seed = 0;     // seed id: rows 0..n_rows-1, then n_rows + col
  i64 version = -1; // commits seen when it was evaluated
  std::vector<i64> rows, cols;
  i64 n_edges = 0;
};

struct Scratch {
  std::vector<int> cnt;
  std::vector<u64> blocked, cset, in_a, prev;
  std::vector<int> ov, bl;  // per a-side row: free and claimed edges into the column set
  std::vector<i64> a_list, c_list;
};

void add_row(const View& v, i64 i, Scratch& s) {
  const u64* row = v.a_free + i * v.wb;
  const u64* tk = v.a_taken + i * v.wb;
  for (i64 w = 0; w < v.wb; ++w) {
    s.blocked[w] |= tk[w];
    for (u64 x = row[w]; x; x &= x - 1) ++s.cnt[w * 64 + lowest_bit(x)];
  }
}

// Columns (b side) for a row set of the given size whose counts are in s.cnt: count >= need
// and not blocked by a claimed edge. Fills s.cset and s.c_list, returns the edges inside.
i64 select_columns(const View& v, i64 size, double density, Scratch& s) {
  const i64 need = std::max<i64>(size >= 2 ? 2 : 1, need_count(density, size));
  std::fill(s.cset.begin(), s.cset.end(), 0);
  s.c_list.clear();
  i64 e = 0;
  for (i64 j = 0; j < v.nb; ++j)
    if (s.cnt[j] >= need && !test_bit(s.blocked.data(), j)) {
      set_bit(s.cset.data(), j);
      s.c_list.push_back(j);
      e += s.cnt[j];
    }
  return e;
}

i64 columns_for(const View& v, const std::vector<i64>& a, double density, Scratch& s) {
  std::fill(s.cnt.begin(), s.cnt.end(), 0);
  std::fill(s.blocked.begin(), s.blocked.end(), 0);
  for (i64 i : a) add_row(v, i, s);
  return select_columns(v, (i64)a.size(), density, s);
}

// Rows (a side) dense in s.cset with no claimed edge there. Fills out, returns edges.
i64 rows_for(const View& v, double density, Scratch& s, std::vector<i64>& out) {
  out.clear();
  const i64 nc = (i64)s.c_list.size();
  const i64 need = std::max<i64>(2, need_count(density, nc));
  i64 e = 0;
  for (i64 i = 0; i < v.na; ++i) {
    const u64* row = v.a_free + i * v.wb;
    const u64* tk = v.a_taken + i * v.wb;
    i64 ov = 0;
    bool blocked = false;
    for (i64 w = 0; w < v.wb; ++w) {
      ov += popcount64(row[w] & s.cset[w]);
      if (tk[w] & s.cset[w]) {
        blocked = true;
        break;
      }
    }
    if (!blocked && ov >= need) {
      out.push_back(i);
      e += ov;
    }
  }
  return e;
}

// Greedy density-tolerant growth from one seed followed by alternating refinement.
Candidate grow(const View& v, i64 seed_local, const BiclusterOptions& opt, Scratch& s) {
  Candidate best;
  best.seed = seed_local;
  s.cnt.assign(v.nb, 0);
  s.blocked.assign(v.wb, 0);
  s.cset.assign(v.wb, 0);
  s.in_a.assign(v.wa, 0);
  s.prev.assign(v.wb, 0);
  s.ov.assign(v.na, 0);
  s.bl.assign(v.na, 0);
  s.a_list.clear();

  std::vector<i64> best_a, best_c;
  i64 best_gain = std::numeric_limits<i64>::min(), best_e = 0;
  auto consider = [&](const std::vector<i64>& a, const std::vector<i64>& c, i64 e) {
    const i64 gain = e - (i64)a.size() - (i64)c.size();
    if (a.size() >= 2 && c.size() >= 2 && gain > best_gain) {
      best_gain = gain;
      best_a = a;
      best_c = c;
      best_e = e;
      return true;
    }
    return false;
  };

  // Growth: add the row with most free edges into the current column set, recompute the columns
  // that are dense in the rows so far, keep the best rectangle seen.
  s.a_list.push_back(seed_local);
  set_bit(s.in_a.data(), seed_local);
  // Keeps s.ov / s.bl in step with the column set: walks the columns that entered or left.
  auto sync_overlaps = [&]() {
    for (i64 w = 0; w < v.wb; ++w) {
      const u64 added = s.cset[w] & ~s.prev[w], removed = s.prev[w] & ~s.cset[w];
      for (int pass = 0; pass < 2; ++pass) {
        const int delta = pass == 0 ? 1 : -1;
        for (u64 x = pass == 0 ? added : removed; x; x &= x - 1) {
          const i64 j = w * 64 + lowest_bit(x);
          const u64* fc = v.b_free + j * v.wa;
          const u64* tc = v.b_taken + j * v.wa;
          for (i64 u = 0; u < v.wa; ++u) {
            for (u64 y = fc[u]; y; y &= y - 1) s.ov[u * 64 + lowest_bit(y)] += delta;
            for (u64 y = tc[u]; y; y &= y - 1) s.bl[u * 64 + lowest_bit(y)] += delta;
          }
        }
      }
      s.prev[w] = s.cset[w];
    }
  };
  i64 e = columns_for(v, s.a_list, opt.min_density, s);
  sync_overlaps();
  int since_best = 0;
  while (true) {
    i64 pick = -1, pick_score = std::numeric_limits<i64>::min();
    const i64 na_now = (i64)s.a_list.size();
    for (i64 i = 0; i < v.na; ++i) {
      if (s.ov[i] < 2 || test_bit(s.in_a.data(), i)) continue;
      const i64 score = s.ov[i] - static_cast<i64>(s.bl[i]) * na_now;
      if (score > pick_score) {
        pick_score = score;
        pick = i;
      }
    }
    if (pick < 0 || pick_score < 2) break;
    s.a_list.push_back(pick);
    set_bit(s.in_a.data(), pick);
    add_row(v, pick, s);
    e = select_columns(v, (i64)s.a_list.size(), opt.min_density, s);
    sync_overlaps();
    if (s.c_list.size() < 2) break;
    if (consider(s.a_list, s.c_list, e))
      since_best = 0;
    else if (++since_best >= opt.patience)
      break;
  }

  // Refinement: rows dense in the columns, then columns dense in the rows, a few rounds.
  if (!best_a.empty()) {
    std::vector<i64> a = best_a, a_prev;
    for (int round = 0; round < opt.max_refine; ++round) {
      columns_for(v, a, opt.min_density, s);  // s.cset from a
      if (s.c_list.size() < 2) break;
      std::vector<i64> a_new;
      const i64 er = rows_for(v, opt.min_density, s, a_new);
      consider(a_new, s.c_list, er);
      if (a_new.size() < 2 || a_new == a) break;
      a = a_new;
      const i64 ec = columns_for(v, a, opt.min_density, s);
      consider(a, s.c_list, ec);
    }
  }

  if (best_a.empty()) return best;
  best.gain = best_gain;
  best.n_edges = best_e;
  std::sort(best_a.begin(), best_a.end());
  if (v.transposed) {
    best.rows = std::move(best_c);
    best.cols = std::move(best_a);
  } else {
    best.rows = std::move(best_a);
    best.cols = std::move(best_c);
  }
  return best;
}

struct ByGain {
  const std::vector<Candidate>* c;
  bool operator()(i64 x, i64 y) const {  // true when x has lower priority than y
    const Candidate& a = (*c)[x];
    const Candidate& b = (*c)[y];
    if (a.gain != b.gain) return a.gain < b.gain;
    return a.seed > b.seed;
  }
};

void bicluster_sign(SignGraph& g, int sign, const BiclusterOptions& opt, BiclusterOutput& out,
                    const Interrupt& interrupt) {
  std::vector<Candidate> cands;
  i64 version = 0;

  // Evaluates candidates (growth from their seeds) in parallel; each is independent.
  auto evaluate = [&](const std::vector<i64>& which) {
    parallel_for(which.size(), opt.n_threads, [&](std::size_t b, std::size_t e, int) {
      Scratch s;
      for (std::size_t k = b; k < e; ++k) {
        const i64 idx = which[k];
        const i64 seed = cands[idx].seed;
        const bool tr = seed >= g.n_rows;
        const View v = make_view(g, tr);
        Candidate c = grow(v, tr ? seed - g.n_rows : seed, opt, s);
        c.seed = seed;
        c.version = version;
        cands[idx] = std::move(c);
      }
    });
  };

  std::priority_queue<i64, std::vector<i64>, ByGain> pq(ByGain{&cands});
  const std::size_t batch = 16;  // fixed: results must not depend on the thread count

  // Seed pass: rows and columns with >= 2 free edges, most edges first; a seed already inside a
  // rectangle found earlier in this pass is skipped (it would grow the same rectangle).
  auto seed_pass = [&]() {
    std::vector<std::pair<i64, i64>> order;  // (-degree, seed)
    for (i64 i = 0; i < g.n_rows; ++i) {
      i64 d = 0;
      for (i64 w = 0; w < g.wc; ++w) d += popcount64(g.row_free[i * g.wc + w]);
      if (d >= 2) order.push_back({-d, i});
    }
    for (i64 j = 0; j < g.n_cols; ++j) {
      i64 d = 0;
      for (i64 w = 0; w < g.wr; ++w) d += popcount64(g.col_free[j * g.wr + w]);
      if (d >= 2) order.push_back({-d, g.n_rows + j});
    }
    std::sort(order.begin(), order.end());
    std::vector<char> inside(g.n_rows + g.n_cols, 0);
    cands.clear();
    while (!pq.empty()) pq.pop();
    std::size_t pos = 0;
    bool found = false;
    while (pos < order.size()) {
      std::vector<i64> which;
      while (pos < order.size() && which.size() < batch) {
        const i64 seed = order[pos++].second;
        if (inside[seed]) continue;
        Candidate c;
        c.seed = seed;
        cands.push_back(std::move(c));
        which.push_back((i64)cands.size() - 1);
      }
      evaluate(which);
      check_interrupt(interrupt);
      for (i64 k : which) {
        const Candidate& c = cands[k];
        if (c.gain < opt.min_gain) continue;
        for (i64 i : c.rows) inside[i] = 1;
        for (i64 j : c.cols) inside[g.n_rows + j] = 1;
        pq.push(k);
        found = true;
      }
    }
    return found;
  };

  while (seed_pass()) {
    // Lazy greedy: commit the best fresh candidate; a stale one whose rectangle lost no edge is
    // still valid with the same gain; others are re-evaluated in fixed-size batches.
    while (!pq.empty()) {
      const i64 top = pq.top();
      if (cands[top].version != version) {
        const Candidate& c = cands[top];
        bool intact = true;
        for (i64 i : c.rows) {
          const u64* tk = g.row_taken.data() + i * g.wc;
          for (i64 j : c.cols)
            if (test_bit(tk, j)) {
              intact = false;
              break;
            }
          if (!intact) break;
        }
        if (intact) cands[top].version = version;
      }
      if (cands[top].version == version) {
        pq.pop();
        const Candidate& c = cands[top];
        Bicluster bc;
        bc.rows = c.rows;
        bc.cols = c.cols;
        bc.sign = sign;
        i64 claimed = 0;
        for (i64 i : c.rows)
          for (i64 j : c.cols) {
            u64* rf = g.row_free.data() + i * g.wc;
            if (test_bit(rf, j)) {
              clear_bit(rf, j);
              set_bit(g.row_taken.data() + i * g.wc, j);
              clear_bit(g.col_free.data() + j * g.wr, i);
              set_bit(g.col_taken.data() + j * g.wr, i);
              ++claimed;
            }
          }
        bc.n_edges = claimed;
        out.biclusters.push_back(std::move(bc));
        ++version;
        check_interrupt(interrupt);
        continue;
      }
      std::vector<i64> stale;
      while (!pq.empty() && stale.size() < 8 && cands[pq.top()].version != version) {
        stale.push_back(pq.top());
        pq.pop();
      }
      evaluate(stale);
      check_interrupt(interrupt);
      for (i64 k : stale)
        if (cands[k].gain >= opt.min_gain) pq.push(k);
    }
  }
}

}  // namespace

BiclusterOutput bicluster_edges(const double* weights, std::int64_t n_rows, std::int64_t n_cols,
                                const BiclusterOptions& opt, const Interrupt& interrupt) {
  if (n_rows < 0 || n_cols < 0) throw InvalidArgument("weights must have non-negative shape");
  if (!(opt.threshold >= 0.0)) throw InvalidArgument("threshold must be a number >= 0");
  if (!(opt.min_density > 0.0 && opt.min_density <= 1.0))
    throw InvalidArgument("min_density must be in (0, 1]");
  if (opt.min_gain < 1) throw InvalidArgument("min_gain must be >= 1");
  if (opt.max_refine < 0 || opt.patience < 1)
    throw InvalidArgument("max_refine must be >= 0 and patience >= 1");
  const double cells = static_cast<double>(n_rows) * static_cast<double>(n_cols);
  if (cells > 4.0e8)
    throw MemoryLimit("weights has " + std::to_string(n_rows) + " x " + std::to_string(n_cols) +
                      " entries; biclustering supports at most 4e8");

  BiclusterOutput out;
  for (int sign : {1, -1}) {
    SignGraph g;
    g.n_rows = n_rows;
    g.n_cols = n_cols;
    g.wr = words_for(n_rows);
    g.wc = words_for(n_cols);
    g.row_free.assign(n_rows * g.wc, 0);
    g.row_taken.assign(n_rows * g.wc, 0);
    g.col_free.assign(n_cols * g.wr, 0);
    g.col_taken.assign(n_cols * g.wr, 0);
    for (i64 i = 0; i < n_rows; ++i)
      for (i64 j = 0; j < n_cols; ++j) {
        const double w = weights[i * n_cols + j];
        if (w != 0.0 && std::fabs(w) >= opt.threshold && (w > 0) == (sign > 0)) {
          set_bit(g.row_free.data() + i * g.wc, j);
          set_bit(g.col_free.data() + j * g.wr, i);
          if (sign > 0) ++out.n_edges;
        }
        if (sign < 0 && w < 0 && std::fabs(w) >= opt.threshold) ++out.n_edges;
      }
    bicluster_sign(g, sign, opt, out, interrupt);
    // Keep the free edges of this sign as direct edges.
    for (i64 i = 0; i < n_rows; ++i)
      for (i64 j = 0; j < n_cols; ++j)
        if (test_bit(g.row_free.data() + i * g.wc, j)) {
          out.direct.push_back(i);
          out.direct.push_back(j);
        }
  }
  // Direct edges in row-major order across both signs.
  const std::size_t k = out.direct.size() / 2;
  std::vector<std::size_t> order(k);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const i64 ra = out.direct[2 * a], rb = out.direct[2 * b];
    if (ra != rb) return ra < rb;
    return out.direct[2 * a + 1] < out.direct[2 * b + 1];
  });
  std::vector<i64> sorted(out.direct.size());
  for (std::size_t t = 0; t < k; ++t) {
    sorted[2 * t] = out.direct[2 * order[t]];
    sorted[2 * t + 1] = out.direct[2 * order[t] + 1];
  }
  out.direct = std::move(sorted);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Force-directed edge bundling
// ---------------------------------------------------------------------------------------------

namespace {

// Resamples one polyline of p points (x, y interleaved) to q points equally spaced by arc length.
void resample_one(const double* in, i64 p, double* out, i64 q, std::vector<double>& cum) {
  cum.resize(p);
  cum[0] = 0.0;
  for (i64 k = 1; k < p; ++k)
    cum[k] = cum[k - 1] + std::hypot(in[2 * k] - in[2 * k - 2], in[2 * k + 1] - in[2 * k - 1]);
  const double total = cum[p - 1];
  if (!(total > 0.0) || p < 2) {
    for (i64 t = 0; t < q; ++t) {
      out[2 * t] = in[0];
      out[2 * t + 1] = in[1];
    }
    return;
  }
  i64 seg = 0;
  for (i64 t = 0; t < q; ++t) {
    if (t == 0) {
      out[0] = in[0];
      out[1] = in[1];
      continue;
    }
    if (t == q - 1) {
      out[2 * t] = in[2 * (p - 1)];
      out[2 * t + 1] = in[2 * (p - 1) + 1];
      continue;
    }
    const double s = total * static_cast<double>(t) / static_cast<double>(q - 1);
    while (seg < p - 2 && cum[seg + 1] < s) ++seg;
    const double len = cum[seg + 1] - cum[seg];
    const double f = len > 0.0 ? (s - cum[seg]) / len : 0.0;
    out[2 * t] = in[2 * seg] + f * (in[2 * seg + 2] - in[2 * seg]);
    out[2 * t + 1] = in[2 * seg + 1] + f * (in[2 * seg + 3] - in[2 * seg + 1]);
  }
}

struct Neighbor {
  std::int32_t q;
  float c;
  std::int32_t flip;
};

// Pull of one partner's points on the interior points 1..n of edge P, added to (fx, fy): towards
// the matching point, with weight c * min(1, d / S) / d (a unit vector, shrunk linearly within one
// step so points settle instead of jumping past each other) times min(1, h / d), so that partners
// farther than the bandwidth h pull less (Holten & van Wijk's electrostatic 1/d fall-off): edges
// join their nearest bundle before far ones drag whole bundles together.
inline void pull(const float* __restrict xp, const float* __restrict yp,
                 const float* __restrict xq, const float* __restrict yq, i64 n, float c, float S,
                 float h, float* __restrict fx, float* __restrict fy) {
  for (i64 k = 1; k <= n; ++k) {
    const float dx = xq[k] - xp[k], dy = yq[k] - yp[k];
    const float d = std::sqrt(dx * dx + dy * dy);
    const float inv = 1.0f / std::max(d, S);
    const float w = c * inv * std::min(1.0f, h * inv);
    fx[k] += w * dx;
    fy[k] += w * dy;
  }
}

// Calls fn(begin, end) on blocks of 256 edges dealt round-robin to the pool's threads: spreads
// uneven work (edges with many partners sit together) while each edge's result stays the same.
template <class Fn>
void parallel_blocks(i64 m, ThreadPool& pool, Fn&& fn) {
  const i64 block = 256, n_blocks = (m + block - 1) / block;
  const i64 workers = std::max<i64>(1, std::min<i64>(pool.size(), n_blocks));
  pool.run(static_cast<int>(workers), [&](int w) {
    for (i64 k = w; k < n_blocks; k += workers)
      fn(static_cast<std::size_t>(k * block), static_cast<std::size_t>(std::min(m, (k + 1) * block)));
  });
}

// Largest midpoint distance, in units of |P|, at which an edge Q can still be compatible with P
// (>= t): angle and visibility are <= 1, so cs * cp >= t with cs = 2 / (r + 1/r), r = lavg / lmin
// <= ratio, and cp = lavg / (lavg + dm), which gives dm <= lmin * r * (cs / t - 1), lmin <= |P|.
double max_mid_distance(double t, double ratio) {
  const int steps = 4000;
  const double h = (ratio - 1.0) / steps;
  double best = 0.0;
  for (int i = 0; i <= steps; ++i) {
    const double r = 1.0 + h * i;
    best = std::max(best, r * (2.0 / (t * (r + 1.0 / r)) - 1.0));
  }
  // The slope in r is below 2 / t + 1, so this margin covers the sampling step.
  return best + h * (2.0 / t + 1.0) + 1e-9;
}

// Compatible partners of every edge (Holten & van Wijk: angle * scale * position * visibility of
// the chords, >= t), at most kmax per edge, the most compatible first (ties: lower index).
// Candidates come from angle bins (15 degrees) each with a grid of midpoints in a frame turned to
// the bin's direction: a partner's midpoint lies within max_mid_distance * |P| of P's, and
// (visibility of P from Q) within (1 - t) / 2 * |P| of it along Q's direction, so each query is a
// small box in the frame of a nearby bin instead of a disc of radius ~2 |P|.
void find_neighbors(const std::vector<double>& ax, const std::vector<double>& ay,
                    const std::vector<double>& bx, const std::vector<double>& by,
                    const FdebOptions& opt, ThreadPool& pool, i64 kmax, std::vector<Neighbor>& nb,
                    std::vector<std::int32_t>& n_nb, std::vector<i64>& order) {
  const i64 m = static_cast<i64>(ax.size());
  const double t = opt.compat_threshold;
  const double min_len = 1e-9;
  const double pi = std::acos(-1.0);
  const double ratio = (1.0 + std::sqrt(1.0 - t * t)) / t;  // scale compat >= t => lavg <= ratio*lmin
  // reach_at[i]: max_mid_distance for threshold t + (1 - t) * i / n_reach; a heap full of partners
  // better than the threshold shrinks the search box to the entry just below its worst.
  const int n_reach = 64;
  std::vector<double> reach_at(n_reach + 1);
  for (int i = 0; i <= n_reach; ++i) {
    const double ti = std::min(t + (1.0 - t) * i / n_reach, 1.0 - 1e-9);
    reach_at[i] = max_mid_distance(ti, (1.0 + std::sqrt(1.0 - ti * ti)) / ti);
  }
  auto level = [&](double thr) {  // largest i with its threshold <= thr
    return std::clamp(static_cast<int>(std::floor((thr - t) / (1.0 - t) * n_reach)), 0, n_reach);
  };
  const double max_turn = std::acos(t);  // angle compat >= t
  const int n_bins = 12;
  const double bin_w = pi / n_bins;
  struct Chord {
    double ax, ay, ux, uy, len, mx, my;
    double u, v;  // midpoint in its bin's frame
    i64 id;
  };
  std::vector<Chord> ch(m);
  std::vector<int> bin_of(m, -1);
  std::vector<i64> bin_count(n_bins, 0);
  for (i64 e = 0; e < m; ++e) {
    const double dx = bx[e] - ax[e], dy = by[e] - ay[e], l = std::hypot(dx, dy);
    Chord& c = ch[e];
    c = {ax[e], ay[e], 0.0, 0.0, l, 0.5 * (ax[e] + bx[e]), 0.5 * (ay[e] + by[e]), 0.0, 0.0, e};
    if (!(l >= min_len)) continue;
    c.ux = dx / l;
    c.uy = dy / l;
    double th = std::atan2(dy, dx);
    if (th < 0) th += pi;
    if (th >= pi) th -= pi;
    const int b = std::min(n_bins - 1, static_cast<int>(th / bin_w));
    bin_of[e] = b;
    ++bin_count[b];
  }
  // Per bin: frame, grid over the turned midpoints, items sorted by (row, column, edge index).
  struct Bin {
    double cs, sn, u0, v0, cw, chh;
    i64 g, first;  // first: offset of this bin's cells in cell_start
  };
  std::vector<Bin> bins(n_bins);
  i64 n_cells = 0;
  for (int b = 0; b < n_bins; ++b) {
    Bin& B = bins[b];
    const double phi = (b + 0.5) * bin_w;
    B.cs = std::cos(phi);
    B.sn = std::sin(phi);
    double u0 = std::numeric_limits<double>::infinity(), u1 = -u0, v0 = u0, v1 = -u0;
    for (i64 e = 0; e < m; ++e) {
      if (bin_of[e] != b) continue;
      Chord& c = ch[e];
      c.u = c.mx * B.cs + c.my * B.sn;
      c.v = -c.mx * B.sn + c.my * B.cs;
      u0 = std::min(u0, c.u);
      u1 = std::max(u1, c.u);
      v0 = std::min(v0, c.v);
      v1 = std::max(v1, c.v);
    }
    B.g = std::clamp<i64>(static_cast<i64>(std::sqrt(static_cast<double>(bin_count[b]) / 2.0)), 1,
                          256);
    B.u0 = bin_count[b] ? u0 : 0.0;
    B.v0 = bin_count[b] ? v0 : 0.0;
    B.cw = bin_count[b] ? std::max((u1 - u0) / B.g, 1e-12) : 1.0;
    B.chh = bin_count[b] ? std::max((v1 - v0) / B.g, 1e-12) : 1.0;
    B.first = n_cells;
    n_cells += B.g * B.g;
  }
  auto col = [&](const Bin& B, double u) {
    return std::clamp<i64>(static_cast<i64>(std::floor((u - B.u0) / B.cw)), 0, B.g - 1);
  };
  auto row = [&](const Bin& B, double v) {
    return std::clamp<i64>(static_cast<i64>(std::floor((v - B.v0) / B.chh)), 0, B.g - 1);
  };
  std::vector<i64> cell_start(n_cells + 1, 0);
  std::vector<i64> cell_of(m, -1);
  for (i64 e = 0; e < m; ++e) {
    if (bin_of[e] < 0) continue;
    const Bin& B = bins[bin_of[e]];
    cell_of[e] = B.first + row(B, ch[e].v) * B.g + col(B, ch[e].u);
    ++cell_start[cell_of[e] + 1];
  }
  for (i64 c = 0; c < n_cells; ++c) cell_start[c + 1] += cell_start[c];
  std::vector<Chord> sorted(cell_start[n_cells]);
  {
    std::vector<i64> fill(cell_start.begin(), cell_start.end() - 1);
    for (i64 e = 0; e < m; ++e)
      if (cell_of[e] >= 0) sorted[fill[cell_of[e]]++] = ch[e];
  }
  order.clear();
  for (const Chord& c : sorted) order.push_back(c.id);
  for (i64 e = 0; e < m; ++e)
    if (cell_of[e] < 0) order.push_back(e);
  // Visibility of chord B from chord A: B projected on A's line.
  auto vis = [](const Chord& A, const Chord& B) {
    const double s0 = (B.ax - A.ax) * A.ux + (B.ay - A.ay) * A.uy;
    const double bx2 = B.ax + B.ux * B.len, by2 = B.ay + B.uy * B.len;
    const double s1 = (bx2 - A.ax) * A.ux + (by2 - A.ay) * A.uy;
    const double il = std::fabs(s1 - s0);
    if (!(il > 0.0)) return 0.0;
    const double sm = 0.5 * (s0 + s1);
    const double imx = A.ax + sm * A.ux, imy = A.ay + sm * A.uy;
    const double dx = A.mx - imx, dy = A.my - imy;
    return std::max(0.0, 1.0 - 2.0 * std::sqrt(dx * dx + dy * dy) / il);
  };
  auto better = [](const Neighbor& a, const Neighbor& b2) {
    if (a.c != b2.c) return a.c > b2.c;
    return a.q < b2.q;
  };
  parallel_blocks(m, pool, [&](std::size_t b, std::size_t en) {
    // found: a heap of the kmax best so far, worst on top. Once it is full, a candidate whose
    // compatibility without visibility (an upper bound) is already below the worst is skipped,
    // so the costly visibility is computed for few pairs. The set kept is the kmax best whatever
    // the visiting order (ties: lower index), as the comparison is on the stored float value.
    std::vector<Neighbor> found;
    std::vector<std::pair<double, int>> bin_order;
    for (std::size_t ps = b; ps < en; ++ps) {
      const i64 P = static_cast<i64>(ps);
      if (bin_of[P] < 0) continue;
      found.clear();
      const Chord& CP = ch[P];
      const double lp = CP.len;
      const double rmax = reach_at[0] * lp;
      double th = std::atan2(CP.uy, CP.ux);
      if (th < 0) th += pi;
      // Bins within the angle limit, the nearest direction first (fills the heap with good
      // partners early, which tightens the bound).
      bin_order.clear();
      for (int bq = 0; bq < n_bins; ++bq) {
        if (bin_count[bq] == 0) continue;
        // Smallest undirected angle between P and any direction in the bin.
        const double lo = bq * bin_w, hi = lo + bin_w;
        double gap = 0.0;
        if (th < lo || th > hi) {
          const double d1 = std::fabs(th - lo), d2 = std::fabs(th - hi);
          gap = std::min({d1, d2, pi - d1, pi - d2});
        }
        if (gap <= max_turn + 1e-12) bin_order.push_back({gap, bq});
      }
      std::sort(bin_order.begin(), bin_order.end());
      for (const auto& [gap_unused, bq] : bin_order) {
        const Bin& B = bins[bq];
        const double pu = CP.mx * B.cs + CP.my * B.sn, pv = -CP.mx * B.sn + CP.my * B.cs;
        const i64 r0 = row(B, pv - rmax - 1e-12), r1 = row(B, pv + rmax + 1e-12);
        const i64 rp = std::clamp(row(B, pv), r0, r1);
        // Rows outward from P's own: rp, rp + 1, rp - 1, rp + 2, ...; the box (a distance across,
        // a narrower one along) is the one for the current bound: t, or the heap's worst once full.
        for (i64 step = 0; step <= 2 * (r1 - r0); ++step) {
          const i64 r = (step & 1) ? rp + (step + 1) / 2 : rp - step / 2;
          if (r < r0 || r > r1) continue;
          const bool full_now = static_cast<i64>(found.size()) == kmax;
          // The float value kept may round up a double just below it: stay a little under it.
          const double thr = full_now ? std::max(t, found.front().c * (1.0 - 1e-6)) : t;
          const double rm = reach_at[level(thr)] * lp + 1e-12;
          const double row_lo = B.v0 + r * B.chh, row_hi = row_lo + B.chh;
          if ((r > 0 && row_lo > pv + rm) || (r < B.g - 1 && row_hi < pv - rm)) continue;
          const double au = 0.5 * (1.0 - thr) * lp + rm * std::sin(0.5 * bin_w) + 1e-12;
          const i64 c0 = col(B, pu - au), c1 = col(B, pu + au);
          const i64 beg = cell_start[B.first + r * B.g + c0];
          const i64 end = cell_start[B.first + r * B.g + c1 + 1];
          for (i64 it = beg; it < end; ++it) {
            const Chord& Q = sorted[it];
            const double dx = CP.mx - Q.mx, dy = CP.my - Q.my;
            const double dm2 = dx * dx + dy * dy;
            if (dm2 > rmax * rmax || Q.id == P) continue;
            const double cosang = CP.ux * Q.ux + CP.uy * Q.uy;
            const double ca = opt.directed ? std::max(0.0, cosang) : std::fabs(cosang);
            if (ca < t) continue;
            const double lavg = 0.5 * (lp + Q.len), lmin = std::min(lp, Q.len);
            if (lavg > ratio * lmin) continue;
            const double cs = 2.0 / (lavg / lmin + lmin / lavg);
            const double cp = lavg / (lavg + std::sqrt(dm2));
            double c = ca * cs * cp;
            if (c < t) continue;
            const bool full = static_cast<i64>(found.size()) == kmax;
            if (full && static_cast<float>(c) < found.front().c) continue;
            c *= std::min(vis(CP, Q), vis(Q, CP));
            if (c < t) continue;
            const Neighbor cand{static_cast<std::int32_t>(Q.id), static_cast<float>(c),
                                cosang < 0.0 ? 1 : 0};
            if (!full) {
              found.push_back(cand);
              std::push_heap(found.begin(), found.end(), better);
            } else if (better(cand, found.front())) {
              std::pop_heap(found.begin(), found.end(), better);
              found.back() = cand;
              std::push_heap(found.begin(), found.end(), better);
            }
          }
        }
      }
      std::sort(found.begin(), found.end(), better);
      n_nb[P] = static_cast<std::int32_t>(found.size());
      std::copy(found.begin(), found.end(), nb.begin() + P * kmax);
    }
  });
}

}  // namespace

std::vector<double> resample_polylines(const double* polylines, std::int64_t m, std::int64_t p,
                                       std::int64_t q) {
  if (p < 1 || q < 2) throw InvalidArgument("resampling needs p >= 1 and q >= 2");
  std::vector<double> out(static_cast<std::size_t>(m * q * 2));
  std::vector<double> cum;
  for (i64 e = 0; e < m; ++e) resample_one(polylines + e * p * 2, p, out.data() + e * q * 2, q, cum);
  return out;
}

FdebOutput bundle_edges(const double* polylines, std::int64_t m, std::int64_t p,
                        const FdebOptions& opt, const Interrupt& interrupt) {
  if (m < 0) throw InvalidArgument("number of edges must be >= 0");
  if (p < 2) throw InvalidArgument("each edge needs at least 2 points");
  if (opt.n_cycles < 0 || opt.n_cycles > 12) throw InvalidArgument("n_cycles must be in [0, 12]");
  if (opt.n_iter < 0) throw InvalidArgument("n_iter must be >= 0");
  if (!(opt.iter_rate > 0.0 && opt.iter_rate <= 1.0))
    throw InvalidArgument("iter_rate must be in (0, 1]");
  if (!(opt.step >= 0.0) || !std::isfinite(opt.step)) throw InvalidArgument("step must be >= 0");
  if (!(opt.stiffness > 0.0) || !std::isfinite(opt.stiffness))
    throw InvalidArgument("stiffness must be > 0");
  if (!(opt.step_rate > 0.0 && opt.step_rate <= 1.0))
    throw InvalidArgument("step_rate must be in (0, 1]");
  if (!(opt.bandwidth > 0.0)) throw InvalidArgument("bandwidth must be > 0");
  if (!(opt.compat_threshold > 0.0 && opt.compat_threshold < 1.0))
    throw InvalidArgument("compat_threshold must be in (0, 1)");
  if (opt.max_neighbors < 0) throw InvalidArgument("max_neighbors must be >= 0");
  if (opt.n_points == 1 || opt.n_points < 0 || opt.n_points > 100000)
    throw InvalidArgument("n_points must be 0 (automatic) or in [2, 100000]");
  if (m > (i64{1} << 30)) throw MemoryLimit("too many edges for bundling (at most 2^30)");

  // Interior points per cycle.
  std::vector<i64> subdiv(std::max(opt.n_cycles, 1));
  for (int c = 0; c < (int)subdiv.size(); ++c)
    subdiv[c] = std::max<i64>(i64{1} << c, p - 2);
  const i64 n_last = opt.n_cycles == 0 ? std::max<i64>(p - 2, 0) : subdiv.back();
  const i64 n_out = opt.n_points > 0 ? opt.n_points : n_last + 2;
  const double mem = static_cast<double>(m) * static_cast<double>(n_last + 2) * 2.0 * 8.0 * 3.0 +
                     static_cast<double>(m) * opt.max_neighbors * sizeof(Neighbor);
  if (mem > 8.0e9) throw MemoryLimit("bundling would need more than 8 GB");

  FdebOutput out;
  out.n_points = n_out;
  if (m == 0) return out;

  // Normalised frame: bounding box centre at the origin, diagonal 1.
  double xmin = polylines[0], xmax = xmin, ymin = polylines[1], ymax = ymin;
  for (i64 k = 0; k < m * p; ++k) {
    xmin = std::min(xmin, polylines[2 * k]);
    xmax = std::max(xmax, polylines[2 * k]);
    ymin = std::min(ymin, polylines[2 * k + 1]);
    ymax = std::max(ymax, polylines[2 * k + 1]);
  }
  const double diag = std::hypot(xmax - xmin, ymax - ymin);
  if (!(diag > 0.0) || opt.n_cycles == 0 || opt.n_iter == 0 || opt.step == 0.0) {
    out.polylines = resample_polylines(polylines, m, p, n_out);
    return out;
  }
  const double cx = 0.5 * (xmin + xmax), cy = 0.5 * (ymin + ymax), inv = 1.0 / diag;
  std::vector<double> in(static_cast<std::size_t>(m * p * 2));
  for (i64 k = 0; k < m * p; ++k) {
    in[2 * k] = (polylines[2 * k] - cx) * inv;
    in[2 * k + 1] = (polylines[2 * k + 1] - cy) * inv;
  }

  // Chords.
  std::vector<double> ax(m), ay(m), bx(m), by(m), len(m);
  for (i64 e = 0; e < m; ++e) {
    ax[e] = in[e * p * 2];
    ay[e] = in[e * p * 2 + 1];
    bx[e] = in[(e * p + p - 1) * 2];
    by[e] = in[(e * p + p - 1) * 2 + 1];
    len[e] = std::hypot(bx[e] - ax[e], by[e] - ay[e]);
  }

  // Compatible neighbours per edge, the most compatible first (ties: lower index).
  const i64 kmax = opt.max_neighbors;
  std::vector<Neighbor> nb(static_cast<std::size_t>(m * kmax));
  std::vector<std::int32_t> n_nb(m, 0);
  std::vector<i64> order(m);
  std::iota(order.begin(), order.end(), i64{0});
  ThreadPool pool(opt.n_threads);  // started once for the search and every iteration
  if (kmax > 0) find_neighbors(ax, ay, bx, by, opt, pool, kmax, nb, n_nb, order);
  for (i64 e = 0; e < m; ++e) out.n_pairs += n_nb[e];
  check_interrupt(interrupt);

  // From here on edges are numbered in the search grid's order (direction bin, then position), so
  // that an edge's partners mostly lie close to it in memory; the output is put back in order.
  {
    std::vector<i64> pos(m);
    for (i64 i = 0; i < m; ++i) pos[order[i]] = i;
    std::vector<Neighbor> nb2(nb.size());
    std::vector<std::int32_t> n2(m);
    std::vector<double> in2(in.size()), len2(m);
    for (i64 i = 0; i < m; ++i) {
      const i64 e = order[i];
      n2[i] = n_nb[e];
      for (i64 q = 0; q < n_nb[e]; ++q) {
        nb2[i * kmax + q] = nb[e * kmax + q];
        nb2[i * kmax + q].q = static_cast<std::int32_t>(pos[nb[e * kmax + q].q]);
      }
      std::copy(in.begin() + e * p * 2, in.begin() + (e + 1) * p * 2, in2.begin() + i * p * 2);
      len2[i] = len[e];
    }
    nb.swap(nb2);
    n_nb.swap(n2);
    in.swap(in2);
    len.swap(len2);
  }

  // Cycles. Positions are kept as separate x and y arrays, (n + 2) per edge, while iterating.
  i64 n = subdiv[0];
  std::vector<double> cur(static_cast<std::size_t>(m * (n + 2) * 2));
  {
    std::vector<double> cum;
    for (i64 e = 0; e < m; ++e)
      resample_one(in.data() + e * p * 2, p, cur.data() + e * (n + 2) * 2, n + 2, cum);
  }
  // Positions are single precision while iterating (a 1e-7 of the drawing is far below what a
  // drawing shows; half the memory traffic and twice the SIMD width in the pull); the spring is
  // solved in double.
  std::vector<float> X, Y, X2, Y2, XR, YR;
  const float h = static_cast<float>(std::min(opt.bandwidth, 1e30));
  // A polyline's springs hold its own shape: rest is the input resampled to the current points
  // (bend0: its second differences). A segment's rest shape is straight, so it needs neither.
  std::vector<double> rest, bend0;
  auto make_rest = [&](i64 st, std::vector<double>& r) {
    std::vector<double> cum;
    r.resize(static_cast<std::size_t>(m * st * 2));
    for (i64 e = 0; e < m; ++e) resample_one(in.data() + e * p * 2, p, r.data() + e * st * 2, st, cum);
  };
  if (p > 2) make_rest(n + 2, rest);
  for (int c = 0; c < opt.n_cycles; ++c) {
    if (subdiv[c] != n) {
      const i64 n2 = subdiv[c];
      std::vector<double> res(static_cast<std::size_t>(m * (n2 + 2) * 2));
      if (p > 2) {
        // New points: the rest shape plus the displacement from it, interpolated along the edge
        // (resampling the bent curve itself would cut the input's corners at every cycle).
        std::vector<double> rest2;
        make_rest(n2 + 2, rest2);
        for (i64 e = 0; e < m; ++e)
          for (i64 j = 0; j < n2 + 2; ++j) {
            const double u = static_cast<double>(j) * (n + 1) / (n2 + 1);
            const i64 i0 = std::min<i64>(static_cast<i64>(u), n);
            const double f = u - static_cast<double>(i0);
            for (int d = 0; d < 2; ++d) {
              const double* cu = cur.data() + e * (n + 2) * 2 + d;
              const double* ro = rest.data() + e * (n + 2) * 2 + d;
              const double d0 = cu[2 * i0] - ro[2 * i0], d1 = cu[2 * (i0 + 1)] - ro[2 * (i0 + 1)];
              res[(e * (n2 + 2) + j) * 2 + d] = rest2[(e * (n2 + 2) + j) * 2 + d] + d0 + f * (d1 - d0);
            }
          }
        rest.swap(rest2);
      } else {
        std::vector<double> cum;
        for (i64 e = 0; e < m; ++e)
          resample_one(cur.data() + e * (n + 2) * 2, n + 2, res.data() + e * (n2 + 2) * 2, n2 + 2,
                       cum);
      }
      cur.swap(res);
      n = n2;
    }
    const i64 st = n + 2;
    if (p > 2) {
      bend0.assign(static_cast<std::size_t>(m * n * 2), 0.0);
      for (i64 e = 0; e < m; ++e)
        for (i64 k = 1; k <= n; ++k)
          for (int d = 0; d < 2; ++d) {
            const double* r = rest.data() + e * st * 2 + d;
            bend0[(e * n + k - 1) * 2 + d] = r[2 * (k - 1)] - 2.0 * r[2 * k] + r[2 * (k + 1)];
          }
    }
    X.resize(m * st);
    Y.resize(m * st);
    for (i64 k = 0; k < m * st; ++k) {
      X[k] = static_cast<float>(cur[2 * k]);
      Y[k] = static_cast<float>(cur[2 * k + 1]);
    }
    X2 = X;
    Y2 = Y;
    XR.resize(m * st);
    YR.resize(m * st);
    const double S = opt.step * std::pow(opt.step_rate, c);
    const float Sf = static_cast<float>(S);
    const int iters =
        std::max(1, static_cast<int>(std::lround(opt.n_iter * std::pow(opt.iter_rate, c))));
    for (int it = 0; it < iters; ++it) {
      for (i64 e = 0; e < m; ++e)
        for (i64 k = 0; k < st; ++k) {
          XR[e * st + k] = X[e * st + st - 1 - k];
          YR[e * st + k] = Y[e * st + st - 1 - k];
        }
      parallel_blocks(m, pool, [&](std::size_t b, std::size_t en) {
        std::vector<float> fx(st), fy(st);
        std::vector<double> rx(n), ry(n), cp(n);
        for (std::size_t ps = b; ps < en; ++ps) {
          const i64 P = static_cast<i64>(ps);
          const float* xp = X.data() + P * st;
          const float* yp = Y.data() + P * st;
          const Neighbor* nbp = nb.data() + P * kmax;
          const i64 cnt = n_nb[P];
          std::fill(fx.begin(), fx.end(), 0.0f);
          std::fill(fy.begin(), fy.end(), 0.0f);
          double wsum = 0.0;
          for (i64 q = 0; q < cnt; ++q) {
            const float cq = nbp[q].c;
            wsum += cq;
            // A partner pointing the other way is read backwards (from the reversed copy).
            const i64 off = static_cast<i64>(nbp[q].q) * st;
            const float* xq = (nbp[q].flip ? XR.data() : X.data()) + off;
            const float* yq = (nbp[q].flip ? YR.data() : Y.data()) + off;
            pull(xp, yp, xq, yq, n, cq, Sf, h, fx.data(), fy.data());
          }
          const double norm = S / (1.0 + wsum);
          for (i64 k = 1; k <= n; ++k) {
            rx[k - 1] = xp[k] + norm * fx[k];
            ry[k - 1] = yp[k] + norm * fy[k];
          }
          // Implicit spring: (I - a L) x' = rhs - a L rest, endpoints fixed (Thomas algorithm).
          const double L = std::max(len[P], 1e-6);
          const double a = S * opt.stiffness * static_cast<double>((n + 1) * (n + 1)) / L;
          const double diagv = 1.0 + 2.0 * a;
          if (p > 2) {
            const double* b0 = bend0.data() + P * n * 2;
            for (i64 k = 0; k < n; ++k) {
              rx[k] -= a * b0[2 * k];
              ry[k] -= a * b0[2 * k + 1];
            }
          }
          rx[0] += a * xp[0];
          ry[0] += a * yp[0];
          rx[n - 1] += a * xp[n + 1];
          ry[n - 1] += a * yp[n + 1];
          double mdiag = diagv;
          cp[0] = -a / mdiag;
          rx[0] /= mdiag;
          ry[0] /= mdiag;
          for (i64 k = 1; k < n; ++k) {
            mdiag = diagv + a * cp[k - 1];
            cp[k] = -a / mdiag;
            rx[k] = (rx[k] + a * rx[k - 1]) / mdiag;
            ry[k] = (ry[k] + a * ry[k - 1]) / mdiag;
          }
          for (i64 k = n - 2; k >= 0; --k) {
            rx[k] -= cp[k] * rx[k + 1];
            ry[k] -= cp[k] * ry[k + 1];
          }
          float* xn = X2.data() + P * st;
          float* yn = Y2.data() + P * st;
          for (i64 k = 1; k <= n; ++k) {
            xn[k] = static_cast<float>(rx[k - 1]);
            yn[k] = static_cast<float>(ry[k - 1]);
          }
        }
      });
      X.swap(X2);
      Y.swap(Y2);
      check_interrupt(interrupt);
    }
    for (i64 k = 0; k < m * st; ++k) {
      cur[2 * k] = X[k];
      cur[2 * k + 1] = Y[k];
    }
  }

  // Back to the input order and frame, resampled to the output count; endpoints exactly as given.
  {
    std::vector<double> back(cur.size());
    const i64 st = n + 2;
    for (i64 i = 0; i < m; ++i)
      std::copy(cur.begin() + i * st * 2, cur.begin() + (i + 1) * st * 2,
                back.begin() + order[i] * st * 2);
    cur.swap(back);
  }
  std::vector<double> res = resample_polylines(cur.data(), m, n + 2, n_out);
  for (i64 k = 0; k < m * n_out; ++k) {
    res[2 * k] = res[2 * k] * diag + cx;
    res[2 * k + 1] = res[2 * k + 1] * diag + cy;
  }
  for (i64 e = 0; e < m; ++e) {
    res[e * n_out * 2] = polylines[e * p * 2];
    res[e * n_out * 2 + 1] = polylines[e * p * 2 + 1];
    res[(e * n_out + n_out - 1) * 2] = polylines[(e * p + p - 1) * 2];
    res[(e * n_out + n_out - 1) * 2 + 1] = polylines[(e * p + p - 1) * 2 + 1];
  }
  out.polylines = std::move(res);
  return out;
}

}  // namespace cnnvis
