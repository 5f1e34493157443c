// Bindings for the recording kernels and the batch fold (cnnvis/topk.hpp, cnnvis/fold.hpp): they
// check and convert, the core computes. Running state is updated in place, so those arrays must
// be C-contiguous, writeable and of the exact dtype (no silent copies), and no two arrays a call
// writes or reads may overlap (an alias could turn a written value into an index).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <utility>
#include <string>
#include <vector>

#include "cnnvis/fold.hpp"
#include "cnnvis/topk.hpp"
#include "common.hpp"

namespace py = pybind11;
using cnnvis::bind::fail;
using cnnvis::bind::F32Array;
using cnnvis::bind::I64Array;

namespace {

template <class T>
bool has_dtype(const py::array& a) {
  return a.dtype().equal(py::dtype::of<T>());  // equality: 'q' and 'l' are both int64 here
}

std::string dtype_text(const py::array& a) { return py::str(a.dtype()); }

template <class T>
void require_dtype(const py::array& a, const std::string& name) {
  if (!has_dtype<T>(a))
    fail(name + " has dtype " + dtype_text(a) + ", expected " +
         std::string(py::str(py::dtype::of<T>())));
}

// The data of an array read as it is: exactly dtype T and this shape, C-contiguous (no silent
// copy).
template <class T>
const T* exact(const py::array& a, const std::string& name,
               std::initializer_list<py::ssize_t> shape) {
  require_dtype<T>(a, name);
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

// An object as a numpy array, or a TypeError naming it.
py::array as_array(py::handle h, const std::string& name) {
  if (!py::isinstance<py::array>(h))
    throw py::type_error(name + " must be a numpy array, got " +
                         std::string(py::str(py::type::of(h).attr("__name__"))));
  return py::reinterpret_borrow<py::array>(h);
}

// An integer array of ndim dimensions, as C-contiguous int64 (a copy only where needed). Floats
// and booleans are refused rather than truncated; unsigned values past int64 are refused too.
I64Array index_array(py::handle h, const std::string& name, py::ssize_t ndim = 1) {
  py::array a = as_array(h, name);
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u') fail(name + " must be an integer array, got " + dtype_text(a));
  if (a.ndim() != ndim) fail(name + " must be a " + std::to_string(ndim) + "-D array");
  if (kind == 'u' && a.dtype().itemsize() >= 8 && a.size() > 0) {
    const auto mx = py::int_(a.attr("max")());
    if (mx > py::int_(std::numeric_limits<std::int64_t>::max()))
      fail(name + " holds " + std::string(py::str(mx)) + ", past the int64 range");
  }
  return I64Array::ensure(a);
}

// A Python integer (or numpy integer) that must fit int64: ValueError naming it otherwise.
std::int64_t int_arg(py::handle v, const std::string& name) {
  if (!PyIndex_Check(v.ptr()))
    throw py::type_error(name + " must be an integer, got " +
                         std::string(py::str(py::type::of(v).attr("__name__"))));
  py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(v.ptr()));
  if (!i) throw py::error_already_set();
  int overflow = 0;
  const long long value = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
  if (overflow != 0 || (value == -1 && PyErr_Occurred())) {
    PyErr_Clear();
    fail(name + " = " + std::string(py::str(i)) + " is outside the int64 range");
  }
  return static_cast<std::int64_t>(value);
}

// As int_arg, and at least lo.
std::size_t size_arg(py::handle v, const std::string& name, std::int64_t lo) {
  const std::int64_t n = int_arg(v, name);
  if (n < lo) fail(name + " must be >= " + std::to_string(lo) + ", got " + std::to_string(n));
  return static_cast<std::size_t>(n);
}

// The byte ranges of arrays a call works on: fails when two overlap.
class Disjoint {
 public:
  void add(const py::array& a, const std::string& name) {
    if (a.size() == 0) return;
    const auto lo = reinterpret_cast<std::uintptr_t>(a.data());
    const auto hi = lo + static_cast<std::uintptr_t>(a.nbytes());  // C-contiguous: one block
    for (const Span& s : spans_)
      if (lo < s.hi && s.lo < hi) fail(name + " overlaps " + s.name + " in memory");
    spans_.push_back({lo, hi, name});
  }

