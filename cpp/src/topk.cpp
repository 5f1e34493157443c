#include "cnnvis/topk.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define CNNVIS_SSE 1
#endif

namespace cnnvis::topk {

std::size_t merge(Lists& lists, const float* batch_max, const std::int64_t* batch_loc,
                  std::size_t batch, std::int64_t start) {
  const std::size_t k = lists.k, nc = lists.n_channels;
  std::size_t inserted = 0;
  for (std::size_t c = 0; c < nc; ++c) {
    float* val = lists.values + c * k;
    std::int64_t* smp = lists.samples + c * k;
    std::int64_t* loc = lists.locs + c * k;
    std::int64_t* slot = lists.slots + c * k;
    for (std::size_t i = 0; i < batch; ++i) {
      const float v = batch_max[i * nc + c];
      if (!(v > val[k - 1])) continue;  // ties keep the earlier entry
      // after every entry >= v: the position of the first entry < v
      std::size_t p = k - 1;
      while (p > 0 && val[p - 1] < v) --p;
      const std::int64_t freed = slot[k - 1];
      for (std::size_t q = k - 1; q > p; --q) {
        val[q] = val[q - 1];
        smp[q] = smp[q - 1];
        loc[q] = loc[q - 1];
        slot[q] = slot[q - 1];
      }
      val[p] = v;
      smp[p] = start + static_cast<std::int64_t>(i);
      loc[p] = batch_loc[i * nc + c];
      slot[p] = freed;
      ++inserted;
    }
  }
  return inserted;
}

bool accumulate(Lists& lists, Sums& sums, const float* mean, const float* batch_max,
                const std::int64_t* batch_loc, std::size_t batch, std::int64_t start,
                const std::int64_t* labels, const std::int64_t* pooled_row, std::uint8_t* need) {
  const std::size_t nc = lists.n_channels, k = lists.k;
  const std::size_t n = batch * nc;
  // NaN and inf are the floats whose exponent bits are all set: one branch-free pass
  std::uint32_t all_set = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, mean + i, sizeof bits);
    all_set |= static_cast<std::uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  if (all_set) return false;
  for (std::size_t i = 0; i < batch; ++i) {
    const float* m = mean + i * nc;
    double* sum = sums.class_sums + static_cast<std::size_t>(labels[i]) * nc;
    for (std::size_t c = 0; c < nc; ++c) sum[c] += static_cast<double>(m[c]);
    if (pooled_row[i] >= 0)
      std::memcpy(sums.pooled + static_cast<std::size_t>(pooled_row[i]) * nc, m,
                  nc * sizeof(float));
  }
  // the merge, then the new entries: samples of this batch still in a list after it
  merge(lists, batch_max, batch_loc, batch, start);
  for (std::size_t j = 0; j < nc * k; ++j) {
    const std::int64_t s = lists.samples[j];
    if (s < start) continue;
    need[s - start] = 1;
    sums.pending[(j / k) * k + static_cast<std::size_t>(lists.slots[j])] = 1;
  }
  return true;
}

