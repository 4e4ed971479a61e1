// Exponential backoff with jitter, for retrying calls to a remote that may
// be down for a long time. Pure: the caller sleeps, and the random source is
// seeded, so tests are deterministic. Not thread-safe; one per retry loop.
#ifndef AIR_DOMAIN_BACKOFF_H_
#define AIR_DOMAIN_BACKOFF_H_

#include <cstdint>
#include <random>

#include "absl/time/time.h"

namespace air {

struct BackoffPolicy {
  // Delay after the first failure.
  absl::Duration initial = absl::Milliseconds(200);
  // Largest delay; retries continue forever at about this spacing.
  absl::Duration max = absl::Seconds(30);
  // Growth factor per consecutive failure (at least 1).
  double multiplier = 2.0;
  // Fraction of each delay that is randomised, in [0, 1]: the delay is drawn
  // uniformly from [d * (1 - jitter), d]. Jitter keeps many clients from
  // retrying in lockstep after a shared outage.
  double jitter = 0.5;
};

class Backoff {
 public:
  explicit Backoff(BackoffPolicy policy, uint64_t seed = 0x5eed);

  // The delay to wait before the next attempt, after one more failure.
  // Never zero (so a retry loop never spins) and never above policy.max.
  absl::Duration NextDelay();
  // Call after a success: the next failure starts again from `initial`.
  void Reset();
  // Failures since the last Reset().
  int failures() const { return failures_; }

 private:
  const BackoffPolicy policy_;
  std::mt19937_64 random_;
  absl::Duration current_;
  int failures_ = 0;
};

}  // namespace air

#endif  // AIR_DOMAIN_BACKOFF_H_
