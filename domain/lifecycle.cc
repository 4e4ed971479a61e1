#include "domain/lifecycle.h"

#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "domain/errors.h"

namespace air {
namespace {

using v1::Action;
using v1::Investigation;

std::string StateName(ActionState state) { return Action::State_Name(state); }

void Touch(absl::Time now, Action& action) {
  SetTimestamp(now, action.mutable_update_time());
  action.set_etag(NextEtag(action.etag()));
}

absl::Status NotPending(const Action& action, ActionState reported) {
  return MakeError(absl::StatusCode::kFailedPrecondition,
                   absl::StrCat("action ", action.id(), " is ",
                                StateName(reported), ", not STATE_PENDING"),
                   v1::ACTION_NOT_PENDING,
                   {{"action_id", action.id()}, {"state", StateName(reported)}});
}

// Adds `delta` to the count bucket(s) that `state` belongs to.
void CountState(ActionState state, int delta,
                Investigation::ActionCounts& counts) {
  switch (state) {
    case Action::STATE_PENDING:
      counts.set_pending(counts.pending() + delta);
      break;
    case Action::STATE_APPROVED:
    case Action::STATE_RUNNING:
      counts.set_approved(counts.approved() + delta);
      counts.set_in_progress(counts.in_progress() + delta);
      break;
    case Action::STATE_COMPLETED:
      counts.set_approved(counts.approved() + delta);
      counts.set_completed(counts.completed() + delta);
      break;
    case Action::STATE_FAILED:
      counts.set_approved(counts.approved() + delta);
      counts.set_failed(counts.failed() + delta);
      break;
    case Action::STATE_REJECTED:
      counts.set_rejected(counts.rejected() + delta);
      break;
    case Action::STATE_EXPIRED:
      counts.set_expired(counts.expired() + delta);
      break;
    case Action::STATE_CANCELLED:
      counts.set_cancelled(counts.cancelled() + delta);
      break;
    default:
      return;  // STATE_UNSPECIFIED: not counted (a new action has no "from").
  }
}

}  // namespace

bool IsTerminal(ActionState state) {
  switch (state) {
    case Action::STATE_REJECTED:
    case Action::STATE_COMPLETED:
    case Action::STATE_FAILED:
    case Action::STATE_EXPIRED:
    case Action::STATE_CANCELLED:
      return true;
    default:
      return false;
  }
}

absl::Status CheckActionTransition(ActionState from, ActionState to) {
  bool allowed = false;
  switch (from) {
    case Action::STATE_PENDING:
      allowed = to == Action::STATE_APPROVED || to == Action::STATE_REJECTED ||
                to == Action::STATE_EXPIRED || to == Action::STATE_CANCELLED;
      break;
    case Action::STATE_APPROVED:
      // An approved action may finish without a separate "running" report.
      allowed = to == Action::STATE_RUNNING || to == Action::STATE_COMPLETED ||
                to == Action::STATE_FAILED || to == Action::STATE_CANCELLED;
      break;
    case Action::STATE_RUNNING:
      allowed = to == Action::STATE_COMPLETED || to == Action::STATE_FAILED;
      break;
    default:
      allowed = false;
  }
  if (allowed) return absl::OkStatus();
  const bool is_decision =
      to == Action::STATE_APPROVED || to == Action::STATE_REJECTED;
  return MakeError(absl::StatusCode::kFailedPrecondition,
                   absl::StrCat("cannot move an action from ", StateName(from),
                                " to ", StateName(to)),
                   is_decision ? v1::ACTION_NOT_PENDING : v1::INVALID_TRANSITION,
                   {{"state", StateName(from)}});
}

v1::Event::Type ActionEventType(ActionState to) {
  switch (to) {
    case Action::STATE_PENDING: return v1::Event::TYPE_ACTION_CREATED;
    case Action::STATE_APPROVED: return v1::Event::TYPE_ACTION_APPROVED;
    case Action::STATE_REJECTED: return v1::Event::TYPE_ACTION_REJECTED;
    case Action::STATE_EXPIRED: return v1::Event::TYPE_ACTION_EXPIRED;
    case Action::STATE_RUNNING: return v1::Event::TYPE_ACTION_RUNNING;
    case Action::STATE_COMPLETED: return v1::Event::TYPE_ACTION_COMPLETED;
    case Action::STATE_FAILED: return v1::Event::TYPE_ACTION_FAILED;
    case Action::STATE_CANCELLED: return v1::Event::TYPE_ACTION_CANCELLED;
    default: return v1::Event::TYPE_ACTION_UPDATED;
  }
}

bool IsPastDeadline(const Action& action, absl::Time now) {
  return action.state() == Action::STATE_PENDING && action.has_expire_time() &&
         ToAbslTime(action.expire_time()) <= now;
}

absl::Status ApplyDecision(const DecisionCommand& command, absl::Time now,
                           Action& action) {
  ActionState to;
  switch (command.outcome) {
    case v1::Decision::OUTCOME_APPROVED: to = Action::STATE_APPROVED; break;
    case v1::Decision::OUTCOME_REJECTED: to = Action::STATE_REJECTED; break;
    default:
      return InvalidField("decision", "must be approve or reject",
                          v1::INVALID_DECISION);
  }
  if (action.state() != Action::STATE_PENDING) {
    return NotPending(action, action.state());
  }
  // Past its deadline the action is expired in effect, even if the sweeper
  // has not recorded that yet: a late decision must not win over expiry.
  if (IsPastDeadline(action, now)) return NotPending(action, Action::STATE_EXPIRED);
  if (!command.expected_etag.empty() && command.expected_etag != action.etag()) {
    return MakeError(absl::StatusCode::kAborted,
                     absl::StrCat("action ", action.id(),
                                  " changed since it was read; read it again"),
                     v1::ETAG_MISMATCH,
                     {{"action_id", action.id()}, {"etag", action.etag()}});
  }
  v1::Decision decision;
  decision.set_outcome(command.outcome);
  decision.set_source(command.source);
  decision.set_decider(command.decider);
  decision.set_comment(command.comment);
  decision.set_policy_rule(command.policy_rule);
  SetTimestamp(now, decision.mutable_decide_time());
  if (to == Action::STATE_APPROVED && action.required_approvals() > 1) {
    // Two-person rule: distinct approvers; the action stays pending until
    // enough have approved. A single rejection still rejects.
    for (const v1::Decision& earlier : action.approvals()) {
      if (earlier.decider() == command.decider) {
        return MakeError(absl::StatusCode::kFailedPrecondition,
                         absl::StrCat("action ", action.id(), " needs ",
                                      action.required_approvals(),
                                      " distinct approvers; ", command.decider,
                                      " has already approved it"),
                         v1::SAME_APPROVER,
                         {{"action_id", action.id()},
                          {"state", StateName(action.state())}});
      }
    }
    *action.add_approvals() = decision;
    if (action.approvals_size() < action.required_approvals()) {
      Touch(now, action);
      return absl::OkStatus();  // a partial approval: still pending
    }
  }
  *action.mutable_decision() = std::move(decision);
  action.set_state(to);
  Touch(now, action);
  return absl::OkStatus();
}

absl::Status ApplyExpiry(absl::Time now, Action& action) {
  if (!IsPastDeadline(action, now)) {
    return MakeError(absl::StatusCode::kFailedPrecondition,
                     absl::StrCat("action ", action.id(), " has not expired"),
                     v1::NOT_EXPIRED, {{"state", StateName(action.state())}});
  }
  v1::Decision* decision = action.mutable_decision();
  decision->set_outcome(v1::Decision::OUTCOME_EXPIRED);
  decision->set_source(v1::Decision::SOURCE_EXPIRY);
  decision->set_decider("system");
  decision->set_comment("no decision before the action's deadline");
  SetTimestamp(now, decision->mutable_decide_time());
  action.set_state(Action::STATE_EXPIRED);
  Touch(now, action);
  return absl::OkStatus();
}

absl::Status ApplyExecutionState(ActionState to, absl::string_view failure_reason,
                                 absl::Time now, Action& action) {
  if (to != Action::STATE_RUNNING && to != Action::STATE_COMPLETED &&
      to != Action::STATE_FAILED && to != Action::STATE_CANCELLED) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("not an execution state: ", StateName(to)),
                     v1::INVALID_TRANSITION);
  }
  if (action.state() == to) return absl::OkStatus();  // replayed report
  if (absl::Status s = CheckActionTransition(action.state(), to); !s.ok()) {
    return s;
  }
  action.set_state(to);
  if (to == Action::STATE_FAILED) action.set_failure_reason(std::string(failure_reason));
  Touch(now, action);
  return absl::OkStatus();
}

