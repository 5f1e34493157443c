// Bindings for the recording kernels: running state is updated in place, so those arrays must be
// C-contiguous, writeable and of the exact dtype (no silent copies).
#include "cnnvis/topk.hpp"

#include <optional>
#include <string>

#include <pybind11/stl.h>

#include "common.hpp"

namespace py = pybind11;
using cnnvis::bind::fail;
using cnnvis::bind::I64Array;

namespace {

template <class T>
T* inplace(py::array& a, const char* name, py::ssize_t rows, py::ssize_t cols) {
  if (!py::isinstance<py::array_t<T>>(a) || !a.dtype().is(py::dtype::of<T>()))
    fail(std::string(name) + " has dtype " + std::string(py::str(a.dtype())) + ", expected " +
         std::string(py::str(py::dtype::of<T>())));
  if (a.ndim() != 2 || a.shape(0) != rows || a.shape(1) != cols)
    fail(std::string(name) + " must have shape (" + std::to_string(rows) + ", " +
         std::to_string(cols) + ")");
  if (!(a.flags() & py::array::c_style)) fail(std::string(name) + " must be C-contiguous");
  if (!a.writeable()) fail(std::string(name) + " must be writeable");
  return static_cast<T*>(a.mutable_data());
}

template <class T>
T* inplace_vector(py::array& a, const char* name, py::ssize_t n) {
  if (!a.dtype().is(py::dtype::of<T>()))
    fail(std::string(name) + " has dtype " + std::string(py::str(a.dtype())) + ", expected " +
         std::string(py::str(py::dtype::of<T>())));
  if (a.ndim() != 1 || a.shape(0) != n)
    fail(std::string(name) + " must have shape (" + std::to_string(n) + ",)");
  if (!(a.flags() & py::array::c_style)) fail(std::string(name) + " must be C-contiguous");
  if (!a.writeable()) fail(std::string(name) + " must be writeable");
  return static_cast<T*>(a.mutable_data());
}

}  // namespace

