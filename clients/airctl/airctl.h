// airctl's commands, behind one entry point so that main() stays a line and
// tests can run commands in-process. Uses only the public client library.
#ifndef AIR_CLIENTS_AIRCTL_AIRCTL_H_
#define AIR_CLIENTS_AIRCTL_AIRCTL_H_

#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"

namespace air::airctl {

// Exit statuses.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRpcError = 1;
inline constexpr int kExitUsage = 2;

// Reads an environment variable (AIR_SERVER, AIR_TOKEN); nullopt if unset.
using Environment = std::function<std::optional<std::string>(const std::string&)>;

// Runs `airctl args...` (args excludes the program name), printing results to
// `out` and errors to `err`. Returns the exit status.
int RunAirctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
              const Environment& env);

// "pending" / "PENDING" / "STATE_PENDING" -> "STATE_PENDING" for the enum of
// `descriptor`; INVALID_ARGUMENT naming the valid values otherwise.
absl::StatusOr<std::string> EnumValueName(const google::protobuf::EnumDescriptor* descriptor,
                                          absl::string_view flag, absl::string_view value);

// Joins --filter with the terms the convenience flags add, by AND.
// `terms` are already "field = value" strings.
std::string JoinFilter(absl::string_view filter, const std::vector<std::string>& terms);

// A filter string literal: "..." with \ and " escaped.
std::string QuoteFilterValue(absl::string_view value);

}  // namespace air::airctl

#endif  // AIR_CLIENTS_AIRCTL_AIRCTL_H_
