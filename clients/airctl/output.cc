#include "clients/airctl/output.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace air::airctl {
namespace {

using google::protobuf::EnumDescriptor;

std::string FullEnumName(const EnumDescriptor* descriptor, int value) {
  const google::protobuf::EnumValueDescriptor* v = descriptor->FindValueByNumber(value);
  return v == nullptr ? absl::StrCat(value) : v->name();
}

bool IsSet(const google::protobuf::Timestamp& t) { return t.seconds() != 0 || t.nanos() != 0; }

std::string Rfc3339(const google::protobuf::Timestamp& t) {
  return IsSet(t) ? google::protobuf::util::TimeUtil::ToString(t) : "";
}

std::string TargetLabel(const v1::Entity& target) {
  return target.display_name().empty() ? target.identifier() : target.display_name();
}

std::string Approvers(const v1::Action& action) {
  std::vector<std::string> names;
  for (const v1::Decision& approval : action.approvals()) names.push_back(approval.decider());
  return absl::StrJoin(names, ";");
}

std::string DecisionLabel(const v1::Action& action) {
  if (!action.has_decision()) {
    // Two-person approval in progress: "1/2 approvals (alice)".
    if (action.approvals_size() == 0) return "-";
    return absl::StrCat(action.approvals_size(), "/", action.required_approvals(),
                        " approvals (", Approvers(action), ")");
  }
  const v1::Decision& d = action.decision();
  std::string label = absl::StrCat(
      ShortEnumName(v1::Decision::Outcome_descriptor(), d.outcome()), " by ", d.decider());
  if (d.source() == v1::Decision::SOURCE_POLICY && !d.policy_rule().empty()) {
    absl::StrAppend(&label, " (policy ", d.policy_rule(), ")");
  }
  return label;
}

}  // namespace

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "table") return OutputFormat::kTable;
  if (lower == "json") return OutputFormat::kJson;
  if (lower == "csv") return OutputFormat::kCsv;
  return absl::InvalidArgumentError(
      absl::StrCat("--output takes table, json or csv, not '", name, "'"));
}

std::string CsvField(absl::string_view value) {
  std::string field(value);
  if (!field.empty() && std::string_view("=+-@\t\r").find(field[0]) != std::string_view::npos) {
    field.insert(0, "'");
  }
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string quoted = "\"";
  for (char c : field) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

std::string CsvRow(const std::vector<std::string>& fields) {
  std::vector<std::string> quoted;
  quoted.reserve(fields.size());
  for (const std::string& f : fields) quoted.push_back(CsvField(f));
  return absl::StrJoin(quoted, ",");
}

void Table::Print(std::ostream& out) const {
  std::vector<size_t> widths(header_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  };
  measure(header_);
  for (const auto& row : rows_) measure(row);
  auto print = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  };
  print(header_);
  for (const auto& row : rows_) print(row);
}

std::string ShortEnumName(const EnumDescriptor* descriptor, int value) {
  const std::string name = FullEnumName(descriptor, value);
  // Values carry the enum's prefix: STATE_PENDING, ACTION_TYPE_BLOCK_URL.
  const google::protobuf::EnumValueDescriptor* zero = descriptor->FindValueByNumber(0);
  if (zero != nullptr) {
    const std::string& z = zero->name();  // e.g. ACTION_TYPE_UNSPECIFIED
    const std::string prefix = z.substr(0, z.size() - std::string("UNSPECIFIED").size());
    if (!prefix.empty() && name.rfind(prefix, 0) == 0 && name.size() > prefix.size()) {
      return name.substr(prefix.size());
    }
  }
  return name;
}

std::string Age(const google::protobuf::Timestamp& then, absl::Time now) {
  if (!IsSet(then)) return "-";
  const absl::Time t = absl::FromUnixSeconds(then.seconds()) + absl::Nanoseconds(then.nanos());
  const int64_t seconds = std::max<int64_t>(0, absl::ToInt64Seconds(now - t));
  if (seconds < 120) return absl::StrCat(seconds, "s");
  if (seconds < 120 * 60) return absl::StrCat(seconds / 60, "m");
  if (seconds < 48 * 3600) return absl::StrCat(seconds / 3600, "h");
  return absl::StrCat(seconds / 86400, "d");
}

