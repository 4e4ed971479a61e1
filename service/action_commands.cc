#include "service/action_commands.h"

#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "air/v1/action_service.pb.h"
#include "domain/errors.h"
#include "domain/status_macros.h"
#include "service/upstream_commands.h"

namespace air {
namespace {

// `from` is the state before the change (STATE_UNSPECIFIED for a new
// action); a change that keeps the state (a partial approval) is an update.
absl::Status AppendActionEvent(WriteTransaction& tx, const v1::Action& action,
                               ActionState from) {
  v1::Event event;
  event.set_type(from == action.state() ? v1::Event::TYPE_ACTION_UPDATED
                                        : ActionEventType(action.state()));
  *event.mutable_action() = action;
  return tx.events().AppendEvent(std::move(event)).status();
}

absl::Status AppendInvestigationEvent(WriteTransaction& tx, v1::Event::Type type,
                                      v1::Investigation investigation) {
  v1::Event event;
  event.set_type(type);
  *event.mutable_investigation() = std::move(investigation);
  return tx.events().AppendEvent(std::move(event)).status();
}

// Records an action's move from `from` on its investigation and announces
// the investigation's new state if it changed.
absl::Status UpdateInvestigationFor(WriteTransaction& tx, const v1::Action& action,
                                    ActionState from) {
  std::optional<v1::Investigation> after;  // a copy, if its state moved
  const absl::Time now = tx.Now();
  auto apply = [&](v1::Investigation& investigation) {
    if (!ApplyActionChange(from, action.state(), now, investigation)) return false;
    after = investigation;
    return true;
  };
  AIR_RETURN_IF_ERROR(tx.actions().ChangeInvestigation(action.investigation_id(), apply).status());
  if (!after.has_value()) return absl::OkStatus();
  return AppendInvestigationEvent(tx, v1::Event::TYPE_INVESTIGATION_STATE_CHANGED,
                                  *std::move(after));
}

// Adds the failing action's id to an error that does not name it yet.
absl::Status WithActionId(absl::Status status, const std::string& id) {
  if (ErrorMetadata(status, "action_id").has_value()) return status;
  const v1::ErrorReason reason = ErrorReasonOf(status);
  absl::Status out = MakeError(status.code(), status.message(),
                               reason == v1::ERROR_REASON_UNSPECIFIED ? v1::ACTION_ERROR
                                                                       : reason,
                               {{"action_id", id}});
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    if (url != kErrorInfoTypeUrl) out.SetPayload(url, payload);
  });
  return out;
}

}  // namespace

absl::Status CreateInvestigationTx(WriteTransaction& tx,
                                   v1::Investigation investigation) {
  AIR_ASSIGN_OR_RETURN(const bool exists, tx.actions().HasInvestigation(investigation.id()));
  if (exists) {
    return MakeError(absl::StatusCode::kAlreadyExists,
                     absl::StrCat("investigation ", investigation.id(),
                                  " already exists"),
                     v1::INVESTIGATION_EXISTS);
  }
  InitializeNewInvestigation(tx.Now(), investigation);
  AIR_RETURN_IF_ERROR(tx.actions().PutInvestigation(investigation));
  return AppendInvestigationEvent(tx, v1::Event::TYPE_INVESTIGATION_CREATED,
                                  std::move(investigation));
}

absl::StatusOr<v1::Action> ProposeActionTx(WriteTransaction& tx, v1::Action action,
                                           absl::Duration ttl,
                                           const DecisionPolicy* policy) {
  AIR_ASSIGN_OR_RETURN(const bool exists, tx.actions().HasAction(action.id()));
  if (exists) {
    return MakeError(absl::StatusCode::kAlreadyExists,
                     absl::StrCat("action ", action.id(), " already exists"),
                     v1::ACTION_EXISTS);
  }
  action.set_required_approvals(policy ? policy->RequiredApprovals(action.type()) : 1);
  InitializeNewAction(tx.Now(), ttl, action);
  AIR_RETURN_IF_ERROR(tx.actions().PutAction(action));
  AIR_RETURN_IF_ERROR(AppendActionEvent(tx, action, v1::Action::STATE_UNSPECIFIED));
  AIR_RETURN_IF_ERROR(UpdateInvestigationFor(tx, action, v1::Action::STATE_UNSPECIFIED));
  if (policy == nullptr) return action;

  AIR_ASSIGN_OR_RETURN(v1::Investigation investigation,
                       tx.actions().GetInvestigation(action.investigation_id()));
  const config::v1::AutomationRule* rule =
      policy->AutomaticApproval(action, investigation);
  if (rule == nullptr) return action;
  DecideActionsInput input;
  input.ids = {action.id()};
  input.command.outcome = v1::Decision::OUTCOME_APPROVED;
  input.command.source = v1::Decision::SOURCE_POLICY;
  input.command.decider = absl::StrCat("policy:", rule->name());
  input.command.policy_rule = rule->name();
  input.command.comment = "approved automatically by automation policy";
  AIR_ASSIGN_OR_RETURN(std::vector<v1::Action> decided, DecideActionsTx(tx, input));
  return decided.front();
}

