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

using config::v1::ServerConfig;

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

constexpr int kMaxUpstreamPageSize = 100000;
constexpr int kMaxReceiveMessageBytes = 64 << 20;

absl::Status Invalid(absl::string_view field, absl::string_view description) {
  return InvalidField(field, description, v1::INVALID_CONFIG);
}

absl::Duration ToDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::Status CheckNotNegative(const google::protobuf::Duration& d, absl::string_view field) {
  if (d.seconds() < 0 || d.nanos() < 0) return Invalid(field, "must not be negative");
  return absl::OkStatus();
}

absl::Status CheckPositive(const google::protobuf::Duration& d, absl::string_view field) {
  AIR_RETURN_IF_ERROR(CheckNotNegative(d, field));
  if (ToDuration(d) <= absl::ZeroDuration()) return Invalid(field, "must be positive");
  return absl::OkStatus();
}

absl::Status CheckListenAddress(absl::string_view address, absl::string_view field) {
  // HOST:PORT, [V6]:PORT or unix:PATH (gRPC listeners only take the latter).
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return Invalid(field, absl::StrCat("must be HOST:PORT, not \"", address, "\""));
  }
  return absl::OkStatus();
}

absl::Status CheckLogFormat(absl::string_view format, absl::string_view field) {
  if (format == "auto" || format == "text" || format == "json") return absl::OkStatus();
  return Invalid(field, absl::StrCat("must be auto, text or json, not \"", format, "\""));
}

absl::Status CheckLogLevel(absl::string_view level, absl::string_view field) {
  for (const char* known : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    if (level == known) return absl::OkStatus();
  }
  return Invalid(field, absl::StrCat("must be trace, debug, info, warn, error, critical or "
                                     "off, not \"", level, "\""));
}

// Two listen addresses that would collide (port 0 picks a free port: never).
bool SameAddress(const std::string& a, const std::string& b) {
  return !a.empty() && a == b && !absl::EndsWith(a, ":0");
}

absl::Status ValidateTls(const config::v1::TlsConfig& tls) {
  if (tls.cert_file().empty() != tls.key_file().empty()) {
    return Invalid(tls.cert_file().empty() ? "tls.cert_file" : "tls.key_file",
                   "TLS needs both a certificate and a key");
  }
  if (tls.require_client_cert() && tls.client_ca_file().empty()) {
    return Invalid("tls.client_ca_file", "is required when require_client_cert is set");
  }
  return absl::OkStatus();
}

absl::Status ValidateUpstream(const config::v1::UpstreamConfig& up) {
  if (up.ca_file().empty() &&
      (!up.cert_file().empty() || !up.key_file().empty() || !up.token_file().empty())) {
    return Invalid("upstream.ca_file",
                   "is required with cert_file, key_file or token_file (they need TLS)");
  }
  if (up.cert_file().empty() != up.key_file().empty()) {
    return Invalid(up.cert_file().empty() ? "upstream.cert_file" : "upstream.key_file",
                   "cert_file and key_file go together");
  }
  if (up.has_outage()) AIR_RETURN_IF_ERROR(CheckPositive(up.outage(), "upstream.outage"));
  if (up.has_poll_interval()) {
    AIR_RETURN_IF_ERROR(CheckPositive(up.poll_interval(), "upstream.poll_interval"));
  }
  if (up.has_page_size() && (up.page_size() < 1 || up.page_size() > kMaxUpstreamPageSize)) {
    return Invalid("upstream.page_size",
                   absl::StrCat("must be between 1 and ", kMaxUpstreamPageSize));
  }
  if (up.has_timeout()) AIR_RETURN_IF_ERROR(CheckPositive(up.timeout(), "upstream.timeout"));
  return absl::OkStatus();
}

