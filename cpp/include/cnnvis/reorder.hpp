// Row reordering: the shortest open Hamiltonian path through a distance matrix.
//
// Exact: Held-Karp dynamic programming over subsets, O(n^2 2^n) time and n 2^n float32 cells
// of memory (no parent table: the path is recovered by recomputing the argmin). The size limit
// comes from a memory budget given by the caller.
// Heuristic: the CNNVis idea (average-linkage hierarchy; small groups ordered exactly, groups
// ordered exactly with a choice of joining ends) followed by iterated local search (2-opt and
// Or-opt over neighbour lists with don't-look bits, double-bridge kicks), deterministic for a seed.
// Pure C++17, no Python.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cnnvis/common.hpp"

namespace cnnvis::reorder {

// Bytes of the Held-Karp table for n points.
std::size_t held_karp_bytes(std::size_t n);

// Largest n whose Held-Karp table fits in memory_limit bytes (0 when even n = 1 does not).
std::size_t held_karp_max_n(std::size_t memory_limit);

// Exact shortest open path. dist: n x n row-major, finite, symmetric, non-negative (checked by
// the caller). Throws MemoryLimit when the table exceeds memory_limit. The result is the same for
// any n_threads.
std::vector<std::int64_t> held_karp_path(const double* dist, std::size_t n,
                                         std::size_t memory_limit, int n_threads,
                                         const Interrupt& interrupt = {});

struct HeuristicOptions {
  std::int64_t max_iter = -1;  // perturbation rounds; < 0: min(20000 + 10 n, max(1000, 200 n))
  double time_budget = 2.0;    // wall-clock cap in seconds (safety net); <= 0: none
  std::uint64_t seed = 0;
  int neighbours = 10;  // neighbour-list length for the local search
  int group_size = 9;   // groups of the hierarchy up to this size are ordered exactly
  int fan_out = 8;      // up to this many subgroups are ordered exactly at each level
  int kick_size = 100;  // double-bridge kicks swap two adjacent stretches of 1..kick_size points
};

struct HeuristicResult {
  std::vector<std::int64_t> order;
  double nn_length = 0;          // nearest-neighbour path from point 0
  double hierarchy_length = 0;   // CNNVis hierarchical start
  double local_length = 0;       // after the first local search
  double length = 0;             // final
  std::int64_t iterations = 0;   // perturbation rounds done
  bool time_capped = false;      // stopped by the wall-clock cap, not the iteration budget
};

HeuristicResult heuristic_path(const double* dist, std::size_t n, const HeuristicOptions& options,
                               const Interrupt& interrupt = {});

// Greedy nearest-neighbour open path from `start` (ties to the lower index).
std::vector<std::int64_t> nearest_neighbour_path(const double* dist, std::size_t n,
                                                 std::size_t start);

// The order of average-linkage hierarchy leaves refined as in CNNVis (no local search).
std::vector<std::int64_t> hierarchical_path(const double* dist, std::size_t n, int group_size,
                                            int fan_out);

double path_length(const double* dist, std::size_t n, const std::vector<std::int64_t>& order);

}  // namespace cnnvis::reorder
