// aird's settings are one message, air.config.v1.ServerConfig: read from a
// file (protobuf text format or JSON) by protobuf's own parsers, with the
// command-line flags set over it (service/aird_flags.h), validated once as
// a whole, then turned into ServerOptions.
#ifndef AIR_SERVICE_CONFIG_H_
#define AIR_SERVICE_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "air/config/v1/config.pb.h"
#include "service/server.h"

namespace air {

// Reads `path`: JSON if it ends in .json, else text format. INVALID_ARGUMENT
// naming the line/field for parse errors; NOT_FOUND if missing.
absl::StatusOr<config::v1::ServerConfig> LoadConfigFile(const std::string& path);

// The one validation of the settings, whatever set them: every field's range
// and the checks across fields (e.g. the metrics port differs from the gRPC
// port). Unset fields take their defaults. INVALID_ARGUMENT with a
// BadRequest naming the first bad field by its path in ServerConfig
// (e.g. "limits.default_heartbeat").
absl::Status ValidateConfig(const config::v1::ServerConfig& config);

// Validates `config` (ValidateConfig), then converts it: fields left unset
// keep ServerOptions' defaults.
absl::StatusOr<ServerOptions> ToServerOptions(const config::v1::ServerConfig& config);

}  // namespace air

#endif  // AIR_SERVICE_CONFIG_H_
