#include "cnnvis/topk.hpp"

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

}  // namespace cnnvis::topk
