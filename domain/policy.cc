#include "domain/policy.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "domain/errors.h"

namespace air {
namespace {

template <typename List, typename Value>
bool EmptyOrContains(const List& list, Value value) {
  return list.empty() ||
         std::find(list.begin(), list.end(), static_cast<int>(value)) != list.end();
}

}  // namespace

absl::StatusOr<DecisionPolicy> DecisionPolicy::FromConfig(
    const config::v1::PolicyConfig& config) {
  DecisionPolicy policy;
  for (int i = 0; i < config.two_person_action_types_size(); ++i) {
    const int type = config.two_person_action_types(i);
    if (type == v1::ACTION_TYPE_UNSPECIFIED) {
      return InvalidField(absl::StrCat("policy.two_person_action_types[", i, "]"),
                          "must name an action type", v1::INVALID_POLICY);
    }
    policy.two_person_types_.insert(type);
  }
  policy.level_ = config.automation_level() == config::v1::AUTOMATION_LEVEL_UNSPECIFIED
                      ? config::v1::AUTOMATION_LEVEL_NONE
                      : config.automation_level();
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < config.automation_rules_size(); ++i) {
    const auto& rule = config.automation_rules(i);
    const std::string field = absl::StrCat("policy.automation_rules[", i, "]");
    if (rule.name().empty()) {
      return InvalidField(field + ".name", "is required", v1::INVALID_POLICY);
    }
    if (!names.insert(rule.name()).second) {
      return InvalidField(field + ".name",
                          absl::StrCat("'", rule.name(), "' is used by another rule"),
                          v1::INVALID_POLICY);
    }
    for (int type : rule.action_types()) {
      if (type == v1::ACTION_TYPE_UNSPECIFIED) {
        return InvalidField(field + ".action_types", "must name action types",
                            v1::INVALID_POLICY);
      }
    }
    for (int source : rule.investigation_sources()) {
      if (source == v1::Investigation::SOURCE_UNSPECIFIED) {
        return InvalidField(field + ".investigation_sources",
                            "must name sources", v1::INVALID_POLICY);
      }
    }
    for (int verdict : rule.investigation_verdicts()) {
      if (verdict == v1::VERDICT_UNSPECIFIED) {
        return InvalidField(field + ".investigation_verdicts",
                            "must name verdicts", v1::INVALID_POLICY);
      }
    }
    policy.rules_.push_back(rule);
  }
  policy.full_level_rule_.set_name(kFullAutomationRule);
  return policy;
}

int DecisionPolicy::RequiredApprovals(v1::ActionType type) const {
  return two_person_types_.contains(static_cast<int>(type)) ? 2 : 1;
}

const config::v1::AutomationRule* DecisionPolicy::AutomaticApproval(
    const v1::Action& action, const v1::Investigation& investigation) const {
  if (level_ == config::v1::AUTOMATION_LEVEL_NONE) return nullptr;
  // Suspicious verdicts always need a person, and so do two-person types.
  if (action.verdict() == v1::VERDICT_SUSPICIOUS ||
      investigation.verdict() == v1::VERDICT_SUSPICIOUS ||
      RequiredApprovals(action.type()) > 1) {
    return nullptr;
  }
  for (const auto& rule : rules_) {
    if (EmptyOrContains(rule.action_types(), action.type()) &&
        EmptyOrContains(rule.investigation_sources(), investigation.source()) &&
        EmptyOrContains(rule.investigation_verdicts(), investigation.verdict())) {
      return &rule;
    }
  }
  if (level_ == config::v1::AUTOMATION_LEVEL_FULL &&
      action.verdict() == v1::VERDICT_MALICIOUS) {
    return &full_level_rule_;
  }
  return nullptr;
}

}  // namespace air
