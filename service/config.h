// The config file: air.config.v1.ServerConfig in protobuf text format or
// JSON, parsed by protobuf's own parsers, validated, and turned into
// ServerOptions. Flags set on the command line override it (aird_main.cc).
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

// Validates and applies `config` over `options` (fields left unset keep the
// defaults). INVALID_ARGUMENT naming the bad field.
absl::Status ApplyConfig(const config::v1::ServerConfig& config, ServerOptions& options);

// Checks that hold across settings, after the config file and the flags are
// both applied (e.g. the metrics port differs from the gRPC port).
// INVALID_ARGUMENT naming the field.
absl::Status ValidateServerOptions(const ServerOptions& options);

// Field checks shared by the config file and the flags; `field` names the
// setting in the error.
absl::Status ValidateListenAddress(absl::string_view address, absl::string_view field);
absl::Status ValidateLogFormat(absl::string_view format, absl::string_view field);
absl::Status ValidateLogLevel(absl::string_view level, absl::string_view field);

}  // namespace air

#endif  // AIR_SERVICE_CONFIG_H_
