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

}  // namespace air

#endif  // AIR_SERVICE_CONFIG_H_
