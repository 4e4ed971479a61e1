#include "service/aird_flags.h"

#include <google/protobuf/duration.pb.h>

#include <algorithm>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "domain/errors.h"
#include "domain/status_macros.h"
#include "service/config.h"
#include "service/server.h"

namespace {

// The flags' defaults are ServerOptions' (the defaults of an empty config),
// so --help cannot drift from what an unset field means.
const air::ServerOptions& Defaults() {
  static const auto* defaults = new air::ServerOptions();
  return *defaults;
}

}  // namespace

ABSL_FLAG(std::string, config, "",
          "config file (air.config.v1.ServerConfig, text format or .json); "
          "flags given on the command line override its fields");
ABSL_FLAG(std::string, check_config, "",
          "validate this config file, with any setting flags given over it, print the "
          "first error naming the field, and exit");
ABSL_FLAG(std::string, backup, "",
          "make a consistent online backup of --db to this file (SQLite backup API; "
          "safe while another aird serves the database), print a summary, and exit");

ABSL_FLAG(std::string, listen, Defaults().listen_address,
          "gRPC listen address HOST:PORT (port 0 picks a free port)");
ABSL_FLAG(std::string, db, Defaults().db_path,
          "SQLite database file (created if missing), or a PostgreSQL URI "
          "(postgresql://USER@HOST:PORT/DB; give the password in PGPASSWORD or "
          "~/.pgpass, not in the URI) to run several replicas on one database");
ABSL_FLAG(bool, demo, Defaults().demo, "fill an empty database with demo investigations");
ABSL_FLAG(bool, full_fsync, Defaults().full_fsync,
          "fsync every commit (synchronous=FULL): durable against power loss");
ABSL_FLAG(absl::Duration, action_ttl, Defaults().action_ttl,
          "how long a pending action waits before it expires");
ABSL_FLAG(absl::Duration, event_retention, Defaults().event_retention,
          "how long events are kept for resuming watches");
ABSL_FLAG(int64_t, max_events, Defaults().max_events, "most events kept for resuming watches");
ABSL_FLAG(absl::Duration, housekeeping_interval, Defaults().housekeeping_interval,
          "how often expiry and event retention run");
ABSL_FLAG(absl::Duration, keepalive_time, Defaults().keepalive_time,
          "HTTP/2 keepalive ping interval");
ABSL_FLAG(absl::Duration, max_connection_age, Defaults().max_connection_age,
          "close connections after this age (0: never); clients reconnect");
ABSL_FLAG(absl::Duration, shutdown_grace, Defaults().shutdown_grace,
          "how long in-flight calls may finish after SIGTERM");
ABSL_FLAG(std::string, tokens_file, Defaults().tokens_file,
          "bearer-token hashes, principals and roles; reloaded on SIGHUP; empty: no auth "
          "(loopback only)");
ABSL_FLAG(std::string, tls_cert, Defaults().tls.cert_file,
          "TLS certificate chain (PEM); empty: plaintext");
ABSL_FLAG(std::string, tls_key, Defaults().tls.key_file, "TLS private key (PEM)");
ABSL_FLAG(std::string, tls_client_ca, Defaults().tls.client_ca_file,
          "CA for client certificates (enables mutual TLS)");
ABSL_FLAG(bool, require_client_cert, Defaults().tls.require_client_cert,
          "refuse TLS clients without a certificate signed by --tls_client_ca");
ABSL_FLAG(bool, allow_insecure, Defaults().allow_insecure,
          "serve a non-loopback address without TLS and authentication (logged loudly)");
ABSL_FLAG(std::string, upstream, Defaults().upstream.target,
          "upstream engine to sync investigations and actions with and deliver "
          "decisions to: HOST:PORT (air.upstream.v1.UpstreamService), or empty for none");
ABSL_FLAG(absl::Duration, upstream_outage, Defaults().upstream.outage_threshold,
          "after this long without a successful sync (or with decision delivery "
          "failing), health reports NOT_SERVING for air.v1.SyncService");
ABSL_FLAG(absl::Duration, upstream_poll_interval, Defaults().upstream.sync.poll_interval,
          "how often to ask the upstream for changes once caught up");
ABSL_FLAG(std::string, upstream_ca, Defaults().upstream.ca_file,
          "PEM file of the CA that signs the upstream's certificate: TLS to the upstream "
          "(required for a non-loopback upstream unless --allow_insecure)");
ABSL_FLAG(std::string, upstream_cert, Defaults().upstream.cert_file,
          "PEM client certificate aird presents to the upstream (mutual TLS)");
ABSL_FLAG(std::string, upstream_key, Defaults().upstream.key_file,
          "PEM private key of --upstream_cert");
ABSL_FLAG(std::string, upstream_token_file, Defaults().upstream.token_file,
          "file holding the bearer token aird sends to the upstream (needs --upstream_ca)");
