#include "service/decision_log.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service/logging.h"

namespace air {
namespace {

// "OUTCOME_APPROVED" -> "approved".
std::string Short(const std::string& enum_name, absl::string_view prefix) {
  absl::string_view name = enum_name;
  if (absl::StartsWith(name, prefix)) name.remove_prefix(prefix.size());
  return absl::AsciiStrToLower(name);
}

}  // namespace

void LogCommittedDecisions(const std::vector<v1::Event>& events) {
  for (const v1::Event& event : events) {
    if (!event.has_action()) continue;
    const v1::Action& action = event.action();
    const v1::Decision* decision = nullptr;
    std::string what;
    switch (event.type()) {
      case v1::Event::TYPE_ACTION_APPROVED:
      case v1::Event::TYPE_ACTION_REJECTED:
      case v1::Event::TYPE_ACTION_EXPIRED:
        decision = &action.decision();
        what = Short(v1::Decision::Outcome_Name(decision->outcome()), "OUTCOME_");
        break;
      case v1::Event::TYPE_ACTION_UPDATED:
        // A partial approval: recorded, the action still waits for more.
        if (action.state() != v1::Action::STATE_PENDING || action.approvals().empty()) continue;
        decision = &action.approvals(action.approvals_size() - 1);
        what = "partially_approved";
        break;
      default:
        continue;
    }
    LogFields fields = {
        {"principal", decision->decider()},
        {"action_id", action.id()},
        {"investigation_id", action.investigation_id()},
        {"action_type", Short(v1::ActionType_Name(action.type()), "ACTION_TYPE_")},
        {"outcome", what},
        {"source", Short(v1::Decision::Source_Name(decision->source()), "SOURCE_")},
        {"sequence", absl::StrCat(event.sequence())},
    };
    if (!decision->policy_rule().empty()) fields.push_back({"policy_rule", decision->policy_rule()});
    if (what == "partially_approved") {
      fields.push_back({"approvals", absl::StrCat(action.approvals_size(), "/",
                                                  action.required_approvals())});
    }
    LogEvent(spdlog::level::info, "decision",
             absl::StrCat("action ", action.id(), " ", what, " by ", decision->decider()),
             fields);
  }
}

}  // namespace air
