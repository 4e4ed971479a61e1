// How airctl prints resources: aligned tables for people, protobuf JSON for
// programs, CSV for spreadsheets. Pure formatting; no I/O besides the stream
// passed in.
#ifndef AIR_CLIENTS_AIRCTL_OUTPUT_H_
#define AIR_CLIENTS_AIRCTL_OUTPUT_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "air/v1/action.pb.h"
#include "air/v1/action_service.pb.h"
#include "air/v1/investigation.pb.h"
#include "google/protobuf/message.h"

namespace air::airctl {

enum class OutputFormat { kTable, kJson, kCsv };

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name);

// One RFC 4180 field: quoted when it holds a comma, quote, CR or LF, with
// quotes doubled. A field starting with = + - @ TAB or CR gets a leading '
// first, so a spreadsheet shows it as text instead of running a formula
// (titles and targets come from attacker-controlled mail).
std::string CsvField(absl::string_view value);
std::string CsvRow(const std::vector<std::string>& fields);

// Rows of text printed with columns padded to the widest cell.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// The enum value's name without its prefix: STATE_PENDING -> PENDING.
std::string ShortEnumName(const google::protobuf::EnumDescriptor* descriptor, int value);

// "45s", "12m", "3h", "5d" between `then` and `now`; "-" for an unset time.
std::string Age(const google::protobuf::Timestamp& then, absl::Time now);

// protobuf's JSON mapping, every field printed. `pretty` adds line breaks.
std::string ToJson(const google::protobuf::Message& message, bool pretty);

// Columns for each resource, per format.
std::vector<std::string> InvestigationTableHeader();
std::vector<std::string> InvestigationTableRow(const v1::Investigation& inv, absl::Time now);
std::vector<std::string> InvestigationCsvHeader();
std::vector<std::string> InvestigationCsvRow(const v1::Investigation& inv);

std::vector<std::string> ActionTableHeader();
std::vector<std::string> ActionTableRow(const v1::Action& action, absl::Time now);
std::vector<std::string> ActionCsvHeader();
std::vector<std::string> ActionCsvRow(const v1::Action& action);

// Watch messages, one line each (no trailing newline). The table form uses
// fixed column widths because rows arrive one at a time.
std::string WatchTableHeader();
std::string WatchTableLine(const v1::WatchActionsResponse& message);
std::vector<std::string> WatchCsvHeader();
std::vector<std::string> WatchCsvRow(const v1::WatchActionsResponse& message);

}  // namespace air::airctl

#endif  // AIR_CLIENTS_AIRCTL_OUTPUT_H_