absl::Status ValidateLimits(const config::v1::LimitsConfig& limits) {
  if (limits.has_max_receive_message_bytes() &&
      (limits.max_receive_message_bytes() < 1 ||
       limits.max_receive_message_bytes() > kMaxReceiveMessageBytes)) {
    return Invalid("limits.max_receive_message_bytes",
                   absl::StrCat("must be between 1 and ", kMaxReceiveMessageBytes));
  }
  if (limits.has_max_snapshot_actions() && limits.max_snapshot_actions() < 1) {
    return Invalid("limits.max_snapshot_actions", "must be positive");
  }
  if (limits.has_default_heartbeat()) {
    AIR_RETURN_IF_ERROR(CheckPositive(limits.default_heartbeat(), "limits.default_heartbeat"));
    const WatchLimits bounds;
    const absl::Duration heartbeat = ToDuration(limits.default_heartbeat());
    if (heartbeat < bounds.min_heartbeat || heartbeat > bounds.max_heartbeat) {
      return Invalid("limits.default_heartbeat",
                     absl::StrCat("must be between ", absl::FormatDuration(bounds.min_heartbeat),
                                  " and ", absl::FormatDuration(bounds.max_heartbeat)));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateListeners(const ServerConfig& config) {
  if (!config.listen().empty() && !absl::StartsWith(config.listen(), "unix:")) {
    AIR_RETURN_IF_ERROR(CheckListenAddress(config.listen(), "listen"));
  }
  if (!config.metrics_listen().empty()) {
    AIR_RETURN_IF_ERROR(CheckListenAddress(config.metrics_listen(), "metrics_listen"));
  }
  if (!config.http_listen().empty()) {
    AIR_RETURN_IF_ERROR(CheckListenAddress(config.http_listen(), "http_listen"));
  }
  if (!config.health_listen().empty()) {
    AIR_RETURN_IF_ERROR(CheckListenAddress(config.health_listen(), "health_listen"));
  }
  const std::string listen =
      config.listen().empty() ? ServerOptions().listen_address : config.listen();
  if (SameAddress(config.metrics_listen(), listen)) {
    return Invalid("metrics_listen", "must differ from listen");
  }
  if (SameAddress(config.health_listen(), listen)) {
    return Invalid("health_listen", "must differ from listen");
  }
  if (SameAddress(config.http_listen(), listen)) {
    return Invalid("http_listen", "must differ from listen");
  }
  if (SameAddress(config.http_listen(), config.metrics_listen())) {
    return Invalid("http_listen", "must differ from metrics_listen");
  }
  if (SameAddress(config.health_listen(), config.metrics_listen())) {
    return Invalid("health_listen", "must differ from metrics_listen");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServerConfig> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  ServerConfig config;
  if (absl::EndsWith(path, ".json")) {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    auto status = google::protobuf::util::JsonStringToMessage(buffer.str(), &config, options);
    if (!status.ok()) {
      return InvalidField("config", absl::StrCat(path, ": ", status.message().as_string()),
                          v1::INVALID_CONFIG);
    }
    return config;
  }
  google::protobuf::TextFormat::Parser parser;
  ErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(buffer.str(), &config)) {
    return InvalidField("config", absl::StrCat(path, ": ", errors.first()),
                        v1::INVALID_CONFIG);
  }
  return config;
}

absl::Status ValidateConfig(const ServerConfig& config) {
  AIR_RETURN_IF_ERROR(ValidateTls(config.tls()));
  AIR_RETURN_IF_ERROR(DecisionPolicy::FromConfig(config.policy()).status());
  if (config.has_action_ttl()) {
    AIR_RETURN_IF_ERROR(CheckPositive(config.action_ttl(), "action_ttl"));
  }
  if (config.has_event_retention()) {
    AIR_RETURN_IF_ERROR(CheckNotNegative(config.event_retention(), "event_retention"));
  }
  if (config.has_max_events() && config.max_events() < 1) {
    return Invalid("max_events", "must be positive");
  }
  AIR_RETURN_IF_ERROR(ValidateUpstream(config.upstream()));
  AIR_RETURN_IF_ERROR(ValidateListeners(config));
  if (!config.log().format().empty()) {
    AIR_RETURN_IF_ERROR(CheckLogFormat(config.log().format(), "log.format"));
  }
  if (!config.log().level().empty()) {
    AIR_RETURN_IF_ERROR(CheckLogLevel(config.log().level(), "log.level"));
  }
  if (config.has_housekeeping_interval()) {
    AIR_RETURN_IF_ERROR(CheckPositive(config.housekeeping_interval(), "housekeeping_interval"));
  }
  if (config.has_keepalive_time()) {
    AIR_RETURN_IF_ERROR(CheckPositive(config.keepalive_time(), "keepalive_time"));
  }
  if (config.has_max_connection_age()) {
    AIR_RETURN_IF_ERROR(CheckNotNegative(config.max_connection_age(), "max_connection_age"));
  }
  if (config.has_shutdown_grace()) {
    AIR_RETURN_IF_ERROR(CheckNotNegative(config.shutdown_grace(), "shutdown_grace"));
  }
  return ValidateLimits(config.limits());
}

absl::StatusOr<ServerOptions> ToServerOptions(const ServerConfig& config) {
  AIR_RETURN_IF_ERROR(ValidateConfig(config));
  ServerOptions options;
  if (!config.listen().empty()) options.listen_address = config.listen();
  if (!config.db().empty()) options.db_path = config.db();
  options.tls.cert_file = config.tls().cert_file();
  options.tls.key_file = config.tls().key_file();
  options.tls.client_ca_file = config.tls().client_ca_file();
  options.tls.require_client_cert = config.tls().require_client_cert();
  options.tokens_file = config.tokens_file();
  options.allow_insecure = config.allow_insecure();
  AIR_ASSIGN_OR_RETURN(options.policy, DecisionPolicy::FromConfig(config.policy()));
  if (config.has_action_ttl()) options.action_ttl = ToDuration(config.action_ttl());
  if (config.has_event_retention()) options.event_retention = ToDuration(config.event_retention());
  if (config.has_max_events()) options.max_events = config.max_events();

  const config::v1::UpstreamConfig& up = config.upstream();
  options.upstream.target = up.target();
  options.upstream.ca_file = up.ca_file();
  options.upstream.cert_file = up.cert_file();
  options.upstream.key_file = up.key_file();
  options.upstream.token_file = up.token_file();
  if (up.has_outage()) options.upstream.outage_threshold = ToDuration(up.outage());
  if (up.has_poll_interval()) options.upstream.sync.poll_interval = ToDuration(up.poll_interval());
  if (up.has_page_size()) options.upstream.sync.page_size = up.page_size();
  if (up.has_timeout()) {
    options.upstream.sync.rpc_timeout = ToDuration(up.timeout());
    options.upstream.delivery.rpc_timeout = ToDuration(up.timeout());
  }
  // Synced actions without an expire time get the same time to live.
  options.upstream.sync.action_ttl = options.action_ttl;

  options.metrics_listen = config.metrics_listen();
  options.http_listen_address = config.http_listen();
  options.health_listen = config.health_listen();
  if (!config.log().format().empty()) options.log_format = config.log().format();
  if (!config.log().level().empty()) options.log_level = config.log().level();
  options.full_fsync = config.full_fsync();
  options.demo = config.demo();
  if (config.has_housekeeping_interval()) {
    options.housekeeping_interval = ToDuration(config.housekeeping_interval());
  }
  if (config.has_keepalive_time()) options.keepalive_time = ToDuration(config.keepalive_time());
  if (config.has_max_connection_age()) {
    options.max_connection_age = ToDuration(config.max_connection_age());
  }
  if (config.has_shutdown_grace()) options.shutdown_grace = ToDuration(config.shutdown_grace());
  options.port_file = config.port_file();
  options.http_port_file = config.http_port_file();

  const config::v1::LimitsConfig& limits = config.limits();
  if (limits.has_max_receive_message_bytes()) {
    options.max_receive_message_bytes = limits.max_receive_message_bytes();
  }
  if (limits.has_max_snapshot_actions()) {
    options.watch_limits.max_snapshot_actions = limits.max_snapshot_actions();
  }
  if (limits.has_default_heartbeat()) {
    options.watch_limits.default_heartbeat = ToDuration(limits.default_heartbeat());
  }
  return options;
}

}  // namespace air