 private:
  struct Span {
    std::uintptr_t lo, hi;
    std::string name;
  };
  std::vector<Span> spans_;
};

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

// A reservoir over the caller's arrays (seen, caps, offset, position, rng), their dtypes and
// shapes checked (check_reservoir checks their values), each recorded in `spans`.
cnnvis::topk::Reservoir make_reservoir(std::vector<py::array>& a, Disjoint& spans) {
  if (a[0].ndim() != 1) fail("seen must be a 1-D array (one count per class)");
  const py::ssize_t k = a[0].shape(0);
  if (k < 1) fail("there must be at least one class");
  if (a[3].ndim() != 1) fail("position must be a 1-D array (one per reservoir row)");
  const py::ssize_t n_rows = a[3].shape(0);
  const char* names[] = {"seen", "caps", "offset", "position", "rng"};
  cnnvis::topk::Reservoir r{inplace<std::int64_t>(a[0], "seen", {k}),
                            inplace<std::int64_t>(a[1], "caps", {k}),
                            inplace<std::int64_t>(a[2], "offset", {k}),
                            static_cast<std::size_t>(k),
                            inplace<std::int64_t>(a[3], "position", {n_rows}),
                            static_cast<std::size_t>(n_rows),
                            inplace<std::uint64_t>(a[4], "rng", {1})};
  for (std::size_t i = 0; i < a.size(); ++i) spans.add(a[i], names[i]);
  cnnvis::topk::check_reservoir(r);
  return r;
}

// One layer's running arrays (values, samples, locs, slots, class_sums, pooled, pending) as the
// core's LayerState, of n_classes classes and n_rows pooled rows, each recorded in `spans`.
cnnvis::topk::LayerState make_layer(std::vector<py::array>& a, const std::string& at,
                                    py::ssize_t n_classes, py::ssize_t n_rows, Disjoint& spans) {
  if (a[0].ndim() != 2) fail(at + "values must be a 2-D array (channels, k)");
  if (a[4].ndim() != 2 || a[5].ndim() != 2)
    fail(at + "class_sums and pooled must be 2-D arrays (rows, channels)");
  const py::ssize_t nc = a[0].shape(0), k = a[0].shape(1);
  if (nc < 1 || k < 1) fail(at + "there must be at least one channel and k >= 1");
  if (a[4].shape(0) != n_classes || a[5].shape(0) != n_rows)
    fail(at + "every layer must have the same classes and pooled rows");
  const char* names[] = {"values", "samples", "locs", "slots", "class_sums", "pooled", "pending"};
  auto name = [&](std::size_t i) { return at + names[i]; };
  cnnvis::topk::LayerState s{
      {inplace<float>(a[0], name(0), {nc, k}), inplace<std::int64_t>(a[1], name(1), {nc, k}),
       inplace<std::int64_t>(a[2], name(2), {nc, k}),
       inplace<std::int64_t>(a[3], name(3), {nc, k}), static_cast<std::size_t>(nc),
       static_cast<std::size_t>(k)},
      {inplace<double>(a[4], name(4), {n_classes, nc}), static_cast<std::size_t>(n_classes),
       inplace<float>(a[5], name(5), {n_rows, nc}), static_cast<std::size_t>(n_rows),
       inplace<std::uint8_t>(a[6], name(6), {nc, k})}};
  for (std::size_t i = 0; i < a.size(); ++i) spans.add(a[i], name(i));
  return s;
}

// The Python face of cnnvis::topk::Fold: keeps the caller's arrays alive and checks every
// array a call passes (dtype, shape, layout, overlap) before the core runs without the GIL.
class PyFold {
 public:
  PyFold(const py::sequence& layers, const py::object& reservoir) {
    auto res = array_tuple(reservoir, 5, "reservoir must be a tuple (seen, caps, offset, "
                           "position, rng) of numpy arrays");
    std::vector<cnnvis::topk::LayerState> states;
    py::ssize_t n_classes = 0, n_rows = 0;  // those of the first layer
    for (py::handle item : layers) {
      const std::string at = "layer " + std::to_string(states.size()) + ": ";
      auto a = array_tuple(item, 7, at + "expected a tuple (values, samples, locs, slots, "
                                         "class_sums, pooled, pending) of numpy arrays");
      if (states.empty() && a[4].ndim() == 2 && a[5].ndim() == 2) {
        n_classes = a[4].shape(0);
        n_rows = a[5].shape(0);
        if (n_classes < 1) fail(at + "there must be at least one class");
      }
      states.push_back(make_layer(a, at, n_classes, n_rows, spans_));
      arrays_.insert(arrays_.end(), a.begin(), a.end());
    }
    if (states.empty()) fail("there must be at least one layer");
    if (res[0].ndim() != 1 || res[0].shape(0) != n_classes)
      fail("the reservoir must have one count per class (" + std::to_string(n_classes) + ")");
    if (res[3].ndim() != 1 || res[3].shape(0) != n_rows)
      fail("the reservoir must have one position per pooled row (" + std::to_string(n_rows) +
           ")");
    cnnvis::topk::Reservoir r = make_reservoir(res, spans_);
    arrays_.insert(arrays_.end(), res.begin(), res.end());
    fold_ = std::make_unique<cnnvis::topk::Fold>(std::move(states), r);
  }

