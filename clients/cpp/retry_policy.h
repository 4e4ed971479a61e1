// When the AIR client retries a call, and how long it waits in between.
//
// Contract: a call is retried only when it is idempotent AND failed with
// UNAVAILABLE (the server was unreachable or shutting down). Reads (Get, List,
// health checks) are idempotent; decisions (Approve, Reject, BatchDecide) are
// idempotent only when they carry a request_id, because the server then
// returns the first result for a repeat instead of deciding twice. Every
// other code is final: DEADLINE_EXCEEDED may mean the write happened, ABORTED
// needs a fresh read before the retry, and the rest will not change by
// waiting. These are pure functions: thread-safe, no state.
#ifndef AIR_CLIENTS_CPP_RETRY_POLICY_H_
#define AIR_CLIENTS_CPP_RETRY_POLICY_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "air/v1/action_service.pb.h"
#include "air/v1/investigation_service.pb.h"

namespace air::client {

// Exponential backoff with jitter: the n-th retry waits
// min(initial_backoff * multiplier^(n-1), max_backoff), scaled by a random
// factor in [1 - jitter, 1 + jitter] so that many clients restarted together
// do not retry in lockstep.
struct RetryPolicy {
  // Total attempts of one call, including the first. 1 disables retries.
  // For Watch, the number of consecutive failed reconnects before giving up;
  // 0 there means "keep trying".
  int max_attempts = 5;
  // Wait before the first retry.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  // Upper bound of one wait (before jitter).
  absl::Duration max_backoff = absl::Seconds(5);
  // Growth factor between consecutive waits. At least 1.
  double multiplier = 2.0;
  // Relative random spread of each wait, in [0, 1].
  double jitter = 0.2;
};

// The wait before retry number `retry` (1 for the first retry). `uniform01`
// is a random value in [0, 1); 0.5 gives the unjittered delay.
absl::Duration BackoffDelay(const RetryPolicy& policy, int retry, double uniform01);

// Whether a call that failed with `code` after `attempts_made` attempts may be
// sent again. `max_attempts` <= 0 means unlimited.
bool ShouldRetry(const RetryPolicy& policy, absl::StatusCode code, bool idempotent,
                 int attempts_made);

// Idempotency of each request. Reads always are; decisions only with a
// request_id.
inline bool IsIdempotent(const v1::GetInvestigationRequest&) { return true; }
inline bool IsIdempotent(const v1::ListInvestigationsRequest&) { return true; }
inline bool IsIdempotent(const v1::GetActionRequest&) { return true; }
inline bool IsIdempotent(const v1::ListActionsRequest&) { return true; }
inline bool IsIdempotent(const v1::ApproveActionRequest& r) { return !r.request_id().empty(); }
inline bool IsIdempotent(const v1::RejectActionRequest& r) { return !r.request_id().empty(); }
inline bool IsIdempotent(const v1::BatchDecideActionsRequest& r) {
  return !r.request_id().empty();
}

}  // namespace air::client

#endif  // AIR_CLIENTS_CPP_RETRY_POLICY_H_