namespace {

// Sum (in eight float lanes), maximum and the first index of the maximum of p[0..len), in one
// branch-free pass: each lane keeps the first index of its own maximum (strict >), and the first
// index overall is the smallest among the lanes that hold the maximum. A NaN never compares
// greater, so it is skipped here and caught by the sum.
inline void row_stats(const float* p, std::size_t len, double& sum, float& mx, std::int64_t& at) {
  const float lowest = -std::numeric_limits<float>::infinity();
  std::size_t i = 0;
  float total = 0.0f, top = lowest;
  std::int32_t first = static_cast<std::int32_t>(len);
#ifdef CNNVIS_SSE
  if (len >= 8) {
    __m128 s0 = _mm_setzero_ps(), s1 = _mm_setzero_ps();
    __m128 m0 = _mm_set1_ps(lowest), m1 = _mm_set1_ps(lowest);
    __m128i i0 = _mm_setzero_si128(), i1 = _mm_setzero_si128();
    __m128i c0 = _mm_setr_epi32(0, 1, 2, 3), c1 = _mm_setr_epi32(4, 5, 6, 7);
    const __m128i step = _mm_set1_epi32(8);
    for (; i + 8 <= len; i += 8) {
      const __m128 v0 = _mm_loadu_ps(p + i), v1 = _mm_loadu_ps(p + i + 4);
      s0 = _mm_add_ps(s0, v0);
      s1 = _mm_add_ps(s1, v1);
      const __m128i g0 = _mm_castps_si128(_mm_cmpgt_ps(v0, m0));
      const __m128i g1 = _mm_castps_si128(_mm_cmpgt_ps(v1, m1));
      i0 = _mm_or_si128(_mm_and_si128(g0, c0), _mm_andnot_si128(g0, i0));
      i1 = _mm_or_si128(_mm_and_si128(g1, c1), _mm_andnot_si128(g1, i1));
      m0 = _mm_max_ps(v0, m0);  // m0 where v0 is NaN, as the comparison above
      m1 = _mm_max_ps(v1, m1);
      c0 = _mm_add_epi32(c0, step);
      c1 = _mm_add_epi32(c1, step);
    }
    // horizontal sum and maximum of the eight lanes
    __m128 sv = _mm_add_ps(s0, s1);
    sv = _mm_add_ps(sv, _mm_movehl_ps(sv, sv));
    total = _mm_cvtss_f32(_mm_add_ss(sv, _mm_shuffle_ps(sv, sv, 1)));
    __m128 mv = _mm_max_ps(m0, m1);
    mv = _mm_max_ps(mv, _mm_movehl_ps(mv, mv));
    top = _mm_cvtss_f32(_mm_max_ss(mv, _mm_shuffle_ps(mv, mv, 1)));
    // the smallest lane index among the lanes equal to the maximum
    const __m128 tv = _mm_set1_ps(top);
    const __m128i none = _mm_set1_epi32(static_cast<std::int32_t>(len));
    const __m128i e0 = _mm_castps_si128(_mm_cmpeq_ps(m0, tv));
    const __m128i e1 = _mm_castps_si128(_mm_cmpeq_ps(m1, tv));
    __m128i a = _mm_or_si128(_mm_and_si128(e0, i0), _mm_andnot_si128(e0, none));
    __m128i b = _mm_or_si128(_mm_and_si128(e1, i1), _mm_andnot_si128(e1, none));
    __m128i lt = _mm_cmplt_epi32(a, b);
    a = _mm_or_si128(_mm_and_si128(lt, a), _mm_andnot_si128(lt, b));
    b = _mm_shuffle_epi32(a, _MM_SHUFFLE(1, 0, 3, 2));
    lt = _mm_cmplt_epi32(a, b);
    a = _mm_or_si128(_mm_and_si128(lt, a), _mm_andnot_si128(lt, b));
    b = _mm_shuffle_epi32(a, _MM_SHUFFLE(2, 3, 0, 1));
    lt = _mm_cmplt_epi32(a, b);
    a = _mm_or_si128(_mm_and_si128(lt, a), _mm_andnot_si128(lt, b));
    first = _mm_cvtsi128_si32(a);
  }
#endif
  for (; i < len; ++i) {  // the tail (or the whole row without SSE), after every lane index
    const float v = p[i];
    total += v;
    const bool gt = v > top;
    first = gt ? static_cast<std::int32_t>(i) : first;
    top = gt ? v : top;
  }
  sum = static_cast<double>(total);
  mx = top;
  at = first < static_cast<std::int32_t>(len) ? first : 0;  // 0 for an all-NaN or -inf row
}

}  // namespace

// Single-threaded on purpose: these run between the layers of a torch forward pass, whose own
// threads spin after each op; threads started here competed with them and made recording slower
// (1.54x against 1.41x of the bare pass for ResNet-18 on 2 cores).
void spatial_stats(const float* x, std::size_t rows, std::size_t len, float* mean, float* max,
                   std::int64_t* argmax) {
  if (len == 1) {  // (batch, channels) outputs: each value is its own mean and maximum
    std::memcpy(mean, x, rows * sizeof(float));
    std::memcpy(max, x, rows * sizeof(float));
    std::memset(argmax, 0, rows * sizeof(std::int64_t));
    return;
  }
  for (std::size_t r = 0; r < rows; ++r) {
    double sum;
    float mx;
    std::int64_t at;
    row_stats(x + r * len, len, sum, mx, at);
    if (sum != sum) {  // a NaN anywhere reaches the sum (the max comparisons skip it)
      mean[r] = max[r] = std::numeric_limits<float>::quiet_NaN();
      argmax[r] = 0;
      continue;
    }
    mean[r] = static_cast<float>(sum / static_cast<double>(len));
    max[r] = mx;
    argmax[r] = at;
  }
}

namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// uniform in 0..bound-1, without modulo bias (draws past the last whole multiple are redrawn)
std::uint64_t below(std::uint64_t& state, std::uint64_t bound) {
  const std::uint64_t most = std::numeric_limits<std::uint64_t>::max();
  const std::uint64_t limit = most - most % bound;
  std::uint64_t x;
  do x = splitmix64(state);
  while (x >= limit);
  return x % bound;
}

}  // namespace

void reservoir_offer(Reservoir& r, const std::int64_t* labels, std::size_t n, std::int64_t start,
                     std::int64_t* row) {
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = static_cast<std::size_t>(labels[i]);
    const std::int64_t m = r.seen[c]++, cap = r.caps[c];
    std::int64_t j = m;  // the class still has free rows: no draw
    if (m >= cap) j = cap == 0 ? 0 : static_cast<std::int64_t>(below(*r.rng, m + 1));
    if (j >= cap) {
      row[i] = -1;
      continue;
    }
    const std::int64_t at = r.offset[c] + j;
    if (r.position[at] >= start) row[r.position[at] - start] = -1;  // replaced in this batch
    r.position[at] = start + static_cast<std::int64_t>(i);
    row[i] = at;
  }
}

bool softmax_top(const float* z, std::size_t rows, std::size_t n, std::int64_t* top,
                 float* probability) {
  for (std::size_t i = 0; i < rows * n; ++i)
    if (!std::isfinite(z[i])) return false;
  for (std::size_t r = 0; r < rows; ++r) {
    const float* v = z + r * n;
    std::size_t best = 0;
    for (std::size_t q = 1; q < n; ++q)
      if (v[q] > v[best]) best = q;
    float sum = 0.0f;
    for (std::size_t q = 0; q < n; ++q) sum += std::exp(v[q] - v[best]);
    top[r] = static_cast<std::int64_t>(best);
    probability[r] = 1.0f / sum;
  }
  return true;
}

void quantize_images(const float* x, std::size_t c, std::size_t h, std::size_t w,
                     const float* low, const float* high, const std::int64_t* index,
                     std::size_t n, std::uint8_t* out) {
  const std::size_t plane = h * w;
  std::vector<std::uint8_t> row(plane);  // one channel, contiguous: the loop vectorises
  for (std::size_t i = 0; i < n; ++i) {
    const float* src = x + static_cast<std::size_t>(index[i]) * c * plane;
    std::uint8_t* dst = out + i * plane * c;
    for (std::size_t ch = 0; ch < c; ++ch) {
      const float lo = low[ch], range = high[ch] - low[ch];
      const float* p = src + ch * plane;
      for (std::size_t q = 0; q < plane; ++q) {
        float v = (p[q] - lo) / range;
        v = v > 1.0f ? 1.0f : v;
        v = v >= 0.0f ? v : 0.0f;  // also NaN
        // adding and subtracting 2^23 rounds a float in [0, 2^23) to an integer, half to even
        // (as nearbyint in the default rounding mode, without its library call)
        row[q] = static_cast<std::uint8_t>(static_cast<int>((v * 255.0f + 8388608.0f) - 8388608.0f));
      }
      if (c == 1) {
        std::memcpy(dst, row.data(), plane);
      } else {
        for (std::size_t q = 0; q < plane; ++q) dst[q * c + ch] = row[q];
      }
    }
  }
}

void gather_boxes(const std::uint8_t* store, std::size_t height, std::size_t width, std::size_t c,
                  const std::int64_t* slot, const std::int64_t* y0, const std::int64_t* x0,
                  std::size_t n, std::size_t h, std::size_t w, std::uint8_t* out) {
  const std::size_t row_bytes = w * c, image_row = width * c;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t* src = store + static_cast<std::size_t>(slot[i]) * height * image_row +
                              static_cast<std::size_t>(y0[i]) * image_row +
                              static_cast<std::size_t>(x0[i]) * c;
    for (std::size_t y = 0; y < h; ++y, src += image_row, out += row_bytes)
      std::memcpy(out, src, row_bytes);
  }
}

}  // namespace cnnvis::topk
