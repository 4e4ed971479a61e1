#include "service/config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "domain/errors.h"
#include "domain/status_macros.h"

namespace air {
namespace {

// Collects text-format parse errors with their line and column.
class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first_.empty()) first_ = absl::StrCat("line ", line + 1, ":", column + 1, ": ", message);
  }
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

absl::StatusOr<absl::Duration> ToDuration(const google::protobuf::Duration& d,
                                          absl::string_view field) {
  if (d.seconds() < 0 || d.nanos() < 0) {
    return InvalidField(field, "must not be negative", "INVALID_CONFIG");
  }
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::StatusOr<absl::Duration> PositiveDuration(const google::protobuf::Duration& d,
                                                absl::string_view field) {
  AIR_ASSIGN_OR_RETURN(absl::Duration duration, ToDuration(d, field));
  if (duration <= absl::ZeroDuration()) {
    return InvalidField(field, "must be positive", "INVALID_CONFIG");
  }
  return duration;
}

constexpr int kMaxUpstreamPageSize = 100000;
constexpr int kMaxReceiveMessageBytes = 64 << 20;

}  // namespace

absl::StatusOr<config::v1::ServerConfig> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  config::v1::ServerConfig config;
  if (absl::EndsWith(path, ".json")) {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    auto status = google::protobuf::util::JsonStringToMessage(buffer.str(), &config, options);
    if (!status.ok()) {
      return InvalidField("config", absl::StrCat(path, ": ", status.message().as_string()),
                          "INVALID_CONFIG");
    }
    return config;
  }
  google::protobuf::TextFormat::Parser parser;
  ErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(buffer.str(), &config)) {
    return InvalidField("config", absl::StrCat(path, ": ", errors.first()),
                        "INVALID_CONFIG");
  }
  return config;
}

