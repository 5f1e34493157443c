// t-SNE part 2: affinities (perplexity-calibrated conditionals, the symmetric joint P).
#include "tsne_common.hpp"

namespace cnnvis::tsne {

using namespace internal;

// ----------------------------------------------------------------------------------------------
// Affinities
// ----------------------------------------------------------------------------------------------

void conditional_p(const double* d2, std::size_t m, int k, double perplexity, int n_threads,
                   double* p, double* reached) {
  if (!(perplexity > 0.0)) throw InvalidArgument("perplexity must be positive");
  const std::size_t K = static_cast<std::size_t>(k);
  const double target = std::log(perplexity);
  ThreadPool pool(n_threads);
  dynamic_blocks(m, 256, pool, [&](std::size_t b, std::size_t e, int) {
    std::vector<double> sh(K);
    for (std::size_t i = b; i < e; ++i) {
      const double* r = d2 + i * K;
      double* pi = p + i * K;
      const double dmin = *std::min_element(r, r + K);
      double mean = 0.0;
      for (std::size_t j = 0; j < K; ++j) {
        sh[j] = r[j] - dmin;
        mean += sh[j];
      }
      mean /= static_cast<double>(K);
      double beta = mean > 0.0 ? 1.0 / mean : 1.0;
      double lo = 0.0, hi = std::numeric_limits<double>::infinity(), H = 0.0;
      for (int it = 0; it < 200; ++it) {
        double sum = 0.0, sdp = 0.0;
        for (std::size_t j = 0; j < K; ++j) {
          const double v = std::exp(-beta * sh[j]);
          pi[j] = v;
          sum += v;
          sdp += v * sh[j];
        }
        H = std::log(sum) + beta * sdp / sum;
        if (std::fabs(H - target) < 1e-9) break;
        if (H > target) {
          lo = beta;
          beta = std::isinf(hi) ? beta * 2.0 : 0.5 * (beta + hi);
        } else {
          hi = beta;
          beta = 0.5 * (beta + lo);
        }
      }
      double sum = 0.0;
      for (std::size_t j = 0; j < K; ++j) sum += pi[j];
      for (std::size_t j = 0; j < K; ++j) pi[j] /= sum;
      if (reached) reached[i] = std::exp(H);
    }
  });
}

SparseP joint_p(const std::int32_t* idx, const double* pcond, std::size_t n, int k, int n_threads) {
  const std::size_t K = static_cast<std::size_t>(k);
  SparseP P;
  P.n = n;
  ThreadPool pool(n >= kParallelPoints ? n_threads : 1);
  // The reverse lists (who lists i, with p_{i|who}) in CSR form: n k entries of 12 bytes beside
  // the caller's idx and pcond, instead of a copy of both directions (2 n k pairs of 16 bytes,
  // 2.9 GB at 10^6 points). They arrive in any order (atomic counters); each row is sorted by
  // (column, value) below, which has one answer, so the result does not depend on the threads.
  std::vector<std::int64_t> start(n + 1, 0);
  parallel_for(pool, n, pool.size(), [&](std::size_t b, std::size_t e, int) {
    for (std::size_t i = b; i < e; ++i)
      for (std::size_t a = 0; a < K; ++a) {
        const auto j = idx[i * K + a];
        if (j < 0 || static_cast<std::size_t>(j) >= n || static_cast<std::size_t>(j) == i)
          throw InvalidArgument(
              "neighbour index out of range or a point listed as its own neighbour");
        fetch_add_relaxed(&start[static_cast<std::size_t>(j) + 1], 1);
      }
  });
  for (std::size_t i = 0; i < n; ++i) start[i + 1] += start[i];
  std::vector<std::int32_t> rev_col(static_cast<std::size_t>(start[n]));
  std::vector<double> rev_val(rev_col.size());
  {
    std::vector<std::int64_t> pos(start.begin(), start.end() - 1);
    parallel_for(pool, n, pool.size(), [&](std::size_t b, std::size_t e, int) {
      for (std::size_t i = b; i < e; ++i)
        for (std::size_t a = 0; a < K; ++a) {
          const auto at = static_cast<std::size_t>(
              fetch_add_relaxed(&pos[static_cast<std::size_t>(idx[i * K + a])], 1));
          rev_col[at] = static_cast<std::int32_t>(i);
          rev_val[at] = pcond[i * K + a];
        }
    });
  }
  // Row i of P: its own K entries and its reverse ones, sorted, equal columns summed (at most
  // two: p_{j|i} and p_{i|j}; a + b == b + a exactly). Built twice: to count, then to write.
  const double scale = 1.0 / (2.0 * static_cast<double>(n));
  const auto merged_row = [&](std::size_t i, std::vector<std::pair<std::int32_t, double>>& row) {
    row.clear();
    for (std::size_t a = 0; a < K; ++a) row.emplace_back(idx[i * K + a], pcond[i * K + a]);
    for (auto r = start[i]; r < start[i + 1]; ++r)
      row.emplace_back(rev_col[static_cast<std::size_t>(r)], rev_val[static_cast<std::size_t>(r)]);
    std::sort(row.begin(), row.end());
    auto out = row.begin();
    for (auto it = row.begin(); it != row.end();) {
      double sm = it->second;
      auto jt = it + 1;
      for (; jt != row.end() && jt->first == it->first; ++jt) sm += jt->second;
      *out++ = {it->first, sm * scale};
      it = jt;
    }
    row.erase(out, row.end());
  };
  P.indptr.assign(n + 1, 0);
  parallel_for(pool, n, pool.size(), [&](std::size_t b, std::size_t e, int) {
    std::vector<std::pair<std::int32_t, double>> row;
    for (std::size_t i = b; i < e; ++i) {
      merged_row(i, row);
      P.indptr[i + 1] = static_cast<std::int64_t>(row.size());
    }
  });
  for (std::size_t i = 0; i < n; ++i) P.indptr[i + 1] += P.indptr[i];
  const auto nnz = static_cast<std::size_t>(P.indptr[n]);
  P.indices.resize(nnz);
  P.data.resize(nnz);
  parallel_for(pool, n, pool.size(), [&](std::size_t b, std::size_t e, int) {
    std::vector<std::pair<std::int32_t, double>> row;
    for (std::size_t i = b; i < e; ++i) {
      merged_row(i, row);
      auto at = static_cast<std::size_t>(P.indptr[i]);
      for (const auto& [c, v] : row) P.indices[at] = c, P.data[at++] = v;
    }
  });
  return P;
}

SparseP make_sparse(std::size_t n, const std::int64_t* indptr, const std::int32_t* indices,
                    const double* data, std::size_t nnz) {
  if (indptr[0] != 0 || static_cast<std::size_t>(indptr[n]) != nnz)
    throw InvalidArgument("P: indptr must start at 0 and end at nnz");
  for (std::size_t i = 0; i < n; ++i)
    if (indptr[i + 1] < indptr[i]) throw InvalidArgument("P: indptr must be non-decreasing");
  for (std::size_t a = 0; a < nnz; ++a) {
    if (indices[a] < 0 || static_cast<std::size_t>(indices[a]) >= n)
      throw InvalidArgument("P: column index out of range");
    if (!(data[a] >= 0.0) || !std::isfinite(data[a]))
      throw InvalidArgument("P: values must be finite and non-negative");
  }
  SparseP P;
  P.n = n;
  P.indptr.assign(indptr, indptr + n + 1);
  P.indices.assign(indices, indices + nnz);
  P.data.assign(data, data + nnz);
  return P;
}

}  // namespace cnnvis::tsne
