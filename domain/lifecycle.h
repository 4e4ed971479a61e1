// The state machines of actions and investigations. This is the only place
// that decides which transitions are legal; every way of changing a resource
// (gRPC, batch, HTTP, policy, expiry, upstream results) goes through here.
// Pure functions on the resource messages: no gRPC, no SQL, time is passed in.
#ifndef AIR_DOMAIN_LIFECYCLE_H_
#define AIR_DOMAIN_LIFECYCLE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "air/v1/action.pb.h"
#include "air/v1/event.pb.h"
#include "air/v1/investigation.pb.h"

namespace air {

using ActionState = v1::Action::State;
using InvestigationState = v1::Investigation::State;

// Default time a pending action waits for a decision before it expires.
inline constexpr absl::Duration kDefaultActionTtl = absl::Hours(24 * 7);
// Longest accepted decision comment, in Unicode code points.
inline constexpr int kMaxCommentLength = 1024;

// ---- Actions ----

// True for states no transition leaves.
bool IsTerminal(ActionState state);

// OK if an action may move from `from` to `to`; otherwise FAILED_PRECONDITION
// (reason ACTION_NOT_PENDING when a decision meets a decided action, else
// INVALID_TRANSITION), naming the current state.
absl::Status CheckActionTransition(ActionState from, ActionState to);

// The event type that announces an action entering `to`.
v1::Event::Type ActionEventType(ActionState to);

// A request to decide one action.
struct DecisionCommand {
  std::string action_id;
  v1::Decision::Outcome outcome = v1::Decision::OUTCOME_UNSPECIFIED;
  v1::Decision::Source source = v1::Decision::SOURCE_API;
  std::string decider;        // the authenticated principal
  std::string comment;
  std::string expected_etag;  // empty: any version
  std::string policy_rule;    // for SOURCE_POLICY
};

// Applies an approve/reject decision to `action` in place. When the action
// needs more than one approver, an approval short of the last is recorded in
// `approvals` and the action stays PENDING. Errors, with `action` untouched:
//   FAILED_PRECONDITION (SAME_APPROVER) if this decider already approved;
//   ABORTED (ETAG_MISMATCH) if expected_etag is set and differs;
//   FAILED_PRECONDITION (ACTION_NOT_PENDING) if the action is not pending or
//   its expire_time has passed (it is then reported as STATE_EXPIRED).
absl::Status ApplyDecision(const DecisionCommand& command, absl::Time now,
                           v1::Action& action);

// True if `action` is pending and its expire_time is at or before `now`.
bool IsPastDeadline(const v1::Action& action, absl::Time now);

// Expires a pending action whose deadline has passed (outcome EXPIRED,
// source EXPIRY, decider "system"). FAILED_PRECONDITION otherwise.
absl::Status ApplyExpiry(absl::Time now, v1::Action& action);

// Moves an action along its execution path (RUNNING, COMPLETED, FAILED,
// CANCELLED) as reported upstream. FAILED_PRECONDITION if illegal.
absl::Status ApplyExecutionState(ActionState to, absl::string_view failure_reason,
                                 absl::Time now, v1::Action& action);

// Prepares a newly proposed action: PENDING, times, expire_time, first etag.
void InitializeNewAction(absl::Time now, absl::Duration ttl, v1::Action& action);

// ---- Investigations ----

// True for states that no action change moves the investigation out of.
bool IsTerminal(InvestigationState state);

// OK if an investigation may move from `from` to `to` when the upstream
// engine reports it; FAILED_PRECONDITION (INVALID_TRANSITION) otherwise.
absl::Status CheckInvestigationTransition(InvestigationState from,
                                          InvestigationState to);

// The state an investigation's actions imply, given its current state.
InvestigationState DeriveInvestigationState(
    InvestigationState current, const v1::Investigation::ActionCounts& counts);

// Records that one of the investigation's actions moved from `from` to `to`
// (`from` is STATE_UNSPECIFIED for a new action): updates the counts,
// derives the state, and touches update_time and etag. Returns true if the
// investigation's state changed.
bool ApplyActionChange(ActionState from, ActionState to, absl::Time now,
                       v1::Investigation& investigation);

// Prepares a new investigation: times, empty counts, first etag.
void InitializeNewInvestigation(absl::Time now, v1::Investigation& investigation);

// ---- Shared ----

// Returns the etag that follows `etag` (opaque "v<N>" tags).
std::string NextEtag(absl::string_view etag);

// Sets `ts` from `t`.
void SetTimestamp(absl::Time t, google::protobuf::Timestamp* ts);
// Converts a Timestamp to absl::Time.
absl::Time ToAbslTime(const google::protobuf::Timestamp& ts);

}  // namespace air

#endif  // AIR_DOMAIN_LIFECYCLE_H_