  void stats(const py::object& layer, const py::object& x_obj) {
    const std::size_t i = layer_index(layer);
    const std::string at = "layer " + std::to_string(i) + ": ";
    py::array x = as_array(x_obj, at + "x");
    require_dtype<float>(x, at + "x");
    if (x.ndim() < 2 || !(x.flags() & py::array::c_style))
      fail(at + "x must be a C-contiguous array (batch, channels, ...)");
    const std::size_t nc = fold_->n_channels(i);
    if (x.shape(1) != static_cast<py::ssize_t>(nc))
      fail(at + "x must have " + std::to_string(nc) + " channels");
    std::size_t len = 1;
    for (py::ssize_t d = 2; d < x.ndim(); ++d) len *= static_cast<std::size_t>(x.shape(d));
    const auto b = static_cast<std::size_t>(x.shape(0));
    const float* px = static_cast<const float*>(x.data());
    if (b < 1 || len < 1) fail(at + "x must have at least one sample and one value per channel");
    py::gil_scoped_release release;
    fold_->stats(i, px, b, len);
  }

  void set_stats(const py::object& layer, const F32Array& mean, const F32Array& max,
                 const py::object& loc_obj) {
    const std::size_t i = layer_index(layer);
    I64Array loc = index_array(loc_obj, "loc", 2);
    const auto nc = static_cast<py::ssize_t>(fold_->n_channels(i));
    const py::ssize_t b = mean.ndim() == 2 ? mean.shape(0) : 0;
    for (const py::array* a : {static_cast<const py::array*>(&mean),
                               static_cast<const py::array*>(&max),
                               static_cast<const py::array*>(&loc)})
      if (a->ndim() != 2 || a->shape(0) != b || a->shape(1) != nc || b < 1)
        fail("layer " + std::to_string(i) + ": mean, max and loc must be arrays (batch, " +
             std::to_string(nc) + ") of one batch");
    fold_->set_stats(i, mean.data(), max.data(), loc.data(), static_cast<std::size_t>(b));
  }