std::string ToJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  options.always_print_primitive_fields = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) {
    return "{}";  // only for messages with invalid UTF-8, which the server never sends
  }
  while (!json.empty() && json.back() == '\n') json.pop_back();
  return json;
}

std::vector<std::string> InvestigationTableHeader() {
  return {"ID", "STATE", "SOURCE", "VERDICT", "PENDING", "TOTAL", "AGE", "TITLE"};
}

std::vector<std::string> InvestigationTableRow(const v1::Investigation& inv, absl::Time now) {
  return {inv.id(),
          ShortEnumName(v1::Investigation::State_descriptor(), inv.state()),
          ShortEnumName(v1::Investigation::Source_descriptor(), inv.source()),
          ShortEnumName(v1::Verdict_descriptor(), inv.verdict()),
          absl::StrCat(inv.action_counts().pending()),
          absl::StrCat(inv.action_counts().total()),
          Age(inv.create_time(), now),
          inv.display_name()};
}

std::vector<std::string> InvestigationCsvHeader() {
  return {"id",          "display_name", "state",       "source",    "verdict",
          "pending",     "approved",     "rejected",    "expired",   "cancelled",
          "in_progress", "completed",    "failed",      "total",     "create_time",
          "update_time", "etag"};
}

std::vector<std::string> InvestigationCsvRow(const v1::Investigation& inv) {
  const auto& c = inv.action_counts();
  return {inv.id(),
          inv.display_name(),
          FullEnumName(v1::Investigation::State_descriptor(), inv.state()),
          FullEnumName(v1::Investigation::Source_descriptor(), inv.source()),
          FullEnumName(v1::Verdict_descriptor(), inv.verdict()),
          absl::StrCat(c.pending()),
          absl::StrCat(c.approved()),
          absl::StrCat(c.rejected()),
          absl::StrCat(c.expired()),
          absl::StrCat(c.cancelled()),
          absl::StrCat(c.in_progress()),
          absl::StrCat(c.completed()),
          absl::StrCat(c.failed()),
          absl::StrCat(c.total()),
          Rfc3339(inv.create_time()),
          Rfc3339(inv.update_time()),
          inv.etag()};
}

std::vector<std::string> ActionTableHeader() {
  return {"ID", "INVESTIGATION", "STATE", "TYPE", "AGE", "DECISION", "TARGET"};
}

std::vector<std::string> ActionTableRow(const v1::Action& action, absl::Time now) {
  return {action.id(),
          action.investigation_id(),
          ShortEnumName(v1::Action::State_descriptor(), action.state()),
          ShortEnumName(v1::ActionType_descriptor(), action.type()),
          Age(action.create_time(), now),
          DecisionLabel(action),
          TargetLabel(action.target())};
}

std::vector<std::string> ActionCsvHeader() {
  return {"id",           "investigation_id",    "state",          "type",
          "target_kind",  "target_identifier",   "target_display_name",
          "verdict",      "decision_outcome",    "decision_source", "decider",
          "comment",      "decide_time",         "policy_rule",    "failure_reason",
          "duplicate_of", "create_time",         "update_time",    "expire_time",
          "etag",         "required_approvals",  "approvers"};
}

std::vector<std::string> ActionCsvRow(const v1::Action& a) {
  const bool decided = a.has_decision();
  const v1::Decision& d = a.decision();
  return {a.id(),
          a.investigation_id(),
          FullEnumName(v1::Action::State_descriptor(), a.state()),
          FullEnumName(v1::ActionType_descriptor(), a.type()),
          FullEnumName(v1::Entity::Kind_descriptor(), a.target().kind()),
          a.target().identifier(),
          a.target().display_name(),
          FullEnumName(v1::Verdict_descriptor(), a.verdict()),
          decided ? FullEnumName(v1::Decision::Outcome_descriptor(), d.outcome()) : "",
          decided ? FullEnumName(v1::Decision::Source_descriptor(), d.source()) : "",
          d.decider(),
          d.comment(),
          Rfc3339(d.decide_time()),
          d.policy_rule(),
          a.failure_reason(),
          a.duplicate_of(),
          Rfc3339(a.create_time()),
          Rfc3339(a.update_time()),
          Rfc3339(a.expire_time()),
          a.etag(),
          absl::StrCat(a.required_approvals()),
          Approvers(a)};
}

