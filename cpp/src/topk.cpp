#include "cnnvis/topk.hpp"

#include "cnnvis/common.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#if defined(__GNUC__)
#include <immintrin.h>
#endif
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
  // (the bounds tests cannot fail on lists the caller checked; they keep every write inside
  // need and pending whatever the lists hold)
  for (std::size_t j = 0; j < nc * k; ++j) {
    const std::int64_t s = lists.samples[j];
    const std::uint64_t slot = static_cast<std::uint64_t>(lists.slots[j]);
    if (s < start || static_cast<std::uint64_t>(s - start) >= batch || slot >= k) continue;
    need[s - start] = 1;
    sums.pending[(j / k) * k + slot] = 1;
  }
  return true;
}

namespace {

#ifdef CNNVIS_SSE
// The eight lanes of sums (s) and maxima (m), as two 4-lane halves already added / maxed into
// sv / mv, combined in the fixed order, then the tail p[body..len) in order.
inline void finish_lanes(__m128 sv, __m128 mv, const float* p, std::size_t body, std::size_t len,
                         float& sum, float& mx) {
  sv = _mm_add_ps(sv, _mm_movehl_ps(sv, sv));
  float total = _mm_cvtss_f32(_mm_add_ss(sv, _mm_shuffle_ps(sv, sv, 1)));
  mv = _mm_max_ps(mv, _mm_movehl_ps(mv, mv));
  float top = _mm_cvtss_f32(_mm_max_ss(mv, _mm_shuffle_ps(mv, mv, 1)));
  for (std::size_t i = body; i < len; ++i) {
    total += p[i];
    top = p[i] > top ? p[i] : top;
  }
  sum = total;
  mx = top;
}
#endif

// Sum (in eight float lanes) and maximum of p[0..len), in one branch-free pass. Lane j sums
// p[j], p[j + 8], ...; the lanes are then added as (0+4, 1+5, 2+6, 3+7), then (0+2, 1+3), then
// the two, and the tail after them in order: every variant below keeps this order, so the sums
// are the same bits whichever runs. A NaN never wins a max here (it reaches the sum instead).
inline void row_sum_max(const float* p, std::size_t len, float& sum, float& mx) {
#ifdef CNNVIS_SSE
  if (len >= 8) {
    const float lowest = -std::numeric_limits<float>::infinity();
    __m128 s0 = _mm_setzero_ps(), s1 = _mm_setzero_ps();
    __m128 m0 = _mm_set1_ps(lowest), m1 = _mm_set1_ps(lowest);
    std::size_t i = 0;
    for (; i + 8 <= len; i += 8) {
      const __m128 v0 = _mm_loadu_ps(p + i), v1 = _mm_loadu_ps(p + i + 4);
      s0 = _mm_add_ps(s0, v0);
      s1 = _mm_add_ps(s1, v1);
      m0 = _mm_max_ps(v0, m0);  // m0 where v0 is NaN
      m1 = _mm_max_ps(v1, m1);
    }
    finish_lanes(_mm_add_ps(s0, s1), _mm_max_ps(m0, m1), p, i, len, sum, mx);
    return;
  }
#endif
  float total = 0.0f, top = -std::numeric_limits<float>::infinity();
  for (std::size_t i = 0; i < len; ++i) {
    total += p[i];
    top = p[i] > top ? p[i] : top;
  }
  sum = total;
  mx = top;
}

#if defined(CNNVIS_SSE) && defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define CNNVIS_AVX2 1
#define CNNVIS_TARGET_AVX2 __attribute__((target("avx2")))

// The lanes of s and m combined as row_sum_max does, then the tail p[body..len) in order.
CNNVIS_TARGET_AVX2 inline void finish_avx2(__m256 s, __m256 m, const float* p, std::size_t body,
                                           std::size_t len, float& sum, float& mx) {
  finish_lanes(_mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)),
               _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1)), p, body, len,
               sum, mx);
}

