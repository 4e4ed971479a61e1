#include "clients/cpp/retry_policy.h"

#include <algorithm>
#include <cmath>

namespace air::client {

absl::Duration BackoffDelay(const RetryPolicy& policy, int retry, double uniform01) {
  const double multiplier = std::max(1.0, policy.multiplier);
  const double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  const double max_seconds = absl::ToDoubleSeconds(policy.max_backoff);
  double seconds = absl::ToDoubleSeconds(policy.initial_backoff);
  // Grow step by step so a large `retry` saturates instead of overflowing.
  for (int i = 1; i < retry && seconds < max_seconds; ++i) seconds *= multiplier;
  seconds = std::min(seconds, max_seconds);
  const double u = std::clamp(uniform01, 0.0, 1.0);
  seconds *= 1.0 + jitter * (2.0 * u - 1.0);
  return absl::Seconds(std::max(0.0, seconds));
}

bool ShouldRetry(const RetryPolicy& policy, absl::StatusCode code, bool idempotent,
                 int attempts_made) {
  if (!idempotent || code != absl::StatusCode::kUnavailable) return false;
  return policy.max_attempts <= 0 || attempts_made < policy.max_attempts;
}

}  // namespace air::client