absl::Status ApplyConfig(const config::v1::ServerConfig& config, ServerOptions& options) {
  if (!config.listen().empty()) options.listen_address = config.listen();
  if (!config.db().empty()) options.db_path = config.db();
  if (config.has_tls()) {
    const auto& tls = config.tls();
    if (tls.cert_file().empty() != tls.key_file().empty()) {
      return InvalidField(tls.cert_file().empty() ? "tls.cert_file" : "tls.key_file",
                          "TLS needs both a certificate and a key", "INVALID_CONFIG");
    }
    if (tls.require_client_cert() && tls.client_ca_file().empty()) {
      return InvalidField("tls.client_ca_file",
                          "is required when require_client_cert is set", "INVALID_CONFIG");
    }
    options.tls.cert_file = tls.cert_file();
    options.tls.key_file = tls.key_file();
    options.tls.client_ca_file = tls.client_ca_file();
    options.tls.require_client_cert = tls.require_client_cert();
  }
  if (!config.tokens_file().empty()) options.tokens_file = config.tokens_file();
  options.allow_insecure = options.allow_insecure || config.allow_insecure();
  if (config.has_policy()) {
    AIR_ASSIGN_OR_RETURN(options.policy, DecisionPolicy::FromConfig(config.policy()));
  }
  if (config.has_action_ttl()) {
    AIR_ASSIGN_OR_RETURN(options.action_ttl, ToDuration(config.action_ttl(), "action_ttl"));
    if (options.action_ttl <= absl::ZeroDuration()) {
      return InvalidField("action_ttl", "must be positive", "INVALID_CONFIG");
    }
  }
  if (config.has_event_retention()) {
    AIR_ASSIGN_OR_RETURN(options.event_retention,
                         ToDuration(config.event_retention(), "event_retention"));
  }
  if (config.max_events() < 0) {
    return InvalidField("max_events", "must not be negative", "INVALID_CONFIG");
  }
  if (config.max_events() > 0) options.max_events = config.max_events();

  if (config.has_upstream()) {
    const config::v1::UpstreamConfig& up = config.upstream();
    options.upstream.target = up.target();
    options.upstream.ca_file = up.ca_file();
    options.upstream.cert_file = up.cert_file();
    options.upstream.key_file = up.key_file();
    options.upstream.token_file = up.token_file();
    if (up.ca_file().empty() && (!up.cert_file().empty() || !up.key_file().empty() ||
                                 !up.token_file().empty())) {
      return InvalidField("upstream.ca_file",
                          "is required with cert_file, key_file or token_file (they need TLS)",
                          "INVALID_CONFIG");
    }
    if (up.cert_file().empty() != up.key_file().empty()) {
      return InvalidField(up.cert_file().empty() ? "upstream.cert_file" : "upstream.key_file",
                          "cert_file and key_file go together", "INVALID_CONFIG");
    }
    if (up.has_outage()) {
      AIR_ASSIGN_OR_RETURN(options.upstream.outage_threshold,
                           PositiveDuration(up.outage(), "upstream.outage"));
    }
    if (up.has_poll_interval()) {
      AIR_ASSIGN_OR_RETURN(options.upstream.sync.poll_interval,
                           PositiveDuration(up.poll_interval(), "upstream.poll_interval"));
    }
    if (up.page_size() < 0 || up.page_size() > kMaxUpstreamPageSize) {
      return InvalidField("upstream.page_size",
                          absl::StrCat("must be between 1 and ", kMaxUpstreamPageSize),
                          "INVALID_CONFIG");
    }
    if (up.page_size() > 0) options.upstream.sync.page_size = up.page_size();
    if (up.has_timeout()) {
      AIR_ASSIGN_OR_RETURN(absl::Duration timeout,
                           PositiveDuration(up.timeout(), "upstream.timeout"));
      options.upstream.sync.rpc_timeout = timeout;
      options.upstream.delivery.rpc_timeout = timeout;
    }
  }

  if (!config.metrics_listen().empty()) {
    AIR_RETURN_IF_ERROR(ValidateListenAddress(config.metrics_listen(), "metrics_listen"));
    options.metrics_listen = config.metrics_listen();
  }
  if (!config.http_listen().empty()) {
    AIR_RETURN_IF_ERROR(ValidateListenAddress(config.http_listen(), "http_listen"));
    options.http_listen_address = config.http_listen();
  }
  if (!config.health_listen().empty()) {
    AIR_RETURN_IF_ERROR(ValidateListenAddress(config.health_listen(), "health_listen"));
    options.health_listen = config.health_listen();
  }
  if (!config.listen().empty() && !absl::StartsWith(config.listen(), "unix:")) {
    AIR_RETURN_IF_ERROR(ValidateListenAddress(config.listen(), "listen"));
  }
  if (!config.log().format().empty()) {
    AIR_RETURN_IF_ERROR(ValidateLogFormat(config.log().format(), "log.format"));
    options.log_format = config.log().format();
  }
  if (!config.log().level().empty()) {
    AIR_RETURN_IF_ERROR(ValidateLogLevel(config.log().level(), "log.level"));
    options.log_level = config.log().level();
  }
  options.full_fsync = options.full_fsync || config.full_fsync();
  options.demo = options.demo || config.demo();
  if (config.has_housekeeping_interval()) {
    AIR_ASSIGN_OR_RETURN(options.housekeeping_interval,
                         PositiveDuration(config.housekeeping_interval(),
                                          "housekeeping_interval"));
  }
  if (config.has_keepalive_time()) {
    AIR_ASSIGN_OR_RETURN(options.keepalive_time,
                         PositiveDuration(config.keepalive_time(), "keepalive_time"));
  }
  if (config.has_max_connection_age()) {
    AIR_ASSIGN_OR_RETURN(options.max_connection_age,
                         ToDuration(config.max_connection_age(), "max_connection_age"));
  }
  if (config.has_shutdown_grace()) {
    AIR_ASSIGN_OR_RETURN(options.shutdown_grace,
                         ToDuration(config.shutdown_grace(), "shutdown_grace"));
  }
  const config::v1::LimitsConfig& limits = config.limits();
  if (limits.max_receive_message_bytes() < 0 ||
      limits.max_receive_message_bytes() > kMaxReceiveMessageBytes) {
    return InvalidField("limits.max_receive_message_bytes",
                        absl::StrCat("must be between 1 and ", kMaxReceiveMessageBytes),
                        "INVALID_CONFIG");
  }
  if (limits.max_receive_message_bytes() > 0) {
    options.max_receive_message_bytes = limits.max_receive_message_bytes();
  }
  if (limits.max_snapshot_actions() < 0) {
    return InvalidField("limits.max_snapshot_actions", "must not be negative",
                        "INVALID_CONFIG");
  }
  if (limits.max_snapshot_actions() > 0) {
    options.watch_limits.max_snapshot_actions = limits.max_snapshot_actions();
  }
  if (limits.has_default_heartbeat()) {
    AIR_ASSIGN_OR_RETURN(absl::Duration heartbeat,
                         PositiveDuration(limits.default_heartbeat(),
                                          "limits.default_heartbeat"));
    if (heartbeat < options.watch_limits.min_heartbeat ||
        heartbeat > options.watch_limits.max_heartbeat) {
      return InvalidField(
          "limits.default_heartbeat",
          absl::StrCat("must be between ",
                       absl::FormatDuration(options.watch_limits.min_heartbeat), " and ",
                       absl::FormatDuration(options.watch_limits.max_heartbeat)),
          "INVALID_CONFIG");
    }
    options.watch_limits.default_heartbeat = heartbeat;
  }
  return absl::OkStatus();
}

