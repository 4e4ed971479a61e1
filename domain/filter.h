// List and watch filters: a documented subset of AIP-160. A filter is a
// conjunction of comparisons joined by AND:
//   state = STATE_PENDING AND type = ACTION_TYPE_BLOCK_URL
//   investigation_id = "inv-1"
//   create_time >= "2026-01-01T00:00:00Z"
// Values are enum names, bare words, or double-quoted strings. Parsing yields
// typed structs; storage binds their values as SQL parameters.
#ifndef AIR_DOMAIN_FILTER_H_
#define AIR_DOMAIN_FILTER_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "air/v1/action.pb.h"
#include "air/v1/investigation.pb.h"

namespace air {

// Longest filter accepted, in bytes.
inline constexpr size_t kMaxFilterLength = 1024;

struct ActionFilter {
  std::optional<v1::Action::State> state;
  std::optional<v1::ActionType> type;
  std::optional<std::string> investigation_id;

  // True if `action` satisfies every term.
  bool Matches(const v1::Action& action) const;
  // True if the filter has terms on action fields other than investigation_id.
  bool HasActionOnlyTerms() const { return state || type; }
};

struct InvestigationFilter {
  std::optional<v1::Investigation::State> state;
  std::optional<v1::Investigation::Source> source;
  std::optional<v1::Verdict> verdict;
  // Half-open bounds: [create_after, create_before), likewise for update.
  std::optional<absl::Time> create_after, create_before;
  std::optional<absl::Time> update_after, update_before;
};

// Parses a filter for actions. INVALID_ARGUMENT (field "filter", reason
// INVALID_FILTER) for syntax errors, unknown fields or bad values.
absl::StatusOr<ActionFilter> ParseActionFilter(absl::string_view filter);

// Parses a filter for investigations; errors as ParseActionFilter.
absl::StatusOr<InvestigationFilter> ParseInvestigationFilter(
    absl::string_view filter);

}  // namespace air

#endif  // AIR_DOMAIN_FILTER_H_
