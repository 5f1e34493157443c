// Bindings for the recording kernels: running state is updated in place, so those arrays must be
// C-contiguous, writeable and of the exact dtype (no silent copies).
#include "cnnvis/topk.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "common.hpp"

namespace py = pybind11;
using cnnvis::bind::fail;
using cnnvis::bind::F32Array;
using cnnvis::bind::I64Array;

namespace {

// The data of an array read as it is: exactly dtype T and this shape, C-contiguous (no silent
// copy).
template <class T>
const T* exact(py::array& a, const std::string& name, std::initializer_list<py::ssize_t> shape) {
  if (!a.dtype().is(py::dtype::of<T>()))
    fail(name + " has dtype " + std::string(py::str(a.dtype())) + ", expected " +
         std::string(py::str(py::dtype::of<T>())));
  bool same = a.ndim() == static_cast<py::ssize_t>(shape.size());
  std::string want;
  py::ssize_t d = 0;
  for (py::ssize_t n : shape) {
    same = same && a.shape(d) == n;
    want += (d++ ? ", " : "") + std::to_string(n);
  }
  if (!same) fail(name + " must have shape (" + want + (shape.size() == 1 ? ",)" : ")"));
  if (!(a.flags() & py::array::c_style)) fail(name + " must be C-contiguous");
  return static_cast<const T*>(a.data());
}

// The data of an array the caller's state lives in, updated in place: as exact(), and writeable
// (a silent copy would lose the update).
template <class T>
T* inplace(py::array& a, const std::string& name, std::initializer_list<py::ssize_t> shape) {
  exact<T>(a, name, shape);
  if (!a.writeable()) fail(name + " must be writeable");
  return static_cast<T*>(a.mutable_data());
}

// Fails naming the first of n values outside lo..hi-1: "<what> <value> outside <range>".
void check_range(const std::int64_t* v, py::ssize_t n, std::int64_t lo, std::int64_t hi,
                 const std::string& what, const std::string& range) {
  for (py::ssize_t i = 0; i < n; ++i)
    if (v[i] < lo || v[i] >= hi) fail(what + " " + std::to_string(v[i]) + " outside " + range);
}

// The items of a tuple of n numpy arrays, or fails with message.
std::vector<py::array> array_tuple(py::handle t, std::size_t n, const std::string& message) {
  if (!py::isinstance<py::tuple>(t) || py::len(t) != n) fail(message);
  std::vector<py::array> arrays;
  for (py::handle h : py::reinterpret_borrow<py::tuple>(t)) {
    if (!py::isinstance<py::array>(h)) fail(message);
    arrays.push_back(py::reinterpret_borrow<py::array>(h));
  }
  return arrays;
}

// A reservoir over the caller's arrays, checked: each class's rows lie inside position.
cnnvis::topk::Reservoir make_reservoir(py::array& seen, py::array& caps, py::array& offset,
                                       py::array& position, py::array& rng) {
  if (seen.ndim() != 1) fail("seen must be a 1-D array (one count per class)");
  const py::ssize_t k = seen.shape(0);
  if (k < 1) fail("there must be at least one class");
  if (position.ndim() != 1) fail("position must be a 1-D array (one per reservoir row)");
  const py::ssize_t n_rows = position.shape(0);
  cnnvis::topk::Reservoir r{inplace<std::int64_t>(seen, "seen", {k}),
                            inplace<std::int64_t>(caps, "caps", {k}),
                            inplace<std::int64_t>(offset, "offset", {k}),
                            static_cast<std::size_t>(k),
                            inplace<std::int64_t>(position, "position", {n_rows}),
                            inplace<std::uint64_t>(rng, "rng", {1})};
  for (py::ssize_t c = 0; c < k; ++c)
    if (r.caps[c] < 0 || r.offset[c] < 0 || r.offset[c] + r.caps[c] > n_rows || r.seen[c] < 0)
      fail("class " + std::to_string(c) + ": its rows " + std::to_string(r.offset[c]) + " + " +
           std::to_string(r.caps[c]) + " must lie inside position (" + std::to_string(n_rows) +
           " rows) and its count be >= 0");
  return r;
}

// Fails unless every row of the reservoir holds a sample before start (or none).
void check_in_order(const cnnvis::topk::Reservoir& r, py::ssize_t n_rows, std::int64_t start) {
  if (start < 0) fail("start must be >= 0");
  for (py::ssize_t q = 0; q < n_rows; ++q)
    if (r.position[q] >= start)
      fail("position holds samples from start on: batches must be offered in order");
}

// The layers' running arrays are checked once, when the Fold is made; what an index is taken
// from (slots, the samples already in the lists) is checked again before every fold, since
// Python holds those arrays too.
class Fold {
 public:
  Fold(py::sequence layers, py::tuple reservoir, py::object display_range) {
    reservoir_arrays_ = array_tuple(reservoir, 5, "reservoir must be a tuple (seen, caps, "
                                    "offset, position, rng) of numpy arrays");
    if (!display_range.is_none()) {
      const std::string message = "display_range must be a tuple (low, high) of two float32 "
                                  "arrays of one value per image channel";
      display_ = array_tuple(display_range, 2, message);
      for (py::array& a : display_)
        if (a.ndim() != 1 || a.shape(0) < 1 || a.shape(0) != display_[0].shape(0)) fail(message);
      for (py::array& a : display_) exact<float>(a, "display_range", {display_[0].shape(0)});
    }
    auto& ra = reservoir_arrays_;
    reservoir_ = make_reservoir(ra[0], ra[1], ra[2], ra[3], ra[4]);
    for (py::handle item : layers) {
      const std::string at = "layer " + std::to_string(layers_.size()) + ": ";
      Layer l;
      l.arrays = array_tuple(item, 7, at + "expected a tuple (values, samples, locs, slots, "
                                           "class_sums, pooled, pending) of numpy arrays");
      auto& a = l.arrays;
      if (a[0].ndim() != 2) fail(at + "values must be a 2-D array (channels, k)");
      if (a[4].ndim() != 2 || a[5].ndim() != 2)
        fail(at + "class_sums and pooled must be 2-D arrays (rows, channels)");
      const py::ssize_t nc = a[0].shape(0), k = a[0].shape(1);
      if (nc < 1 || k < 1) fail(at + "there must be at least one channel and k >= 1");
      if (layers_.empty()) {
        n_classes_ = a[4].shape(0);
        n_rows_ = a[5].shape(0);
        if (n_classes_ < 1) fail(at + "there must be at least one class");
      }
      if (a[4].shape(0) != n_classes_ || a[5].shape(0) != n_rows_)
        fail(at + "every layer must have the same classes and pooled rows");
      auto name = [&](const char* what) { return at + what; };
      l.lists = {inplace<float>(a[0], name("values"), {nc, k}),
                 inplace<std::int64_t>(a[1], name("samples"), {nc, k}),
                 inplace<std::int64_t>(a[2], name("locs"), {nc, k}),
                 inplace<std::int64_t>(a[3], name("slots"), {nc, k}),
                 static_cast<std::size_t>(nc), static_cast<std::size_t>(k)};
      l.sums = {inplace<double>(a[4], name("class_sums"), {n_classes_, nc}),
                static_cast<std::size_t>(n_classes_),
                inplace<float>(a[5], name("pooled"), {n_rows_, nc}),
                static_cast<std::size_t>(n_rows_),
                inplace<std::uint8_t>(a[6], name("pending"), {nc, k})};
      layers_.push_back(std::move(l));
    }
    if (layers_.empty()) fail("there must be at least one layer");
    if (static_cast<py::ssize_t>(reservoir_.n_classes) != n_classes_)
      fail("the reservoir must have one count per class (" + std::to_string(n_classes_) + ")");
    if (reservoir_arrays_[3].shape(0) != n_rows_)
      fail("the reservoir must have one position per pooled row (" + std::to_string(n_rows_) +
           ")");
  }