namespace {

struct WatchFields {
  std::string sequence;
  std::string message;     // event | snapshot_action | snapshot_complete | bookmark
  std::string event_type;  // full name, events only
  std::string resource;    // action | investigation
  const v1::Action* action = nullptr;
  const v1::Investigation* investigation = nullptr;
  std::string commit_time;
};

WatchFields Fields(const v1::WatchActionsResponse& m) {
  WatchFields f;
  switch (m.payload_case()) {
    case v1::WatchActionsResponse::kEvent:
      f.sequence = absl::StrCat(m.event().sequence());
      f.message = "event";
      f.event_type = FullEnumName(v1::Event::Type_descriptor(), m.event().type());
      f.commit_time = Rfc3339(m.event().commit_time());
      if (m.event().has_action()) {
        f.resource = "action";
        f.action = &m.event().action();
      } else if (m.event().has_investigation()) {
        f.resource = "investigation";
        f.investigation = &m.event().investigation();
      }
      break;
    case v1::WatchActionsResponse::kSnapshotAction:
      f.message = "snapshot_action";
      f.resource = "action";
      f.action = &m.snapshot_action();
      break;
    case v1::WatchActionsResponse::kSnapshotComplete:
      f.sequence = absl::StrCat(m.snapshot_complete().sequence());
      f.message = "snapshot_complete";
      break;
    case v1::WatchActionsResponse::kBookmark:
      f.sequence = absl::StrCat(m.bookmark().sequence());
      f.message = "bookmark";
      break;
    case v1::WatchActionsResponse::PAYLOAD_NOT_SET:
      f.message = "unknown";
      break;
  }
  return f;
}

}  // namespace

std::string WatchTableHeader() {
  return absl::StrFormat("%-7s %-27s %-12s %-20s %s", "SEQ", "MESSAGE", "ID", "STATE",
                         "DETAIL");
}

std::string WatchTableLine(const v1::WatchActionsResponse& message) {
  const WatchFields f = Fields(message);
  std::string kind;
  if (message.has_event()) {
    kind = ShortEnumName(v1::Event::Type_descriptor(), message.event().type());
  } else {
    kind = absl::AsciiStrToUpper(f.message == "snapshot_action" ? "snapshot" : f.message);
  }
  std::string id, state, detail;
  if (f.action != nullptr) {
    id = f.action->id();
    state = ShortEnumName(v1::Action::State_descriptor(), f.action->state());
    detail = absl::StrCat(ShortEnumName(v1::ActionType_descriptor(), f.action->type()), " ",
                          TargetLabel(f.action->target()));
    if (f.action->has_decision()) absl::StrAppend(&detail, " [", DecisionLabel(*f.action), "]");
  } else if (f.investigation != nullptr) {
    id = f.investigation->id();
    state = ShortEnumName(v1::Investigation::State_descriptor(), f.investigation->state());
    detail = f.investigation->display_name();
  }
  std::string line = absl::StrFormat("%-7s %-27s %-12s %-20s %s",
                                     f.sequence.empty() ? "-" : f.sequence, kind, id, state,
                                     detail);
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

std::vector<std::string> WatchCsvHeader() {
  return {"sequence", "message",          "event_type", "resource", "id",
          "investigation_id", "state",    "type",       "target",   "commit_time"};
}

std::vector<std::string> WatchCsvRow(const v1::WatchActionsResponse& message) {
  const WatchFields f = Fields(message);
  std::string id, investigation_id, state, type, target;
  if (f.action != nullptr) {
    id = f.action->id();
    investigation_id = f.action->investigation_id();
    state = FullEnumName(v1::Action::State_descriptor(), f.action->state());
    type = FullEnumName(v1::ActionType_descriptor(), f.action->type());
    target = f.action->target().identifier();
  } else if (f.investigation != nullptr) {
    id = f.investigation->id();
    investigation_id = f.investigation->id();
    state = FullEnumName(v1::Investigation::State_descriptor(), f.investigation->state());
  }
  return {f.sequence, f.message, f.event_type,     f.resource, id,
          investigation_id, state, type, target, f.commit_time};
}

}  // namespace air::airctl
