// aird: the AIR decision service. Parses flags and wires AirServer; all
// behaviour lives in the libraries.
#include <csignal>
#include <cstdio>
#include <pthread.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "service/server.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "gRPC listen address HOST:PORT (port 0 picks a free port)");
ABSL_FLAG(std::string, db, "air.db", "SQLite database file (created if missing)");
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
ABSL_FLAG(std::string, port_file, "",
          "write the bound port to this file once serving (for scripts and tests)");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "The AIR decision service: list, inspect, approve, reject and watch "
      "remediation actions over gRPC.\nUsage: aird [--listen=HOST:PORT] "
      "[--db=PATH] [--demo]");
  absl::ParseCommandLine(argc, argv);

  // Handle SIGTERM/SIGINT synchronously in main: block them before any
  // thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  air::ServerOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen);
  options.db_path = absl::GetFlag(FLAGS_db);
  options.demo = absl::GetFlag(FLAGS_demo);
  options.full_fsync = absl::GetFlag(FLAGS_full_fsync);
  options.action_ttl = absl::GetFlag(FLAGS_action_ttl);
  options.event_retention = absl::GetFlag(FLAGS_event_retention);
  options.max_events = absl::GetFlag(FLAGS_max_events);
  options.housekeeping_interval = absl::GetFlag(FLAGS_housekeeping_interval);
  options.keepalive_time = absl::GetFlag(FLAGS_keepalive_time);
  options.max_connection_age = absl::GetFlag(FLAGS_max_connection_age);

  absl::StatusOr<std::unique_ptr<air::AirServer>> server = air::AirServer::Start(options);
  if (!server.ok()) {
    spdlog::critical("aird cannot start: {}", std::string(server.status().message()));
    return 1;
  }
  spdlog::info("aird serving on port {} (database {})", (*server)->port(), options.db_path);
  if (const std::string port_file = absl::GetFlag(FLAGS_port_file); !port_file.empty()) {
    const std::string tmp = port_file + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(f, "%d\n", (*server)->port());
      std::fclose(f);
      std::rename(tmp.c_str(), port_file.c_str());  // readers never see half a file
    }
  }

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  spdlog::info("received {}; shutting down", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown(absl::GetFlag(FLAGS_shutdown_grace));
  spdlog::info("aird stopped");
  return 0;
}
