// Shared vocabulary of the C++ core: typed errors, cancellation and a deterministic parallel loop.
// Pure C++17: no Python here. The binding layer turns these errors into Python exceptions.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif

// CNNVIS_PORTABLE builds the plain C++ branches of the GCC/Clang-only code (bit scans, vector
// types, atomic builtins) with any compiler; the tests check they give the same bits.
#if (defined(__GNUC__) || defined(__clang__)) && !defined(CNNVIS_PORTABLE)
#define CNNVIS_GNU 1
#else
#define CNNVIS_GNU 0
#endif

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

// Cores this machine offers (at least 1).
inline int available_cores() {
  static const int cores = [] {
    const unsigned h = std::thread::hardware_concurrency();
    return h == 0 ? 1 : static_cast<int>(std::min(h, 1u << 16));
  }();
  return cores;
}

// The one thread-count rule of the core, applied by every threaded entry point: -1 means every
// core, 1.. is taken as asked up to the core count (more threads than cores only add switching,
// and an unbounded count starts thousands of threads), 0 and values below -1 are errors.
// The Python layer applies the same rule first (cnnvis.parallel) and warns when it caps.
constexpr std::int64_t kMaxJobs = 2147483647;  // beyond a C int: not a thread count

inline int resolve_n_jobs(std::int64_t n_jobs, const char* name = "n_jobs") {
  if (n_jobs == -1) return available_cores();
  if (n_jobs < 1 || n_jobs > kMaxJobs)
    throw InvalidArgument(std::string(name) + " must be in [1, " + std::to_string(kMaxJobs) +
                          "], or -1 for every core, got " + std::to_string(n_jobs));
  return static_cast<int>(std::min<std::int64_t>(n_jobs, available_cores()));
}

// Index of the lowest set bit of x (x != 0).
inline int lowest_bit(std::uint64_t x) {
#if CNNVIS_GNU
  return __builtin_ctzll(x);
#elif defined(_MSC_VER) && defined(_M_X64)
  unsigned long i;
  _BitScanForward64(&i, x);
  return static_cast<int>(i);
#else
  int i = 0;
  for (; !(x & 1u); x >>= 1) ++i;
  return i;
#endif
}

// a + b > limit for non-negative a, b without the overflow of the sum.
inline bool exceeds(std::size_t a, std::size_t b, std::size_t limit) {
  return a > limit || b > limit - a;
}

// A fixed set of threads for runs that make many short parallel passes (t-SNE makes four per
// iteration; starting threads for each would cost more than some of the passes). The caller is
// thread 0; workers 1..size-1 are started once and wait between passes, first spinning for a few
// tens of microseconds (passes of one iteration follow each other closely), then sleeping on a
// condition variable. Not reentrant: one pass at a time, from one calling thread. Never more
// threads than available_cores(), whatever a caller asks: this is where every thread starts.
class ThreadPool {
 public:
  explicit ThreadPool(int n_threads)
      : size_(std::min(std::max(1, n_threads), available_cores())), errors_(size_) {
    threads_.reserve(static_cast<std::size_t>(size_ - 1));
    for (int t = 1; t < size_; ++t) threads_.emplace_back([this, t] { work(t); });
  }
  ~ThreadPool() {
    quit_.store(true, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(m_);
      gen_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& th : threads_) th.join();
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return size_; }

  // Runs fn(thread) for thread in [0, used) (used is clamped to [1, size]) and returns when all
  // have finished; rethrows the exception of the lowest-numbered thread that threw.
  template <class Fn>
  void run(int used, Fn&& fn) {
    used = std::min(std::max(1, used), size_);
    if (used == 1) {
      fn(0);
      return;
    }
    using F = std::remove_reference_t<Fn>;
    call_ = [](void* ctx, int t) { (*static_cast<F*>(ctx))(t); };
    ctx_ = const_cast<void*>(static_cast<const void*>(&fn));
    used_ = used;
    for (auto& e : errors_) e = nullptr;
    pending_.store(size_ - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(m_);
      gen_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    try {
      fn(0);
    } catch (...) {
      errors_[0] = std::current_exception();
    }
    if (!spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lk(m_);
      done_.wait(lk, [&] { return pending_.load(std::memory_order_acquire) == 0; });
    }
    for (auto& e : errors_)
      if (e) std::rethrow_exception(e);
  }

 private:
  static void relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }
  // Spins until ready() or about 50 microseconds have passed; returns ready().
  template <class Ready>
  static bool spin_until(Ready&& ready) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
    for (;;) {
      for (int i = 0; i < 64; ++i) {
        if (ready()) return true;
        relax();
      }
      if (std::chrono::steady_clock::now() > until) return ready();
    }
  }

  void work(int t) {
    std::uint64_t seen = 0;
    for (;;) {
      auto fresh = [&] { return gen_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(fresh)) {
        std::unique_lock<std::mutex> lk(m_);
        wake_.wait(lk, fresh);
      }
      seen = gen_.load(std::memory_order_acquire);
      if (quit_.load(std::memory_order_relaxed)) return;  // set before gen_ was bumped
      if (t < used_) {
        try {
          call_(ctx_, t);
        } catch (...) {
          errors_[static_cast<std::size_t>(t)] = std::current_exception();
        }
      }
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lk(m_);  // pairs with the caller's wait: no lost wake-up
        done_.notify_one();
      }
    }
  }

  int size_;
  std::vector<std::thread> threads_;
  std::vector<std::exception_ptr> errors_;
  std::mutex m_;
  std::condition_variable wake_, done_;
  std::atomic<std::uint64_t> gen_{0};
  std::atomic<int> pending_{0};
  void (*call_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
  int used_ = 0;
  std::atomic<bool> quit_{false};
};

// Runs fn(begin, end, thread_index) over [0, n) split into min(n_threads, pool size) contiguous,
// fixed chunks. Chunks depend only on n and the thread count, so callers that reduce per chunk in
// index order get results that do not depend on scheduling.
template <class Fn>
void parallel_for(ThreadPool& pool, std::size_t n, int n_threads, Fn&& fn) {
  const std::size_t t = static_cast<std::size_t>(std::max(1, std::min(n_threads, pool.size())));
  const std::size_t workers = std::min(t, std::max<std::size_t>(n, 1));
  if (workers <= 1) {
    fn(std::size_t{0}, n, 0);
    return;
  }
  const std::size_t chunk = (n + workers - 1) / workers;
  pool.run(static_cast<int>(workers), [&](int w) {
    const std::size_t b = std::min(n, static_cast<std::size_t>(w) * chunk);
    const std::size_t e = std::min(n, (static_cast<std::size_t>(w) + 1) * chunk);
    fn(b, e, w);
  });
}

// The same for a one-off pass: threads started for this call only.
template <class Fn>
void parallel_for(std::size_t n, int n_threads, Fn&& fn) {
  ThreadPool pool(static_cast<int>(std::min<std::size_t>(
      static_cast<std::size_t>(std::max(1, n_threads)), std::max<std::size_t>(n, 1))));
  parallel_for(pool, n, pool.size(), fn);
}

}  // namespace cnnvis