absl::Status ValidateListenAddress(absl::string_view address, absl::string_view field) {
  // HOST:PORT, [V6]:PORT or unix:PATH (gRPC listeners only take the latter).
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return InvalidField(field, absl::StrCat("must be HOST:PORT, not \"", address, "\""),
                        "INVALID_CONFIG");
  }
  return absl::OkStatus();
}

absl::Status ValidateLogFormat(absl::string_view format, absl::string_view field) {
  if (format == "auto" || format == "text" || format == "json") return absl::OkStatus();
  return InvalidField(field, absl::StrCat("must be auto, text or json, not \"", format, "\""),
                      "INVALID_CONFIG");
}

absl::Status ValidateLogLevel(absl::string_view level, absl::string_view field) {
  for (const char* known : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    if (level == known) return absl::OkStatus();
  }
  return InvalidField(field,
                      absl::StrCat("must be trace, debug, info, warn, error, critical or "
                                   "off, not \"", level, "\""),
                      "INVALID_CONFIG");
}

namespace {

// Two listen addresses that would collide (port 0 picks a free port: never).
bool SameAddress(const std::string& a, const std::string& b) {
  return !a.empty() && a == b && !absl::EndsWith(a, ":0");
}

}  // namespace

absl::Status ValidateServerOptions(const ServerOptions& options) {
  if (SameAddress(options.metrics_listen, options.listen_address)) {
    return InvalidField("metrics_listen", "must differ from listen", "INVALID_CONFIG");
  }
  if (SameAddress(options.health_listen, options.listen_address)) {
    return InvalidField("health_listen", "must differ from listen", "INVALID_CONFIG");
  }
  if (SameAddress(options.http_listen_address, options.listen_address)) {
    return InvalidField("http_listen", "must differ from listen", "INVALID_CONFIG");
  }
  if (SameAddress(options.http_listen_address, options.metrics_listen)) {
    return InvalidField("http_listen", "must differ from metrics_listen", "INVALID_CONFIG");
  }
  if (SameAddress(options.health_listen, options.metrics_listen)) {
    return InvalidField("health_listen", "must differ from metrics_listen", "INVALID_CONFIG");
  }
  return absl::OkStatus();
}

}  // namespace air
