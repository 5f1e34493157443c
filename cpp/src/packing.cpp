#include "cnnvis/packing.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <string>

namespace cnnvis::packing {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kMinArea = 1e-300, kMaxArea = 1e300;

std::string format(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

struct R {
  double x, y, w, h;
};

inline bool overlaps(const R& a, const R& b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}
inline bool contains(const R& a, const R& b) {  // a contains b
  return b.x >= a.x && b.y >= a.y && b.x + b.w <= a.x + a.w && b.y + b.h <= a.y + a.h;
}

const char* rule_name(Rule r) {
  switch (r) {
    case Rule::ShortSide: return "short-side";
    case Rule::LongSide: return "long-side";
    case Rule::Area: return "area";
    default: return "bottom-left";
  }
}
const char* order_name(Order o) {
  switch (o) {
    case Order::Area: return "area";
    case Order::LongSide: return "long-side";
    case Order::Height: return "height";
    case Order::Width: return "width";
    default: return "perimeter";
  }
}

std::vector<std::size_t> sorted_order(const double* w, const double* h, std::size_t n, Order o) {
  std::vector<double> key(n), key2(n);
  for (std::size_t i = 0; i < n; ++i) {
    switch (o) {
      case Order::Area: key[i] = w[i] * h[i]; key2[i] = std::max(w[i], h[i]); break;
      case Order::LongSide: key[i] = std::max(w[i], h[i]); key2[i] = std::min(w[i], h[i]); break;
      case Order::Height: key[i] = h[i]; key2[i] = w[i]; break;
      case Order::Width: key[i] = w[i]; key2[i] = h[i]; break;
      default: key[i] = w[i] + h[i]; key2[i] = w[i] * h[i]; break;
    }
  }
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    if (key[a] != key[b]) return key[a] > key[b];
    return key2[a] > key2[b];
  });
  return idx;
}

double total_area(const double* w, const double* h, std::size_t n) {
  double a = 0;
  for (std::size_t i = 0; i < n; ++i) a += w[i] * h[i];
  return a;
}

void extents(Placement& p, const double* w, const double* h, std::size_t n) {
  p.width = p.height = 0;
  for (std::size_t i = 0; i < n; ++i) {
    p.width = std::max(p.width, p.x[i] + w[i]);
    p.height = std::max(p.height, p.y[i] + h[i]);
  }
}

}  // namespace