  void stats(py::ssize_t i, py::array x) {
    Layer& l = layer(i);
    const std::string at = "layer " + std::to_string(i) + ": ";
    if (!x.dtype().is(py::dtype::of<float>()))
      fail(at + "x has dtype " + std::string(py::str(x.dtype())) + ", expected float32");
    if (x.ndim() < 2 || !(x.flags() & py::array::c_style))
      fail(at + "x must be a C-contiguous array (batch, channels, ...)");
    const auto nc = static_cast<py::ssize_t>(l.lists.n_channels);
    if (x.shape(1) != nc) fail(at + "x must have " + std::to_string(nc) + " channels");
    const py::ssize_t b = x.shape(0);
    py::ssize_t len = 1;
    for (py::ssize_t d = 2; d < x.ndim(); ++d) len *= x.shape(d);
    if (b < 1 || len < 1) fail(at + "x must have at least one sample and one value per channel");
    l.resize(static_cast<std::size_t>(b));
    const float* px = static_cast<const float*>(x.data());
    const auto rows = static_cast<std::size_t>(b * nc), n = static_cast<std::size_t>(len);
    {
      py::gil_scoped_release release;
      cnnvis::topk::mean_max(px, rows, n, l.mean.data(), l.max.data());
      cnnvis::topk::candidate_locs(l.lists, px, static_cast<std::size_t>(b), n, l.max.data(),
                                   l.loc.data());
    }
    l.batch = b;
  }

