#include "service/demo_data.h"

#include <string>
#include <vector>

#include "domain/status_macros.h"
#include "service/action_commands.h"

namespace air {
namespace {

using v1::Action;
using v1::Entity;
using v1::Investigation;

struct DemoAction {
  std::string id;
  v1::ActionType type;
  Entity::Kind kind;
  std::string identifier;
  std::string display_name;
  // Decision already taken in the demo story, if any.
  v1::Decision::Outcome decided = v1::Decision::OUTCOME_UNSPECIFIED;
  Action::State executed = Action::STATE_UNSPECIFIED;  // RUNNING/COMPLETED/FAILED
};

struct DemoInvestigation {
  std::string id;
  std::string title;
  Investigation::Source source;
  v1::Verdict verdict;
  Investigation::State initial_state;
  std::vector<DemoAction> actions;
};

std::vector<DemoInvestigation> DemoSet() {
  using T = v1::ActionType;
  return {
      {"inv-1001", "User-reported phish: \"Invoice 4471 overdue\" from billing@contoso-payments.co",
       Investigation::SOURCE_USER_REPORTED, v1::VERDICT_MALICIOUS,
       Investigation::STATE_RUNNING,
       {{"act-1001-1", T::ACTION_TYPE_SOFT_DELETE_EMAIL, Entity::KIND_MESSAGE_CLUSTER,
         "cluster:subject=\"Invoice 4471 overdue\";sender=billing@contoso-payments.co",
         "Email cluster: 37 messages in 35 mailboxes"},
        {"act-1001-2", T::ACTION_TYPE_BLOCK_URL, Entity::KIND_URL,
         "https://contoso-payments.co/inv/4471", "contoso-payments.co/inv/4471"}}},
      {"inv-1002", "Compromised mailbox: j.doe@fabrikam.com forwards to an external address",
       Investigation::SOURCE_ALERT, v1::VERDICT_MALICIOUS, Investigation::STATE_RUNNING,
       {{"act-1002-1", T::ACTION_TYPE_TURN_OFF_EXTERNAL_FORWARDING, Entity::KIND_MAILBOX,
         "j.doe@fabrikam.com", "Mailbox j.doe@fabrikam.com"},
        {"act-1002-2", T::ACTION_TYPE_REMOVE_INBOX_RULE, Entity::KIND_MAILBOX_RULE,
         "j.doe@fabrikam.com/rules/fwd-all", "Inbox rule \"fwd-all\""},
        {"act-1002-3", T::ACTION_TYPE_RESET_PASSWORD, Entity::KIND_USER,
         "j.doe@fabrikam.com", "User J. Doe"}}},
      {"inv-1003", "Malware detected on device WS-0142 (Trojan:Win32/Emotet)",
       Investigation::SOURCE_ALERT, v1::VERDICT_MALICIOUS, Investigation::STATE_RUNNING,
       {{"act-1003-1", T::ACTION_TYPE_QUARANTINE_FILE, Entity::KIND_FILE,
         "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
         "C:\\Users\\a.lee\\AppData\\Local\\Temp\\inv4471.exe"},
        {"act-1003-2", T::ACTION_TYPE_ISOLATE_DEVICE, Entity::KIND_DEVICE,
         "device:ws-0142", "WS-0142"},
        {"act-1003-3", T::ACTION_TYPE_KILL_PROCESS, Entity::KIND_PROCESS,
         "ws-0142/pid/4242", "inv4471.exe (PID 4242)"}}},
      {"inv-1004", "Phish campaign \"Shared document\": partially remediated",
       Investigation::SOURCE_ALERT, v1::VERDICT_MALICIOUS, Investigation::STATE_RUNNING,
       {{"act-1004-1", T::ACTION_TYPE_SOFT_DELETE_EMAIL, Entity::KIND_MESSAGE_CLUSTER,
         "cluster:subject=\"Shared document\"", "Email cluster: 12 messages",
         v1::Decision::OUTCOME_APPROVED, Action::STATE_COMPLETED},
        {"act-1004-2", T::ACTION_TYPE_BLOCK_URL, Entity::KIND_URL,
         "https://sharepoint-docs.example.net/s/8812", "sharepoint-docs.example.net/s/8812"},
        {"act-1004-3", T::ACTION_TYPE_SOFT_DELETE_EMAIL, Entity::KIND_MESSAGE_CLUSTER,
         "cluster:subject=\"Re: Shared document\"", "Email cluster: 4 messages"}}},
      {"inv-1005", "Suspicious sign-in and mailbox delegation for k.patel@fabrikam.com",
       Investigation::SOURCE_ANALYST, v1::VERDICT_SUSPICIOUS, Investigation::STATE_RUNNING,
       {{"act-1005-1", T::ACTION_TYPE_REMOVE_MAILBOX_DELEGATION, Entity::KIND_MAILBOX,
         "k.patel@fabrikam.com/delegates/ext-assistant", "Delegate ext-assistant"},
        {"act-1005-2", T::ACTION_TYPE_DISABLE_USER, Entity::KIND_USER,
         "k.patel@fabrikam.com", "User K. Patel"}}},
      {"inv-1006", "User-reported message \"Team lunch Friday\": clean",
       Investigation::SOURCE_USER_REPORTED, v1::VERDICT_CLEAN,
       Investigation::STATE_NO_THREATS_FOUND, {}},
      {"inv-1007", "Phish \"Password expiry notice\": remediated",
       Investigation::SOURCE_USER_REPORTED, v1::VERDICT_MALICIOUS,
       Investigation::STATE_RUNNING,
       {{"act-1007-1", T::ACTION_TYPE_MOVE_TO_DELETED_ITEMS, Entity::KIND_MESSAGE_CLUSTER,
         "cluster:subject=\"Password expiry notice\"", "Email cluster: 5 messages",
         v1::Decision::OUTCOME_APPROVED, Action::STATE_COMPLETED},
        {"act-1007-2", T::ACTION_TYPE_BLOCK_URL, Entity::KIND_URL,
         "https://login-micros0ft.example.com", "login-micros0ft.example.com",
         v1::Decision::OUTCOME_REJECTED}}},
      {"inv-1008", "Alert storm: investigation queued by throttling",
       Investigation::SOURCE_ALERT, v1::VERDICT_UNSPECIFIED,
       Investigation::STATE_QUEUED_BY_THROTTLING, {}},
  };
}

}  // namespace

absl::StatusOr<int> LoadDemoData(ActionStore& actions, Writer& writer, absl::Duration action_ttl) {
  InvestigationQuery any;
  any.page_size = 1;
  AIR_ASSIGN_OR_RETURN(InvestigationPage existing, actions.ListInvestigations(any));
  if (!existing.investigations.empty()) return 0;

  const std::vector<DemoInvestigation> set = DemoSet();
  AIR_RETURN_IF_ERROR(writer.Write([&](WriteTransaction& tx) -> absl::Status {
    for (const DemoInvestigation& d : set) {
      Investigation inv;
      inv.set_id(d.id);
      inv.set_display_name(d.title);
      inv.set_source(d.source);
      inv.set_verdict(d.verdict);
      inv.set_state(d.initial_state);
      AIR_RETURN_IF_ERROR(CreateInvestigationTx(tx, inv));
      for (const DemoAction& a : d.actions) {
        Action action;
        action.set_id(a.id);
        action.set_investigation_id(d.id);
        action.set_type(a.type);
        action.set_verdict(d.verdict);
        action.mutable_target()->set_kind(a.kind);
        action.mutable_target()->set_identifier(a.identifier);
        action.mutable_target()->set_display_name(a.display_name);
        AIR_RETURN_IF_ERROR(ProposeActionTx(tx, action, action_ttl).status());
        if (a.decided != v1::Decision::OUTCOME_UNSPECIFIED) {
          DecideActionsInput input;
          input.ids = {a.id};
          input.command.outcome = a.decided;
          input.command.source = v1::Decision::SOURCE_MANUAL;
          input.command.decider = "analyst@fabrikam.com";
          input.command.comment = "reviewed in the demo story";
          AIR_RETURN_IF_ERROR(DecideActionsTx(tx, input).status());
        }
        if (a.executed != Action::STATE_UNSPECIFIED) {
          AIR_RETURN_IF_ERROR(ApplyExecutionStateTx(tx, a.id, a.executed, "").status());
        }
      }
    }
    return absl::OkStatus();
  }));
  return static_cast<int>(set.size());
}

}  // namespace air