// row_sum_max of `rows` rows of len >= 8 with 256-bit registers, for CPUs with AVX2 (chosen at
// run time), four rows at a time: a lane's sum is a chain of dependent adds, and four
// independent chains keep the adder busy where one row would wait on each add's latency.
CNNVIS_TARGET_AVX2 void rows_sum_max_avx2(const float* x, std::size_t rows, std::size_t len,
                                          float* sum, float* mx) {
  const __m256 lowest = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  const std::size_t body = len & ~static_cast<std::size_t>(7);
  std::size_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const float* p0 = x + r * len;
    const float *p1 = p0 + len, *p2 = p1 + len, *p3 = p2 + len;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    __m256 m0 = lowest, m1 = lowest, m2 = lowest, m3 = lowest;
    for (std::size_t i = 0; i < body; i += 8) {
      const __m256 v0 = _mm256_loadu_ps(p0 + i), v1 = _mm256_loadu_ps(p1 + i);
      const __m256 v2 = _mm256_loadu_ps(p2 + i), v3 = _mm256_loadu_ps(p3 + i);
      s0 = _mm256_add_ps(s0, v0);
      s1 = _mm256_add_ps(s1, v1);
      s2 = _mm256_add_ps(s2, v2);
      s3 = _mm256_add_ps(s3, v3);
      m0 = _mm256_max_ps(v0, m0);  // m0 where v0 is NaN
      m1 = _mm256_max_ps(v1, m1);
      m2 = _mm256_max_ps(v2, m2);
      m3 = _mm256_max_ps(v3, m3);
    }
    finish_avx2(s0, m0, p0, body, len, sum[r], mx[r]);
    finish_avx2(s1, m1, p1, body, len, sum[r + 1], mx[r + 1]);
    finish_avx2(s2, m2, p2, body, len, sum[r + 2], mx[r + 2]);
    finish_avx2(s3, m3, p3, body, len, sum[r + 3], mx[r + 3]);
  }
  for (; r < rows; ++r) {
    const float* p = x + r * len;
    __m256 s = _mm256_setzero_ps(), m = lowest;
    for (std::size_t i = 0; i < body; i += 8) {
      const __m256 v = _mm256_loadu_ps(p + i);
      s = _mm256_add_ps(s, v);
      m = _mm256_max_ps(v, m);
    }
    finish_avx2(s, m, p, body, len, sum[r], mx[r]);
  }
}

// first_index with 256-bit compares.
CNNVIS_TARGET_AVX2 std::int64_t first_equal_avx2(const float* p, std::size_t len, float value) {
  const __m256 v = _mm256_set1_ps(value);
  std::size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p + i), v, _CMP_EQ_OQ));
    if (hit != 0) return static_cast<std::int64_t>(i) + __builtin_ctz(static_cast<unsigned>(hit));
  }
  for (; i < len; ++i)
    if (p[i] == value) return static_cast<std::int64_t>(i);
  return 0;
}

bool have_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}
#endif

}  // namespace

// Single-threaded on purpose: these run between the layers of a torch forward pass, whose own
// threads spin after each op; threads started here competed with them and made recording slower
// (1.54x against 1.41x of the bare pass for ResNet-18 on 2 cores).
void mean_max(const float* x, std::size_t rows, std::size_t len, float* mean, float* max) {
  if (len == 1) {  // (batch, channels) outputs: each value is its own mean and maximum
    std::memcpy(mean, x, rows * sizeof(float));
    std::memcpy(max, x, rows * sizeof(float));
    return;
  }
#ifdef CNNVIS_AVX2
  if (len >= 8 && have_avx2()) {
    rows_sum_max_avx2(x, rows, len, mean, max);  // sums in mean, turned into means below
  } else
#endif
  {
    for (std::size_t r = 0; r < rows; ++r) row_sum_max(x + r * len, len, mean[r], max[r]);
  }
  const double n = static_cast<double>(len);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (std::size_t r = 0; r < rows; ++r) {
    const float sum = mean[r];
    const bool bad = sum != sum;  // a NaN anywhere reaches the sum (the max skips it)
    mean[r] = bad ? nan : static_cast<float>(static_cast<double>(sum) / n);
    max[r] = bad ? nan : max[r];
  }
}

std::int64_t first_index(const float* p, std::size_t len, float value) {
  if (!(value > -std::numeric_limits<float>::infinity())) return 0;  // NaN or -inf: 0
#ifdef CNNVIS_AVX2
  if (have_avx2()) return first_equal_avx2(p, len, value);
#endif
  for (std::size_t i = 0; i < len; ++i)
    if (p[i] == value) return static_cast<std::int64_t>(i);
  return 0;
}

