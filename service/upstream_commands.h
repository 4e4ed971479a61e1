// Transaction-level commands for the upstream link, beside
// action_commands.h and built on it: applying an upstream record to the
// local investigation or action, and the two steps every decision takes on
// its way upstream (the duplicate rule and the decision outbox). Like the
// other commands, each runs inside a Repository write, asks the domain
// (upstream_sync.h, lifecycle.h) what is legal, and writes the resource, its
// audit and its events in that same transaction.
#ifndef AIR_SERVICE_UPSTREAM_COMMANDS_H_
#define AIR_SERVICE_UPSTREAM_COMMANDS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "air/upstream/v1/upstream.pb.h"
#include "air/v1/action.pb.h"
#include "domain/lifecycle.h"
#include "domain/policy.h"
#include "storage/storage.h"

namespace air {

// What applying one upstream record did.
enum class SyncOutcome {
  kApplied,     // created or changed the local resource
  kUnchanged,   // a newer version with nothing to change locally
  kStale,       // version not newer than the last applied: ignored
  kMalformed,   // failed validation: skipped, nothing written
  kConflict,    // contradicts the local state; applied as far as legal
};

struct SyncRecordResult {
  SyncOutcome outcome = SyncOutcome::kUnchanged;
  // For kMalformed and kConflict: what was wrong, naming the record.
  std::string detail;
};

// Applies an upstream investigation record: creates the investigation, or
// updates its descriptive fields and moves its state when the investigation
// state machine allows (TYPE_INVESTIGATION_CREATED / _STATE_CHANGED).
// Errors are storage faults only; bad or contradictory records are outcomes.
absl::StatusOr<SyncRecordResult> SyncInvestigationTx(
    WriteTransaction& tx, const upstream::v1::Investigation& record);

// Applies an upstream action record: creates the action (as a proposal,
// TYPE_ACTION_CREATED; a placeholder investigation if its own record has
// not arrived yet), then walks the legal steps to the upstream's state:
// decisions made upstream (source UPSTREAM, audited, never sent back),
// execution results with their failure reason, upstream expiry. `ttl`
// applies when the record carries no expire_time. A new action gets the
// `policy`'s approver count, and an automation rule may approve it at once
// (that approval goes upstream like any other); null means no policy.
absl::StatusOr<SyncRecordResult> SyncActionTx(WriteTransaction& tx,
                                              const upstream::v1::Action& record,
                                              absl::Duration ttl,
                                              const DecisionPolicy* policy = nullptr);

// Called by DecideActionsTx after a decision moved `action` out of `from`,
// before it is stored. For a final approval of an action with a target: if
// an identical action (same type and target identifier) was approved within
// kDuplicateApprovalWindow and has not failed, sets `duplicate_of` to it, so
// the remediation is not run again; otherwise records this approval as the
// target's latest original.
absl::Status ApplyDuplicateRuleTx(WriteTransaction& tx, ActionState from,
                                  v1::Action& action);

// Called by DecideActionsTx after the decided action is stored. Enqueues the
// decision in the decision outbox when the action came from the upstream
// and the decision did not (decisions reported by the upstream are not sent
// back). Partial approvals enqueue nothing.
absl::Status EnqueueDecisionForUpstreamTx(WriteTransaction& tx, ActionState from,
                                          const v1::Action& action);

}  // namespace air

#endif  // AIR_SERVICE_UPSTREAM_COMMANDS_H_
