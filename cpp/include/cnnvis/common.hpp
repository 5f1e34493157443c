// Shared vocabulary of the C++ core: typed errors, cancellation and a deterministic parallel loop.
// Pure C++17: no Python here. The binding layer turns these errors into Python exceptions.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace cnnvis {

// Bad argument (maps to ValueError).
struct InvalidArgument : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// A request that would exceed a memory budget (maps to MemoryError).
struct MemoryLimit : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Called by long loops between iterations, on the calling thread only. It returns normally to go
// on, or throws to stop (the binding layer throws when Ctrl-C was pressed).
using Interrupt = std::function<void()>;

inline void check_interrupt(const Interrupt& interrupt) {
  if (interrupt) interrupt();
}

// Runs fn(begin, end, thread_index) over [0, n) split into n_threads contiguous, fixed chunks.
// Chunks depend only on n and n_threads, so callers that reduce per chunk in index order get
// results that do not depend on scheduling.
template <class Fn>
void parallel_for(std::size_t n, int n_threads, Fn&& fn) {
  const std::size_t t = static_cast<std::size_t>(std::max(1, n_threads));
  const std::size_t workers = std::min(t, std::max<std::size_t>(n, 1));
  if (workers <= 1) {
    fn(std::size_t{0}, n, 0);
    return;
  }
  const std::size_t chunk = (n + workers - 1) / workers;
  std::vector<std::thread> pool;
  std::exception_ptr error;
  std::vector<std::exception_ptr> errors(workers);
  pool.reserve(workers - 1);
  for (std::size_t w = 1; w < workers; ++w) {
    const std::size_t b = std::min(n, w * chunk), e = std::min(n, (w + 1) * chunk);
    pool.emplace_back([&, b, e, w] {
      try {
        fn(b, e, static_cast<int>(w));
      } catch (...) {
        errors[w] = std::current_exception();
      }
    });
  }
  try {
    fn(std::size_t{0}, std::min(n, chunk), 0);
  } catch (...) {
    errors[0] = std::current_exception();
  }
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace cnnvis
