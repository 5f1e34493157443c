// Recording kernels: running per-channel summaries (class sums, reservoir rows, top-k lists) folded
// in per batch, the spatial summaries the hooks need, image quantisation and the gather of
// receptive-field boxes. Pure C++17.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

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

// One layer's running summaries besides its top-k lists (all row-major, updated in place).
struct Sums {
  double* class_sums;     // (n_classes, n_channels): sum of each class's per-sample means
  std::size_t n_classes;
  float* pooled;          // (pooled_rows, n_channels): the reservoir's rows of per-sample means
  std::size_t pooled_rows;
  std::uint8_t* pending;  // per patch slot row of the layer (n_channels * k): cut still to do
};

// Folds one batch of per-(sample, channel) summaries (batch, n_channels) into a layer: adds each
// sample's means to its class's sums, copies them to its reservoir row (pooled_row[i], -1 for
// none), merges the maxima and their locations into the top-k lists as merge() does, marks the
// slot of every new top-k entry pending and flags its sample in need (batch bytes, set to 1,
// never cleared). Labels must lie in 0..n_classes-1 and pooled rows below pooled_rows. Returns
// false, and changes nothing, if any mean is NaN or infinite (a finite mean implies a finite
// maximum).
bool accumulate(Lists& lists, Sums& sums, const float* mean, const float* batch_max,
                const std::int64_t* batch_loc, std::size_t batch, std::int64_t start,
                const std::int64_t* labels, const std::int64_t* pooled_row, std::uint8_t* need);

// A class-stratified reservoir sample of sample positions (Algorithm R per class): class c keeps
// at most caps[c] samples, in rows offset[c] .. offset[c] + caps[c] of position (the sample
// position each row holds, -1 while free). seen counts each class's samples so far; rng is the
// state of a splitmix64 generator, so a sample is a function of the seed and the label order.
struct Reservoir {
  std::int64_t* seen;
  const std::int64_t* caps;
  const std::int64_t* offset;
  std::size_t n_classes;
  std::int64_t* position;
  std::size_t n_rows;  // rows of position
  std::uint64_t* rng;
};

// Throws InvalidArgument unless each class's rows lie inside position and its count is >= 0.
void check_reservoir(const Reservoir& r);

// Throws InvalidArgument unless n samples from start on can be offered: start >= 0, no count or
// position overflows int64 on the way, every row holds a sample before start (or none) and every
// label lies in 0..n_classes-1.
void check_offer(const Reservoir& r, const std::int64_t* labels, std::size_t n,
                 std::int64_t start);

// Offers the samples start .. start + n - 1 with these labels (in 0..n_classes-1): row[i] is the
// reservoir row sample i holds after the batch, or -1 (not drawn, or replaced by a later sample
// of the same batch). The caller has run check_reservoir and check_offer.
void reservoir_offer(Reservoir& r, const std::int64_t* labels, std::size_t n, std::int64_t start,
                     std::int64_t* row);

// Per row of z (rows, n) of logits: the first index of the maximum and the softmax probability
// there, 1 / sum(exp(z - max)). Returns false, writing nothing, if any logit is NaN or infinite.
bool softmax_top(const float* z, std::size_t rows, std::size_t n, std::int64_t* top,
                 float* probability);

// For each of `rows` rows of `len` floats (row-major): the mean and the maximum, in one
// branch-free pass over the row (with AVX2 where the CPU has it, the same bits). The sum runs in
// eight float lanes, so the mean can differ from a sequential sum at rounding level (1e-6
// relative). A row with a NaN gets a NaN mean and maximum. len must be at least 1.
void mean_max(const float* x, std::size_t rows, std::size_t len, float* mean, float* max);

// The first index i with p[i] == value, for the maximum of p[0..len) as mean_max gives it; 0 if
// the value is NaN or -inf (a row with nothing above -inf) or not found.
std::int64_t first_index(const float* p, std::size_t len, float value);

// For a batch x (batch, n_channels, len) with per-row maxima max (batch, n_channels): loc[i, c] =
// the first index of the maximum of row (i, c) where that maximum beats the k-th entry of
// channel c's list (only such a row can enter it), else 0. Locating only those rows spares the
// per-lane index bookkeeping of a one-pass argmax: after the first batches few rows qualify.
void candidate_locs(const Lists& lists, const float* x, std::size_t batch, std::size_t len,
                    const float* max, std::int64_t* loc);

// mean_max and the first index of each row's maximum (found in a second look at the row, which
// is still in cache: cheaper than tracking it per lane).
void spatial_stats(const float* x, std::size_t rows, std::size_t len, float* mean, float* max,
                   std::int64_t* argmax);

// Images index[i] (or i, for a null index) of a batch x (batch, c, h, w) to uint8 (n, h, w, c):
// per channel, the value v becomes round((v - low) / (high - low) clamped to [0, 1] * 255),
// rounding half to even, in float32 as torch computes it (so the bytes match); NaN becomes 0.
void quantize_images(const float* x, std::size_t c, std::size_t h, std::size_t w,
                     const float* low, const float* high, const std::int64_t* index,
                     std::size_t n, std::uint8_t* out);

// Copies n boxes of h x w pixels (c bytes each) out of a store of images (images, height, width,
// c) into out (n, h, w, c): box i is image[slot[i]] at rows y0[i].., columns x0[i].. . The
// caller checks that every box lies inside its image (check_boxes).
void gather_boxes(const std::uint8_t* store, std::size_t height, std::size_t width, std::size_t c,
                  const std::int64_t* slot, const std::int64_t* y0, const std::int64_t* x0,
                  std::size_t n, std::size_t h, std::size_t w, std::uint8_t* out);

// Throws InvalidArgument unless 1 <= h <= height, 1 <= w <= width and each box i of gather_boxes
// lies inside a store of n_images images (the checks cannot overflow).
void check_boxes(std::size_t n_images, std::size_t height, std::size_t width,
                 const std::int64_t* slot, const std::int64_t* y0, const std::int64_t* x0,
                 std::size_t n, std::size_t h, std::size_t w);

// Throws InvalidArgument naming the first of n values outside lo..hi-1: "<what> <value> outside
// <range>".
void check_range(const std::int64_t* v, std::size_t n, std::int64_t lo, std::int64_t hi,
                 const std::string& what, const std::string& range);

}  // namespace cnnvis::topk
