// t-SNE part 4: the vector kernels of the gradient, the gradient and KL entry points.
#include "tsne_gradient.hpp"

namespace cnnvis::tsne {

using namespace internal;

namespace detail {

// For each of np points (px, py relative to the group centre): sums over the list of
//   m q, m q^2 dx, m q^2 dy   with q = 1 / (1 + |d|^2), d = p - list entry.
// Written to out[3 * i ...]. L is a multiple of kLanes.
CNNVIS_CLONES void repulse2(const float* lx, const float* ly, const float* lm, std::size_t L,
                            const float* px, const float* py, std::size_t np, double* out) {
  for (std::size_t i = 0; i < np; ++i) {
    float az[kLanes] = {}, ax[kLanes] = {}, ay[kLanes] = {};
    const float x = px[i], y = py[i];
    for (std::size_t k = 0; k < L; k += kLanes) {
      for (int l = 0; l < kLanes; ++l) {
        const float dx = x - lx[k + l], dy = y - ly[k + l];
        const float q = 1.0f / (1.0f + dx * dx + dy * dy);
        const float mq = lm[k + l] * q;
        az[l] += mq;
        const float mq2 = mq * q;
        ax[l] += mq2 * dx;
        ay[l] += mq2 * dy;
      }
    }
    double z = 0.0, fx = 0.0, fy = 0.0;
    for (int l = 0; l < kLanes; ++l) {
      z += az[l];
      fx += ax[l];
      fy += ay[l];
    }
    out[3 * i] = z;
    out[3 * i + 1] = fx;
    out[3 * i + 2] = fy;
  }
}

CNNVIS_CLONES void repulse3(const float* lx, const float* ly, const float* lz, const float* lm,
                            std::size_t L, const float* px, const float* py, const float* pz,
                            std::size_t np, double* out) {
  for (std::size_t i = 0; i < np; ++i) {
    float az[kLanes] = {}, ax[kLanes] = {}, ay[kLanes] = {}, azz[kLanes] = {};
    const float x = px[i], y = py[i], zc = pz[i];
    for (std::size_t k = 0; k < L; k += kLanes) {
      for (int l = 0; l < kLanes; ++l) {
        const float dx = x - lx[k + l], dy = y - ly[k + l], dz = zc - lz[k + l];
        const float q = 1.0f / (1.0f + dx * dx + dy * dy + dz * dz);
        const float mq = lm[k + l] * q;
        az[l] += mq;
        const float mq2 = mq * q;
        ax[l] += mq2 * dx;
        ay[l] += mq2 * dy;
        azz[l] += mq2 * dz;
      }
    }
    double z = 0.0, fx = 0.0, fy = 0.0, fz = 0.0;
    for (int l = 0; l < kLanes; ++l) {
      z += az[l];
      fx += ax[l];
      fy += ay[l];
      fz += azz[l];
    }
    out[4 * i] = z;
    out[4 * i + 1] = fx;
    out[4 * i + 2] = fy;
    out[4 * i + 3] = fz;
  }
}

}  // namespace detail

namespace detail {

// Attractive sums a_i = sum_j P_ij q_ij (y_i - y_j) for rows [b, e), four edges per vector; the
// lanes are summed in a fixed order. out holds (e - b) x D values.
// Always inlined, so that each clone below compiles it for its own target.
template <int D>
CNNVIS_INLINE inline void attract(const double* Y, const std::int64_t* indptr, const std::int32_t* cols,
                    const double* vals, std::size_t b, std::size_t e, double* out) {
  for (std::size_t i = b; i < e; ++i) {
    const double* yi = Y + D * i;
    v4d acc[D] = {};
    std::int64_t a = indptr[i];
    const std::int64_t end = indptr[i + 1];
    auto body = [&](const std::size_t* j, const v4d& w) CNNVIS_INLINE {
      v4d d[D];
      v4d den = {1.0, 1.0, 1.0, 1.0};  // 1 + dx dx + dy dy (+ dz dz), summed left to right
      const double *y0 = Y + D * j[0], *y1 = Y + D * j[1], *y2 = Y + D * j[2], *y3 = Y + D * j[3];
      for (int c = 0; c < D; ++c) {
        const v4d yj = {y0[c], y1[c], y2[c], y3[c]};
        d[c] = yi[c] - yj;  // the scalar is broadcast
        den += d[c] * d[c];
      }
      const v4d q = w / den;
      for (int c = 0; c < D; ++c) acc[c] += q * d[c];
    };
    for (; a + 4 <= end; a += 4) {  // full blocks of four edges
      const std::size_t j[4] = {static_cast<std::size_t>(cols[a]),
                                static_cast<std::size_t>(cols[a + 1]),
                                static_cast<std::size_t>(cols[a + 2]),
                                static_cast<std::size_t>(cols[a + 3])};
      v4d w;
      std::memcpy(&w, vals + a, sizeof(v4d));
      body(j, w);
    }
    if (a < end) {  // the last one to three edges; empty lanes have weight 0
      std::size_t j[4];
      double wt[4];
      for (int l = 0; l < 4; ++l) {
        const bool in = a + l < end;
        j[l] = in ? static_cast<std::size_t>(cols[a + l]) : i;
        wt[l] = in ? vals[a + l] : 0.0;
      }
      v4d w;
      std::memcpy(&w, wt, sizeof(v4d));
      body(j, w);
    }
    for (int c = 0; c < D; ++c)
      out[D * (i - b) + static_cast<std::size_t>(c)] = (acc[c][0] + acc[c][1]) + (acc[c][2] + acc[c][3]);
  }
}

// The two instances, each compiled for AVX2 and the baseline.
CNNVIS_CLONES void attract2(const double* Y, const std::int64_t* indptr, const std::int32_t* cols,
                            const double* vals, std::size_t b, std::size_t e, double* out) {
  attract<2>(Y, indptr, cols, vals, b, e, out);
}
CNNVIS_CLONES void attract3(const double* Y, const std::int64_t* indptr, const std::int32_t* cols,
                            const double* vals, std::size_t b, std::size_t e, double* out) {
  attract<3>(Y, indptr, cols, vals, b, e, out);
}

}  // namespace detail

void WorkspaceDeleter::operator()(Workspace* w) const { delete w; }

namespace internal {

ThreadPool& pool_of(Workspace& ws, int n_threads) {
  n_threads = std::min(std::max(1, n_threads), available_cores());
  if (!ws.pool || ws.pool->size() != n_threads) ws.pool = std::make_unique<ThreadPool>(n_threads);
  return *ws.pool;
}



double kl_given_z_on(const SparseP& P, const double* Y, int dim, double Z, ThreadPool& pool) {
  const std::size_t n = P.n;
  const std::size_t D = static_cast<std::size_t>(dim);
  std::vector<double> row(n, 0.0);
  const double logZ = std::log(Z);
  dynamic_blocks(n, 512, pool, [&](std::size_t b, std::size_t e, int) {
    for (std::size_t i = b; i < e; ++i) {
      double s = 0.0;
      for (std::int64_t a = P.indptr[i]; a < P.indptr[i + 1]; ++a) {
        const double pij = P.data[static_cast<std::size_t>(a)];
        if (!(pij > 0.0)) continue;
        const std::size_t j = static_cast<std::size_t>(P.indices[static_cast<std::size_t>(a)]);
        double d2 = 0.0;
        for (std::size_t c = 0; c < D; ++c) {
          const double v = Y[i * D + c] - Y[j * D + c];
          d2 += v * v;
        }
        s += pij * (std::log(pij) + std::log1p(d2) + logZ);
      }
      row[i] = s;
    }
  });
  double kl = 0.0;
  for (double v : row) kl += v;
  return kl;
}


}  // namespace internal

WorkspacePtr make_workspace() { return WorkspacePtr(new Workspace()); }

namespace {

template <int D>
double gradient_impl(const SparseP& P, const double* Y, double theta, double exaggeration,
                     int n_threads, double* grad, Workspace& ws) {
  return gradient_then<D>(P, Y, theta, exaggeration, pool_of(ws, n_threads), grad, ws,
                          [](std::size_t, std::size_t) {});
}


}  // namespace

double gradient(const SparseP& P, const double* Y, int dim, double theta, double exaggeration,
                int n_threads, double* grad, Workspace& ws) {
  if (dim == 2) return gradient_impl<2>(P, Y, theta, exaggeration, n_threads, grad, ws);
  if (dim == 3) return gradient_impl<3>(P, Y, theta, exaggeration, n_threads, grad, ws);
  throw InvalidArgument("n_components must be 2 or 3");
}

double kl_given_z(const SparseP& P, const double* Y, int dim, double Z, int n_threads) {
  ThreadPool pool(n_threads);
  return kl_given_z_on(P, Y, dim, Z, pool);
}

double exact_kl(const SparseP& P, const double* Y, int dim, int n_threads) {
  const std::size_t n = P.n;
  const std::size_t D = static_cast<std::size_t>(dim);
  std::vector<double> row(n, 0.0);
  ThreadPool pool(n_threads);
  dynamic_blocks(n, 64, pool, [&](std::size_t b, std::size_t e, int) {
    for (std::size_t i = b; i < e; ++i) {
      double s = 0.0;
      for (std::size_t j = 0; j < n; ++j) {
        if (j == i) continue;
        double d2 = 0.0;
        for (std::size_t c = 0; c < D; ++c) {
          const double v = Y[i * D + c] - Y[j * D + c];
          d2 += v * v;
        }
        s += 1.0 / (1.0 + d2);
      }
      row[i] = s;
    }
  });
  double Z = 0.0;
  for (double v : row) Z += v;
  return kl_given_z_on(P, Y, dim, Z, pool);
}

}  // namespace cnnvis::tsne
