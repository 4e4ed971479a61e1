// The rules for reconciling upstream records with local resources, and the
// duplicate-approval rule. Pure functions: no gRPC, no SQL, time passed in.
//
// The upstream engine reports what it believes an action's state is; the
// local state machine (lifecycle.h) decides which of those reports can be
// applied and by which legal steps. Anything that cannot be applied is a
// conflict, reported to the caller rather than forced.
#ifndef AIR_DOMAIN_UPSTREAM_SYNC_H_
#define AIR_DOMAIN_UPSTREAM_SYNC_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "air/upstream/v1/upstream.pb.h"
#include "air/v1/action.pb.h"
#include "domain/lifecycle.h"

namespace air {

// Field limits of upstream records (see proto/air/upstream/v1/upstream.proto).
inline constexpr int kMaxUpstreamDisplayName = 512;
inline constexpr int kMaxUpstreamIdentifier = 2048;
inline constexpr int kMaxUpstreamFailureReason = 1024;
inline constexpr int kMaxUpstreamDecider = 256;
inline constexpr int kMaxUpstreamRequestId = 200;

// An identical action approved within this window before a new approval is
// not run again (the vendor's rule, docs/domain.md).
inline constexpr absl::Duration kDuplicateApprovalWindow = absl::Hours(1);

// OK if the record can be applied; otherwise INVALID_ARGUMENT with reason
// MALFORMED_UPSTREAM_RECORD and a message naming the record and the fault
// (missing or bad id, version < 1, unknown or unspecified enum value,
// over-long field).
absl::Status ValidateUpstreamInvestigation(const upstream::v1::Investigation& record);
absl::Status ValidateUpstreamAction(const upstream::v1::Action& record);

// How to bring a local action in line with an upstream report.
struct ActionSyncPlan {
  // Local states to move through, in order; each step is a legal transition
  // from the previous one. Empty when nothing needs to change.
  std::vector<ActionState> steps;
  // Set when the report contradicts the local state in a way no legal step
  // can express (for example the upstream ran an action that was rejected
  // here). The caller logs and counts it; `steps` may still hold the best
  // legal reconciliation (an approval the upstream refused becomes
  // CANCELLED, since it will never run).
  bool conflict = false;
  std::string conflict_reason;
};

// Plans the steps from `local` to what the upstream reports as `remote`.
// A report that lags behind the local state (still PENDING while aird's own
// decision is on its way) plans nothing and is not a conflict.
ActionSyncPlan PlanActionSync(ActionState local, ActionState remote);

// Expires a pending action because the upstream reports it expired, even if
// its local deadline has not passed (the upstream's clock owns expiry for
// its actions). Outcome EXPIRED, source UPSTREAM. FAILED_PRECONDITION if the
// action is not pending.
absl::Status ApplyUpstreamExpiry(absl::Time now, v1::Action& action);

// The key under which the duplicate rule compares targets: type and target
// identifier. Empty when the action names no target identifier; such an
// action is never a duplicate.
std::string DuplicateTargetKey(const v1::Action& action);

// True if an approval at `now` of an action duplicates `earlier`, an action
// on the same target approved at `earlier_approve_time`: within the window,
// a different action, and `earlier` has not failed or been withdrawn (then
// the remediation did not happen and must run again).
bool IsDuplicateApproval(const v1::Action& earlier, absl::Time earlier_approve_time,
                         absl::Time now, absl::string_view action_id);

// The request_id aird sends upstream for the decision on `action_id`. One
// per action, so the upstream can never receive two decisions for it.
std::string DecisionRequestId(absl::string_view action_id);

}  // namespace air

#endif  // AIR_DOMAIN_UPSTREAM_SYNC_H_