ABSL_FLAG(int, upstream_page_size, Defaults().upstream.sync.page_size,
          "changes per ListChanges page (one transaction)");
ABSL_FLAG(absl::Duration, upstream_timeout, Defaults().upstream.sync.rpc_timeout,
          "deadline of each upstream call");
ABSL_FLAG(std::string, http_listen, Defaults().http_listen_address,
          "HOST:PORT for the web console and its JSON API (HTTPS when --tls_cert is "
          "set; port 0 picks a free port); empty: no HTTP");
ABSL_FLAG(std::string, http_port_file, Defaults().http_port_file,
          "write the bound HTTP port to this file once serving (for scripts and tests)");
ABSL_FLAG(std::string, port_file, Defaults().port_file,
          "write the bound port to this file once serving (for scripts and tests)");
ABSL_FLAG(std::string, metrics_listen, Defaults().metrics_listen,
          "serve Prometheus metrics over HTTP (GET /metrics) on HOST:PORT, e.g. "
          "127.0.0.1:9464; empty: no metrics endpoint");
ABSL_FLAG(std::string, health_listen, Defaults().health_listen,
          "also serve grpc.health.v1.Health alone, in plaintext, on HOST:PORT (for "
          "Kubernetes gRPC probes, which cannot use TLS); empty: none");
ABSL_FLAG(std::string, log_format, Defaults().log_format,
          "text, json (one JSON object per line) or auto (text on a terminal, else json)");
ABSL_FLAG(std::string, log_level, Defaults().log_level,
          "trace, debug, info, warn, error, critical or off");
ABSL_FLAG(int, max_receive_message_bytes, Defaults().max_receive_message_bytes,
          "largest request message accepted, in bytes");
ABSL_FLAG(int, max_snapshot_actions, Defaults().watch_limits.max_snapshot_actions,
          "most pending actions sent in a WatchActions initial snapshot");
ABSL_FLAG(absl::Duration, default_heartbeat, Defaults().watch_limits.default_heartbeat,
          "bookmark interval of an idle watch that does not ask for one");

namespace air {
namespace {

using config::v1::ServerConfig;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// Flag names follow the config's field paths where they can; these read as
// they always have on the command line.
constexpr SettingFlag kSettingFlags[] = {
    {"listen", "listen"},
    {"db", "db"},
    {"demo", "demo"},
    {"full_fsync", "full_fsync"},
    {"action_ttl", "action_ttl"},
    {"event_retention", "event_retention"},
    {"max_events", "max_events"},
    {"housekeeping_interval", "housekeeping_interval"},
    {"keepalive_time", "keepalive_time"},
    {"max_connection_age", "max_connection_age"},
    {"shutdown_grace", "shutdown_grace"},
    {"tokens_file", "tokens_file"},
    {"tls_cert", "tls.cert_file"},
    {"tls_key", "tls.key_file"},
    {"tls_client_ca", "tls.client_ca_file"},
    {"require_client_cert", "tls.require_client_cert"},
    {"allow_insecure", "allow_insecure"},
    {"upstream", "upstream.target"},
    {"upstream_outage", "upstream.outage"},
    {"upstream_poll_interval", "upstream.poll_interval"},
    {"upstream_ca", "upstream.ca_file"},
    {"upstream_cert", "upstream.cert_file"},
    {"upstream_key", "upstream.key_file"},
    {"upstream_token_file", "upstream.token_file"},
    {"upstream_page_size", "upstream.page_size"},
    {"upstream_timeout", "upstream.timeout"},
    {"http_listen", "http_listen"},
    {"http_port_file", "http_port_file"},
    {"port_file", "port_file"},
    {"metrics_listen", "metrics_listen"},
    {"health_listen", "health_listen"},
    {"log_format", "log.format"},
    {"log_level", "log.level"},
    {"max_receive_message_bytes", "limits.max_receive_message_bytes"},
    {"max_snapshot_actions", "limits.max_snapshot_actions"},
    {"default_heartbeat", "limits.default_heartbeat"},
};

absl::Status Unparsable(absl::string_view field, absl::string_view text) {
  return InvalidField(field, absl::StrCat("cannot take \"", text, "\""), v1::INVALID_CONFIG);
}

// Sets one scalar or google.protobuf.Duration field of `message` from text.
absl::Status SetField(const FieldDescriptor& field, absl::string_view path,
                      absl::string_view text, Message& message) {
  const google::protobuf::Reflection& reflection = *message.GetReflection();
  bool parsed = true;
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      reflection.SetString(&message, &field, std::string(text));
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool value = false;
      parsed = absl::SimpleAtob(text, &value);
      if (parsed) reflection.SetBool(&message, &field, value);
      break;
    }
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t value = 0;
      parsed = absl::SimpleAtoi(text, &value);
      if (parsed) reflection.SetInt32(&message, &field, value);
      break;
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t value = 0;
      parsed = absl::SimpleAtoi(text, &value);
      if (parsed) reflection.SetInt64(&message, &field, value);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t value = 0;
      parsed = absl::SimpleAtoi(text, &value);
      if (parsed) reflection.SetUInt64(&message, &field, value);
      break;
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      double value = 0;
      parsed = absl::SimpleAtod(text, &value);
      if (parsed) reflection.SetDouble(&message, &field, value);
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      absl::Duration value;
      if (field.message_type() != google::protobuf::Duration::descriptor() ||
          !absl::ParseDuration(text, &value) || value == absl::InfiniteDuration() ||
          value == -absl::InfiniteDuration()) {
        parsed = false;
        break;
      }
      // Seconds and nanos share the sign, as google.protobuf.Duration asks.
      absl::Duration nanos;
      google::protobuf::Duration duration;
      duration.set_seconds(absl::IDivDuration(value, absl::Seconds(1), &nanos));
      duration.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(nanos)));
      reflection.MutableMessage(&message, &field)->CopyFrom(duration);
      break;
    }
    default:
      parsed = false;
  }
  return parsed ? absl::OkStatus() : Unparsable(path, text);
}