Placement maxrects(const double* w, const double* h, std::size_t n, double W, double H, Rule rule,
                   Order order) {
  Placement out;
  out.variant = std::string("maxrects/") + rule_name(rule) + "/" + order_name(order);
  out.x.assign(n, 0.0);
  out.y.assign(n, 0.0);
  const auto idx = sorted_order(w, h, n, order);
  // Smallest width and height still to come: free rectangles narrower or lower are dead.
  std::vector<double> min_w(n + 1, kInf), min_h(n + 1, kInf);
  for (std::size_t k = n; k-- > 0;) {
    min_w[k] = std::min(min_w[k + 1], w[idx[k]]);
    min_h[k] = std::min(min_h[k + 1], h[idx[k]]);
  }
  std::vector<R> free{{0.0, 0.0, W, H}}, fresh, kept;
  std::vector<std::size_t> touching;
  const double tol = 1e-9 * std::max(W, H);
  free.reserve(256);
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = idx[k];
    const double rw = w[i], rh = h[i];
    double b1 = kInf, b2 = kInf;
    std::size_t best = free.size();
    for (std::size_t f = 0; f < free.size(); ++f) {
      const R& fr = free[f];
      if (rw > fr.w || rh > fr.h) continue;
      double s1, s2;
      const double lw = fr.w - rw, lh = fr.h - rh;
      switch (rule) {
        case Rule::ShortSide: s1 = std::min(lw, lh); s2 = std::max(lw, lh); break;
        case Rule::LongSide: s1 = std::max(lw, lh); s2 = std::min(lw, lh); break;
        case Rule::Area: s1 = fr.w * fr.h - rw * rh; s2 = std::min(lw, lh); break;
        default: s1 = fr.y + rh; s2 = fr.x; break;
      }
      if (s1 < b1 || (s1 == b1 && s2 < b2)) {
        b1 = s1;
        b2 = s2;
        best = f;
      }
    }
    if (best == free.size()) return out;  // ok = false
    const R placed{free[best].x, free[best].y, rw, rh};
    out.x[i] = placed.x;
    out.y[i] = placed.y;
    // Split every free rectangle the new one overlaps into its maximal leftovers.
    fresh.clear();
    kept.clear();
    const double mw = min_w[k + 1], mh = min_h[k + 1];
    auto add = [&](const R& r) {
      if (r.w >= mw && r.h >= mh) fresh.push_back(r);
    };
    // A new piece lies next to the placed rectangle and spans across its side's line, so an
    // untouched rectangle containing it must touch the placed one along that side: only those are
    // checked. (An untouched rectangle cannot lie inside a new piece: it would have been inside
    // the rectangle the piece came from.)
    touching.clear();
    const double px1 = placed.x + placed.w, py1 = placed.y + placed.h;
    for (const R& f : free) {
      if (!overlaps(f, placed)) {
        if (f.w >= mw && f.h >= mh) {
          const double fx1 = f.x + f.w, fy1 = f.y + f.h;
          const bool ys = f.y <= py1 + tol && placed.y <= fy1 + tol;
          const bool xs = f.x <= px1 + tol && placed.x <= fx1 + tol;
          if ((ys && (std::abs(fx1 - placed.x) <= tol || std::abs(f.x - px1) <= tol)) ||
              (xs && (std::abs(fy1 - placed.y) <= tol || std::abs(f.y - py1) <= tol)))
            touching.push_back(kept.size());
          kept.push_back(f);
        }
        continue;
      }
      if (placed.x > f.x) add({f.x, f.y, placed.x - f.x, f.h});
      if (px1 < f.x + f.w) add({px1, f.y, f.x + f.w - px1, f.h});
      if (placed.y > f.y) add({f.x, f.y, f.w, placed.y - f.y});
      if (py1 < f.y + f.h) add({f.x, py1, f.w, f.y + f.h - py1});
    }
    for (std::size_t a = 0; a < fresh.size(); ++a) {
      bool inside = false;
      for (std::size_t b = 0; b < touching.size() && !inside; ++b)
        inside = contains(kept[touching[b]], fresh[a]);
      for (std::size_t b = 0; b < fresh.size() && !inside; ++b) {
        if (a == b) continue;
        // Equal pieces: keep the first.
        if (contains(fresh[b], fresh[a]) && (!contains(fresh[a], fresh[b]) || b < a))
          inside = true;
      }
      if (!inside) kept.push_back(fresh[a]);
    }
    free.swap(kept);
  }
  out.ok = true;
  extents(out, w, h, n);
  return out;
}

Placement shelf(const double* w, const double* h, std::size_t n, double W) {
  Placement out;
  out.variant = "shelf";
  out.x.assign(n, 0.0);
  out.y.assign(n, 0.0);
  const auto idx = sorted_order(w, h, n, Order::Height);
  double x = 0, y = 0, row_h = 0;
  for (std::size_t i : idx) {
    if (w[i] > W) return out;
    if (x + w[i] > W) {
      y += row_h;
      x = 0;
      row_h = 0;
    }
    out.x[i] = x;
    out.y[i] = y;
    x += w[i];
    row_h = std::max(row_h, h[i]);
  }
  out.ok = true;
  extents(out, w, h, n);
  return out;
}

namespace {

// Box of the given density at the given aspect, no smaller than the largest rectangle.
void box_for(double area, double aspect, double density, double max_w, double max_h,
             bool integral, double& W, double& H) {
  H = std::sqrt(area / (aspect * density));
  W = aspect * H;
  if (integral) {
    W = std::floor(W);
    H = std::floor(H);
  }
  W = std::max(W, max_w);
  H = std::max(H, max_h);
}

double aspect_error(double width, double height, double aspect) {
  return std::abs(std::log((width / height) / aspect));
}

// Grows the short side of a used-extent box until its aspect is within tolerance.
void fit_aspect(Placement& p, double aspect, double tol, bool integral) {
  if (p.width <= 0 || p.height <= 0) return;
  const double a = p.width / p.height;
  if (a > aspect * (1 + tol)) {
    double h = p.width / (aspect * (1 + tol));
    if (integral) h = std::ceil(h);
    p.height = std::max(p.height, h);
  } else if (a < aspect / (1 + tol)) {
    double w = p.height * aspect / (1 + tol);
    if (integral) w = std::ceil(w);
    p.width = std::max(p.width, w);
  }
}

// Sides positive and finite, areas and their total representable: an area that underflows to 0
// (sides below about 1e-154) or overflows makes every density 0/0 and no packing wins.
void check_sizes(const double* w, const double* h, std::size_t n) {
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double a = w[i] * h[i];
    if (!(w[i] > 0) || !(h[i] > 0) || !std::isfinite(a) || a < kMinArea)
      throw InvalidArgument("rectangle " + std::to_string(i) + " (" + format(w[i]) + " x " +
                            format(h[i]) + ") must have positive finite sides whose area is " +
                            "between 1e-300 and 1e300; scale the sizes");
    total += a;
  }
  if (!(total <= kMaxArea))
    throw InvalidArgument("the rectangles' total area overflows; scale the sizes down");
}

