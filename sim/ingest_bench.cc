// air-ingest-bench: how fast aird's sync worker ingests upstream actions.
//
// Each run preloads the simulator with a backlog (every investigation
// proposes actions, as in a busy tenant after an outage), then times the
// real UpstreamSyncWorker draining it into a fresh SQLite repository:
// ListChanges over gRPC (loopback TCP by default), validation, version
// checks, the resource writes, the investigation updates and the stream
// events, one transaction per page. Prints each run and the median.
//
//   air-ingest-bench --actions=100000 --runs=5
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "domain/status_macros.h"
#include "service/action_commands.h"
#include "service/event_hub.h"
#include "service/upstream_client.h"
#include "service/upstream_sync_worker.h"
#include "sim/sim_server.h"
#include "sim/upstream_simulator.h"
#include "spdlog/spdlog.h"
#include "storage/sqlite_repository.h"

ABSL_FLAG(int, actions, 100000, "actions in the backlog of each run (at least)");
ABSL_FLAG(int, runs, 5, "runs; the median is reported");
ABSL_FLAG(int, page_size, 1000, "changes per ListChanges page (one transaction each)");
ABSL_FLAG(std::string, transport, "tcp",
          "tcp (the simulator on a loopback port, as a separate upstream would be) "
          "or inprocess (aird --upstream=sim)");
ABSL_FLAG(std::string, dir, "", "directory for the databases (default: a temp dir)");
ABSL_FLAG(bool, full_fsync, false, "PRAGMA synchronous=FULL");
ABSL_FLAG(bool, ceiling, false,
          "instead of syncing, write the same investigations and actions straight "
          "through CreateInvestigationTx/ProposeActionTx (no upstream, no versions), "
          "1000 per transaction: the storage layer's own ceiling, for comparison");

namespace air {
namespace {

// CPU time of the whole process (the simulator serves from threads in it).
absl::Duration ProcessCpuTime() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return absl::DurationFromTimeval(usage.ru_utime) + absl::DurationFromTimeval(usage.ru_stime);
}

struct RunResult {
  int64_t actions = 0;
  int64_t investigations = 0;
  int64_t events = 0;
  int pages = 0;
  absl::Duration elapsed;
  absl::Duration cpu;
};

absl::StatusOr<RunResult> RunOnce(int run, const std::string& dir) {
  const std::string path = absl::StrCat(dir, "/ingest-", run, ".db");
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);

  sim::SimulatorOptions sim_options;
  sim_options.seed = 1000 + run;
  sim_options.arrival_rate = 0;
  sim_options.analysis_delay = absl::ZeroDuration();
  sim_options.clean_fraction = 0;  // every investigation proposes actions
  sim_options.target_pool = 100000;
  sim_options.max_page_size = 10000;
  sim::UpstreamSimulator simulator(sim_options, nullptr);
  while (simulator.stats().actions < absl::GetFlag(FLAGS_actions)) {
    simulator.CreateInvestigations(1000);
  }
  const sim::SimulatorStats backlog = simulator.stats();