// Sets the field at dotted `path` of `config`, making the messages on the way.
absl::Status SetConfigField(absl::string_view path, absl::string_view text,
                            ServerConfig& config) {
  Message* message = &config;
  const std::vector<absl::string_view> names = absl::StrSplit(path, '.');
  for (size_t i = 0; i < names.size(); ++i) {
    const FieldDescriptor* field =
        message->GetDescriptor()->FindFieldByName(std::string(names[i]));
    if (field == nullptr || field->is_repeated()) {
      return absl::InternalError(absl::StrCat("ServerConfig has no field ", path));
    }
    if (i + 1 == names.size()) return SetField(*field, path, text, *message);
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      return absl::InternalError(absl::StrCat("ServerConfig has no field ", path));
    }
    message = message->GetReflection()->MutableMessage(message, field);
  }
  return absl::InternalError("empty field path");
}

// argv with dashes in flag names read as underscores, up to "--".
std::vector<std::string> NormalizeFlagSpellings(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& arg = args[i];
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') continue;
    const size_t name_start = arg[1] == '-' ? 2 : 1;
    const size_t name_end = std::min(arg.find('='), arg.size());
    if (name_start >= name_end) continue;
    std::replace(arg.begin() + name_start, arg.begin() + name_end, '-', '_');
  }
  return args;
}

// The flag names in `args` (after the program name, up to "--"); --noname
// names both "noname" and "name", since absl reads it as name=false.
std::set<std::string> FlagNames(const std::vector<std::string>& args) {
  std::set<std::string> names;
  for (size_t i = 1; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "--") && !absl::ConsumePrefix(&arg, "-")) continue;
    arg = arg.substr(0, arg.find('='));
    names.insert(std::string(arg));
    if (absl::ConsumePrefix(&arg, "no")) names.insert(std::string(arg));
  }
  return names;
}

}  // namespace

absl::Span<const SettingFlag> SettingFlags() { return kSettingFlags; }

std::set<std::string> ParseAirdCommandLine(int argc, char** argv) {
  // --help lists the flags of this file (absl's default: files named after
  // the program or *main).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "aird_flags.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  std::vector<std::string> args = NormalizeFlagSpellings(argc, argv);
  std::vector<char*> normalized_argv;
  for (std::string& arg : args) normalized_argv.push_back(arg.data());
  normalized_argv.push_back(nullptr);
  absl::ParseCommandLine(argc, normalized_argv.data());
  return FlagNames(args);
}

absl::Status ApplySettingFlags(const std::map<std::string, std::string>& flag_values,
                               ServerConfig& config) {
  for (const auto& [name, value] : flag_values) {
    const SettingFlag* setting = nullptr;
    for (const SettingFlag& candidate : kSettingFlags) {
      if (name == candidate.flag) setting = &candidate;
    }
    if (setting == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " is no setting flag"));
    }
    AIR_RETURN_IF_ERROR(SetConfigField(setting->field, value, config));
  }
  return absl::OkStatus();
}

absl::StatusOr<ServerConfig> LoadSettings(const std::set<std::string>& given_flags) {
  ServerConfig config;
  std::string path = absl::GetFlag(FLAGS_check_config);
  if (path.empty()) path = absl::GetFlag(FLAGS_config);
  if (!path.empty()) {
    AIR_ASSIGN_OR_RETURN(config, LoadConfigFile(path));
  }
  std::map<std::string, std::string> flag_values;
  for (const SettingFlag& setting : kSettingFlags) {
    if (given_flags.count(setting.flag) == 0) continue;
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(setting.flag);
    if (flag == nullptr) return absl::InternalError(absl::StrCat("no flag --", setting.flag));
    flag_values[setting.flag] = flag->CurrentValue();
  }
  AIR_RETURN_IF_ERROR(ApplySettingFlags(flag_values, config));
  return config;
}

}  // namespace air