// Every rectangle placed, or an error: never a short answer.
Placement complete(Placement p, std::size_t n) {
  if (!p.ok || p.x.size() != n || p.y.size() != n)
    throw InvalidArgument("no packing found for the " + std::to_string(n) + " rectangles");
  return p;
}

}  // namespace

Placement pack(const double* w, const double* h, std::size_t n, const PackOptions& opt,
               const Interrupt& interrupt) {
  if (!(opt.aspect > 0) || !std::isfinite(opt.aspect))
    throw InvalidArgument("aspect must be a positive finite number");
  check_sizes(w, h, n);
  if (!(opt.tolerance >= 0)) throw InvalidArgument("tolerance must be >= 0");
  Placement best;
  if (n == 0) {
    best.ok = true;
    best.variant = "empty";
    return best;
  }
  const double area = total_area(w, h, n);
  double max_w = 0, max_h = 0;
  for (std::size_t i = 0; i < n; ++i) {
    max_w = std::max(max_w, w[i]);
    max_h = std::max(max_h, h[i]);
  }
  struct Variant {
    Rule rule;
    Order order;
  };
  std::vector<Variant> all;
  for (Rule r : {Rule::BottomLeft, Rule::ShortSide, Rule::Area, Rule::LongSide})
    for (Order o : {Order::Height, Order::Area, Order::LongSide, Order::Perimeter, Order::Width})
      all.push_back({r, o});
  std::vector<std::size_t> chosen;
  if (opt.variant >= 0) {
    if (opt.variant >= static_cast<int>(all.size()))
      throw InvalidArgument("variant must be < " + std::to_string(all.size()));
    chosen.push_back(static_cast<std::size_t>(opt.variant));
  } else if (opt.effort <= 0) {
    chosen.push_back(0);
  } else if (opt.effort == 1) {
    // Bottom-left/height wins on large sets (density ~0.99 at 1,000); on small sets (where one
    // packing is cheap) three more variants sometimes do better.
    chosen.push_back(0);
    if (n <= 400)
      for (std::size_t v : {5, 9, 14}) chosen.push_back(v);
  } else {
    for (std::size_t v = 0; v < all.size(); ++v) chosen.push_back(v);
  }
  std::vector<Variant> variants;
  for (std::size_t v : chosen) variants.push_back(all[v]);
  // Jobs: variant x box aspect (on small sets also aspects inside the tolerance). Each job
  // bisects the density of its box and keeps its densest success after cropping; chunks are
  // fixed, so the winner is the same for any number of threads.
  std::vector<double> aspects{opt.aspect};
  if (opt.variant < 0 && opt.effort >= 1 && (n <= 400 || opt.effort >= 2) && opt.tolerance > 0)
    for (double e : {0.5, -0.5, 0.9, -0.9})
      aspects.push_back(opt.aspect * std::pow(1 + opt.tolerance, e));
  const std::size_t n_jobs = variants.size() * aspects.size();
  std::vector<Placement> results(n_jobs);
  parallel_for(n_jobs, std::max(1, opt.n_threads), [&](std::size_t b, std::size_t e, int tid) {
    for (std::size_t job = b; job < e; ++job) {
      if (tid == 0) check_interrupt(interrupt);
      const Variant& var = variants[job % variants.size()];
      const double box_aspect = aspects[job / variants.size()];
      double lo = 0.0, hi = 1.0, s = 0.9, best_density = -1;
      Placement got;
      for (int step = 0; step < opt.steps + 8; ++step) {
        double W, H;
        box_for(area, box_aspect, s, max_w, max_h, opt.integral, W, H);
        Placement p = maxrects(w, h, n, W, H, var.rule, var.order);
        if (p.ok) {
          lo = s;
          fit_aspect(p, opt.aspect, opt.tolerance, opt.integral);
          const double d = area / (p.width * p.height);
          if (d > best_density) {
            best_density = d;
            got = std::move(p);
          }
        } else {
          hi = s;
        }
        if (lo == 0.0) {
          s *= 0.85;  // nothing fitted yet: widen the search downwards
          if (s < 0.05) break;
          continue;
        }
        if (step >= opt.steps && got.ok) break;
        s = 0.5 * (lo + hi);
      }
      results[job] = std::move(got);
    }
  });
  check_interrupt(interrupt);
  // Shelf packing as a floor: it always succeeds.
  if (opt.variant < 0) results.push_back(shelf_pack(w, h, n, opt.aspect, opt.tolerance));
  double best_score = -1;
  for (auto& p : results) {
    if (!p.ok) continue;
    fit_aspect(p, opt.aspect, opt.tolerance, opt.integral);
    const double density = area / (p.width * p.height);
    if (density > best_score) {
      best_score = density;
      best = p;
    }
  }
  return complete(std::move(best), n);
}

