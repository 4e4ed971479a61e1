#include "service/config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
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
  return absl::OkStatus();
}

}  // namespace air
