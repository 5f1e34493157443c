#include "cnnvis/fold.hpp"

#include <algorithm>
#include <limits>
#include <string>

#include "cnnvis/common.hpp"

namespace cnnvis::topk {

void Fold::Layer::resize(std::size_t b) {
  const std::size_t n = b * state.lists.n_channels;
  if (mean.size() < n) {
    mean.resize(n);
    max.resize(n);
    loc.resize(n);
  }
}

Fold::Fold(std::vector<LayerState> layers, Reservoir reservoir) : reservoir_(reservoir) {
  if (layers.empty()) throw InvalidArgument("there must be at least one layer");
  check_reservoir(reservoir_);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const LayerState& s = layers[i];
    const std::string at = "layer " + std::to_string(i) + ": ";
    if (s.lists.n_channels < 1 || s.lists.k < 1)
      throw InvalidArgument(at + "there must be at least one channel and k >= 1");
    if (s.sums.n_classes != reservoir_.n_classes || s.sums.pooled_rows != reservoir_.n_rows)
      throw InvalidArgument(at + "every layer must have the reservoir's " +
                            std::to_string(reservoir_.n_classes) + " classes and " +
                            std::to_string(reservoir_.n_rows) + " pooled rows");
    layers_.push_back(Layer{s, {}, {}, {}, -1});
  }
}

Fold::Layer& Fold::at(std::size_t layer) {
  if (layer >= layers_.size())
    throw InvalidArgument("layer " + std::to_string(layer) + " outside 0.." +
                          std::to_string(layers_.size() - 1));
  return layers_[layer];
}

const Fold::Layer& Fold::at(std::size_t layer) const {
  return const_cast<Fold*>(this)->at(layer);
}

void Fold::stats(std::size_t layer, const float* x, std::size_t batch, std::size_t len) {
  Layer& l = at(layer);
  if (batch < 1 || len < 1)
    throw InvalidArgument("layer " + std::to_string(layer) +
                          ": x must have at least one sample and one value per channel");
  l.resize(batch);
  mean_max(x, batch * l.state.lists.n_channels, len, l.mean.data(), l.max.data());
  candidate_locs(l.state.lists, x, batch, len, l.max.data(), l.loc.data());
  l.batch = static_cast<std::ptrdiff_t>(batch);
}

void Fold::set_stats(std::size_t layer, const float* mean, const float* max,
                     const std::int64_t* loc, std::size_t batch) {
  Layer& l = at(layer);
  if (batch < 1)
    throw InvalidArgument("layer " + std::to_string(layer) + ": the summaries must be of one "
                          "batch of at least one sample");
  l.resize(batch);
  const std::size_t n = batch * l.state.lists.n_channels;
  std::copy(mean, mean + n, l.mean.begin());
  std::copy(max, max + n, l.max.begin());
  std::copy(loc, loc + n, l.loc.begin());
  l.batch = static_cast<std::ptrdiff_t>(batch);
}

// What an index is taken from (slots, the samples already in the lists) is checked before every
// fold: the caller holds those buffers too.
void Fold::check_lists(std::int64_t start) const {
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const Lists& lists = layers_[i].state.lists;
    const std::size_t n = lists.n_channels * lists.k;
    const std::string at = "layer " + std::to_string(i) + ": ";
    check_range(lists.slots, n, 0, static_cast<std::int64_t>(lists.k), at + "slot",
                "0.." + std::to_string(lists.k - 1));
    check_range(lists.samples, n, -1, start, at + "the lists hold sample",
                "-1.." + std::to_string(start - 1) + ": batches must be folded in order");
  }
}

// The position of sample i of a batch starting at start, for a message: start may be any value the
// caller passed (the check that refused it is why we are here), so the sum must not overflow.
static std::string sample_number(std::int64_t start, std::size_t i) {
  const auto offset = static_cast<std::int64_t>(i);
  if (start > std::numeric_limits<std::int64_t>::max() - offset)
    return std::to_string(start) + " + " + std::to_string(i);
  return std::to_string(start + offset);
}

std::ptrdiff_t Fold::fold(std::int64_t start, const std::int64_t* labels, std::size_t batch,
                          std::uint8_t* need, std::int64_t* pooled_row, bool offer) {
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    if (layers_[i].batch < 0)
      throw InvalidArgument("layer " + std::to_string(i) +
                            " has no summaries of this batch: call stats first");
    if (layers_[i].batch != static_cast<std::ptrdiff_t>(batch))
      throw InvalidArgument("every layer's summaries must be of one batch of " +
                            std::to_string(batch));
  }
  for (std::size_t i = 0; i < batch; ++i)  // name the sample whose label is out of range
    if (labels[i] < 0 || labels[i] >= static_cast<std::int64_t>(reservoir_.n_classes))
      throw InvalidArgument("label " + std::to_string(labels[i]) + " of sample " +
                            sample_number(start, i) + " is out of range: labels must be in 0.." +
                            std::to_string(reservoir_.n_classes - 1));
  if (offer)
    check_offer(reservoir_, labels, batch, start);
  else  // rows drawn by the caller (a reservoir over the samples of all processes)
    check_range(pooled_row, batch, -1, static_cast<std::int64_t>(reservoir_.n_rows),
                "pooled_row", "-1.." + std::to_string(reservoir_.n_rows - 1));
  check_lists(start);
  if (offer) reservoir_offer(reservoir_, labels, batch, start, pooled_row);
  std::ptrdiff_t bad = -1;
  for (std::size_t i = 0; i < layers_.size() && bad < 0; ++i) {
    Layer& l = layers_[i];
    if (!accumulate(l.state.lists, l.state.sums, l.mean.data(), l.max.data(), l.loc.data(), batch,
                    start, labels, pooled_row, need))
      bad = static_cast<std::ptrdiff_t>(i);
  }
  for (Layer& l : layers_) l.batch = -1;
  return bad;
}

}  // namespace cnnvis::topk