absl::StatusOr<std::vector<v1::Action>> DecideActionsTx(
    WriteTransaction& tx, const DecideActionsInput& input) {
  if (!input.request_id.empty()) {
    AIR_ASSIGN_OR_RETURN(std::optional<StoredRequest> seen,
                         tx.requests().FindRequest(input.request_id));
    if (seen.has_value()) {
      if (seen->fingerprint != input.fingerprint) {
        return InvalidField("request_id",
                            "was already used for a different request",
                            v1::REQUEST_ID_REUSED);
      }
      v1::BatchDecideActionsResponse first;
      if (!first.ParseFromString(seen->response)) {
        return MakeError(absl::StatusCode::kDataLoss,
                         "the stored result of this request_id is unreadable",
                         v1::STORAGE_CORRUPT);
      }
      return std::vector<v1::Action>(first.actions().begin(), first.actions().end());
    }
  }

  std::vector<v1::Action> decided;
  decided.reserve(input.ids.size());
  absl::flat_hash_set<std::string> seen_ids;
  for (size_t i = 0; i < input.ids.size(); ++i) {
    const std::string& id = input.ids[i];
    if (!seen_ids.insert(id).second) {
      return InvalidField("ids", absl::StrCat("lists ", id, " more than once"),
                          v1::DUPLICATE_ID);
    }
    absl::StatusOr<v1::Action> loaded = tx.actions().GetAction(id);
    if (!loaded.ok()) return WithActionId(loaded.status(), id);
    v1::Action action = *std::move(loaded);
    if (!decided.empty() && action.type() != decided.front().type()) {
      return InvalidField(
          "ids",
          absl::StrCat("actions must share one action type: ", id, " is ",
                       v1::ActionType_Name(action.type()), ", ",
                       decided.front().id(), " is ",
                       v1::ActionType_Name(decided.front().type())),
          v1::MIXED_ACTION_TYPES);
    }
    DecisionCommand command = input.command;
    command.action_id = id;
    command.expected_etag = input.etags.empty() ? "" : input.etags[i];
    const ActionState from = action.state();
    if (absl::Status s = ApplyDecision(command, tx.Now(), action); !s.ok()) {
      return WithActionId(std::move(s), id);
    }
    AIR_RETURN_IF_ERROR(ApplyDuplicateRuleTx(tx, from, action));
    AIR_RETURN_IF_ERROR(tx.actions().PutAction(action));
    AIR_RETURN_IF_ERROR(EnqueueDecisionForUpstreamTx(tx, from, action));
    AIR_RETURN_IF_ERROR(tx.audit().AppendAudit(AuditRecord{
        action.id(), action.investigation_id(), from, action.state(),
        action.decision(), input.request_id}));
    AIR_RETURN_IF_ERROR(AppendActionEvent(tx, action, from));
    AIR_RETURN_IF_ERROR(UpdateInvestigationFor(tx, action, from));
    decided.push_back(std::move(action));
  }

  if (!input.request_id.empty()) {
    v1::BatchDecideActionsResponse first;
    for (const v1::Action& a : decided) *first.add_actions() = a;
    AIR_RETURN_IF_ERROR(tx.requests().SaveRequest(
        input.request_id, StoredRequest{input.fingerprint, first.SerializeAsString()}));
  }
  return decided;
}

absl::Status ExpireActionTx(WriteTransaction& tx, const std::string& action_id) {
  AIR_ASSIGN_OR_RETURN(v1::Action action, tx.actions().GetAction(action_id));
  const ActionState from = action.state();
  AIR_RETURN_IF_ERROR(ApplyExpiry(tx.Now(), action));
  AIR_RETURN_IF_ERROR(tx.actions().PutAction(action));
  AIR_RETURN_IF_ERROR(tx.audit().AppendAudit(AuditRecord{action.id(), action.investigation_id(),
                                                 from, action.state(),
                                                 action.decision(), ""}));
  AIR_RETURN_IF_ERROR(AppendActionEvent(tx, action, from));
  return UpdateInvestigationFor(tx, action, from);
}

absl::StatusOr<v1::Action> ApplyExecutionStateTx(WriteTransaction& tx,
                                                 const std::string& action_id,
                                                 ActionState to,
                                                 absl::string_view failure_reason) {
  AIR_ASSIGN_OR_RETURN(v1::Action action, tx.actions().GetAction(action_id));
  const ActionState from = action.state();
  AIR_RETURN_IF_ERROR(ApplyExecutionState(to, failure_reason, tx.Now(), action));
  if (from == action.state()) return action;  // replayed report: no change
  AIR_RETURN_IF_ERROR(tx.actions().PutAction(action));
  AIR_RETURN_IF_ERROR(AppendActionEvent(tx, action, from));
  AIR_RETURN_IF_ERROR(UpdateInvestigationFor(tx, action, from));
  return action;
}

}  // namespace air