void candidate_locs(const Lists& lists, const float* x, std::size_t batch, std::size_t len,
                    const float* max, std::int64_t* loc) {
  const std::size_t nc = lists.n_channels, k = lists.k;
  for (std::size_t i = 0; i < batch; ++i)
    for (std::size_t c = 0; c < nc; ++c) {
      const std::size_t r = i * nc + c;
      loc[r] = max[r] > lists.values[c * k + k - 1] ? first_index(x + r * len, len, max[r]) : 0;
    }
}

void spatial_stats(const float* x, std::size_t rows, std::size_t len, float* mean, float* max,
                   std::int64_t* argmax) {
  mean_max(x, rows, len, mean, max);
  for (std::size_t r = 0; r < rows; ++r) argmax[r] = first_index(x + r * len, len, max[r]);
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

void check_range(const std::int64_t* v, std::size_t n, std::int64_t lo, std::int64_t hi,
                 const std::string& what, const std::string& range) {
  for (std::size_t i = 0; i < n; ++i)
    if (v[i] < lo || v[i] >= hi)
      throw InvalidArgument(what + " " + std::to_string(v[i]) + " outside " + range);
}

void check_reservoir(const Reservoir& r) {
  if (r.n_classes < 1) throw InvalidArgument("there must be at least one class");
  const auto n_rows = static_cast<std::int64_t>(r.n_rows);
  for (std::size_t c = 0; c < r.n_classes; ++c)
    // offset + caps <= n_rows, written so that it cannot overflow
    if (r.caps[c] < 0 || r.offset[c] < 0 || r.offset[c] > n_rows - r.caps[c] || r.seen[c] < 0)
      throw InvalidArgument("class " + std::to_string(c) + ": its rows " +
                            std::to_string(r.offset[c]) + " + " + std::to_string(r.caps[c]) +
                            " must lie inside position (" + std::to_string(n_rows) +
                            " rows) and its count be >= 0");
}

void check_offer(const Reservoir& r, const std::int64_t* labels, std::size_t n,
                 std::int64_t start) {
  const std::int64_t most = std::numeric_limits<std::int64_t>::max();
  const auto count = static_cast<std::int64_t>(n);  // n elements of an array: far below 2^63
  if (start < 0) throw InvalidArgument("start must be >= 0");
  if (start > most - count)
    throw InvalidArgument("start + the batch size must stay below 2^63");
  for (std::size_t q = 0; q < r.n_rows; ++q)
    if (r.position[q] >= start)
      throw InvalidArgument("position holds samples from start on: batches must be offered in "
                            "order");
  for (std::size_t c = 0; c < r.n_classes; ++c)
    if (r.seen[c] > most - count)
      throw InvalidArgument("class " + std::to_string(c) + ": its count " +
                            std::to_string(r.seen[c]) + " would pass 2^63 - 1");
  check_range(labels, n, 0, static_cast<std::int64_t>(r.n_classes), "label",
              "0.." + std::to_string(r.n_classes - 1));
}

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
    const std::size_t at = index != nullptr ? static_cast<std::size_t>(index[i]) : i;
    const float* src = x + at * c * plane;
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

void check_boxes(std::size_t n_images, std::size_t height, std::size_t width,
                 const std::int64_t* slot, const std::int64_t* y0, const std::int64_t* x0,
                 std::size_t n, std::size_t h, std::size_t w) {
  if (h < 1 || w < 1 || h > height || w > width)
    throw InvalidArgument("box size " + std::to_string(h) + "x" + std::to_string(w) +
                          " does not fit images of " + std::to_string(height) + "x" +
                          std::to_string(width));
  // y0 + h <= height as y0 <= height - h (h <= height above): no sum that can overflow
  const auto last_y = static_cast<std::int64_t>(height - h);
  const auto last_x = static_cast<std::int64_t>(width - w);
  const auto images = static_cast<std::int64_t>(n_images);
  for (std::size_t i = 0; i < n; ++i)
    if (slot[i] < 0 || slot[i] >= images || y0[i] < 0 || y0[i] > last_y || x0[i] < 0 ||
        x0[i] > last_x)
      throw InvalidArgument("box " + std::to_string(i) + " (image " + std::to_string(slot[i]) +
                            ", at " + std::to_string(y0[i]) + "," + std::to_string(x0[i]) +
                            ") lies outside the store");
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
