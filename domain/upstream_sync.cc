#include "domain/upstream_sync.h"

#include "absl/strings/str_cat.h"
#include "domain/errors.h"
#include "domain/validation.h"

namespace air {
namespace {

using v1::Action;

absl::Status Malformed(absl::string_view kind, absl::string_view id,
                       absl::string_view fault) {
  return MakeError(absl::StatusCode::kInvalidArgument,
                   absl::StrCat("upstream ", kind, " ",
                                id.empty() ? "<no id>" : std::string(id), ": ", fault),
                   v1::MALFORMED_UPSTREAM_RECORD,
                   {{"id", std::string(id)}, {"fault", std::string(fault)}});
}

// Code points in valid UTF-8 text, or -1 if it is not valid UTF-8.
int64_t CodePoints(absl::string_view text) {
  if (!IsValidUtf8(text)) return -1;
  int64_t n = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

// "" if `text` is valid UTF-8 of at most `max` code points, else the fault.
std::string CheckText(absl::string_view field, absl::string_view text, int max) {
  const int64_t n = CodePoints(text);
  if (n < 0) return absl::StrCat(field, " is not valid UTF-8");
  if (n > max) return absl::StrCat(field, " is longer than ", max, " characters");
  return "";
}

std::string CheckId(absl::string_view field, absl::string_view id) {
  if (id.empty()) return absl::StrCat(field, " is missing");
  if (!ValidateId(field, id).ok()) {
    return absl::StrCat(field, " is not 1 to 128 characters of [A-Za-z0-9._-]");
  }
  return "";
}

std::string FirstFault(std::initializer_list<std::string> faults) {
  for (const std::string& f : faults) {
    if (!f.empty()) return f;
  }
  return "";
}

}  // namespace

absl::Status ValidateUpstreamInvestigation(const upstream::v1::Investigation& r) {
  std::string fault = FirstFault({
      CheckId("id", r.id()),
      r.version() < 1 ? "version must be at least 1" : "",
      CheckText("display_name", r.display_name(), kMaxUpstreamDisplayName),
      v1::Investigation::Source_IsValid(r.source())
          ? "" : absl::StrCat("source has unknown value ", r.source()),
      v1::Verdict_IsValid(r.verdict())
          ? "" : absl::StrCat("verdict has unknown value ", r.verdict()),
      !v1::Investigation::State_IsValid(r.state())
          ? absl::StrCat("state has unknown value ", r.state())
          : r.state() == v1::Investigation::STATE_UNSPECIFIED ? "state is unspecified" : "",
  });
  if (fault.empty()) return absl::OkStatus();
  return Malformed("investigation", r.id(), fault);
}

absl::Status ValidateUpstreamAction(const upstream::v1::Action& r) {
  std::string fault = FirstFault({
      CheckId("id", r.id()),
      r.version() < 1 ? "version must be at least 1" : "",
      CheckId("investigation_id", r.investigation_id()),
      !v1::ActionType_IsValid(r.type())
          ? absl::StrCat("type has unknown value ", r.type())
          : r.type() == v1::ACTION_TYPE_UNSPECIFIED ? "type is unspecified" : "",
      !Action::State_IsValid(r.state())
          ? absl::StrCat("state has unknown value ", r.state())
          : r.state() == Action::STATE_UNSPECIFIED ? "state is unspecified" : "",
      v1::Entity::Kind_IsValid(r.target().kind())
          ? "" : absl::StrCat("target.kind has unknown value ", r.target().kind()),
      v1::Verdict_IsValid(r.verdict())
          ? "" : absl::StrCat("verdict has unknown value ", r.verdict()),
      CheckText("target.identifier", r.target().identifier(), kMaxUpstreamIdentifier),
      CheckText("target.display_name", r.target().display_name(), kMaxUpstreamDisplayName),
      CheckText("failure_reason", r.failure_reason(), kMaxUpstreamFailureReason),
      CheckText("decided_by", r.decided_by(), kMaxUpstreamDecider),
      CheckText("decision_request_id", r.decision_request_id(), kMaxUpstreamRequestId),
  });
  if (fault.empty()) return absl::OkStatus();
  return Malformed("action", r.id(), fault);
}

ActionSyncPlan PlanActionSync(ActionState local, ActionState remote) {
  ActionSyncPlan plan;
  if (local == remote) return plan;
  auto conflict = [&](absl::string_view why) {
    plan.conflict = true;
    plan.conflict_reason =
        absl::StrCat("upstream reports ", Action::State_Name(remote), " but the action is ",
                     Action::State_Name(local), " here: ", why);
  };
  switch (local) {
    case Action::STATE_PENDING:
      switch (remote) {
        case Action::STATE_APPROVED:
        case Action::STATE_REJECTED:
        case Action::STATE_EXPIRED:
        case Action::STATE_CANCELLED:
          plan.steps = {remote};
          break;
        case Action::STATE_RUNNING:
        case Action::STATE_COMPLETED:
        case Action::STATE_FAILED:
          // Decided upstream (console or automation) and already under way.
          plan.steps = {Action::STATE_APPROVED, remote};
          break;
        default:
          break;
      }
      break;
    case Action::STATE_APPROVED:
      switch (remote) {
        case Action::STATE_PENDING:
          break;  // our approval has not reached the upstream yet
        case Action::STATE_RUNNING:
        case Action::STATE_COMPLETED:
        case Action::STATE_FAILED:
        case Action::STATE_CANCELLED:
          plan.steps = {remote};
          break;
        case Action::STATE_REJECTED:
        case Action::STATE_EXPIRED:
          // The upstream decided otherwise before our approval arrived: the
          // remediation will never run, which CANCELLED states honestly.
          conflict("the approval arrived too late and will not run");
          plan.steps = {Action::STATE_CANCELLED};
          break;
        default:
          break;
      }
      break;
    case Action::STATE_RUNNING:
      switch (remote) {
        case Action::STATE_COMPLETED:
        case Action::STATE_FAILED:
          plan.steps = {remote};
          break;
        case Action::STATE_PENDING:
        case Action::STATE_APPROVED:
          break;  // an older report
        default:
          conflict("a running action can only complete or fail");
      }
      break;
    case Action::STATE_REJECTED:
      switch (remote) {
        case Action::STATE_PENDING:   // our rejection is on its way
        case Action::STATE_EXPIRED:   // not run either way
        case Action::STATE_CANCELLED:
          break;
        default:
          conflict("the action was rejected here");
      }
      break;
    case Action::STATE_EXPIRED:
      switch (remote) {
        case Action::STATE_PENDING:   // the upstream's clock is behind ours
        case Action::STATE_REJECTED:
        case Action::STATE_CANCELLED:
          break;
        default:
          conflict("the action expired here");
      }
      break;
    case Action::STATE_COMPLETED:
    case Action::STATE_FAILED:
      switch (remote) {
        case Action::STATE_PENDING:
        case Action::STATE_APPROVED:
        case Action::STATE_RUNNING:
          break;  // an older report
        default:
          conflict("the action already finished");
      }
      break;
    case Action::STATE_CANCELLED:
      break;  // withdrawn: nothing further applies
    default:
      conflict("unknown local state");
  }
  return plan;
}

absl::Status ApplyUpstreamExpiry(absl::Time now, Action& action) {
  if (action.state() != Action::STATE_PENDING) {
    return MakeError(absl::StatusCode::kFailedPrecondition,
                     absl::StrCat("action ", action.id(), " is ",
                                  Action::State_Name(action.state()),
                                  ", not STATE_PENDING"),
                     v1::ACTION_NOT_PENDING,
                     {{"action_id", action.id()},
                      {"state", Action::State_Name(action.state())}});
  }
  v1::Decision* decision = action.mutable_decision();
  decision->set_outcome(v1::Decision::OUTCOME_EXPIRED);
  decision->set_source(v1::Decision::SOURCE_UPSTREAM);
  decision->set_decider("upstream");
  decision->set_comment("expired upstream: no decision before the upstream's deadline");
  SetTimestamp(now, decision->mutable_decide_time());
  action.set_state(Action::STATE_EXPIRED);
  SetTimestamp(now, action.mutable_update_time());
  action.set_etag(NextEtag(action.etag()));
  return absl::OkStatus();
}

std::string DuplicateTargetKey(const v1::Action& action) {
  if (action.target().identifier().empty()) return "";
  return absl::StrCat(static_cast<int>(action.type()), ":", action.target().identifier());
}

bool IsDuplicateApproval(const v1::Action& earlier, absl::Time earlier_approve_time,
                         absl::Time now, absl::string_view action_id) {
  if (earlier.id() == action_id) return false;
  if (now - earlier_approve_time >= kDuplicateApprovalWindow) return false;
  switch (earlier.state()) {
    case Action::STATE_APPROVED:
    case Action::STATE_RUNNING:
    case Action::STATE_COMPLETED:
      return true;
    default:
      return false;  // failed, cancelled: the remediation did not take effect
  }
}

std::string DecisionRequestId(absl::string_view action_id) {
  return absl::StrCat("air-decision-", action_id);
}

}  // namespace air