void init_topk(py::module_& m) {
  m.def(
      "accumulate",
      [](py::array values, py::array samples, py::array locs, py::array slots,
         py::array class_sums, py::array pooled, py::array pending, py::array mean,
         py::array batch_max, py::array batch_loc, std::int64_t start, py::array labels,
         py::array pooled_row, py::array need) {
        if (values.ndim() != 2) fail("values must be a 2-D array (channels, k)");
        const py::ssize_t nc = values.shape(0), k = values.shape(1);
        if (k < 1) fail("k must be at least 1");
        if (mean.ndim() != 2) fail("mean must be a 2-D array (batch, channels)");
        const py::ssize_t b = mean.shape(0);
        if (class_sums.ndim() != 2 || pooled.ndim() != 2)
          fail("class_sums and pooled must be 2-D arrays (rows, channels)");
        const py::ssize_t n_classes = class_sums.shape(0), n_rows = pooled.shape(0);
        cnnvis::topk::Lists lists{inplace<float>(values, "values", nc, k),
                                  inplace<std::int64_t>(samples, "samples", nc, k),
                                  inplace<std::int64_t>(locs, "locs", nc, k),
                                  inplace<std::int64_t>(slots, "slots", nc, k),
                                  static_cast<std::size_t>(nc), static_cast<std::size_t>(k)};
        cnnvis::topk::Sums sums{inplace<double>(class_sums, "class_sums", n_classes, nc),
                                static_cast<std::size_t>(n_classes),
                                inplace<float>(pooled, "pooled", n_rows, nc),
                                static_cast<std::size_t>(n_rows),
                                inplace<std::uint8_t>(pending, "pending", nc, k)};
        const float* pm = inplace<float>(mean, "mean", b, nc);
        const float* mx = inplace<float>(batch_max, "batch_max", b, nc);
        const std::int64_t* loc = inplace<std::int64_t>(batch_loc, "batch_loc", b, nc);
        const std::int64_t* lab = inplace_vector<std::int64_t>(labels, "labels", b);
        const std::int64_t* row = inplace_vector<std::int64_t>(pooled_row, "pooled_row", b);
        std::uint8_t* nd = inplace_vector<std::uint8_t>(need, "need", b);
        for (py::ssize_t i = 0; i < b; ++i) {
          if (lab[i] < 0 || lab[i] >= n_classes)
            fail("label " + std::to_string(lab[i]) + " outside 0.." + std::to_string(n_classes - 1));
          if (row[i] < -1 || row[i] >= n_rows)
            fail("pooled row " + std::to_string(row[i]) + " outside -1.." +
                 std::to_string(n_rows - 1));
        }
        py::gil_scoped_release release;
        return cnnvis::topk::accumulate(lists, sums, pm, mx, loc, static_cast<std::size_t>(b),
                                        start, lab, row, nd);
      },
      py::arg("values"), py::arg("samples"), py::arg("locs"), py::arg("slots"),
      py::arg("class_sums"), py::arg("pooled"), py::arg("pending"), py::arg("mean"),
      py::arg("batch_max"), py::arg("batch_loc"), py::arg("start"), py::arg("labels"),
      py::arg("pooled_row"), py::arg("need"),
      "Folds one batch of per-channel summaries (batch, channels) of a layer into its running "
      "state, in place: class sums (float64, classes x channels) by label, reservoir rows of "
      "pooled (float32) where pooled_row >= 0, the top-k lists (a value enters only above the "
      "k-th, after every equal value: a stable descending sort of [lists; batch] cut to k; a "
      "new entry takes the slot of the one it evicts), the pending "
      "flags (uint8, channels x k, by slot) of new entries and need[i] = 1 (uint8, batch) for "
      "each sample of the batch that entered a list (labels, pooled_row: int64). Returns False, changing nothing, if a mean is NaN or infinite.");

  m.def(
      "spatial_stats",
      [](py::array x, std::optional<py::tuple> out) {
        // float32 only and no silent copy: the caller falls back to torch for anything else
        if (!x.dtype().is(py::dtype::of<float>()))
          fail("x has dtype " + std::string(py::str(x.dtype())) + ", expected float32");
        if (x.ndim() != 3) fail("x must be a 3-D array (batch, channels, length)");
        if (!(x.flags() & py::array::c_style)) fail("x must be C-contiguous");
        const py::ssize_t b = x.shape(0), nc = x.shape(1), len = x.shape(2);
        if (len < 1) fail("x must have at least one value per (sample, channel)");
        py::array mean, mx, arg;
        if (out) {  // the caller's buffers, reused from batch to batch
          if (out->size() != 3) fail("out must be a tuple (mean, max, argmax)");
          mean = (*out)[0].cast<py::array>();
          mx = (*out)[1].cast<py::array>();
          arg = (*out)[2].cast<py::array>();
        } else {
          mean = py::array_t<float>({b, nc});
          mx = py::array_t<float>({b, nc});
          arg = py::array_t<std::int64_t>({b, nc});
        }
        float* pm = inplace<float>(mean, "out mean", b, nc);
        float* pmx = inplace<float>(mx, "out max", b, nc);
        std::int64_t* pa = inplace<std::int64_t>(arg, "out argmax", b, nc);
        const float* px = static_cast<const float*>(x.data());
        {
          py::gil_scoped_release release;
          cnnvis::topk::spatial_stats(px, static_cast<std::size_t>(b * nc),
                                      static_cast<std::size_t>(len), pm, pmx, pa);
        }
        return py::make_tuple(mean, mx, arg);
      },
      py::arg("x"), py::arg("out") = py::none(),
      "Per (sample, channel) of a C-contiguous float32 array (batch, channels, length): the mean, "
      "the maximum and the first index of the maximum, in one pass; returns (mean, max, argmax), "
      "each (batch, channels). out: three arrays (batch, channels) of float32, float32, int64 to "
      "write into instead of new ones.");

  m.def(
      "quantize_images",
      [](py::array x, py::array low, py::array high, py::array index) {
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
        for (py::ssize_t i = 0; i < n; ++i)
          if (pi[i] < 0 || pi[i] >= b)
            fail("index " + std::to_string(pi[i]) + " outside the batch of " + std::to_string(b));
        py::array_t<std::uint8_t> out({n, h, w, c});
        std::uint8_t* dst = out.mutable_data();
        const float* px = static_cast<const float*>(x.data());
        {
          py::gil_scoped_release release;
          cnnvis::topk::quantize_images(px, static_cast<std::size_t>(c),
                                        static_cast<std::size_t>(h), static_cast<std::size_t>(w),
                                        lo, hi, pi, static_cast<std::size_t>(n), dst);
        }
        return out;
      },
      py::arg("x"), py::arg("low"), py::arg("high"), py::arg("index"),
      "Images index[i] of a float32 batch (batch, channels, height, width) as uint8 (n, height, "
      "width, channels): round((v - low) / (high - low), clamped to [0, 1], * 255) per channel, "
      "half to even, bytes equal to the same float32 arithmetic in torch; NaN becomes 0.");

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
