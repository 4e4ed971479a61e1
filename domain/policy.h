// Decision policy: which action types need two approvers, and which new
// actions are approved automatically (the vendors' automation levels).
// Built from the config and validated once at start; immutable afterwards,
// so it is safe to share between threads.
#ifndef AIR_DOMAIN_POLICY_H_
#define AIR_DOMAIN_POLICY_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "air/config/v1/config.pb.h"
#include "air/v1/action.pb.h"
#include "air/v1/investigation.pb.h"

namespace air {

class DecisionPolicy {
 public:
  // No automation, one approver for everything.
  DecisionPolicy() = default;

  // Validates `config`: rule names unique and non-empty, no unspecified enum
  // values. INVALID_ARGUMENT naming the bad field (e.g.
  // "policy.automation_rules[1].name").
  static absl::StatusOr<DecisionPolicy> FromConfig(const config::v1::PolicyConfig& config);

  // Distinct approvers an action of `type` needs.
  int RequiredApprovals(v1::ActionType type) const;

  // The rule that approves `action` automatically, or nullptr if a person
  // must decide. `rule_name` of the returned pointer is recorded on the
  // decision.
  const config::v1::AutomationRule* AutomaticApproval(
      const v1::Action& action, const v1::Investigation& investigation) const;

  // Name recorded for approvals made by AUTOMATION_LEVEL_FULL itself.
  static constexpr char kFullAutomationRule[] = "automation-level-full";

 private:
  absl::flat_hash_set<int> two_person_types_;
  config::v1::AutomationLevel level_ = config::v1::AUTOMATION_LEVEL_NONE;
  std::vector<config::v1::AutomationRule> rules_;
  config::v1::AutomationRule full_level_rule_;
};

}  // namespace air

#endif  // AIR_DOMAIN_POLICY_H_
