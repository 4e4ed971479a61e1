// aird: the AIR decision service. Parses flags and wires AirServer; all
// behaviour lives in the libraries.
#include <algorithm>
#include <vector>
#include <csignal>
#include <cstdio>
#include <pthread.h>

#include <set>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/strip.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/config.h"
#include "service/logging.h"
#include "service/server.h"
#include "storage/postgres_repository.h"
#include "storage/sqlite_backup.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "gRPC listen address HOST:PORT (port 0 picks a free port)");
ABSL_FLAG(std::string, db, "air.db",
          "SQLite database file (created if missing), or a PostgreSQL URI "
          "(postgresql://USER@HOST:PORT/DB; give the password in PGPASSWORD or "
          "~/.pgpass, not in the URI) to run several replicas on one database");
ABSL_FLAG(bool, demo, false, "fill an empty database with demo investigations");
ABSL_FLAG(bool, full_fsync, false,
          "fsync every commit (synchronous=FULL): durable against power loss");
ABSL_FLAG(absl::Duration, action_ttl, absl::Hours(24 * 7),
          "how long a pending action waits before it expires");
ABSL_FLAG(absl::Duration, event_retention, absl::Hours(24 * 7),
          "how long events are kept for resuming watches");
ABSL_FLAG(int64_t, max_events, 10'000'000, "most events kept for resuming watches");
ABSL_FLAG(absl::Duration, housekeeping_interval, absl::Seconds(30),
          "how often expiry and event retention run");
ABSL_FLAG(absl::Duration, keepalive_time, absl::Seconds(60),
          "HTTP/2 keepalive ping interval");
ABSL_FLAG(absl::Duration, max_connection_age, absl::ZeroDuration(),
          "close connections after this age (0: never); clients reconnect");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "how long in-flight calls may finish after SIGTERM");
ABSL_FLAG(std::string, config, "",
          "config file (air.config.v1.ServerConfig, text format or .json); "
          "flags given on the command line override it");
ABSL_FLAG(std::string, check_config, "",
          "validate this config file, print the first error naming the field, and exit");
ABSL_FLAG(std::string, tokens_file, "",
          "bearer-token hashes, principals and roles; reloaded on SIGHUP; empty: no auth "
          "(loopback only)");
ABSL_FLAG(std::string, tls_cert, "", "TLS certificate chain (PEM); empty: plaintext");
ABSL_FLAG(std::string, tls_key, "", "TLS private key (PEM)");
ABSL_FLAG(std::string, tls_client_ca, "", "CA for client certificates (enables mutual TLS)");
ABSL_FLAG(bool, require_client_cert, false,
          "refuse TLS clients without a certificate signed by --tls_client_ca");
ABSL_FLAG(bool, allow_insecure, false,
          "serve a non-loopback address without TLS and authentication (logged loudly)");
ABSL_FLAG(std::string, upstream, "",
          "upstream engine to sync investigations and actions with and deliver "
          "decisions to: HOST:PORT (air.upstream.v1.UpstreamService), or empty for none");
ABSL_FLAG(absl::Duration, upstream_outage, absl::Minutes(5),
          "after this long without a successful sync (or with decision delivery "
          "failing), health reports NOT_SERVING for air.v1.SyncService");
ABSL_FLAG(absl::Duration, upstream_poll_interval, absl::Seconds(1),
          "how often to ask the upstream for changes once caught up");
ABSL_FLAG(std::string, upstream_ca, "",
          "PEM file of the CA that signs the upstream's certificate: TLS to the upstream "
          "(required for a non-loopback upstream unless --allow_insecure)");
ABSL_FLAG(std::string, upstream_cert, "",
          "PEM client certificate aird presents to the upstream (mutual TLS)");
ABSL_FLAG(std::string, upstream_key, "", "PEM private key of --upstream_cert");
ABSL_FLAG(std::string, upstream_token_file, "",
          "file holding the bearer token aird sends to the upstream (needs --upstream_ca)");
ABSL_FLAG(int, upstream_page_size, 1000, "changes per ListChanges page (one transaction)");
ABSL_FLAG(absl::Duration, upstream_timeout, absl::Seconds(10), "deadline of each upstream call");
ABSL_FLAG(std::string, http_listen, "",
          "HOST:PORT for the web console and its JSON API (HTTPS when --tls_cert is "
          "set; port 0 picks a free port); empty: no HTTP");