  py::ssize_t fold(const py::object& start_obj, const py::object& labels_obj, py::array need,
                   py::array pooled_row, bool offer) {
    const std::int64_t start = int_arg(start_obj, "start");
    const std::ptrdiff_t batch = fold_->batch();
    if (batch < 0) fail("layer 0 has no summaries of this batch: call stats first");
    const auto b = static_cast<py::ssize_t>(batch);
    Disjoint spans = spans_;
    I64Array labels = index_array(labels_obj, "labels");
    if (labels.shape(0) != b) fail("labels must have shape (" + std::to_string(b) + ",)");
    spans.add(labels, "labels");
    std::int64_t* row = inplace<std::int64_t>(pooled_row, "pooled_row", {b});
    spans.add(pooled_row, "pooled_row");
    std::uint8_t* nd = inplace<std::uint8_t>(need, "need", {b});
    spans.add(need, "need");
    const std::int64_t* lab = labels.data();
    py::gil_scoped_release release;
    return fold_->fold(start, lab, static_cast<std::size_t>(b), nd, row, offer);
  }

 private:
  std::size_t layer_index(const py::object& layer) const {
    const std::int64_t i = int_arg(layer, "layer");
    if (i < 0 || static_cast<std::size_t>(i) >= fold_->size())
      fail("layer " + std::to_string(i) + " outside 0.." + std::to_string(fold_->size() - 1));
    return static_cast<std::size_t>(i);
  }

  std::vector<py::array> arrays_;  // kept alive: the core's pointers point into them
  Disjoint spans_;                 // their bytes
  std::unique_ptr<cnnvis::topk::Fold> fold_;
};

py::array_t<std::int64_t> reservoir_offer(const py::object& labels_obj,
                                          const py::object& start_obj, py::array seen,
                                          py::array caps, py::array offset, py::array position,
                                          py::array rng) {
  std::vector<py::array> arrays{seen, caps, offset, position, rng};
  Disjoint spans;
  cnnvis::topk::Reservoir r = make_reservoir(arrays, spans);
  const std::int64_t start = int_arg(start_obj, "start");
  I64Array labels = index_array(labels_obj, "labels");
  spans.add(labels, "labels");
  const auto n = static_cast<std::size_t>(labels.size());
  cnnvis::topk::check_offer(r, labels.data(), n, start);
  py::array_t<std::int64_t> row(static_cast<py::ssize_t>(n));
  std::int64_t* pr = row.mutable_data();
  const std::int64_t* pl = labels.data();
  {
    py::gil_scoped_release release;
    cnnvis::topk::reservoir_offer(r, pl, n, start, pr);
  }
  return row;
}

bool softmax_top(const py::array& z, py::array top, py::array probability) {
  require_dtype<float>(z, "z");
  if (z.ndim() != 2 || z.shape(1) < 1) fail("z must be a 2-D array (rows, logits)");
  if (!(z.flags() & py::array::c_style)) fail("z must be C-contiguous");
  const py::ssize_t rows = z.shape(0), n = z.shape(1);
  std::int64_t* pt = inplace<std::int64_t>(top, "top", {rows});
  float* pp = inplace<float>(probability, "probability", {rows});
  Disjoint spans;
  spans.add(z, "z");
  spans.add(top, "top");
  spans.add(probability, "probability");
  const float* pz = static_cast<const float*>(z.data());
  py::gil_scoped_release release;
  return cnnvis::topk::softmax_top(pz, static_cast<std::size_t>(rows),
                                   static_cast<std::size_t>(n), pt, pp);
}

py::tuple spatial_stats(const py::array& x) {
  // float32 only and no silent copy: the caller falls back to torch for anything else
  require_dtype<float>(x, "x");
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
}

py::array quantize_images(const py::array& x, const py::array& low, const py::array& high,
                          const py::object& index_obj, const py::object& out) {
  require_dtype<float>(x, "x");
  if (x.ndim() != 4) fail("x must be a 4-D array (batch, channels, height, width)");
  if (!(x.flags() & py::array::c_style)) fail("x must be C-contiguous");
  const py::ssize_t b = x.shape(0), c = x.shape(1), h = x.shape(2), w = x.shape(3);
  auto range = [&](const py::array& a, const char* name) {
    if (!has_dtype<float>(a) || a.ndim() != 1 || a.shape(0) != c ||
        !(a.flags() & py::array::c_style))
      fail(std::string(name) + " must be a C-contiguous float32 array of " + std::to_string(c) +
           " values (one per channel)");
    return static_cast<const float*>(a.data());
  };
  const float* lo = range(low, "low");
  const float* hi = range(high, "high");
  I64Array idx = index_array(index_obj, "index");
  const py::ssize_t n = idx.size();
  const std::int64_t* pi = idx.data();
  cnnvis::topk::check_range(pi, static_cast<std::size_t>(n), 0, b, "index",
                            "the batch of " + std::to_string(b));
  // a new array, or the caller's rows (a slice of its image store: no copy after)
  py::array result = out.is_none() ? py::array(py::array_t<std::uint8_t>({n, h, w, c}))
                                   : as_array(out, "out");
  std::uint8_t* dst = inplace<std::uint8_t>(result, "out", {n, h, w, c});
  Disjoint spans;
  spans.add(result, "out");
  for (const auto& [a, name] : {std::pair<const py::array*, const char*>{&x, "x"},
                                {&low, "low"}, {&high, "high"}, {&idx, "index"}})
    spans.add(*a, name);
  const float* px = static_cast<const float*>(x.data());
  {
    py::gil_scoped_release release;
    cnnvis::topk::quantize_images(px, static_cast<std::size_t>(c), static_cast<std::size_t>(h),
                                  static_cast<std::size_t>(w), lo, hi, pi,
                                  static_cast<std::size_t>(n), dst);
  }
  return result;
}

py::array_t<std::uint8_t> gather_boxes(const py::array& store, const py::object& slot_obj,
                                       const py::object& y0_obj, const py::object& x0_obj,
                                       const py::object& h_obj, const py::object& w_obj) {
  require_dtype<std::uint8_t>(store, "store");
  if (store.ndim() != 4) fail("store must be a 4-D array (images, height, width, channels)");
  if (!(store.flags() & py::array::c_style)) fail("store must be C-contiguous");
  const auto dim = [&](py::ssize_t d) { return static_cast<std::size_t>(store.shape(d)); };
  const std::size_t h = size_arg(h_obj, "h", 1), w = size_arg(w_obj, "w", 1);
  I64Array s = index_array(slot_obj, "slot"), ys = index_array(y0_obj, "y0"),
           xs = index_array(x0_obj, "x0");
  const auto n = static_cast<std::size_t>(s.size());
  if (ys.size() != s.size() || xs.size() != s.size())
    fail("slot, y0 and x0 must be 1-D arrays of one length");
  cnnvis::topk::check_boxes(dim(0), dim(1), dim(2), s.data(), ys.data(), xs.data(), n, h, w);
  py::array_t<std::uint8_t> out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(h),
                                 static_cast<py::ssize_t>(w), store.shape(3)});
  const auto* src = static_cast<const std::uint8_t*>(store.data());
  std::uint8_t* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    cnnvis::topk::gather_boxes(src, dim(1), dim(2), dim(3), s.data(), ys.data(), xs.data(), n, h,
                               w, dst);
  }
  return out;
}

}  // namespace

