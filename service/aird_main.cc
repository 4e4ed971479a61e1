// aird: the AIR decision service. Parses the command line, settles the
// settings (config file, flags over it, one validation) and wires AirServer
// and the signals; all behaviour lives in the libraries.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <set>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/aird_flags.h"
#include "service/config.h"
#include "service/logging.h"
#include "service/server.h"
#include "spdlog/spdlog.h"
#include "storage/storage.h"

namespace {

// Logs as `log` asks. A format or level that is not valid (ValidateConfig
// names it) falls back to its default, so that error too is logged as asked.
void StartLogging(const air::config::v1::LogConfig& log) {
  const air::ServerOptions defaults;
  absl::StatusOr<air::LogFormat> format = air::ResolveLogFormat(log.format());
  if (!format.ok()) format = air::ResolveLogFormat(defaults.log_format);
  const std::string& level = log.level().empty() ? defaults.log_level : log.level();
  if (!air::ConfigureLogging(*format, level).ok()) {
    (void)air::ConfigureLogging(*format, defaults.log_level);
  }
}

// Readers never see half a file: write, then rename.
void WritePortFile(const std::string& path, int port) {
  if (path.empty()) return;
  const std::string tmp = path + ".tmp";
  if (FILE* f = std::fopen(tmp.c_str(), "w")) {
    std::fprintf(f, "%d\n", port);
    std::fclose(f);
    std::rename(tmp.c_str(), path.c_str());
  }
}

// --backup: copies the SQLite database at `db_path` to `backup_path` and
// prints a JSON summary. Returns the exit code.
int RunBackup(const std::string& db_path, const std::string& backup_path) {
  absl::StatusOr<air::BackupResult> result = air::BackupDatabase(db_path, backup_path);
  if (!result.ok()) {
    air::LogEvent(spdlog::level::err, "backup", "backup failed",
                  {{"database", db_path}, {"to", backup_path},
                   {"error", std::string(result.status().message())}});
    return 1;
  }
  air::LogEvent(spdlog::level::info, "backup", "backup written",
                {{"database", db_path}, {"to", backup_path}});
  std::printf(
      "{\"backup\": %s, \"size_bytes\": %lld, \"schema_version\": %lld, "
      "\"event_sequence\": %lld, \"actions\": %lld, \"duration_ms\": %lld}\n",
      air::JsonQuote(backup_path).c_str(), static_cast<long long>(result->size_bytes),
      static_cast<long long>(result->schema_version),
      static_cast<long long>(result->event_head), static_cast<long long>(result->actions),
      static_cast<long long>(absl::ToInt64Milliseconds(result->duration)));
  return 0;
}

// Serves until SIGTERM or SIGINT (returned); SIGHUP reloads the tokens file.
int WaitForStopSignal(const sigset_t& signals, air::AirServer& server) {
  int signal_number = 0;
  while (true) {
    sigwait(&signals, &signal_number);
    if (signal_number != SIGHUP) return signal_number;
    if (absl::Status reloaded = server.ReloadTokens(); reloaded.ok()) {
      spdlog::info("SIGHUP: tokens file reloaded");
    } else {
      spdlog::error("SIGHUP: tokens file not reloaded, the previous one stays in force: {}",
                    std::string(reloaded.message()));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "The AIR decision service: list, inspect, approve, reject and watch "
      "remediation actions over gRPC, and in a web console over HTTP.\nUsage: "
      "aird [--listen=HOST:PORT] [--http_listen=HOST:PORT] [--db=PATH] [--demo]");
  const std::set<std::string> given_flags = air::ParseAirdCommandLine(argc, argv);
  // Debian's abseil enables mutex deadlock detection, which triples the cost
  // of every lock on the hot paths (measured in docs/benchmarks.md). The
  // thread-safety annotations check lock discipline at compile time instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // The config file, the flags given over it, then one validation.
  absl::StatusOr<air::config::v1::ServerConfig> config = air::LoadSettings(given_flags);
  StartLogging(config.ok() ? config->log() : air::config::v1::LogConfig());
  absl::StatusOr<air::ServerOptions> options =
      config.ok() ? air::ToServerOptions(*config) : config.status();
  if (const std::string check = absl::GetFlag(FLAGS_check_config); !check.empty()) {
    if (!options.ok()) {
      std::fprintf(stderr, "%s: invalid: %s\n", check.c_str(),
                   std::string(options.status().message()).c_str());
      return 1;
    }
    std::printf("%s: OK\n", check.c_str());
    return 0;
  }
  if (!options.ok()) {
    spdlog::critical("aird cannot start: {}", std::string(options.status().message()));
    return 1;
  }
  if (const std::string backup = absl::GetFlag(FLAGS_backup); !backup.empty()) {
    return RunBackup(options->db_path, backup);
  }

  // Handle SIGTERM/SIGINT/SIGHUP synchronously in main: block them before any
  // thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<air::AirServer>> server = air::AirServer::Start(*options);
  if (!server.ok()) {
    spdlog::critical("aird cannot start: {}", std::string(server.status().message()));
    return 1;
  }
  air::LogEvent(spdlog::level::info, "aird", "aird serving",
                {{"listen", options->listen_address},
                 {"port", std::to_string((*server)->port())},
                 {"database", air::DescribeDatabase(options->db_path)},
                 {"metrics_port", std::to_string((*server)->metrics_port())},
                 {"health_port", std::to_string((*server)->health_port())},
                 {"http_port", std::to_string((*server)->http_port())}});
  // The HTTP port first: a script that waits for port_file finds both.
  if ((*server)->http_port() != 0) WritePortFile(options->http_port_file, (*server)->http_port());
  WritePortFile(options->port_file, (*server)->port());

  const int stop_signal = WaitForStopSignal(signals, **server);
  spdlog::info("received {}; shutting down", stop_signal == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown(options->shutdown_grace);
  spdlog::info("aird stopped");
  return 0;
}
