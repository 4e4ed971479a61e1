// aird's logs, through spdlog: human text for a terminal, or JSON lines for
// a log pipeline (one object per line: time, level, component, msg, and the
// event's fields). Every spdlog call in the code base goes through the same
// default logger, so both formats cover everything.
//
// Structured events carry fields (LogEvent): a decision names its principal,
// action and outcome as separate JSON keys, so a pipeline can index them.
// Secrets are never passed here: no tokens, no private keys, no request
// metadata.
#ifndef AIR_SERVICE_LOGGING_H_
#define AIR_SERVICE_LOGGING_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "spdlog/formatter.h"
#include "spdlog/spdlog.h"

namespace air {

enum class LogFormat { kText, kJson };

// "text", "json", or "auto": text when stderr is a terminal, else JSON.
// INVALID_ARGUMENT for anything else.
absl::StatusOr<LogFormat> ResolveLogFormat(absl::string_view name);

// A spdlog formatter for `format` (one line per event, fields included).
std::unique_ptr<spdlog::formatter> MakeLogFormatter(LogFormat format);

// Points the default logger at stderr with `format` and `level` ("info",
// "debug", ...). INVALID_ARGUMENT for an unknown level.
absl::Status ConfigureLogging(LogFormat format, absl::string_view level);

using LogFields = std::vector<std::pair<std::string, std::string>>;

// Logs one event of `component` ("decision", "rpc", "backup", ...) with
// `fields`, through the default logger. Fields become JSON keys (or
// key=value pairs in text); the message stays readable on its own.
void LogEvent(spdlog::level::level_enum level, absl::string_view component,
              absl::string_view message, const LogFields& fields = {});

// `text` as a JSON string literal, quotes included.
std::string JsonQuote(absl::string_view text);

}  // namespace air

#endif  // AIR_SERVICE_LOGGING_H_
