// The batch fold of a recording: every recorded layer's running summaries (top-k lists, class
// sums, reservoir rows, pending patches) and the class-stratified reservoir, updated in one call
// per batch. Pure C++17 over the caller's buffers, which
// must outlive the Fold and must not overlap (the binding checks both).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cnnvis/topk.hpp"

namespace cnnvis::topk {

// One recorded layer's running state, in the caller's buffers.
struct LayerState {
  Lists lists;
  Sums sums;
};

class Fold {
 public:
  // Checks the reservoir (check_reservoir) and that every layer has the reservoir's classes and
  // rows.
  Fold(std::vector<LayerState> layers, Reservoir reservoir);

  std::size_t size() const { return layers_.size(); }
  std::size_t n_channels(std::size_t layer) const { return at(layer).state.lists.n_channels; }
  // The batch size of the summaries layer 0 holds for the next fold, or -1 for none.
  std::ptrdiff_t batch() const { return layers_[0].batch; }

  // Summaries of layer i's output x (batch, n_channels, len) for this batch: per (sample,
  // channel) the mean and maximum, and where the maximum can enter the lists, its first index.
  void stats(std::size_t layer, const float* x, std::size_t batch, std::size_t len);
  // Summaries computed elsewhere: (batch, n_channels) means, maxima and flat indices of the maxima.
  void set_stats(std::size_t layer, const float* mean, const float* max, const std::int64_t* loc,
                 std::size_t batch);

  // Folds the batch of samples start .. start + batch - 1 into every layer (each must have its
  // summaries of this batch), as the binding's docstring says. Checks first (InvalidArgument):
  // the labels, the order of the samples, the lists' slots and samples. Returns the index of the
  // first layer with a NaN or infinite mean, or -1. With offer false the batch is not offered
  // to the reservoir: pooled_row holds the rows the caller drew (-1 or a row), checked.
  std::ptrdiff_t fold(std::int64_t start, const std::int64_t* labels, std::size_t batch,
                      std::uint8_t* need, std::int64_t* pooled_row, bool offer = true);

 private:
  struct Layer {
    LayerState state;
    std::vector<float> mean, max;  // (batch, channels) summaries waiting to be folded
    std::vector<std::int64_t> loc;
    std::ptrdiff_t batch = -1;  // their batch size; -1 while there are none
    void resize(std::size_t b);
  };

  Layer& at(std::size_t layer);
  const Layer& at(std::size_t layer) const;
  void check_lists(std::int64_t start) const;

  std::vector<Layer> layers_;
  Reservoir reservoir_;
};

}  // namespace cnnvis::topk
