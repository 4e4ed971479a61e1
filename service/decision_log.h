// Logs every committed decision — approvals, rejections, expiries, partial
// (two-person) approvals — from whatever path made it: the API, a batch, an
// automation rule, the expiry sweeper or upstream sync. It reads the events
// of each commit (the commit observer), so a decision is logged exactly once
// and only once it is durable. Fields: principal, action_id,
// investigation_id, action_type, outcome, source, policy_rule, sequence.
// The comment is not logged (free text, may hold personal data).
#ifndef AIR_SERVICE_DECISION_LOG_H_
#define AIR_SERVICE_DECISION_LOG_H_

#include <vector>

#include "air/v1/event.pb.h"

namespace air {

void LogCommittedDecisions(const std::vector<v1::Event>& events);

}  // namespace air

#endif  // AIR_SERVICE_DECISION_LOG_H_
