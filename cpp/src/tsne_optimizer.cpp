// t-SNE part 5: the optimiser (gains, momentum, step clipping, recentring in the gradient's
// pass) and the placement of new points against a fixed embedding.
#include "tsne_gradient.hpp"

namespace cnnvis::tsne {

using namespace internal;

// ----------------------------------------------------------------------------------------------
// Optimiser
// ----------------------------------------------------------------------------------------------

Optimizer::Optimizer(SparseP P, int dim, const double* Y0, double theta, int n_threads)
    : dim_(dim), theta_(theta), n_threads_(std::min(std::max(1, n_threads), available_cores())), ws_(make_workspace()) {
  if (dim != 2 && dim != 3) throw InvalidArgument("n_components must be 2 or 3");
  const std::size_t n = P.n, D = static_cast<std::size_t>(dim);
  perm_.resize(n);
  if (n >= 2) {
    if (dim == 2) {
      ws_->tree2.build(Y0, n, pool_of(*ws_, n_threads_));
      perm_ = ws_->tree2.order;
    } else {
      ws_->tree3.build(Y0, n, pool_of(*ws_, n_threads_));
      perm_ = ws_->tree3.order;
    }
  } else {
    std::iota(perm_.begin(), perm_.end(), 0u);
  }
  std::vector<std::uint32_t> inv(n);
  for (std::size_t r = 0; r < n; ++r) inv[perm_[r]] = static_cast<std::uint32_t>(r);
  // P relabelled: row r is the caller's row perm_[r], columns renumbered and sorted.
  P_.n = n;
  P_.indptr.assign(n + 1, 0);
  for (std::size_t r = 0; r < n; ++r)
    P_.indptr[r + 1] = P_.indptr[r] + (P.indptr[perm_[r] + 1] - P.indptr[perm_[r]]);
  P_.indices.resize(P.indices.size());
  P_.data.resize(P.data.size());
  parallel_for(pool_of(*ws_, n_threads_), n, n_threads_, [&](std::size_t b, std::size_t e, int) {
    std::vector<std::pair<std::int32_t, double>> row;
    for (std::size_t r = b; r < e; ++r) {
      const std::size_t o = perm_[r];
      row.clear();
      for (std::int64_t a = P.indptr[o]; a < P.indptr[o + 1]; ++a)
        row.emplace_back(static_cast<std::int32_t>(inv[static_cast<std::size_t>(
                             P.indices[static_cast<std::size_t>(a)])]),
                         P.data[static_cast<std::size_t>(a)]);
      std::sort(row.begin(), row.end());
      auto at = static_cast<std::size_t>(P_.indptr[r]);
      for (const auto& [c, v] : row) {
        P_.indices[at] = c;
        P_.data[at++] = v;
      }
    }
  });
  Y_.resize(n * D);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t c = 0; c < D; ++c) Y_[r * D + c] = Y0[perm_[r] * D + c];
  update_.assign(n * D, 0.0);
  gains_.assign(n * D, 1.0);
  grad_.assign(n * D, 0.0);
}

std::vector<double> Optimizer::embedding() const {
  const std::size_t D = static_cast<std::size_t>(dim_);
  std::vector<double> out(Y_.size());
  for (std::size_t r = 0; r < P_.n; ++r)
    for (std::size_t c = 0; c < D; ++c) out[perm_[r] * D + c] = Y_[r * D + c];
  return out;
}