  void set_stats(py::ssize_t i, const F32Array& mean, const F32Array& max, const I64Array& loc) {
    Layer& l = layer(i);
    const auto nc = static_cast<py::ssize_t>(l.lists.n_channels);
    const py::ssize_t b = mean.ndim() == 2 ? mean.shape(0) : 0;
    for (const py::array* a : {static_cast<const py::array*>(&mean),
                               static_cast<const py::array*>(&max),
                               static_cast<const py::array*>(&loc)})
      if (a->ndim() != 2 || a->shape(0) != b || a->shape(1) != nc || b < 1)
        fail("layer " + std::to_string(i) + ": mean, max and loc must be arrays (batch, " +
             std::to_string(nc) + ") of one batch");
    l.resize(static_cast<std::size_t>(b));
    const auto n = static_cast<std::size_t>(b * nc);
    std::copy(mean.data(), mean.data() + n, l.mean.begin());
    std::copy(max.data(), max.data() + n, l.max.begin());
    std::copy(loc.data(), loc.data() + n, l.loc.begin());
    l.batch = b;
  }

  py::ssize_t fold(std::int64_t start, py::array labels, py::sequence outputs, py::array need,
                   py::array pooled_row, py::object logits, py::object top,
                   py::object probability, py::object images, py::object image_rows) {
    if (static_cast<std::size_t>(py::len(outputs)) != layers_.size())
      fail("outputs must have one item (an array or None) per layer");
    // the last output first: the forward pass wrote it last, so more of it is still in cache
    for (std::size_t j = layers_.size(); j-- > 0;) {
      py::object x = outputs[j];
      if (!x.is_none()) stats(static_cast<py::ssize_t>(j), x.cast<py::array>());
    }
    const py::ssize_t b = layers_[0].batch;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      if (layers_[i].batch < 0)
        fail("layer " + std::to_string(i) + " has no summaries of this batch: call stats first");
      if (layers_[i].batch != b) fail("every layer's summaries must be of one batch");
    }
    check_in_order(reservoir_, n_rows_, start);
    const std::int64_t* lab = inplace<std::int64_t>(labels, "labels", {b});
    std::int64_t* row = inplace<std::int64_t>(pooled_row, "pooled_row", {b});
    std::uint8_t* nd = inplace<std::uint8_t>(need, "need", {b});
    for (py::ssize_t i = 0; i < b; ++i)
      if (lab[i] < 0 || lab[i] >= n_classes_)
        fail("label " + std::to_string(lab[i]) + " of sample " + std::to_string(start + i) +
             " is out of range: labels must be in 0.." + std::to_string(n_classes_ - 1));
    const Logits z = logits_of(logits, top, probability, b);
    const Images im = images_of(images, image_rows, b);
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const auto& lists = layers_[i].lists;
      const auto n = static_cast<py::ssize_t>(lists.n_channels * lists.k);
      const std::string at = "layer " + std::to_string(i) + ": ";
      check_range(lists.slots, n, 0, static_cast<std::int64_t>(lists.k), at + "slot",
                  "0.." + std::to_string(lists.k - 1));
      check_range(lists.samples, n, -1, start, at + "the lists hold sample",
                  "-1.." + std::to_string(start - 1) + ": batches must be folded in order");
    }
    py::ssize_t bad = -1;
    {
      py::gil_scoped_release release;
      cnnvis::topk::reservoir_offer(reservoir_, lab, static_cast<std::size_t>(b), start, row);
      for (std::size_t i = 0; i < layers_.size() && bad < 0; ++i) {
        Layer& l = layers_[i];
        if (!cnnvis::topk::accumulate(l.lists, l.sums, l.mean.data(), l.max.data(), l.loc.data(),
                                      static_cast<std::size_t>(b), start, lab, row, nd))
          bad = static_cast<py::ssize_t>(i);
      }
      if (bad < 0 && z.values != nullptr &&
          !cnnvis::topk::softmax_top(z.values, static_cast<std::size_t>(b), z.n, z.top, z.prob))
        bad = static_cast<py::ssize_t>(layers_.size());
      if (im.pixels != nullptr)
        cnnvis::topk::quantize_images(im.pixels, im.c, im.h, im.w,
                                      static_cast<const float*>(display_[0].data()),
                                      static_cast<const float*>(display_[1].data()), nullptr,
                                      static_cast<std::size_t>(b), im.out);
    }
    for (Layer& l : layers_) l.batch = -1;
    return bad;
  }

 private:
  struct Logits {
    const float* values = nullptr;  // (batch, n), or none
    std::size_t n = 0;
    std::int64_t* top = nullptr;
    float* prob = nullptr;
  };

  struct Images {
    const float* pixels = nullptr;  // (batch, c, h, w), or none
    std::size_t c = 0, h = 0, w = 0;
    std::uint8_t* out = nullptr;  // (batch, h, w, c)
  };

  // The batch's logits and where their prediction and probability go, checked (all or none).
  static Logits logits_of(py::object& logits, py::object& top, py::object& probability,
                          py::ssize_t b) {
    Logits z;
    if (logits.is_none() && top.is_none() && probability.is_none()) return z;
    if (!py::isinstance<py::array>(logits) || !py::isinstance<py::array>(top) ||
        !py::isinstance<py::array>(probability))
      fail("logits, top and probability must be numpy arrays, all three or none");
    auto a = py::reinterpret_borrow<py::array>(logits);
    if (a.ndim() != 2 || a.shape(0) != b || a.shape(1) < 1)
      fail("logits must be a 2-D array (batch, logits) of " + std::to_string(b) + " rows");
    z.values = exact<float>(a, "logits", {b, a.shape(1)});
    z.n = static_cast<std::size_t>(a.shape(1));
    auto t = py::reinterpret_borrow<py::array>(top);
    auto p = py::reinterpret_borrow<py::array>(probability);
    z.top = inplace<std::int64_t>(t, "top", {b});
    z.prob = inplace<float>(p, "probability", {b});
    return z;
  }

  // The batch's float32 images and the uint8 rows they are quantized into, checked (both or
  // neither; the display range comes from the constructor).
  Images images_of(py::object& images, py::object& rows, py::ssize_t b) const {
    Images im;
    if (images.is_none() && rows.is_none()) return im;
    if (!py::isinstance<py::array>(images) || !py::isinstance<py::array>(rows))
      fail("images and image_rows must be numpy arrays, both or neither");
    if (display_.empty()) fail("images need the display_range given to the Fold");
    auto x = py::reinterpret_borrow<py::array>(images);
    const py::ssize_t c = display_[0].shape(0);
    if (x.ndim() != 4 || x.shape(0) != b || x.shape(1) != c)
      fail("images must be a 4-D array (" + std::to_string(b) + ", " + std::to_string(c) +
           ", height, width)");
    const py::ssize_t h = x.shape(2), w = x.shape(3);
    im.pixels = exact<float>(x, "images", {b, c, h, w});
    auto r = py::reinterpret_borrow<py::array>(rows);
    im.out = inplace<std::uint8_t>(r, "image_rows", {b, h, w, c});
    im.c = static_cast<std::size_t>(c);
    im.h = static_cast<std::size_t>(h);
    im.w = static_cast<std::size_t>(w);
    return im;
  }

  struct Layer {
    std::vector<py::array> arrays;  // kept alive: the pointers below point into them
    cnnvis::topk::Lists lists{};
    cnnvis::topk::Sums sums{};
    std::vector<float> mean, max;  // (batch, channels) summaries waiting to be folded
    std::vector<std::int64_t> loc;
    py::ssize_t batch = -1;  // their batch size; -1 while there are none

    void resize(std::size_t b) {
      const std::size_t n = b * lists.n_channels;
      if (mean.size() < n) {
        mean.resize(n);
        max.resize(n);
        loc.resize(n);
      }
    }
  };

  Layer& layer(py::ssize_t i) {
    if (i < 0 || i >= static_cast<py::ssize_t>(layers_.size()))
      fail("layer " + std::to_string(i) + " outside 0.." + std::to_string(layers_.size() - 1));
    return layers_[static_cast<std::size_t>(i)];
  }

  std::vector<Layer> layers_;
  py::ssize_t n_classes_ = 0, n_rows_ = 0;
  std::vector<py::array> reservoir_arrays_;  // kept alive for reservoir_
  cnnvis::topk::Reservoir reservoir_{};
  std::vector<py::array> display_;  // (low, high) per image channel, or empty
};

}  // namespace

