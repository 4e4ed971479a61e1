// aird's command line. Every setting flag sets one field of
// air.config.v1.ServerConfig over the config file, so flags and files go
// through the same validation (service/config.h). The flags live in their own
// library, linked only by aird and its tests, because absl flags are global:
// any binary linking them would accept (and clash on) aird's names.
#ifndef AIR_SERVICE_AIRD_FLAGS_H_
#define AIR_SERVICE_AIRD_FLAGS_H_

#include <map>
#include <set>
#include <string>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "air/config/v1/config.pb.h"

// The flags that are commands or point at the config, not settings.
ABSL_DECLARE_FLAG(std::string, config);
ABSL_DECLARE_FLAG(std::string, check_config);
ABSL_DECLARE_FLAG(std::string, backup);

namespace air {

// A setting flag and the ServerConfig field it sets, as a dotted path.
struct SettingFlag {
  const char* flag;
  const char* field;
};

// Every setting flag of aird.
absl::Span<const SettingFlag> SettingFlags();

// Parses aird's command line like absl::ParseCommandLine (which exits on an
// unknown flag or a bad value), reading dashes in flag names as underscores
// (--check-config is --check_config). Returns the names of the flags given
// on the command line (--name, --name=value, --name VALUE or --noname).
std::set<std::string> ParseAirdCommandLine(int argc, char** argv);

// Sets, for each setting flag in `flag_values` (flag name -> the value as
// absl prints it: "90s", "true", "1000"), the field the flag maps to.
// INVALID_ARGUMENT naming the field if a value does not fit it (durations
// must be finite) or the name is no setting flag.
absl::Status ApplySettingFlags(const std::map<std::string, std::string>& flag_values,
                               config::v1::ServerConfig& config);

// The settings the command line asks for: the file named by --check_config
// (else --config; none: an empty config) with every setting flag in
// `given_flags` set over it. Not validated yet (ValidateConfig).
absl::StatusOr<config::v1::ServerConfig> LoadSettings(
    const std::set<std::string>& given_flags);

}  // namespace air

#endif  // AIR_SERVICE_AIRD_FLAGS_H_
