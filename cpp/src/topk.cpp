#include "cnnvis/topk.hpp"

#include <cstring>
#include <limits>

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

namespace {

// Sum (in eight float lanes, combined in double) and maximum of p[0..len).
inline void row_sum_max(const float* p, std::size_t len, double& sum, float& mx) {
  const float lowest = -std::numeric_limits<float>::infinity();
  float s[8] = {}, m[8];
  for (float& v : m) v = lowest;
  std::size_t i = 0;
#ifdef CNNVIS_SSE
  // the compiler does not vectorise the max lanes by itself; same lanes, same results
  __m128 s0 = _mm_setzero_ps(), s1 = _mm_setzero_ps();
  __m128 m0 = _mm_set1_ps(lowest), m1 = _mm_set1_ps(lowest);
  for (; i + 8 <= len; i += 8) {
    const __m128 v0 = _mm_loadu_ps(p + i), v1 = _mm_loadu_ps(p + i + 4);
    s0 = _mm_add_ps(s0, v0);
    s1 = _mm_add_ps(s1, v1);
    m0 = _mm_max_ps(v0, m0);  // m0 where v0 is NaN, as the scalar comparison below
    m1 = _mm_max_ps(v1, m1);
  }
  _mm_storeu_ps(s, s0);
  _mm_storeu_ps(s + 4, s1);
  _mm_storeu_ps(m, m0);
  _mm_storeu_ps(m + 4, m1);
#else
  for (; i + 8 <= len; i += 8)
    for (std::size_t j = 0; j < 8; ++j) {
      s[j] += p[i + j];
      m[j] = p[i + j] > m[j] ? p[i + j] : m[j];
    }
#endif
  sum = 0.0;
  mx = lowest;
  for (std::size_t j = 0; j < 8; ++j) {
    sum += s[j];
    mx = m[j] > mx ? m[j] : mx;
  }
  for (; i < len; ++i) {
    sum += p[i];
    mx = p[i] > mx ? p[i] : mx;
  }
}

}  // namespace

void spatial_stats(const float* x, std::size_t rows, std::size_t len, float* mean, float* max,
                   std::int64_t* argmax, const float* kth, std::size_t channels) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* p = x + r * len;
    double sum;
    float mx;
    row_sum_max(p, len, sum, mx);
    if (sum != sum) {  // a NaN anywhere reaches the sum (the max comparisons skip it)
      mean[r] = max[r] = std::numeric_limits<float>::quiet_NaN();
      argmax[r] = 0;
      continue;
    }
    std::int64_t at = 0;
    const bool wanted = kth == nullptr || mx > kth[r % channels];
    for (std::size_t q = 0; wanted && q < len; ++q)
      if (p[q] == mx) {  // the first occurrence, as torch's argmax
        at = static_cast<std::int64_t>(q);
        break;
      }
    mean[r] = static_cast<float>(sum / static_cast<double>(len));
    max[r] = mx;
    argmax[r] = at;
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
