// t-SNE part 3: the Morton-ordered flat tree over the embedding and the interaction lists of
// point groups (header: the gradient and the placement of new points instantiate it).
#pragma once

#include "tsne_common.hpp"

namespace cnnvis::tsne {

// ----------------------------------------------------------------------------------------------
// The tree
// ----------------------------------------------------------------------------------------------

namespace internal {

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

}  // namespace internal

}  // namespace cnnvis::tsne