ABSL_FLAG(std::string, http_port_file, "",
          "write the bound HTTP port to this file once serving (for scripts and tests)");
ABSL_FLAG(std::string, port_file, "",
          "write the bound port to this file once serving (for scripts and tests)");
ABSL_FLAG(std::string, metrics_listen, "",
          "serve Prometheus metrics over HTTP (GET /metrics) on HOST:PORT, e.g. "
          "127.0.0.1:9464; empty: no metrics endpoint");
ABSL_FLAG(std::string, health_listen, "",
          "also serve grpc.health.v1.Health alone, in plaintext, on HOST:PORT (for "
          "Kubernetes gRPC probes, which cannot use TLS); empty: none");
ABSL_FLAG(std::string, log_format, "auto",
          "text, json (one JSON object per line) or auto (text on a terminal, else json)");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error, critical or off");
ABSL_FLAG(int, max_receive_message_bytes, 1 << 20, "largest request message accepted, in bytes");
ABSL_FLAG(int, max_snapshot_actions, 100000,
          "most pending actions sent in a WatchActions initial snapshot");
ABSL_FLAG(absl::Duration, default_heartbeat, absl::Seconds(30),
          "bookmark interval of an idle watch that does not ask for one");
ABSL_FLAG(std::string, backup, "",
          "make a consistent online backup of --db to this file (SQLite backup API; "
          "safe while another aird serves the database), print a summary, and exit");

