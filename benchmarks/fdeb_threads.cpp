// Standalone timing of the C++ FDEB core (no Python): the benchmark's 8-hub graph (same
// distribution, own generator), default options, 1 and 2 threads, best of 3, bit-identity.
// Build: g++ -O3 -std=c++17 -fno-math-errno -fno-trapping-math -Icpp/include \
//          cpp/src/bundling.cpp benchmarks/fdeb_threads.cpp -o fdeb_threads -pthread
// Run:   ./fdeb_threads [edges]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

#include "cnnvis/bundling.hpp"

int main(int argc, char** argv) {
  const long m = argc > 1 ? std::atol(argv[1]) : 10000;
  std::mt19937_64 rng(0);
  std::uniform_int_distribution<int> hub(0, 7), step(1, 7);
  std::normal_distribution<double> noise(0.0, 60.0);
  const double pi = std::acos(-1.0);
  std::vector<double> seg(m * 4);
  for (long e = 0; e < m; ++e) {
    const int a = hub(rng), b = (a + step(rng)) % 8;
    seg[e * 4 + 0] = 400 * std::cos(a * pi / 4) + 500 + noise(rng);
    seg[e * 4 + 1] = 400 * std::sin(a * pi / 4) + 500 + noise(rng);
    seg[e * 4 + 2] = 400 * std::cos(b * pi / 4) + 500 + noise(rng);
    seg[e * 4 + 3] = 400 * std::sin(b * pi / 4) + 500 + noise(rng);
  }
  std::vector<double> first;
  for (int threads : {1, 2}) {
    double best = 1e9;
    for (int rep = 0; rep < 3; ++rep) {
      cnnvis::FdebOptions opt;
      opt.n_threads = threads;
      const auto t0 = std::chrono::steady_clock::now();
      const cnnvis::FdebOutput out = cnnvis::bundle_edges(seg.data(), m, 2, opt, nullptr);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::min(best, s);
      if (first.empty()) first = out.polylines;
      if (out.polylines.size() != first.size() ||
          std::memcmp(out.polylines.data(), first.data(), first.size() * sizeof(double)) != 0) {
        std::printf("output differs for %d threads\n", threads);
        return 1;
      }
    }
    std::printf("%ld edges, %d thread(s): best of 3 %.3f s\n", m, threads, best);
  }
  std::printf("outputs bit-identical across runs and thread counts\n");
  return 0;
}
