// Small measurement helpers for air-bench: a wall clock shared by every
// process on the box, latency summaries and medians of repeated runs.
#ifndef AIR_BENCH_BENCH_STATS_H_
#define AIR_BENCH_BENCH_STATS_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/time/clock.h"

namespace air::bench {

// CLOCK_REALTIME in nanoseconds: the server child stamps events with it and
// the client compares, so both sides must read the same clock.
inline int64_t WallNanos() { return absl::GetCurrentTimeNanos(); }

// Latency percentiles in milliseconds over a set of samples (nanoseconds).
struct LatencySummary {
  int64_t samples = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
};

// Nearest-rank percentile of sorted samples; q in [0, 1].
inline int64_t Percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(q * static_cast<double>(sorted.size()));
  if (rank >= sorted.size()) rank = sorted.size() - 1;
  return sorted[rank];
}

inline LatencySummary Summarize(std::vector<int64_t> samples_ns) {
  LatencySummary s;
  s.samples = static_cast<int64_t>(samples_ns.size());
  if (samples_ns.empty()) return s;
  std::sort(samples_ns.begin(), samples_ns.end());
  s.p50_ms = static_cast<double>(Percentile(samples_ns, 0.50)) / 1e6;
  s.p99_ms = static_cast<double>(Percentile(samples_ns, 0.99)) / 1e6;
  s.max_ms = static_cast<double>(samples_ns.back()) / 1e6;
  return s;
}

// Median of repeated measurements (the lower middle for an even count).
inline double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[(values.size() - 1) / 2];
}

}  // namespace air::bench

#endif  // AIR_BENCH_BENCH_STATS_H_
