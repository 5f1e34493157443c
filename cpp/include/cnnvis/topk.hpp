// Running per-channel top-k lists for recording: one batch of per-channel maxima merged in place.
// Pure C++17.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cnnvis::topk {

// The top-k state of n_channels channels, row-major (n_channels, k), each row descending.
struct Lists {
  float* values;
  std::int64_t* samples;  // sample position of each entry, -1 where empty
  std::int64_t* locs;     // flat spatial index of the maximum
  std::int64_t* slots;    // storage slot of the entry's patch (a permutation of 0..k-1 per row)
  std::size_t n_channels;
  std::size_t k;
};

// Merges a batch of maxima (batch, n_channels) and their locations into the lists, as a stable
// descending sort of [current entries; batch in sample order] cut to k would: a value enters
// only if it beats the current k-th strictly and goes after every entry of equal value. A new
// entry takes the slot of the entry it evicts. Sample i of the batch is start + i. Values must
// not be NaN. Returns the number of insertions.
std::size_t merge(Lists& lists, const float* batch_max, const std::int64_t* batch_loc,
                  std::size_t batch, std::int64_t start);

}  // namespace cnnvis::topk
