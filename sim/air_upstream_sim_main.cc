// air-upstream-sim: a simulated automated investigation and response engine
// serving air.upstream.v1.UpstreamService, for trying aird without a vendor
// tenant and for fault drills. Parses flags and wires the library.
#include <fstream>
#include <csignal>
#include <cstdio>
#include <pthread.h>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "sim/sim_server.h"
#include "sim/upstream_simulator.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50061", "listen address HOST:PORT (port 0: any)");
ABSL_FLAG(std::string, port_file, "", "write the bound port here once serving");
ABSL_FLAG(std::string, tls_cert, "", "PEM server certificate: serve TLS (with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, token_file, "",
          "file holding the bearer token every call must carry (as an API gateway would)");
ABSL_FLAG(uint64_t, seed, 1, "random seed: the same seed replays the same story");
ABSL_FLAG(std::string, instance, "", "id prefix of this instance (default: random)");
ABSL_FLAG(double, arrival_rate, 0.5, "new investigations per second");
ABSL_FLAG(double, clean_fraction, 0.25, "share of investigations that find no threats");
ABSL_FLAG(absl::Duration, analysis_delay, absl::Seconds(2),
          "time from an investigation's start to its proposed actions");
ABSL_FLAG(absl::Duration, execution_delay, absl::Seconds(3),
          "time from approval until an action starts running");
ABSL_FLAG(absl::Duration, run_duration, absl::Seconds(5), "how long an action runs");
ABSL_FLAG(double, failure_rate, 0.1, "share of executions that fail");
ABSL_FLAG(absl::Duration, action_ttl, absl::Hours(24 * 7),
          "undecided actions expire upstream after this long");
ABSL_FLAG(int, target_pool, 40, "distinct targets per kind (small: more repeated targets)");
ABSL_FLAG(int, preload, 0, "investigations to create at start");
// Faults.
ABSL_FLAG(double, error_rate, 0, "share of calls failing with UNAVAILABLE");
ABSL_FLAG(double, lost_reply_rate, 0,
          "share of calls that take effect but answer UNAVAILABLE");
ABSL_FLAG(absl::Duration, latency, absl::ZeroDuration(), "added to every call");
ABSL_FLAG(absl::Duration, latency_jitter, absl::ZeroDuration(),
          "up to this much more, at random");
ABSL_FLAG(absl::Duration, outage_every, absl::ZeroDuration(),
          "period of scheduled outages (0: none)");
ABSL_FLAG(absl::Duration, outage_duration, absl::ZeroDuration(),
          "length of each scheduled outage");
ABSL_FLAG(double, duplicate_rate, 0, "chance a change is delivered twice / a page rewinds");
ABSL_FLAG(bool, reorder, false, "shuffle the changes within each page");
ABSL_FLAG(double, replay_rate, 0, "chance per change of mixing in a stale older version");
ABSL_FLAG(double, malformed_rate, 0, "chance per page of a malformed record");
ABSL_FLAG(absl::Duration, crash_every, absl::ZeroDuration(),
          "crash and restart the server this often (0: never)");