void InitializeNewAction(absl::Time now, absl::Duration ttl, Action& action) {
  action.set_state(Action::STATE_PENDING);
  action.clear_decision();
  action.clear_approvals();
  if (action.required_approvals() < 1) action.set_required_approvals(1);
  SetTimestamp(now, action.mutable_create_time());
  SetTimestamp(now, action.mutable_update_time());
  SetTimestamp(now + ttl, action.mutable_expire_time());
  action.set_etag(NextEtag(""));
}

bool IsTerminal(InvestigationState state) {
  switch (state) {
    case Investigation::STATE_NO_THREATS_FOUND:
    case Investigation::STATE_PARTIALLY_INVESTIGATED:
    case Investigation::STATE_FAILED:
    case Investigation::STATE_TERMINATED_BY_SYSTEM:
    case Investigation::STATE_TERMINATED_BY_USER:
    case Investigation::STATE_TERMINATED_BY_THROTTLING:
      return true;
    default:
      return false;
  }
}

absl::Status CheckInvestigationTransition(InvestigationState from,
                                          InvestigationState to) {
  if (from == to) return absl::OkStatus();
  if (to == Investigation::STATE_UNSPECIFIED || IsTerminal(from) ||
      to == Investigation::STATE_STARTING ||
      to == Investigation::STATE_QUEUED_BY_THROTTLING) {
    // Nothing returns to the start, and terminal states are final. A
    // throttled investigation may still start (QUEUED -> STARTING).
    if (!(from == Investigation::STATE_QUEUED_BY_THROTTLING &&
          to == Investigation::STATE_STARTING)) {
      return MakeError(absl::StatusCode::kFailedPrecondition,
                       absl::StrCat("cannot move an investigation from ",
                                    Investigation::State_Name(from), " to ",
                                    Investigation::State_Name(to)),
                       v1::INVALID_TRANSITION,
                       {{"state", Investigation::State_Name(from)}});
    }
  }
  return absl::OkStatus();
}