namespace {

// Flag names are declared with underscores; people type dashes as often.
// Rewrites the name part of every "--name[=value]" or "-name[=value]"
// argument before "--".
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

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "The AIR decision service: list, inspect, approve, reject and watch "
      "remediation actions over gRPC, and in a web console over HTTP.\nUsage: "
      "aird [--listen=HOST:PORT] [--http_listen=HOST:PORT] [--db=PATH] [--demo]");
  // Both spellings work: --check-config=FILE is --check_config=FILE.
  std::vector<std::string> normalized = NormalizeFlagSpellings(argc, argv);
  std::vector<char*> normalized_argv;
  for (std::string& arg : normalized) normalized_argv.push_back(arg.data());
  normalized_argv.push_back(nullptr);
  absl::ParseCommandLine(argc, normalized_argv.data());
  // Debian's abseil enables mutex deadlock detection, which triples the cost
  // of every lock on the hot paths (measured in docs/benchmarks.md). The
  // thread-safety annotations check lock discipline at compile time instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  if (const std::string check = absl::GetFlag(FLAGS_check_config); !check.empty()) {
    air::ServerOptions options;
    absl::Status status;
    absl::StatusOr<air::config::v1::ServerConfig> config = air::LoadConfigFile(check);
    status = config.ok() ? air::ApplyConfig(*config, options) : config.status();
    if (status.ok()) status = air::ValidateServerOptions(options);
    if (!status.ok()) {
      std::fprintf(stderr, "%s: invalid: %s\n", check.c_str(),
                   std::string(status.message()).c_str());
      return 1;
    }
    std::printf("%s: OK\n", check.c_str());
    return 0;
  }

  // Handle SIGTERM/SIGINT/SIGHUP synchronously in main: block them before any
  // thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Log in the format the command line asks for until the config is read.
  {
    absl::StatusOr<air::LogFormat> format = air::ResolveLogFormat(absl::GetFlag(FLAGS_log_format));
    absl::Status status = format.ok() ? air::ConfigureLogging(*format, absl::GetFlag(FLAGS_log_level))
                                      : format.status();
    if (!status.ok()) {
      std::fprintf(stderr, "aird: %s\n", std::string(status.message()).c_str());
      return 2;
    }
  }

  // Defaults, then the config file, then flags given on the command line.
  air::ServerOptions options;
  if (const std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    absl::StatusOr<air::config::v1::ServerConfig> config = air::LoadConfigFile(path);
    absl::Status status = config.ok() ? air::ApplyConfig(*config, options) : config.status();
    if (!status.ok()) {
      spdlog::critical("aird cannot start: config {}: {}", path, std::string(status.message()));
      return 1;
    }
  }
  // Flags named on the command line (as --name, --name=value or --noname).
  std::set<std::string> named;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = normalized_argv[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "--")) absl::ConsumePrefix(&arg, "-");
    arg = arg.substr(0, arg.find('='));
    named.insert(std::string(arg));
    if (absl::ConsumePrefix(&arg, "no")) named.insert(std::string(arg));
  }
  auto given = [&named](const char* name) { return named.count(name) > 0; };
  if (given("listen")) options.listen_address = absl::GetFlag(FLAGS_listen);
  if (given("db")) options.db_path = absl::GetFlag(FLAGS_db);
  if (given("demo")) options.demo = absl::GetFlag(FLAGS_demo);
  if (given("full_fsync")) options.full_fsync = absl::GetFlag(FLAGS_full_fsync);
  if (given("action_ttl")) options.action_ttl = absl::GetFlag(FLAGS_action_ttl);
  if (given("event_retention")) options.event_retention = absl::GetFlag(FLAGS_event_retention);
  if (given("max_events")) options.max_events = absl::GetFlag(FLAGS_max_events);
  if (given("housekeeping_interval")) {
    options.housekeeping_interval = absl::GetFlag(FLAGS_housekeeping_interval);
  }
  if (given("keepalive_time")) options.keepalive_time = absl::GetFlag(FLAGS_keepalive_time);
  if (given("max_connection_age")) {
    options.max_connection_age = absl::GetFlag(FLAGS_max_connection_age);
  }
  if (given("tokens_file")) options.tokens_file = absl::GetFlag(FLAGS_tokens_file);
  if (given("tls_cert")) options.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  if (given("tls_key")) options.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  if (given("tls_client_ca")) options.tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  if (given("require_client_cert")) {
    options.tls.require_client_cert = absl::GetFlag(FLAGS_require_client_cert);
  }
  if (given("allow_insecure")) options.allow_insecure = absl::GetFlag(FLAGS_allow_insecure);
  if (given("shutdown_grace")) options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  if (given("http_listen")) options.http_listen_address = absl::GetFlag(FLAGS_http_listen);

  if (given("upstream")) options.upstream.target = absl::GetFlag(FLAGS_upstream);
  if (given("upstream_ca")) options.upstream.ca_file = absl::GetFlag(FLAGS_upstream_ca);
  if (given("upstream_cert")) options.upstream.cert_file = absl::GetFlag(FLAGS_upstream_cert);
  if (given("upstream_key")) options.upstream.key_file = absl::GetFlag(FLAGS_upstream_key);
  if (given("upstream_token_file")) {
    options.upstream.token_file = absl::GetFlag(FLAGS_upstream_token_file);
  }
  if (given("upstream_outage")) {
    options.upstream.outage_threshold = absl::GetFlag(FLAGS_upstream_outage);
  }
  if (given("upstream_poll_interval")) {
    options.upstream.sync.poll_interval = absl::GetFlag(FLAGS_upstream_poll_interval);
  }
  if (given("upstream_page_size")) {
    options.upstream.sync.page_size = absl::GetFlag(FLAGS_upstream_page_size);
  }
  if (given("upstream_timeout")) {
    options.upstream.sync.rpc_timeout = absl::GetFlag(FLAGS_upstream_timeout);
    options.upstream.delivery.rpc_timeout = absl::GetFlag(FLAGS_upstream_timeout);
  }
  options.upstream.sync.action_ttl = options.action_ttl;

  if (given("metrics_listen")) options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  if (given("health_listen")) options.health_listen = absl::GetFlag(FLAGS_health_listen);
  if (given("log_format")) options.log_format = absl::GetFlag(FLAGS_log_format);
  if (given("log_level")) options.log_level = absl::GetFlag(FLAGS_log_level);
  if (given("max_receive_message_bytes")) {
    options.max_receive_message_bytes = absl::GetFlag(FLAGS_max_receive_message_bytes);
  }
  if (given("max_snapshot_actions")) {
    options.watch_limits.max_snapshot_actions = absl::GetFlag(FLAGS_max_snapshot_actions);
  }
  if (given("default_heartbeat")) {
    options.watch_limits.default_heartbeat = absl::GetFlag(FLAGS_default_heartbeat);
  }

  // The same checks as the config file's, for values given as flags.
  {
    absl::Status status = air::ValidateServerOptions(options);
    if (status.ok() && !options.metrics_listen.empty()) {
      status = air::ValidateListenAddress(options.metrics_listen, "metrics_listen");
    }
    if (status.ok() && !options.http_listen_address.empty()) {
      status = air::ValidateListenAddress(options.http_listen_address, "http_listen");
    }
    if (status.ok() && !options.health_listen.empty()) {
      status = air::ValidateListenAddress(options.health_listen, "health_listen");
    }
    if (status.ok()) status = air::ValidateLogFormat(options.log_format, "log_format");
    if (status.ok()) status = air::ValidateLogLevel(options.log_level, "log_level");
    if (!status.ok()) {
      spdlog::critical("aird cannot start: {}", std::string(status.message()));
      return 1;
    }
    // The config file may have chosen another format or level.
    absl::StatusOr<air::LogFormat> format = air::ResolveLogFormat(options.log_format);
    if (format.ok()) (void)air::ConfigureLogging(*format, options.log_level);
  }

  if (const std::string backup = absl::GetFlag(FLAGS_backup); !backup.empty()) {
    if (air::IsPostgresDatabase(options.db_path)) {
      spdlog::critical("--backup copies a SQLite database; back PostgreSQL up with pg_dump");
      return 1;
    }
    absl::StatusOr<air::BackupResult> result =
        air::BackupSqliteDatabase(options.db_path, backup);
    if (!result.ok()) {
      air::LogEvent(spdlog::level::err, "backup", "backup failed",
                    {{"database", options.db_path}, {"to", backup},
                     {"error", std::string(result.status().message())}});
      return 1;
    }
    air::LogEvent(spdlog::level::info, "backup", "backup written",
                  {{"database", options.db_path}, {"to", backup}});
    std::printf(
        "{\"backup\": %s, \"size_bytes\": %lld, \"schema_version\": %lld, "
        "\"event_sequence\": %lld, \"actions\": %lld, \"duration_ms\": %lld}\n",
        air::JsonQuote(backup).c_str(), static_cast<long long>(result->size_bytes),
        static_cast<long long>(result->schema_version),
        static_cast<long long>(result->event_head), static_cast<long long>(result->actions),
        static_cast<long long>(absl::ToInt64Milliseconds(result->duration)));
    return 0;
  }

  absl::StatusOr<std::unique_ptr<air::AirServer>> server = air::AirServer::Start(options);
  if (!server.ok()) {
    spdlog::critical("aird cannot start: {}", std::string(server.status().message()));
    return 1;
  }
  air::LogEvent(spdlog::level::info, "aird", "aird serving",
                {{"listen", options.listen_address},
                 {"port", std::to_string((*server)->port())},
                 {"database", air::RedactPostgresConninfo(options.db_path)},
                 {"metrics_port", std::to_string((*server)->metrics_port())},
                 {"health_port", std::to_string((*server)->health_port())},
                 {"http_port", std::to_string((*server)->http_port())}});
  // Readers never see half a file: write, then rename.
  auto write_port_file = [](const std::string& path, int port) {
    if (path.empty()) return;
    const std::string tmp = path + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(f, "%d\n", port);
      std::fclose(f);
      std::rename(tmp.c_str(), path.c_str());
    }
  };
  // The HTTP port first: a script that waits for --port_file finds both.
  if ((*server)->http_port() != 0) {
    write_port_file(absl::GetFlag(FLAGS_http_port_file), (*server)->http_port());
  }
  write_port_file(absl::GetFlag(FLAGS_port_file), (*server)->port());

  int signal_number = 0;
  while (true) {
    sigwait(&signals, &signal_number);
    if (signal_number != SIGHUP) break;
    if (absl::Status reloaded = (*server)->ReloadTokens(); reloaded.ok()) {
      spdlog::info("SIGHUP: tokens file reloaded");
    } else {
      spdlog::error("SIGHUP: tokens file not reloaded, the previous one stays in force: {}",
                    std::string(reloaded.message()));
    }
  }
  spdlog::info("received {}; shutting down", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown(options.shutdown_grace);
  spdlog::info("aird stopped");
  return 0;
}