ABSL_FLAG(absl::Duration, crash_downtime, absl::Seconds(2), "time down after each crash");
ABSL_FLAG(absl::Duration, stats_interval, absl::Seconds(30), "how often to log counters");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "A simulated automated investigation and response engine for aird.\n"
      "Usage: air-upstream-sim [--listen=HOST:PORT] [--arrival_rate=N] [fault flags]\n"
      "Then: aird --upstream=HOST:PORT");
  absl::ParseCommandLine(argc, argv);
  // Debian's abseil checks every lock for deadlock cycles by default; the
  // thread-safety annotations do that job at compile time.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  air::sim::SimulatorOptions options;
  options.seed = absl::GetFlag(FLAGS_seed);
  options.instance = absl::GetFlag(FLAGS_instance);
  options.arrival_rate = absl::GetFlag(FLAGS_arrival_rate);
  options.clean_fraction = absl::GetFlag(FLAGS_clean_fraction);
  options.analysis_delay = absl::GetFlag(FLAGS_analysis_delay);
  options.execution_delay = absl::GetFlag(FLAGS_execution_delay);
  options.run_duration = absl::GetFlag(FLAGS_run_duration);
  options.failure_rate = absl::GetFlag(FLAGS_failure_rate);
  options.action_ttl = absl::GetFlag(FLAGS_action_ttl);
  options.target_pool = absl::GetFlag(FLAGS_target_pool);
  air::sim::SimulatorFaults& faults = options.faults;
  faults.error_rate = absl::GetFlag(FLAGS_error_rate);
  faults.lost_reply_rate = absl::GetFlag(FLAGS_lost_reply_rate);
  faults.latency = absl::GetFlag(FLAGS_latency);
  faults.latency_jitter = absl::GetFlag(FLAGS_latency_jitter);
  faults.outage_every = absl::GetFlag(FLAGS_outage_every);
  faults.outage_duration = absl::GetFlag(FLAGS_outage_duration);
  faults.duplicate_rate = absl::GetFlag(FLAGS_duplicate_rate);
  faults.reorder = absl::GetFlag(FLAGS_reorder);
  faults.replay_rate = absl::GetFlag(FLAGS_replay_rate);
  faults.malformed_rate = absl::GetFlag(FLAGS_malformed_rate);

  air::sim::UpstreamSimulator simulator(options, nullptr);
  if (const int preload = absl::GetFlag(FLAGS_preload); preload > 0) {
    simulator.CreateInvestigations(preload);
  }
  air::sim::SimServerSecurity security;
  security.cert_file = absl::GetFlag(FLAGS_tls_cert);
  security.key_file = absl::GetFlag(FLAGS_tls_key);
  if (const std::string token_file = absl::GetFlag(FLAGS_token_file); !token_file.empty()) {
    std::ifstream in(token_file);
    std::getline(in, security.required_token);
    if (security.required_token.empty()) {
      spdlog::critical("cannot read a token from {}", token_file);
      return 1;
    }
  }
  auto server = air::sim::SimServer::Start(simulator, absl::GetFlag(FLAGS_listen), security);
  if (!server.ok()) {
    spdlog::critical("air-upstream-sim cannot start: {}",
                     std::string(server.status().message()));
    return 1;
  }
  spdlog::info("air-upstream-sim serving air.upstream.v1.UpstreamService on port {}",
               (*server)->port());
  if (const std::string port_file = absl::GetFlag(FLAGS_port_file); !port_file.empty()) {
    const std::string tmp = port_file + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(f, "%d\n", (*server)->port());
      std::fclose(f);
      std::rename(tmp.c_str(), port_file.c_str());
    }
  }

  // Background: advance the story between calls, log counters, crash.
  absl::Notification stop;
  std::thread ticker([&] {
    const absl::Duration crash_every = absl::GetFlag(FLAGS_crash_every);
    const absl::Duration stats_every = absl::GetFlag(FLAGS_stats_interval);
    absl::Time next_crash = absl::Now() + crash_every;
    absl::Time next_stats = absl::Now() + stats_every;
    while (!stop.WaitForNotificationWithTimeout(absl::Milliseconds(200))) {
      simulator.Advance();
      const absl::Time now = absl::Now();
      if (crash_every > absl::ZeroDuration() && now >= next_crash) {
        spdlog::warn("air-upstream-sim: crashing (down for {})",
                     absl::FormatDuration(absl::GetFlag(FLAGS_crash_downtime)));
        if (absl::Status s = (*server)->Restart(absl::GetFlag(FLAGS_crash_downtime)); !s.ok()) {
          spdlog::error("air-upstream-sim: restart failed: {}", std::string(s.message()));
        } else {
          spdlog::info("air-upstream-sim: restarted");
        }
        next_crash = absl::Now() + crash_every;
      }
      if (now >= next_stats) {
        const air::sim::SimulatorStats s = simulator.stats();
        spdlog::info("air-upstream-sim: {} investigations, {} actions, {} decisions "
                     "({} repeated requests), {} executions, {} injected failures",
                     s.investigations, s.actions, s.decisions_applied, s.duplicate_requests,
                     s.executions, s.injected_failures);
        next_stats = now + stats_every;
      }
    }
  });

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  stop.Notify();
  ticker.join();
  (*server)->Shutdown();
  spdlog::info("air-upstream-sim stopped");
  return 0;
}
