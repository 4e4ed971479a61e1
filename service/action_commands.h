// Transaction-level commands: the single path by which investigations and
// actions change. Each function runs inside a Repository write, asks the
// domain state machines whether the change is legal, and writes the
// resource, the audit row and the events in that same transaction. gRPC,
// batch, HTTP, policy, expiry, demo data and upstream sync all call these.
#ifndef AIR_SERVICE_ACTION_COMMANDS_H_
#define AIR_SERVICE_ACTION_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "air/v1/action.pb.h"
#include "air/v1/investigation.pb.h"
#include "domain/lifecycle.h"
#include "domain/policy.h"
#include "storage/storage.h"

namespace air {

// Stores a new investigation (state STARTING unless set) and its
// TYPE_INVESTIGATION_CREATED event. The caller sets id and descriptive
// fields; times and etag are assigned here.
absl::Status CreateInvestigationTx(WriteTransaction& tx,
                                   v1::Investigation investigation);

// Stores a newly proposed pending action, updates its investigation, and
// emits TYPE_ACTION_CREATED (and TYPE_INVESTIGATION_STATE_CHANGED if the
// investigation's state moved). NOT_FOUND if the investigation is unknown.
// With a `policy`, the action gets its required approver count, and an
// automation rule that matches approves it at once (source POLICY), in the
// same transaction and on the stream like any other decision.
absl::StatusOr<v1::Action> ProposeActionTx(WriteTransaction& tx,
                                           v1::Action action,
                                           absl::Duration ttl,
                                           const DecisionPolicy* policy = nullptr);

// What to decide: one or more actions of the same type, one outcome.
struct DecideActionsInput {
  std::vector<std::string> ids;
  std::vector<std::string> etags;  // empty, or one per id
  DecisionCommand command;         // action_id/expected_etag are per id
  std::string request_id;          // optional idempotency key
  // Identifies what was asked, so a reused request_id with different
  // content is refused rather than answered with another request's result.
  std::string fingerprint;
};

// Decides every action in `input.ids` atomically, or none:
//  * INVALID_ARGUMENT (MIXED_ACTION_TYPES) if they differ in type;
//  * the first failing action's error otherwise (NOT_FOUND, ABORTED,
//    FAILED_PRECONDITION), with metadata "action_id".
// A repeated request_id returns the first result without changing anything;
// a request_id reused for a different request is INVALID_ARGUMENT
// (REQUEST_ID_REUSED).
absl::StatusOr<std::vector<v1::Action>> DecideActionsTx(
    WriteTransaction& tx, const DecideActionsInput& input);

// Expires one pending action past its deadline (source EXPIRY) and moves its
// investigation on. FAILED_PRECONDITION if it is not due.
absl::Status ExpireActionTx(WriteTransaction& tx, const std::string& action_id);

// Applies an execution report (running, completed, failed, cancelled).
absl::StatusOr<v1::Action> ApplyExecutionStateTx(WriteTransaction& tx,
                                                 const std::string& action_id,
                                                 ActionState to,
                                                 absl::string_view failure_reason);

}  // namespace air

#endif  // AIR_SERVICE_ACTION_COMMANDS_H_