void init_topk(py::module_& m) {
  py::class_<Fold>(
      m, "Fold",
      "The running state of the recorded layers, folded batch by batch. Built once from a list of "
      "layers, each a tuple (values, samples, locs, slots, class_sums, pooled, pending) of numpy "
      "arrays updated in place: the top-k lists (channels x k: float32 values, int64 sample "
      "positions, locations of the maxima and patch slots, each slot row a permutation of "
      "0..k-1), the class sums (float64, classes x channels), the reservoir rows (float32, "
      "pooled rows x channels) and the pending flags (uint8, channels x k, by slot); and the "
      "reservoir's arrays (seen, caps, offset, position, rng) as reservoir_offer takes them; and "
      "optionally the display range (low, high: float32, one per image channel) its images are "
      "quantized in. Per batch: fold(), with stats() or set_stats() first for a layer whose "
      "output it is not given.")
      .def(py::init([](py::sequence layers, py::tuple reservoir, py::object display_range) {
             return Fold(layers, reservoir, display_range);
           }),
           py::arg("layers"), py::arg("reservoir"), py::arg("display_range") = py::none())
      .def("stats", &Fold::stats, py::arg("layer"), py::arg("x"),
           "Summaries of the layer's output x for this batch (float32, C-contiguous, (batch, "
           "channels, ...)): per (sample, channel) the mean and the maximum, and the first index "
           "of the maximum where it beats the k-th entry of the channel's list (only there can it "
           "enter).")
      .def("set_stats", &Fold::set_stats, py::arg("layer"), py::arg("mean"), py::arg("max"),
           py::arg("loc"),
           "Summaries computed elsewhere (batch x channels: mean, max, flat index of the max).")
      .def("fold", &Fold::fold, py::arg("start"), py::arg("labels"), py::arg("outputs"),
           py::arg("need"), py::arg("pooled_row"), py::arg("logits") = py::none(),
           py::arg("top") = py::none(), py::arg("probability") = py::none(),
           py::arg("images") = py::none(), py::arg("image_rows") = py::none(),
           "Folds the batch of samples start.. (labels: int64, in 0..classes-1) into every layer, "
           "in order, after stats() of each output given (outputs: per layer an array, or None "
           "for a layer whose summaries are set already). The batch is first offered to the "
           "class-stratified reservoir (Algorithm R per class, as reservoir_offer): "
           "pooled_row[i] (int64, written) is the reservoir row sample i holds, or -1. Each mean "
           "goes to its class's sums by label and to its reservoir row; a maximum enters "
           "the top-k lists only above the k-th, after every equal value (a stable descending "
           "sort of [lists; batch] cut to k), taking the slot of the entry it evicts, which "
           "becomes pending; need[i] = 1 (uint8, batch) for each sample of the batch that "
           "entered a list (labels, pooled_row: int64). Given logits (float32, batch x "
           "classes), it writes top (int64) and probability (float32) as softmax_top does; given "
           "images (float32, batch x channels x height x width), it quantizes them into "
           "image_rows (uint8, batch x height x width x channels) as quantize_images does, in "
           "the display_range given to the Fold. Returns the index of the first layer with a "
           "NaN or infinite mean, which is left unchanged (the layers before it are folded); "
           "the number of layers if the logits have a NaN or infinite value; or -1.");

  m.def(
      "reservoir_offer",
      [](py::array labels, std::int64_t start, py::array seen, py::array caps, py::array offset,
         py::array position, py::array rng) {
        cnnvis::topk::Reservoir r = make_reservoir(seen, caps, offset, position, rng);
        const auto k = static_cast<py::ssize_t>(r.n_classes);
        I64Array lab(labels);
        if (lab.ndim() != 1) fail("labels must be a 1-D array");
        const py::ssize_t n = lab.size();
        const std::int64_t* pl = lab.data();
        check_range(pl, n, 0, k, "label", "0.." + std::to_string(k - 1));
        check_in_order(r, position.shape(0), start);
        py::array_t<std::int64_t> row(n);
        std::int64_t* pr = row.mutable_data();
        {
          py::gil_scoped_release release;
          cnnvis::topk::reservoir_offer(r, pl, static_cast<std::size_t>(n), start, pr);
        }
        return row;
      },
      py::arg("labels"), py::arg("start"), py::arg("seen"), py::arg("caps"), py::arg("offset"),
      py::arg("position"), py::arg("rng"),
      "Offers samples start .. start + len(labels) - 1 to a class-stratified reservoir (Algorithm "
      "R per class), in place: class c keeps at most caps[c] samples, in rows offset[c] .. "
      "offset[c] + caps[c] - 1 of position (int64: the sample each row holds, -1 while free); "
      "seen (int64) counts each class's samples; rng (uint64, one value) is the state of the "
      "splitmix64 generator that draws. Returns the row each sample holds after the batch, or -1.");

  m.def(
      "softmax_top",
      [](py::array z, py::array top, py::array probability) {
        if (!z.dtype().is(py::dtype::of<float>()))
          fail("z has dtype " + std::string(py::str(z.dtype())) + ", expected float32");
        if (z.ndim() != 2 || z.shape(1) < 1) fail("z must be a 2-D array (rows, logits)");
        if (!(z.flags() & py::array::c_style)) fail("z must be C-contiguous");
        const py::ssize_t rows = z.shape(0), n = z.shape(1);
        std::int64_t* pt = inplace<std::int64_t>(top, "top", {rows});
        float* pp = inplace<float>(probability, "probability", {rows});
        const float* pz = static_cast<const float*>(z.data());
        py::gil_scoped_release release;
        return cnnvis::topk::softmax_top(pz, static_cast<std::size_t>(rows),
                                         static_cast<std::size_t>(n), pt, pp);
      },
      py::arg("z"), py::arg("top"), py::arg("probability"),
      "Per row of z (float32, rows x logits): top[r] = the first index of the maximum (int64) and "
      "probability[r] = its softmax probability, 1 / sum(exp(z - max)) (float32), written in "
      "place. Returns False, writing nothing, if a logit is NaN or infinite.");

  m.def(
      "spatial_stats",
      [](py::array x) {
        // float32 only and no silent copy: the caller falls back to torch for anything else
        if (!x.dtype().is(py::dtype::of<float>()))
          fail("x has dtype " + std::string(py::str(x.dtype())) + ", expected float32");
        if (x.ndim() != 3) fail("x must be a 3-D array (batch, channels, length)");
        if (!(x.flags() & py::array::c_style)) fail("x must be C-contiguous");
        const py::ssize_t b = x.shape(0), nc = x.shape(1), len = x.shape(2);
        if (len < 1) fail("x must have at least one value per (sample, channel)");
        py::array_t<float> mean({b, nc}), mx({b, nc});
        py::array_t<std::int64_t> arg({b, nc});
        float* pm = mean.mutable_data();
        float* pmx = mx.mutable_data();
        std::int64_t* pa = arg.mutable_data();
        const float* px = static_cast<const float*>(x.data());
        {
          py::gil_scoped_release release;
          cnnvis::topk::spatial_stats(px, static_cast<std::size_t>(b * nc),
                                      static_cast<std::size_t>(len), pm, pmx, pa);
        }
        return py::make_tuple(mean, mx, arg);
      },
      py::arg("x"),
      "Per (sample, channel) of a C-contiguous float32 array (batch, channels, length): the mean, "
      "the maximum and the first index of the maximum; returns (mean, max, argmax), each (batch, "
      "channels).");

  m.def(
      "quantize_images",
      [](py::array x, py::array low, py::array high, py::array index, py::object out) {
        if (!x.dtype().is(py::dtype::of<float>()))
          fail("x has dtype " + std::string(py::str(x.dtype())) + ", expected float32");
        if (x.ndim() != 4) fail("x must be a 4-D array (batch, channels, height, width)");
        if (!(x.flags() & py::array::c_style)) fail("x must be C-contiguous");
        const py::ssize_t b = x.shape(0), c = x.shape(1), h = x.shape(2), w = x.shape(3);
        auto range = [&](py::array& a, const char* name) {
          if (!a.dtype().is(py::dtype::of<float>()) || a.ndim() != 1 || a.shape(0) != c ||
              !(a.flags() & py::array::c_style))
            fail(std::string(name) + " must be a C-contiguous float32 array of " +
                 std::to_string(c) + " values (one per channel)");
          return static_cast<const float*>(a.data());
        };
        const float* lo = range(low, "low");
        const float* hi = range(high, "high");
        I64Array idx(index);
        if (idx.ndim() != 1) fail("index must be a 1-D array");
        const py::ssize_t n = idx.size();
        const std::int64_t* pi = idx.data();
        check_range(pi, n, 0, b, "index", "the batch of " + std::to_string(b));
        // a new array, or the caller's rows (a slice of its image store: no copy after)
        if (!out.is_none() && !py::isinstance<py::array>(out)) fail("out must be a numpy array");
        py::array result = out.is_none() ? py::array(py::array_t<std::uint8_t>({n, h, w, c}))
                                         : py::reinterpret_borrow<py::array>(out);
        std::uint8_t* dst = inplace<std::uint8_t>(result, "out", {n, h, w, c});
        const float* px = static_cast<const float*>(x.data());
        {
          py::gil_scoped_release release;
          cnnvis::topk::quantize_images(px, static_cast<std::size_t>(c),
                                        static_cast<std::size_t>(h), static_cast<std::size_t>(w),
                                        lo, hi, pi, static_cast<std::size_t>(n), dst);
        }
        return result;
      },
      py::arg("x"), py::arg("low"), py::arg("high"), py::arg("index"),
      py::arg("out") = py::none(),
      "Images index[i] of a float32 batch (batch, channels, height, width) as uint8 (n, height, "
      "width, channels): round((v - low) / (high - low), clamped to [0, 1], * 255) per channel, "
      "half to even, bytes equal to the same float32 arithmetic in torch; NaN becomes 0. "
      "Written into out (uint8, C-contiguous, writeable) if given, else into a new array; "
      "returns it.");

  m.def(
      "gather_boxes",
      [](py::array store, py::array slot, py::array y0, py::array x0, py::ssize_t h,
         py::ssize_t w) {
        if (!store.dtype().is(py::dtype::of<std::uint8_t>()))
          fail("store has dtype " + std::string(py::str(store.dtype())) + ", expected uint8");
        if (store.ndim() != 4) fail("store must be a 4-D array (images, height, width, channels)");
        if (!(store.flags() & py::array::c_style)) fail("store must be C-contiguous");
        const py::ssize_t n_img = store.shape(0), height = store.shape(1),
                          width = store.shape(2), c = store.shape(3);
        if (h < 1 || w < 1 || h > height || w > width)
          fail("box size " + std::to_string(h) + "x" + std::to_string(w) +
               " does not fit images of " + std::to_string(height) + "x" + std::to_string(width));
        I64Array s(slot), ys(y0), xs(x0);
        const py::ssize_t n = s.size();
        if (s.ndim() != 1 || ys.ndim() != 1 || xs.ndim() != 1 || ys.size() != n || xs.size() != n)
          fail("slot, y0 and x0 must be 1-D arrays of one length");
        const std::int64_t *ps = s.data(), *py_ = ys.data(), *px = xs.data();
        for (py::ssize_t i = 0; i < n; ++i)
          if (ps[i] < 0 || ps[i] >= n_img || py_[i] < 0 || py_[i] + h > height || px[i] < 0 ||
              px[i] + w > width)
            fail("box " + std::to_string(i) + " (image " + std::to_string(ps[i]) + ", at " +
                 std::to_string(py_[i]) + "," + std::to_string(px[i]) + ") lies outside the store");
        py::array_t<std::uint8_t> out({n, h, w, c});
        const auto* src = static_cast<const std::uint8_t*>(store.data());
        std::uint8_t* dst = out.mutable_data();
        {
          py::gil_scoped_release release;
          cnnvis::topk::gather_boxes(src, static_cast<std::size_t>(height),
                                     static_cast<std::size_t>(width), static_cast<std::size_t>(c),
                                     ps, py_, px, static_cast<std::size_t>(n),
                                     static_cast<std::size_t>(h), static_cast<std::size_t>(w), dst);
        }
        return out;
      },
      py::arg("store"), py::arg("slot"), py::arg("y0"), py::arg("x0"), py::arg("h"), py::arg("w"),
      "Copies n boxes of h x w pixels out of a uint8 image store (images, height, width, "
      "channels): box i is store[slot[i], y0[i]:y0[i]+h, x0[i]:x0[i]+w]; returns (n, h, w, "
      "channels) uint8.");
}
