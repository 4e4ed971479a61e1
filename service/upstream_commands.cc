#include "service/upstream_commands.h"

#include "absl/strings/str_cat.h"
#include "domain/errors.h"
#include "domain/status_macros.h"
#include "domain/upstream_sync.h"
#include "service/action_commands.h"

namespace air {
namespace {

using v1::Action;
using v1::Investigation;

SyncRecordResult Result(SyncOutcome outcome, std::string detail = "") {
  return SyncRecordResult{outcome, std::move(detail)};
}

// True for the errors a step of a plan can meet when the local state moved
// in a way the plan did not foresee (the record is then a conflict); any
// other error is a storage fault that must fail the whole write.
bool IsRefusal(const absl::Status& status) {
  return status.code() == absl::StatusCode::kFailedPrecondition ||
         status.code() == absl::StatusCode::kAborted ||
         status.code() == absl::StatusCode::kInvalidArgument;
}

absl::Status AppendInvestigationEvent(WriteTransaction& tx, v1::Event::Type type,
                                      const Investigation& investigation) {
  v1::Event event;
  event.set_type(type);
  *event.mutable_investigation() = investigation;
  return tx.events().AppendEvent(std::move(event)).status();
}

// An action may name an investigation whose record has not arrived (an
// upstream that reorders, or a page boundary between them). A placeholder
// keeps the action's counts right; the investigation's own record, at any
// version, fills it in because no upstream version is stored for it.
absl::Status EnsureInvestigation(WriteTransaction& tx, const std::string& id) {
  // A synced investigation exists; checking its version is cheaper than
  // loading it (this runs for every new action).
  AIR_ASSIGN_OR_RETURN(std::optional<int64_t> synced,
                       tx.upstream().GetUpstreamVersion(UpstreamKind::kInvestigation, id));
  if (synced.has_value()) return absl::OkStatus();
  AIR_ASSIGN_OR_RETURN(const bool exists, tx.actions().HasInvestigation(id));
  if (exists) return absl::OkStatus();
  Investigation placeholder;
  placeholder.set_id(id);
  placeholder.set_display_name(
      absl::StrCat("Investigation ", id, " (details pending from upstream)"));
  placeholder.set_state(Investigation::STATE_STARTING);
  return CreateInvestigationTx(tx, std::move(placeholder));
}

// The upstream expired a pending action: the same writes as ExpireActionTx,
// without the local deadline check (the upstream's clock owns its actions).
absl::Status ExpireFromUpstreamTx(WriteTransaction& tx, const std::string& id) {
  AIR_ASSIGN_OR_RETURN(Action action, tx.actions().GetAction(id));
  const ActionState from = action.state();
  AIR_RETURN_IF_ERROR(ApplyUpstreamExpiry(tx.Now(), action));
  AIR_RETURN_IF_ERROR(tx.actions().PutAction(action));
  AIR_RETURN_IF_ERROR(tx.audit().AppendAudit(AuditRecord{action.id(), action.investigation_id(),
                                                 from, action.state(),
                                                 action.decision(), ""}));
  v1::Event event;
  event.set_type(ActionEventType(action.state()));
  *event.mutable_action() = action;
  AIR_RETURN_IF_ERROR(tx.events().AppendEvent(std::move(event)).status());
  AIR_ASSIGN_OR_RETURN(Investigation investigation,
                       tx.actions().GetInvestigation(action.investigation_id()));
  if (ApplyActionChange(from, action.state(), tx.Now(), investigation)) {
    AIR_RETURN_IF_ERROR(tx.actions().PutInvestigation(investigation));
    return AppendInvestigationEvent(tx, v1::Event::TYPE_INVESTIGATION_STATE_CHANGED,
                                    investigation);
  }
  return tx.actions().PutInvestigation(investigation);
}

absl::Status DecideFromUpstreamTx(WriteTransaction& tx, const upstream::v1::Action& record,
                                  ActionState to) {
  // The decision was made upstream and the remediation follows it there
  // whatever our approver rules say; a two-person rule cannot apply to it,
  // and requiring a second approval would leave the action pending here
  // while it runs upstream.
  AIR_ASSIGN_OR_RETURN(Action action, tx.actions().GetAction(record.id()));
  if (action.required_approvals() > 1) {
    action.set_required_approvals(1);
    AIR_RETURN_IF_ERROR(tx.actions().PutAction(action));
  }
  DecideActionsInput input;
  input.ids = {record.id()};
  input.command.outcome = to == Action::STATE_APPROVED ? v1::Decision::OUTCOME_APPROVED
                                                       : v1::Decision::OUTCOME_REJECTED;
  input.command.source = v1::Decision::SOURCE_UPSTREAM;
  input.command.decider = record.decided_by().empty() ? "upstream" : record.decided_by();
  input.command.comment = "decided upstream";
  return DecideActionsTx(tx, input).status();
}

}  // namespace

absl::StatusOr<SyncRecordResult> SyncInvestigationTx(
    WriteTransaction& tx, const upstream::v1::Investigation& record) {
  if (absl::Status s = ValidateUpstreamInvestigation(record); !s.ok()) {
    return Result(SyncOutcome::kMalformed, std::string(s.message()));
  }
  AIR_ASSIGN_OR_RETURN(std::optional<int64_t> seen,
                       tx.upstream().GetUpstreamVersion(UpstreamKind::kInvestigation, record.id()));
  if (seen.has_value() && record.version() <= *seen) return Result(SyncOutcome::kStale);
  AIR_RETURN_IF_ERROR(
      tx.upstream().SetUpstreamVersion(UpstreamKind::kInvestigation, record.id(), record.version()));

  if (!seen.has_value()) {
    // Never synced: usually new. It may exist as a placeholder (or a local
    // investigation of the same id), which CreateInvestigationTx refuses.
    Investigation created;
    created.set_id(record.id());
    created.set_display_name(record.display_name());
    created.set_source(record.source());
    created.set_verdict(record.verdict());
    created.set_state(record.state());
    absl::Status s = CreateInvestigationTx(tx, std::move(created));
    if (s.ok()) return Result(SyncOutcome::kApplied);
    if (s.code() != absl::StatusCode::kAlreadyExists) return s;
  }
  absl::StatusOr<Investigation> local = tx.actions().GetInvestigation(record.id());
  if (!local.ok()) return local.status();

  Investigation& inv = *local;
  bool changed = false;
  if (inv.display_name() != record.display_name() || inv.source() != record.source() ||
      inv.verdict() != record.verdict()) {
    inv.set_display_name(record.display_name());
    inv.set_source(record.source());
    inv.set_verdict(record.verdict());
    changed = true;
  }
  bool state_changed = false;
  std::string conflict;
  if (inv.state() != record.state()) {
    if (absl::Status s = CheckInvestigationTransition(inv.state(), record.state()); s.ok()) {
      inv.set_state(record.state());
      state_changed = changed = true;
    } else {
      conflict = absl::StrCat("upstream investigation ", record.id(), " v",
                              record.version(), ": ", s.message());
    }
  }
  if (changed) {
    SetTimestamp(tx.Now(), inv.mutable_update_time());
    inv.set_etag(NextEtag(inv.etag()));
    AIR_RETURN_IF_ERROR(tx.actions().PutInvestigation(inv));
    if (state_changed) {
      AIR_RETURN_IF_ERROR(AppendInvestigationEvent(
          tx, v1::Event::TYPE_INVESTIGATION_STATE_CHANGED, inv));
    }
  }
  if (!conflict.empty()) return Result(SyncOutcome::kConflict, std::move(conflict));
  return Result(changed ? SyncOutcome::kApplied : SyncOutcome::kUnchanged);
}

absl::StatusOr<SyncRecordResult> SyncActionTx(WriteTransaction& tx,
                                              const upstream::v1::Action& record,
                                              absl::Duration ttl,
                                              const DecisionPolicy* policy) {
  if (absl::Status s = ValidateUpstreamAction(record); !s.ok()) {
    return Result(SyncOutcome::kMalformed, std::string(s.message()));
  }
  AIR_ASSIGN_OR_RETURN(std::optional<int64_t> seen,
                       tx.upstream().GetUpstreamVersion(UpstreamKind::kAction, record.id()));
  if (seen.has_value() && record.version() <= *seen) return Result(SyncOutcome::kStale);
  // Stored first: the decision outbox hook (run by the decisions below and
  // by any later local decision) recognises upstream actions by it.
  AIR_RETURN_IF_ERROR(
      tx.upstream().SetUpstreamVersion(UpstreamKind::kAction, record.id(), record.version()));

  bool applied = false;
  ActionState local_state = Action::STATE_UNSPECIFIED;
  if (!seen.has_value()) {
    // Never synced: propose it. ProposeActionTx refuses an id that exists
    // locally already, and then the record updates that action instead.
    AIR_RETURN_IF_ERROR(EnsureInvestigation(tx, record.investigation_id()));
    Action proposed;
    proposed.set_id(record.id());
    proposed.set_investigation_id(record.investigation_id());
    proposed.set_type(record.type());
    *proposed.mutable_target() = record.target();
    proposed.set_verdict(record.verdict());
    const absl::Duration action_ttl =
        record.has_expire_time() ? ToAbslTime(record.expire_time()) - tx.Now() : ttl;
    absl::StatusOr<Action> created =
        ProposeActionTx(tx, std::move(proposed), action_ttl, policy);
    if (created.ok()) {
      local_state = created->state();
      applied = true;
    } else if (created.status().code() != absl::StatusCode::kAlreadyExists) {
      return created.status();
    }
  }
  if (!applied) {
    AIR_ASSIGN_OR_RETURN(Action local, tx.actions().GetAction(record.id()));
    local_state = local.state();
  }

  const ActionSyncPlan plan = PlanActionSync(local_state, record.state());
  std::string conflict = plan.conflict
      ? absl::StrCat("upstream action ", record.id(), " v", record.version(), ": ",
                     plan.conflict_reason)
      : "";
  for (ActionState step : plan.steps) {
    absl::Status s;
    switch (step) {
      case Action::STATE_APPROVED:
      case Action::STATE_REJECTED:
        s = DecideFromUpstreamTx(tx, record, step);
        break;
      case Action::STATE_EXPIRED:
        s = ExpireFromUpstreamTx(tx, record.id());
        break;
      default:
        s = ApplyExecutionStateTx(tx, record.id(), step,
                                  step == Action::STATE_FAILED ? record.failure_reason()
                                                               : plan.conflict_reason)
                .status();
    }
    if (!s.ok()) {
      if (!IsRefusal(s)) return s;
      // The local action moved in a way the plan did not foresee (a local
      // deadline, an approval policy): keep what is legal, report the rest.
      conflict = absl::StrCat("upstream action ", record.id(), " v", record.version(),
                              ": cannot move to ", Action::State_Name(step), ": ",
                              s.message());
      break;
    }
    applied = true;
  }
  if (!conflict.empty()) return Result(SyncOutcome::kConflict, std::move(conflict));
  return Result(applied ? SyncOutcome::kApplied : SyncOutcome::kUnchanged);
}

absl::Status ApplyDuplicateRuleTx(WriteTransaction& tx, ActionState from,
                                  v1::Action& action) {
  if (from != Action::STATE_PENDING || action.state() != Action::STATE_APPROVED) {
    return absl::OkStatus();
  }
  const std::string key = DuplicateTargetKey(action);
  if (key.empty()) return absl::OkStatus();
  const absl::Time now = tx.Now();
  // An approval reported by the upstream already ran there; it still counts
  // as the target's latest original, but is never itself a duplicate.
  if (action.decision().source() != v1::Decision::SOURCE_UPSTREAM) {
    AIR_ASSIGN_OR_RETURN(std::optional<TargetApproval> earlier, tx.actions().FindTargetApproval(key));
    if (earlier.has_value() && earlier->action_id != action.id()) {
      absl::StatusOr<Action> original = tx.actions().GetAction(earlier->action_id);
      if (!original.ok() && original.status().code() != absl::StatusCode::kNotFound) {
        return original.status();
      }
      if (original.ok() &&
          IsDuplicateApproval(*original, earlier->approve_time, now, action.id())) {
        // The original's window is not extended by its duplicates: an hour
        // after the original, the remediation runs again.
        action.set_duplicate_of(earlier->action_id);
        return absl::OkStatus();
      }
    }
  }
  return tx.actions().RecordTargetApproval(TargetApproval{key, action.id(), now});
}

absl::Status EnqueueDecisionForUpstreamTx(WriteTransaction& tx, ActionState from,
                                          const v1::Action& action) {
  if (from == action.state()) return absl::OkStatus();  // a partial approval
  if (action.state() != Action::STATE_APPROVED && action.state() != Action::STATE_REJECTED) {
    return absl::OkStatus();
  }
  if (action.decision().source() == v1::Decision::SOURCE_UPSTREAM) return absl::OkStatus();
  AIR_ASSIGN_OR_RETURN(std::optional<int64_t> version,
                       tx.upstream().GetUpstreamVersion(UpstreamKind::kAction, action.id()));
  if (!version.has_value()) return absl::OkStatus();  // a local action: nobody to tell
  OutboxDecision decision;
  decision.request_id = DecisionRequestId(action.id());
  decision.action_id = action.id();
  decision.decision = action.decision();
  decision.duplicate_of = action.duplicate_of();
  decision.upstream_version = *version;
  return tx.outbox().EnqueueDecision(decision).status();
}

}  // namespace air