Placement pack_in_box(const double* w, const double* h, std::size_t n, double W, double H,
                      int n_threads, const Interrupt& interrupt) {
  if (!(W > 0 && H > 0) || !std::isfinite(W) || !std::isfinite(H) || !(W * H <= kMaxArea))
    throw InvalidArgument("box sides must be positive and finite");
  check_sizes(w, h, n);
  double area = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (w[i] > W || h[i] > H)
      throw InvalidArgument("rectangle " + std::to_string(i) + " (" + std::to_string(w[i]) + " x " +
                            std::to_string(h[i]) + ") is larger than the box (" +
                            std::to_string(W) + " x " + std::to_string(H) + ")");
    area += w[i] * h[i];
  }
  if (area > W * H)
    throw InvalidArgument("the rectangles' total area " + std::to_string(area) +
                          " exceeds the box area " + std::to_string(W * H));
  std::vector<std::pair<Rule, Order>> variants;
  for (Rule r : {Rule::BottomLeft, Rule::ShortSide, Rule::Area, Rule::LongSide})
    for (Order o : {Order::Height, Order::Area, Order::LongSide, Order::Width, Order::Perimeter})
      variants.push_back({r, o});
  // Variants in a fixed order; the first that fits wins. Threads try consecutive batches.
  const std::size_t batch =
      static_cast<std::size_t>(std::min(std::max(1, n_threads), available_cores()));
  std::vector<Placement> results(batch);
  for (std::size_t v0 = 0; v0 < variants.size(); v0 += batch) {
    check_interrupt(interrupt);
    const std::size_t m = std::min(batch, variants.size() - v0);
    parallel_for(m, static_cast<int>(m), [&](std::size_t b, std::size_t e, int) {
      for (std::size_t v = b; v < e; ++v)
        results[v] = maxrects(w, h, n, W, H, variants[v0 + v].first, variants[v0 + v].second);
    });
    for (std::size_t v = 0; v < m; ++v)
      if (results[v].ok) {
        results[v].width = W;
        results[v].height = H;
        return results[v];
      }
  }
  Placement s = shelf(w, h, n, W);
  if (s.ok && s.height <= H) {
    s.width = W;
    s.height = H;
    return s;
  }
  throw InvalidArgument("could not fit the " + std::to_string(n) + " rectangles (density " +
                        std::to_string(area / (W * H)) + ") into the box " + std::to_string(W) +
                        " x " + std::to_string(H) + "; use a larger box or no box");
}

Placement shelf_pack(const double* w, const double* h, std::size_t n, double aspect,
                     double tolerance) {
  Placement best;
  if (n == 0) {
    best.ok = true;
    return best;
  }
  if (!(aspect > 0) || !std::isfinite(aspect) || !(tolerance >= 0) || !std::isfinite(tolerance))
    throw InvalidArgument("aspect must be positive and finite, tolerance >= 0 and finite");
  check_sizes(w, h, n);
  const double area = total_area(w, h, n);
  double max_w = 0;
  for (std::size_t i = 0; i < n; ++i) max_w = std::max(max_w, w[i]);
  const double W0 = std::sqrt(area * aspect);
  double best_score = -kInf;
  // Scan strip widths; prefer boxes within the aspect tolerance, then density.
  for (int k = 0; k <= 40; ++k) {
    const double W = std::max(max_w, W0 * (0.8 + 0.01 * k));
    Placement p = shelf(w, h, n, W);
    if (!p.ok) continue;
    const double err = aspect_error(p.width, p.height, aspect);
    const double density = area / (p.width * p.height);
    const double score = (err <= std::log1p(tolerance) ? 1.0 : -err) + density;
    if (score > best_score) {
      best_score = score;
      best = std::move(p);
    }
  }
  return complete(std::move(best), n);
}

}  // namespace cnnvis::packing