int Optimizer::run(const Schedule& s, const Interrupt& interrupt) {
  const std::size_t n = P_.n;
  const std::size_t D = static_cast<std::size_t>(dim_);
  if (n < 2) return s.n_iter;
  const double* anchor = nullptr;
  if (s.anchor) {
    anchor_.resize(n * D);
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t c = 0; c < D; ++c) anchor_[r * D + c] = s.anchor[perm_[r] * D + c];
    anchor = anchor_.data();
  }
  // Per fixed block of kStepBlock rows (the gradient pass's blocks): sums and box of the new
  // positions, combined in block order, so the mean does not depend on the threads.
  const std::size_t nblk = (n + kStepBlock - 1) / kStepBlock;
  std::vector<double> bsum(nblk * D), bbox(nblk * 2 * D);
  double mean[3] = {0.0, 0.0, 0.0};
  bool pending = false;  // Y_ still to be recentred by mean (done in the next tree build)
  for (int it = 0; it < s.n_iter; ++it) {
    check_interrupt(interrupt);
    const double prox =
        anchor ? s.learning_rate * s.penalty / static_cast<double>(n) : 0.0;
    Ynext_.resize(n * D);
    // One step for rows [b, e): gains, momentum, step clipping, the penalty's proximal step.
    // Reads Y_ and writes Ynext_, so it runs in the gradient's pass (other rows still read Y_).
    auto step = [&](std::size_t b, std::size_t e) {
      double sm[3] = {0.0, 0.0, 0.0};
      double lo[3], hi[3];
      for (std::size_t c = 0; c < D; ++c) {
        lo[c] = std::numeric_limits<double>::infinity();
        hi[c] = -std::numeric_limits<double>::infinity();
      }
      for (std::size_t i = b; i < e; ++i) {
        double norm2 = 0.0;
        for (std::size_t c = 0; c < D; ++c) {
          const std::size_t t = i * D + c;
          const double g = grad_[t];
          double& gain = gains_[t];
          gain = ((g > 0.0) != (update_[t] > 0.0)) ? gain + 0.2 : gain * 0.8;
          if (gain < 0.01) gain = 0.01;
          update_[t] = s.momentum * update_[t] - s.learning_rate * gain * g;
          norm2 += update_[t] * update_[t];
        }
        if (s.max_step_norm > 0.0 && norm2 > s.max_step_norm * s.max_step_norm) {
          const double f = s.max_step_norm / std::sqrt(norm2);
          for (std::size_t c = 0; c < D; ++c) update_[i * D + c] *= f;
        }
        for (std::size_t c = 0; c < D; ++c) {
          double y = Y_[i * D + c] + update_[i * D + c];
          if (prox > 0.0)  // proximal step of the movement penalty: stable for any weight
            y = (y + prox * anchor[i * D + c]) / (1.0 + prox);
          Ynext_[i * D + c] = y;
          sm[c] += y;
          lo[c] = std::min(lo[c], y);
          hi[c] = std::max(hi[c], y);
        }
      }
      const std::size_t k = b / kStepBlock;
      for (std::size_t c = 0; c < D; ++c) {
        bsum[k * D + c] = sm[c];
        bbox[k * 2 * D + c] = lo[c];
        bbox[k * 2 * D + D + c] = hi[c];
      }
    };
    if (pending) {  // recentre Y_ in the tree build's first pass, with the box known
      ws_->prepared = true;
      ws_->Ymut = Y_.data();
      for (std::size_t c = 0; c < D; ++c) ws_->shift[c] = mean[c];
    }
    if (dim_ == 2)
      last_z_ = gradient_then<2>(P_, Y_.data(), theta_, s.exaggeration, pool_of(*ws_, n_threads_),
                                 grad_.data(),
                                 *ws_, step);
    else
      last_z_ = gradient_then<3>(P_, Y_.data(), theta_, s.exaggeration, pool_of(*ws_, n_threads_),
                                 grad_.data(),
                                 *ws_, step);
    Y_.swap(Ynext_);
    double lo[3], hi[3];
    for (std::size_t c = 0; c < D; ++c) {
      mean[c] = 0.0;
      lo[c] = bbox[c];
      hi[c] = bbox[D + c];
    }
    for (std::size_t k = 0; k < nblk; ++k)
      for (std::size_t c = 0; c < D; ++c) {
        mean[c] += bsum[k * D + c];
        lo[c] = std::min(lo[c], bbox[k * 2 * D + c]);
        hi[c] = std::max(hi[c], bbox[k * 2 * D + D + c]);
      }
    // rounding is monotonic, so the box of (y - mean) is (box - mean) exactly
    for (std::size_t c = 0; c < D; ++c) {
      mean[c] /= static_cast<double>(n);
      ws_->box[c] = lo[c] - mean[c];
      ws_->box[D + c] = hi[c] - mean[c];
    }
    pending = true;
  }
  if (pending)
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t c = 0; c < D; ++c) Y_[i * D + c] -= mean[c];
  return s.n_iter;
}

double Optimizer::kl_divergence() {
  if (P_.n < 2) return 0.0;
  const double Z =
      gradient(P_, Y_.data(), dim_, theta_, 1.0, n_threads_, grad_.data(), *ws_);
  return kl_given_z_on(P_, Y_.data(), dim_, Z, pool_of(*ws_, n_threads_));
}

// ----------------------------------------------------------------------------------------------
// Placing new points
// ----------------------------------------------------------------------------------------------

