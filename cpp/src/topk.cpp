#include "cnnvis/topk.hpp"

#include <cstring>
#include <limits>

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

void spatial_stats(const float* x, std::size_t rows, std::size_t len, float* mean, float* max,
                   std::int64_t* argmax) {
  constexpr std::size_t lanes = 8;  // independent lanes let the compiler use vector adds and maxes
  const float lowest = -std::numeric_limits<float>::infinity();
  for (std::size_t r = 0; r < rows; ++r) {
    const float* p = x + r * len;
    float s[lanes] = {}, m[lanes];
    for (std::size_t j = 0; j < lanes; ++j) m[j] = lowest;
    bool nan = false;
    std::size_t i = 0;
    for (; i + lanes <= len; i += lanes)
      for (std::size_t j = 0; j < lanes; ++j) {
        const float v = p[i + j];
        s[j] += v;
        m[j] = v > m[j] ? v : m[j];
      }
    double sum = 0.0;
    float mx = lowest;
    for (std::size_t j = 0; j < lanes; ++j) {
      sum += s[j];
      mx = m[j] > mx ? m[j] : mx;
    }
    for (; i < len; ++i) {
      sum += p[i];
      mx = p[i] > mx ? p[i] : mx;
    }
    if (sum != sum) nan = true;  // a NaN anywhere reaches the sum (the max comparisons skip it)
    std::int64_t at = 0;
    for (std::size_t q = 0; q < len; ++q)
      if (p[q] == mx) {  // the first occurrence, as torch's argmax
        at = static_cast<std::int64_t>(q);
        break;
      }
    mean[r] = static_cast<float>(sum / static_cast<double>(len));
    max[r] = nan ? std::numeric_limits<float>::quiet_NaN() : mx;
    argmax[r] = nan ? 0 : at;
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
