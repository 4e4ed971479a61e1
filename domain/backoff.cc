#include "domain/backoff.h"

#include <algorithm>

namespace air {

namespace {
// The floor for any delay, so that a policy with zero durations cannot spin.
constexpr absl::Duration kMinDelay = absl::Milliseconds(1);
}  // namespace

Backoff::Backoff(BackoffPolicy policy, uint64_t seed)
    : policy_(policy), random_(seed), current_(policy.initial) {}

absl::Duration Backoff::NextDelay() {
  const absl::Duration cap = std::max(policy_.max, kMinDelay);
  absl::Duration base = std::clamp(current_, kMinDelay, cap);
  ++failures_;
  // Grow for next time, saturating at the cap (no overflow after days of
  // failures).
  current_ = std::min(cap, base * std::max(policy_.multiplier, 1.0));
  const double jitter = std::clamp(policy_.jitter, 0.0, 1.0);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const absl::Duration delay = base * (1.0 - jitter * unit(random_));
  return std::max(delay, kMinDelay);
}

void Backoff::Reset() {
  current_ = policy_.initial;
  failures_ = 0;
}

}  // namespace air