namespace {

template <int D>
void transform_impl(const double* Yref, std::size_t n, const std::int32_t* idx, const double* p,
                    std::size_t m, int k, double* Ynew, int n_iter, double lr, double theta,
                    int n_threads, const Interrupt& interrupt) {
  ThreadPool pool(n_threads);  // started once for all iterations
  Tree<D> tree;
  tree.build(Yref, n, pool);
  const auto& nodes = tree.nodes;
  const std::uint32_t nn = static_cast<std::uint32_t>(nodes.size());
  const double theta2 = theta * theta;
  const std::size_t K = static_cast<std::size_t>(k);
  std::vector<double> upd(m * D, 0.0), gains(m * D, 1.0);
  for (int it = 0; it < n_iter; ++it) {
    check_interrupt(interrupt);
    const double momentum = it < 50 ? 0.5 : 0.8;
    dynamic_blocks(m, 16, pool, [&](std::size_t b, std::size_t e, int) {
      for (std::size_t i = b; i < e; ++i) {
        double* y = Ynew + i * D;
        double z = 0.0, fr[D] = {}, fa[D] = {};
        for (std::uint32_t kk = 0; kk < nn;) {
          const Node<D>& nd = nodes[kk];
          double dd[D], d2 = 0.0;
          for (int a = 0; a < D; ++a) {
            dd[a] = y[a] - nd.c[a];
            d2 += dd[a] * dd[a];
          }
          if (nd.width2 < theta2 * d2 || nd.leaf) {
            if (nd.width2 < theta2 * d2) {
              const double q = 1.0 / (1.0 + d2);
              z += nd.mass * q;
              for (int a = 0; a < D; ++a) fr[a] += nd.mass * q * q * dd[a];
            } else {
              for (std::uint32_t s = nd.begin; s < nd.end; ++s) {
                double e2 = 0.0, de[D];
                for (int a = 0; a < D; ++a) {
                  de[a] = y[a] - tree.pos[s * D + a];
                  e2 += de[a] * de[a];
                }
                const double q = 1.0 / (1.0 + e2);
                z += q;
                for (int a = 0; a < D; ++a) fr[a] += q * q * de[a];
              }
            }
            kk = nd.next;
            continue;
          }
          ++kk;
        }
        for (std::size_t a2 = 0; a2 < K; ++a2) {
          const double* yj = Yref + static_cast<std::size_t>(idx[i * K + a2]) * D;
          double dd[D], d2 = 0.0;
          for (int a = 0; a < D; ++a) {
            dd[a] = y[a] - yj[a];
            d2 += dd[a] * dd[a];
          }
          const double w = p[i * K + a2] / (1.0 + d2);
          for (int a = 0; a < D; ++a) fa[a] += w * dd[a];
        }
        double norm2 = 0.0;
        for (int a = 0; a < D; ++a) {
          const std::size_t t = i * D + static_cast<std::size_t>(a);
          const double g = fa[a] - (z > 0.0 ? fr[a] / z : 0.0);
          gains[t] = ((g > 0.0) != (upd[t] > 0.0)) ? gains[t] + 0.2 : std::max(0.01, gains[t] * 0.8);
          upd[t] = momentum * upd[t] - lr * gains[t] * g;
          norm2 += upd[t] * upd[t];
        }
        if (norm2 > 1.0) {
          const double f = 1.0 / std::sqrt(norm2);
          for (int a = 0; a < D; ++a) upd[i * D + static_cast<std::size_t>(a)] *= f;
        }
        for (int a = 0; a < D; ++a) y[a] += upd[i * D + static_cast<std::size_t>(a)];
      }
    });
  }
}

}  // namespace

void transform(const double* Yref, std::size_t n, int dim, const std::int32_t* idx,
               const double* p, std::size_t m, int k, double* Ynew, int n_iter,
               double learning_rate, double theta, int n_threads, const Interrupt& interrupt) {
  if (n == 0 || m == 0) return;
  if (dim == 2)
    transform_impl<2>(Yref, n, idx, p, m, k, Ynew, n_iter, learning_rate, theta, n_threads,
                      interrupt);
  else if (dim == 3)
    transform_impl<3>(Yref, n, idx, p, m, k, Ynew, n_iter, learning_rate, theta, n_threads,
                      interrupt);
  else
    throw InvalidArgument("n_components must be 2 or 3");
}

}  // namespace cnnvis::tsne