  const bool tcp = absl::GetFlag(FLAGS_transport) == "tcp";
  AIR_ASSIGN_OR_RETURN(std::unique_ptr<sim::SimServer> sim_server,
                       sim::SimServer::Start(simulator, tcp ? "127.0.0.1:0" : ""));
  std::shared_ptr<grpc::Channel> channel;
  if (tcp) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", sim_server->port()),
                                        grpc::InsecureChannelCredentials(), args);
  } else {
    channel = sim_server->InProcessChannel();
  }
  std::unique_ptr<UpstreamClient> client = NewGrpcUpstreamClient(channel);

  SqliteOptions db;
  db.path = path;
  db.full_fsync = absl::GetFlag(FLAGS_full_fsync);
  AIR_ASSIGN_OR_RETURN(std::unique_ptr<SqliteRepository> repository,
                       SqliteRepository::Open(db));
  // Publish to a hub as aird does, so the measured path includes it.
  EventHub hub(0);
  repository->SetCommitObserver(
      [&hub](std::vector<v1::Event>& events) { hub.Publish(std::move(events)); });
  SyncMonitor monitor("bench", absl::Hours(1), nullptr);
  UpstreamSyncOptions options;
  options.page_size = absl::GetFlag(FLAGS_page_size);
  UpstreamSyncWorker worker(*repository, *client, monitor, options);

  RunResult result;
  const bool ceiling = absl::GetFlag(FLAGS_ceiling);
  std::vector<upstream::v1::Investigation> investigations;
  std::vector<upstream::v1::Action> actions;
  if (ceiling) {
    investigations = simulator.Investigations();
    actions = simulator.Actions();
  }
  const absl::Time start = absl::Now();
  const absl::Duration cpu_start = ProcessCpuTime();
  if (ceiling) {
    size_t next_inv = 0;
    for (size_t i = 0; i < actions.size(); i += 1000) {
      AIR_RETURN_IF_ERROR(repository->Write([&](WriteTransaction& tx) -> absl::Status {
        for (size_t k = i; k < std::min(actions.size(), i + 1000); ++k) {
          // Investigations sort before their actions (ids share a prefix).
          while (next_inv < investigations.size() &&
                 investigations[next_inv].id() <= actions[k].investigation_id()) {
            v1::Investigation inv;
            inv.set_id(investigations[next_inv].id());
            inv.set_state(v1::Investigation::STATE_RUNNING);
            AIR_RETURN_IF_ERROR(CreateInvestigationTx(tx, inv));
            ++next_inv;
          }
          v1::Action action;
          action.set_id(actions[k].id());
          action.set_investigation_id(actions[k].investigation_id());
          action.set_type(actions[k].type());
          *action.mutable_target() = actions[k].target();
          AIR_RETURN_IF_ERROR(ProposeActionTx(tx, action, kDefaultActionTtl).status());
        }
        return absl::OkStatus();
      }));
      ++result.pages;
    }
  } else {
    while (true) {
      AIR_ASSIGN_OR_RETURN(SyncPageResult page, worker.SyncOnce());
      ++result.pages;
      if (!page.has_more) break;
    }
  }
  result.elapsed = absl::Now() - start;
  result.cpu = ProcessCpuTime() - cpu_start;
  AIR_ASSIGN_OR_RETURN(EventLogBounds bounds, repository->GetEventLogBounds());
  result.events = bounds.head;
  result.actions = backlog.actions;
  result.investigations = backlog.investigations;
  // Everything arrived: the last action is there, pending.
  AIR_ASSIGN_OR_RETURN(v1::Action last, repository->GetAction(simulator.Actions().back().id()));
  if (last.state() != v1::Action::STATE_PENDING) {
    return absl::InternalError("the backlog was not ingested");
  }
  hub.Shutdown();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  return result;
}

}  // namespace
}  // namespace air

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // As aird does: Debian's abseil checks every lock for deadlock cycles by
  // default, which costs more than the locking itself.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  spdlog::set_level(spdlog::level::warn);
  std::string dir = absl::GetFlag(FLAGS_dir);
  if (dir.empty()) {
    std::string pattern = (std::filesystem::temp_directory_path() / "air-ingest-XXXXXX").string();
    dir = mkdtemp(pattern.data());
  }
  std::vector<double> rates;
  for (int run = 0; run < absl::GetFlag(FLAGS_runs); ++run) {
    absl::StatusOr<air::RunResult> r = air::RunOnce(run, dir);
    if (!r.ok()) {
      std::fprintf(stderr, "run %d failed: %s\n", run + 1, r.status().ToString().c_str());
      return 1;
    }
    const double seconds = absl::ToDoubleSeconds(r->elapsed);
    const double rate = r->actions / seconds;
    rates.push_back(rate);
    std::printf("run %d: %lld actions + %lld investigations, %lld events, %d pages in "
                "%.3f s (%.3f s CPU): %.0f actions/s\n",
                run + 1, static_cast<long long>(r->actions),
                static_cast<long long>(r->investigations), static_cast<long long>(r->events),
                r->pages, seconds, absl::ToDoubleSeconds(r->cpu), rate);
  }
  std::sort(rates.begin(), rates.end());
  std::printf("median: %.0f actions/s (%zu runs, page size %d, %s)\n",
              rates[rates.size() / 2], rates.size(), absl::GetFlag(FLAGS_page_size),
              absl::GetFlag(FLAGS_ceiling)
                  ? "storage ceiling: commands only, no sync"
                  : absl::StrCat("sync over ", absl::GetFlag(FLAGS_transport)).c_str());
  std::error_code ignored;
  if (absl::GetFlag(FLAGS_dir).empty()) std::filesystem::remove_all(dir, ignored);
  return 0;
}
