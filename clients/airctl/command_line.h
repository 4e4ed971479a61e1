// airctl's command line: the command table, the flag table and a small
// parser. Flags may appear before or after the command words; "--" ends
// flags. Every error here is a usage error (INVALID_ARGUMENT), which airctl
// reports with exit status 2.
#ifndef AIR_CLIENTS_AIRCTL_COMMAND_LINE_H_
#define AIR_CLIENTS_AIRCTL_COMMAND_LINE_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace air::airctl {

struct FlagSpec {
  std::string name;        // without dashes
  std::string value_name;  // "" for a boolean flag
  std::string help;
};

struct CommandSpec {
  std::vector<std::string> words;  // {"actions", "approve"}
  std::string args_usage;          // "ID [ID...]"
  int min_args = 0;
  int max_args = 0;  // -1: unlimited
  std::vector<std::string> flags;  // command flags, besides the global ones
  std::string help;
};

const std::vector<FlagSpec>& GlobalFlags();
const std::vector<FlagSpec>& CommandFlags();
const std::vector<CommandSpec>& Commands();

// The text of `airctl --help`.
std::string HelpText();

struct ParsedCommandLine {
  bool help = false;
  const CommandSpec* command = nullptr;  // null only when help is set
  std::vector<std::string> args;         // after the command words
  std::map<std::string, std::string> flags;

  bool Has(absl::string_view name) const { return flags.count(std::string(name)) > 0; }
  std::string Get(absl::string_view name, absl::string_view fallback = "") const;
  absl::StatusOr<bool> GetBool(absl::string_view name) const;
  absl::StatusOr<int64_t> GetInt(absl::string_view name, int64_t fallback) const;
  absl::StatusOr<absl::Duration> GetDuration(absl::string_view name,
                                             absl::Duration fallback) const;
};

// Parses argv[1..]. INVALID_ARGUMENT for an unknown command or flag, a flag
// the command does not take, a missing value or the wrong number of args.
absl::StatusOr<ParsedCommandLine> ParseCommandLine(const std::vector<std::string>& argv);

}  // namespace air::airctl

#endif  // AIR_CLIENTS_AIRCTL_COMMAND_LINE_H_