void init_topk(py::module_& m) {
  py::class_<PyFold>(
      m, "Fold",
      "The running state of the recorded layers, folded batch by batch. Built once from a list of "
      "layers, each a tuple (values, samples, locs, slots, class_sums, pooled, pending) of numpy "
      "arrays updated in place: the top-k lists (channels x k: float32 values, int64 sample "
      "positions, locations of the maxima and patch slots, each slot row a permutation of "
      "0..k-1), the class sums (float64, classes x channels), the reservoir rows (float32, "
      "pooled rows x channels) and the pending flags (uint8, channels x k, by slot); and the "
      "reservoir's arrays (seen, caps, offset, position, rng) as reservoir_offer takes them. "
      "No two of these arrays may overlap. Per batch: stats() or set_stats() of every layer, "
      "then fold().")
      .def(py::init<const py::sequence&, const py::object&>(), py::arg("layers"),
           py::arg("reservoir"))
      .def("stats", &PyFold::stats, py::arg("layer"), py::arg("x"),
           "Summaries of the layer's output x for this batch (float32, C-contiguous, (batch, "
           "channels, ...)): per (sample, channel) the mean and the maximum, and the first index "
           "of the maximum where it beats the k-th entry of the channel's list (only there can it "
           "enter).")
      .def("set_stats", &PyFold::set_stats, py::arg("layer"), py::arg("mean"), py::arg("max"),
           py::arg("loc"),
           "Summaries computed elsewhere (batch x channels: mean, max, flat index of the max).")
      .def("fold", &PyFold::fold, py::arg("start"), py::arg("labels"), py::arg("need"),
           py::arg("pooled_row"), py::arg("offer") = true,
           "Folds the batch of samples start.. (labels: integers in 0..classes-1) into every "
           "layer, in order, after stats() or set_stats() of each. The batch is first offered to "
           "the class-stratified reservoir (Algorithm R per class, as reservoir_offer): "
           "pooled_row[i] (int64, written) is the reservoir row sample i holds, or -1. Each mean "
           "goes to its class's sums by label and to its reservoir row; a maximum enters "
           "the top-k lists only above the k-th, after every equal value (a stable descending "
           "sort of [lists; batch] cut to k), taking the slot of the entry it evicts, which "
           "becomes pending; need[i] = 1 (uint8, batch) for each sample of the batch that "
           "entered a list. Returns the index of the first layer with a NaN or infinite mean, "
           "which is left unchanged (the layers before it are folded), or -1. With offer=False "
           "the batch is not offered to the reservoir: pooled_row (-1 or a row) holds the rows "
           "the caller drew, e.g. from a reservoir over the samples of all processes.");

  m.def("reservoir_offer", &reservoir_offer, py::arg("labels"), py::arg("start"),
        py::arg("seen"), py::arg("caps"), py::arg("offset"), py::arg("position"), py::arg("rng"),
        "Offers samples start .. start + len(labels) - 1 to a class-stratified reservoir "
        "(Algorithm R per class), in place: class c keeps at most caps[c] samples, in rows "
        "offset[c] .. offset[c] + caps[c] - 1 of position (int64: the sample each row holds, -1 "
        "while free); seen (int64) counts each class's samples; rng (uint64, one value) is the "
        "state of the splitmix64 generator that draws. Returns the row each sample holds after "
        "the batch, or -1.");
  m.def("softmax_top", &softmax_top, py::arg("z"), py::arg("top"), py::arg("probability"),
        "Per row of z (float32, rows x logits): top[r] = the first index of the maximum (int64) "
        "and probability[r] = its softmax probability, 1 / sum(exp(z - max)) (float32), written "
        "in place. Returns False, writing nothing, if a logit is NaN or infinite.");
  m.def("spatial_stats", &spatial_stats, py::arg("x"),
        "Per (sample, channel) of a C-contiguous float32 array (batch, channels, length): the "
        "mean, the maximum and the first index of the maximum; returns (mean, max, argmax), each "
        "(batch, channels).");
  m.def("quantize_images", &quantize_images, py::arg("x"), py::arg("low"), py::arg("high"),
        py::arg("index"), py::arg("out") = py::none(),
        "Images index[i] of a float32 batch (batch, channels, height, width) as uint8 (n, "
        "height, width, channels): round((v - low) / (high - low), clamped to [0, 1], * 255) per "
        "channel, half to even, bytes equal to the same float32 arithmetic in torch; NaN becomes "
        "0. Written into out (uint8, C-contiguous, writeable) if given, else into a new array; "
        "returns it.");
  m.def("gather_boxes", &gather_boxes, py::arg("store"), py::arg("slot"), py::arg("y0"),
        py::arg("x0"), py::arg("h"), py::arg("w"),
        "Copies n boxes of h x w pixels out of a uint8 image store (images, height, width, "
        "channels): box i is store[slot[i], y0[i]:y0[i]+h, x0[i]:x0[i]+w]; returns (n, h, w, "
        "channels) uint8.");
}