InvestigationState DeriveInvestigationState(
    InvestigationState current, const Investigation::ActionCounts& counts) {
  if (IsTerminal(current) || counts.total() == 0) return current;
  if (counts.pending() > 0) {
    // "Partially remediated": some approved actions were carried out
    // (completed) while others still await a decision.
    return counts.completed() > 0 ? Investigation::STATE_PARTIALLY_REMEDIATED
                                  : Investigation::STATE_PENDING_ACTION;
  }
  // Every action is decided. Expired ones terminate the investigation.
  if (counts.expired() > 0) return Investigation::STATE_TERMINATED_BY_SYSTEM;
  if (counts.in_progress() > 0) return Investigation::STATE_RUNNING;
  return Investigation::STATE_REMEDIATED;
}

bool ApplyActionChange(ActionState from, ActionState to, absl::Time now,
                       Investigation& investigation) {
  auto* counts = investigation.mutable_action_counts();
  if (from == Action::STATE_UNSPECIFIED) counts->set_total(counts->total() + 1);
  CountState(from, -1, *counts);
  CountState(to, +1, *counts);
  const InvestigationState before = investigation.state();
  investigation.set_state(DeriveInvestigationState(before, *counts));
  SetTimestamp(now, investigation.mutable_update_time());
  investigation.set_etag(NextEtag(investigation.etag()));
  return investigation.state() != before;
}

void InitializeNewInvestigation(absl::Time now, Investigation& investigation) {
  if (investigation.state() == Investigation::STATE_UNSPECIFIED) {
    investigation.set_state(Investigation::STATE_STARTING);
  }
  investigation.clear_action_counts();
  SetTimestamp(now, investigation.mutable_create_time());
  SetTimestamp(now, investigation.mutable_update_time());
  investigation.set_etag(NextEtag(""));
}

std::string NextEtag(absl::string_view etag) {
  int64_t version = 0;
  if (etag.size() > 1 && etag[0] == 'v') {
    if (!absl::SimpleAtoi(etag.substr(1), &version)) version = 0;
  }
  return absl::StrCat("v", version + 1);
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* ts) {
  const int64_t micros = absl::ToUnixMicros(t);
  ts->set_seconds(micros / 1000000 - (micros % 1000000 < 0 ? 1 : 0));
  int64_t rem = micros % 1000000;
  if (rem < 0) rem += 1000000;
  ts->set_nanos(static_cast<int32_t>(rem * 1000));
}

absl::Time ToAbslTime(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

}  // namespace air
