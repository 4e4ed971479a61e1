#include "bench/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>
#include <vector>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/functional/function_ref.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "air/v1/action.pb.h"
#include "air/v1/investigation.pb.h"
#include "bench/bare_action_service.h"
#include "bench/bench_stats.h"
#include "domain/lifecycle.h"
#include "domain/status_macros.h"
#include "noop.grpc.pb.h"
#include "service/action_commands.h"
#include "service/event_hub.h"
#include "service/metrics.h"
#include "service/server.h"
#include "service/sync_monitor.h"
#include "service/upstream_client.h"
#include "service/upstream_sync_worker.h"
#include "sim/sim_server.h"
#include "sim/upstream_simulator.h"
#include "spdlog/spdlog.h"
#include "storage/storage.h"

extern char** environ;

namespace air::bench {

// ---------------------------------------------------------------------------
// Parent side.

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Spawn(
    const ServerProcessOptions& options) {
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return absl::InternalError("cannot resolve /proc/self/exe");
  exe[n] = '\0';

  int command_pipe[2];
  int reply_pipe[2];
  if (pipe2(command_pipe, O_CLOEXEC) != 0 || pipe2(reply_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  std::vector<std::string> args = {
      exe,
      options.kind == ServerKind::kAir ? "--internal_server=air" : "--internal_server=noop",
      absl::StrCat("--internal_db=", options.db_path),
      absl::StrCat("--internal_full_fsync=", options.full_fsync ? "true" : "false"),
      "--internal_reply_fd=3",
      absl::StrCat("--server_deadlock_detection=",
                   options.deadlock_detection ? "true" : "false"),
  };
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, command_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, reply_pipe[1], 3);
  posix_spawn_file_actions_addopen(&actions, 1, options.log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, exe, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(command_pipe[0]);
  close(reply_pipe[1]);
  if (rc != 0) {
    close(command_pipe[1]);
    close(reply_pipe[0]);
    return absl::InternalError(absl::StrCat("posix_spawn: ", strerror(rc)));
  }
  auto process = std::unique_ptr<ServerProcess>(new ServerProcess());
  process->pid_ = pid;
  process->command_fd_ = command_pipe[1];
  process->reply_fd_ = reply_pipe[0];
  AIR_ASSIGN_OR_RETURN(std::string ready, process->ReadLine());
  std::vector<std::string> words = absl::StrSplit(ready, ' ');
  if (words.size() != 2 || words[0] != "ready" || !absl::SimpleAtoi(words[1], &process->port_)) {
    return absl::InternalError(absl::StrCat("server child did not start: ", ready,
                                            " (log: ", options.log_path, ")"));
  }
  return process;
}

ServerProcess::~ServerProcess() {
  if (pid_ <= 0) return;
  const std::string quit = "quit\n";
  (void)!write(command_fd_, quit.data(), quit.size());
  close(command_fd_);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (absl::Now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  close(reply_fd_);
}

absl::StatusOr<std::string> ServerProcess::ReadLine() {
  while (true) {
    const size_t eol = buffer_.find('\n');
    if (eol != std::string::npos) {
      std::string line = buffer_.substr(0, eol);
      buffer_.erase(0, eol + 1);
      return line;
    }
    char chunk[4096];
    const ssize_t n = read(reply_fd_, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::UnavailableError(
          absl::StrCat("server child ", pid_, " exited unexpectedly"));
    }
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

absl::StatusOr<std::string> ServerProcess::Command(const std::string& line) {
  const std::string out = line + "\n";
  if (write(command_fd_, out.data(), out.size()) != static_cast<ssize_t>(out.size())) {
    return absl::UnavailableError("cannot write to the server child");
  }
  AIR_ASSIGN_OR_RETURN(std::string reply, ReadLine());
  if (reply == "ok") return std::string();
  if (reply.rfind("ok ", 0) == 0) return reply.substr(3);
  return absl::InternalError(absl::StrCat("server child: '", line, "' failed: ", reply));
}

ProcessMemory ServerProcess::Memory() const {
  ProcessMemory memory;
  std::ifstream status(absl::StrCat("/proc/", pid_, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    auto field = [&](absl::string_view name, int64_t* out) {
      if (line.rfind(std::string(name), 0) != 0) return;
      std::istringstream in(line.substr(name.size()));
      in >> *out;
    };
    field("VmRSS:", &memory.rss_kb);
    field("VmHWM:", &memory.hwm_kb);
  }
  return memory;
}

double ServerProcess::CpuSeconds() const {
  std::ifstream stat(absl::StrCat("/proc/", pid_, "/stat"));
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) in parentheses.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields = absl::StrSplit(text.substr(close + 2), ' ');
  // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
  double utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtod(fields[11], &utime) ||
      !absl::SimpleAtod(fields[12], &stime)) {
    return 0;
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

void ServerProcess::ResetPeak() const {
  std::ofstream clear(absl::StrCat("/proc/", pid_, "/clear_refs"));
  clear << "5";
}

// ---------------------------------------------------------------------------
// Child side.

namespace {

class NoopServiceImpl final : public NoopService::CallbackService {
  grpc::ServerUnaryReactor* Noop(grpc::CallbackServerContext* context,
                                 const NoopRequest* /*request*/,
                                 NoopResponse* /*response*/) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// A server with exactly the ServerBuilder settings of service/server.cc
// (AirServer::Start), taking their values from ServerOptions' defaults; it
// also serves the bare ActionService of the fan-out and approve ceilings.
std::unique_ptr<grpc::Server> StartNoopServer(NoopServiceImpl* service,
                                              BareActionService* actions, int* port) {
  const ServerOptions defaults;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), port);
  builder.RegisterService(service);
  builder.RegisterService(actions);
  builder.SetMaxReceiveMessageSize(defaults.max_receive_message_bytes);
  builder.AddChannelArgument(
      GRPC_ARG_KEEPALIVE_TIME_MS,
      static_cast<int>(absl::ToInt64Milliseconds(defaults.keepalive_time)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  return builder.BuildAndStart();
}

uint64_t Mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

v1::ActionType TypeFor(uint64_t i) {
  return static_cast<v1::ActionType>(1 + i % 19);
}

v1::Action NewAction(const std::string& id, const std::string& investigation_id,
                     uint64_t i, std::string display_name) {
  v1::Action action;
  action.set_id(id);
  action.set_investigation_id(investigation_id);
  action.set_type(TypeFor(Mix(i)));
  action.set_verdict(v1::VERDICT_MALICIOUS);
  action.mutable_target()->set_kind(v1::Entity::KIND_URL);
  action.mutable_target()->set_identifier(
      absl::StrCat("https://phish-", i % 9973, ".bench.example/landing/", i));
  action.mutable_target()->set_display_name(std::move(display_name));
  return action;
}

absl::Status CreateInvestigation(WriteTransaction& tx, const std::string& id) {
  v1::Investigation investigation;
  investigation.set_id(id);
  investigation.set_display_name(
      absl::StrCat("air-bench: phish campaign ", id, " reported by users"));
  investigation.set_source(v1::Investigation::SOURCE_ALERT);
  investigation.set_verdict(v1::VERDICT_MALICIOUS);
  return CreateInvestigationTx(tx, investigation);
}

absl::StatusOr<std::string> Propose(AirServer& server, const std::string& prefix,
                                    int64_t count, int64_t batch) {
  const int64_t head = server.hub().head();
  const int64_t start = WallNanos();
  for (int64_t first = 0, b = 0; first < count; first += batch, ++b) {
    const int64_t n = std::min(batch, count - first);
    AIR_RETURN_IF_ERROR(server.storage().writer().Write([&](WriteTransaction& tx) -> absl::Status {
      const std::string investigation_id = absl::StrCat(prefix, "-inv-", b);
      AIR_RETURN_IF_ERROR(CreateInvestigation(tx, investigation_id));
      for (int64_t i = first; i < first + n; ++i) {
        AIR_RETURN_IF_ERROR(
            ProposeActionTx(tx,
                            NewAction(absl::StrCat(prefix, "-", i), investigation_id,
                                      static_cast<uint64_t>(i),
                                      absl::StrCat("Email cluster ", i, ": 3 messages")),
                            kDefaultActionTtl)
                .status());
      }
      return absl::OkStatus();
    }));
  }
  const double seconds = static_cast<double>(WallNanos() - start) / 1e9;
  return absl::StrCat(seconds, " ", server.hub().head() - head);
}

// Runs publish(first, n) for `count` items, `batch` at a time, one batch
// every `interval_us` from the start (0: back to back). Returns the seconds
// it took.
absl::StatusOr<double> Paced(int64_t count, int64_t batch, int64_t interval_us,
                             absl::FunctionRef<absl::Status(int64_t, int64_t)> publish) {
  const absl::Time start = absl::Now();
  for (int64_t first = 0, b = 0; first < count; first += batch, ++b) {
    if (interval_us > 0) {
      const absl::Time due = start + absl::Microseconds(interval_us * b);
      const absl::Duration wait = due - absl::Now();
      if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
    }
    AIR_RETURN_IF_ERROR(publish(first, std::min(batch, count - first)));
  }
  return absl::ToDoubleSeconds(absl::Now() - start);
}

// The investigation that "stamp PREFIX" adds its actions to, made
// PENDING_ACTION by a first action so that the stamped ones produce one
// TYPE_ACTION_CREATED event each and nothing else. Its own events (three)
// are not stamped: "stamp_setup" lets the parent wait until every subscriber
// has them before it starts measuring. Returns the head after it.
absl::StatusOr<int64_t> StampSetup(AirServer& server, const std::string& prefix) {
  const std::string investigation_id = absl::StrCat(prefix, "-inv");
  if (server.storage().actions().GetInvestigation(investigation_id).ok()) {
    return server.hub().head();
  }
  AIR_RETURN_IF_ERROR(server.storage().writer().Write([&](WriteTransaction& tx) -> absl::Status {
    AIR_RETURN_IF_ERROR(CreateInvestigation(tx, investigation_id));
    return ProposeActionTx(tx,
                           NewAction(absl::StrCat(prefix, "-first"), investigation_id, 0,
                                     "first"),
                           kDefaultActionTtl)
        .status();
  }));
  return server.hub().head();
}

absl::StatusOr<std::string> Stamp(AirServer& server, const std::string& prefix,
                                  int64_t count, int64_t batch, int64_t interval_us) {
  const std::string investigation_id = absl::StrCat(prefix, "-inv");
  AIR_RETURN_IF_ERROR(StampSetup(server, prefix).status());
  const int64_t head = server.hub().head();
  AIR_ASSIGN_OR_RETURN(
      const double seconds,
      Paced(count, batch, interval_us, [&](int64_t first, int64_t n) {
        return server.storage().writer().Write([&](WriteTransaction& tx) -> absl::Status {
          for (int64_t i = first; i < first + n; ++i) {
            AIR_RETURN_IF_ERROR(
                ProposeActionTx(tx,
                                NewAction(absl::StrCat(prefix, "-", i), investigation_id,
                                          static_cast<uint64_t>(i),
                                          absl::StrCat("t=", WallNanos())),
                                kDefaultActionTtl)
                    .status());
          }
          return absl::OkStatus();
        });
      }));
  const int64_t last = server.hub().head();
  return absl::StrCat(seconds, " ", last - head, " ", head + 1, " ", last);
}

// "stamp" on the no-op child: the same actions, as TYPE_ACTION_CREATED
// events published straight to the bare WatchActions streams (nothing is
// stored), each stamped just before its publish.
absl::StatusOr<std::string> BareStamp(BareActionService& watch, const std::string& prefix,
                                      int64_t count, int64_t batch, int64_t interval_us) {
  const std::string investigation_id = absl::StrCat(prefix, "-inv");
  const int64_t head = watch.head();
  AIR_ASSIGN_OR_RETURN(
      const double seconds,
      Paced(count, batch, interval_us, [&](int64_t first, int64_t n) {
        for (int64_t i = first; i < first + n; ++i) {
          v1::Event event;
          event.set_type(v1::Event::TYPE_ACTION_CREATED);
          v1::Action* action = event.mutable_action();
          *action = NewAction(absl::StrCat(prefix, "-", i), investigation_id,
                              static_cast<uint64_t>(i), absl::StrCat("t=", WallNanos()));
          const absl::Time now = absl::Now();
          InitializeNewAction(now, kDefaultActionTtl, *action);
          *event.mutable_commit_time() = action->create_time();
          watch.Publish(std::move(event));
        }
        return absl::OkStatus();
      }));
  const int64_t last = watch.head();
  return absl::StrCat(seconds, " ", last - head, " ", head + 1, " ", last);
}

// "propose" on the no-op child: the same pending actions, held in memory
// for the bare ApproveAction (nothing is stored and no event published).
absl::StatusOr<std::string> BarePropose(BareActionService& service, const std::string& prefix,
                                        int64_t count) {
  const int64_t start = WallNanos();
  const absl::Time now = absl::Now();
  for (int64_t i = 0; i < count; ++i) {
    v1::Action action = NewAction(absl::StrCat(prefix, "-", i), absl::StrCat(prefix, "-inv"),
                                  static_cast<uint64_t>(i),
                                  absl::StrCat("Email cluster ", i, ": 3 messages"));
    action.set_required_approvals(1);
    InitializeNewAction(now, kDefaultActionTtl, action);
    service.AddAction(std::move(action));
  }
  return absl::StrCat(static_cast<double>(WallNanos() - start) / 1e9, " 0");
}

// Stores actions of mixed states and types directly (no events, audit or
// investigation counts: this only feeds ListActions).
absl::StatusOr<std::string> Mixed(AirServer& server, int64_t start, int64_t count,
                                  int64_t batch) {
  const absl::Time base = absl::FromUnixSeconds(1'780'000'000);
  const int64_t begin = WallNanos();
  for (int64_t first = start; first < start + count; first += batch) {
    const int64_t last = std::min(first + batch, start + count);
    AIR_RETURN_IF_ERROR(server.storage().writer().Write([&](WriteTransaction& tx) -> absl::Status {
      for (int64_t i = first; i < last; ++i) {
        const uint64_t h = Mix(static_cast<uint64_t>(i) ^ 0x5bd1e995);
        v1::Action action = NewAction(absl::StrCat("m-", i), absl::StrCat("m-inv-", i / 50),
                                      h >> 8, absl::StrCat("Email cluster ", i, ": 3 messages"));
        const absl::Time created = base + absl::Milliseconds(i * 10);
        InitializeNewAction(created, kDefaultActionTtl, action);
        // 10% pending, then approved, running, completed, failed, rejected,
        // expired, cancelled.
        const int bucket = static_cast<int>(h % 100);
        v1::Action::State state = v1::Action::STATE_PENDING;
        if (bucket >= 10) {
          static constexpr struct { int below; v1::Action::State state; } kStates[] = {
              {20, v1::Action::STATE_APPROVED}, {25, v1::Action::STATE_RUNNING},
              {55, v1::Action::STATE_COMPLETED}, {60, v1::Action::STATE_FAILED},
              {80, v1::Action::STATE_REJECTED}, {95, v1::Action::STATE_EXPIRED},
              {100, v1::Action::STATE_CANCELLED}};
          for (const auto& s : kStates) {
            if (bucket < s.below) {
              state = s.state;
              break;
            }
          }
          action.set_state(state);
          action.set_etag("v2");
          SetTimestamp(created + absl::Minutes(5), action.mutable_update_time());
          if (state != v1::Action::STATE_CANCELLED) {
            v1::Decision* decision = action.mutable_decision();
            const bool rejected = state == v1::Action::STATE_REJECTED;
            const bool expired = state == v1::Action::STATE_EXPIRED;
            decision->set_outcome(expired    ? v1::Decision::OUTCOME_EXPIRED
                                  : rejected ? v1::Decision::OUTCOME_REJECTED
                                             : v1::Decision::OUTCOME_APPROVED);
            decision->set_source(expired ? v1::Decision::SOURCE_EXPIRY
                                         : v1::Decision::SOURCE_API);
            decision->set_decider(expired ? "system" : "soar@fabrikam.com");
            decision->set_comment(expired ? "" : "confirmed by playbook");
            SetTimestamp(created + absl::Minutes(5), decision->mutable_decide_time());
          }
        }
        AIR_RETURN_IF_ERROR(tx.actions().PutAction(action));
      }
      return absl::OkStatus();
    }));
  }
  return absl::StrCat(static_cast<double>(WallNanos() - begin) / 1e9);
}

// Ingest through the real sync path (issue 4): an upstream simulator served
// on a loopback port in this process, preloaded with a backlog of at least
// `actions` actions, drained by an UpstreamSyncWorker into this server's
// repository, one ListChanges page (one transaction) at a time.
absl::StatusOr<std::string> SyncIngest(AirServer& server, int64_t actions, int page_size,
                                       int64_t run) {
  sim::SimulatorOptions sim_options;
  sim_options.seed = 1000 + static_cast<uint64_t>(run);
  sim_options.instance = absl::StrCat("b", run);
  sim_options.arrival_rate = 0;
  sim_options.analysis_delay = absl::ZeroDuration();
  sim_options.clean_fraction = 0;  // every investigation proposes actions
  sim_options.target_pool = 100000;
  sim_options.max_page_size = 10000;
  sim::UpstreamSimulator simulator(sim_options, nullptr);
  while (simulator.stats().actions < actions) simulator.CreateInvestigations(1000);
  const sim::SimulatorStats backlog = simulator.stats();
  AIR_ASSIGN_OR_RETURN(std::unique_ptr<sim::SimServer> sim_server,
                       sim::SimServer::Start(simulator, "127.0.0.1:0"));
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  std::unique_ptr<UpstreamClient> client = NewGrpcUpstreamClient(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", sim_server->port()), grpc::InsecureChannelCredentials(), args));
  SyncMonitor monitor("air-bench", absl::Hours(1), nullptr);
  UpstreamSyncOptions options;
  options.cursor_name = absl::StrCat("air-bench-", run);
  options.page_size = page_size;
  UpstreamSyncWorker worker(server.storage(), *client, monitor, options);
  const int64_t head = server.hub().head();
  const int64_t start = WallNanos();
  int pages = 0;
  while (true) {
    AIR_ASSIGN_OR_RETURN(SyncPageResult page, worker.SyncOnce());
    ++pages;
    if (!page.has_more) break;
  }
  const double seconds = static_cast<double>(WallNanos() - start) / 1e9;
  const int64_t events = server.hub().head() - head;
  const std::vector<upstream::v1::Action> all = simulator.Actions();
  if (all.empty() || !server.storage().actions().GetAction(all.back().id()).ok()) {
    return absl::InternalError("the upstream backlog was not ingested");
  }
  return absl::StrCat(seconds, " ", backlog.actions, " ", backlog.investigations, " ", events,
                      " ", pages);
}

// Decides `count` pending actions named <prefix>-0.. in-process: DecideActionsTx
// through Repository::WriteAsync with `inflight` writes kept queued, the
// same write an ApproveAction call makes, without gRPC. Separates the cost
// of the decision itself (domain + storage + group commit) from the RPC.
absl::StatusOr<std::string> Decide(AirServer& server, const std::string& prefix,
                                   int64_t count, int64_t inflight) {
  struct Progress {
    int64_t count = 0, started = 0, finished = 0, failed = 0;
    absl::Status first_error;
    bool Done() const { return finished >= count; }
  };
  absl::Mutex mu;
  Progress progress;
  progress.count = count;
  const int64_t begin = WallNanos();
  std::function<void()> start_one;
  start_one = [&] {
    int64_t k;
    {
      absl::MutexLock lock(&mu);
      if (progress.started >= count) return;
      k = progress.started++;
    }
    DecideActionsInput input;
    input.ids = {absl::StrCat(prefix, "-", k)};
    input.command.outcome = v1::Decision::OUTCOME_APPROVED;
    input.command.source = v1::Decision::SOURCE_API;
    input.command.decider = "air-bench";
    input.command.comment = "air-bench: confirmed phish";
    server.storage().writer().WriteAsync(
        [input = std::move(input)](WriteTransaction& tx) {
          return DecideActionsTx(tx, input).status();
        },
        [&](absl::Status status) {
          {
            absl::MutexLock lock(&mu);
            if (!status.ok() && progress.failed++ == 0) progress.first_error = status;
          }
          start_one();
          absl::MutexLock lock(&mu);  // counted last: Decide may return now
          ++progress.finished;
        });
  };
  for (int64_t i = 0; i < inflight; ++i) start_one();
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(&progress, &Progress::Done));
  if (progress.failed > 0) return progress.first_error;
  return absl::StrCat(static_cast<double>(WallNanos() - begin) / 1e9);
}

// The server's aird_watch_send_lag_seconds histogram, as it scrapes:
// "LE:COUNT" pairs (cumulative, seconds; +Inf last) separated by spaces.
std::string SendLagBuckets(AirServer& server) {
  constexpr absl::string_view kPrefix = "aird_watch_send_lag_seconds_bucket{le=\"";
  std::string out;
  for (absl::string_view line : absl::StrSplit(server.metrics().Render(), '\n')) {
    if (!absl::ConsumePrefix(&line, kPrefix)) continue;
    const size_t quote = line.find('"');
    const size_t space = line.rfind(' ');
    if (quote == absl::string_view::npos || space == absl::string_view::npos) continue;
    absl::StrAppend(&out, out.empty() ? "" : " ", line.substr(0, quote), ":",
                    line.substr(space + 1));
  }
  return out;
}

absl::StatusOr<std::string> Execute(AirServer* server, BareActionService* bare_actions,
                                    const std::vector<std::string>& w) {
  auto arg = [&](size_t i) -> int64_t {
    int64_t v = 0;
    if (i >= w.size() || !absl::SimpleAtoi(w[i], &v)) v = -1;
    return v;
  };
  if (w.empty()) return absl::InvalidArgumentError("empty command");
  if (server == nullptr && bare_actions != nullptr) {
    if (w[0] == "head" || (w[0] == "stamp_setup" && w.size() == 2)) {
      return absl::StrCat(bare_actions->head());  // nothing to set up
    }
    if (w[0] == "stamp" && w.size() == 5 && arg(2) >= 0 && arg(3) > 0 && arg(4) >= 0) {
      return BareStamp(*bare_actions, w[1], arg(2), arg(3), arg(4));
    }
    if (w[0] == "propose" && w.size() == 4 && arg(2) >= 0 && arg(3) > 0) {
      return BarePropose(*bare_actions, w[1], arg(2));
    }
  }
  if (server == nullptr) return absl::FailedPreconditionError("not an aird server");
  if (w[0] == "head") return absl::StrCat(server->hub().head());
  if (w[0] == "send_lag") return SendLagBuckets(*server);
  if (w[0] == "stamp_setup" && w.size() == 2) {
    AIR_ASSIGN_OR_RETURN(const int64_t head, StampSetup(*server, w[1]));
    return absl::StrCat(head);
  }
  if (w[0] == "propose" && w.size() == 4 && arg(2) >= 0 && arg(3) > 0) {
    return Propose(*server, w[1], arg(2), arg(3));
  }
  if (w[0] == "stamp" && w.size() == 5 && arg(2) >= 0 && arg(3) > 0 && arg(4) >= 0) {
    return Stamp(*server, w[1], arg(2), arg(3), arg(4));
  }
  if (w[0] == "decide" && w.size() == 4 && arg(2) > 0 && arg(3) > 0) {
    return Decide(*server, w[1], arg(2), arg(3));
  }
  if (w[0] == "sync" && w.size() == 4 && arg(1) > 0 && arg(2) > 0 && arg(3) >= 0) {
    return SyncIngest(*server, arg(1), static_cast<int>(arg(2)), arg(3));
  }
  if (w[0] == "mixed" && w.size() == 4 && arg(1) >= 0 && arg(2) >= 0 && arg(3) > 0) {
    return Mixed(*server, arg(1), arg(2), arg(3));
  }
  return absl::InvalidArgumentError("unknown command");
}

void Reply(int fd, const std::string& line) {
  const std::string out = line + "\n";
  (void)!write(fd, out.data(), out.size());
}

}  // namespace

int RunServerChild(ServerKind kind, const std::string& db_path, bool full_fsync,
                   int reply_fd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  spdlog::set_level(spdlog::level::warn);
  std::unique_ptr<AirServer> air_server;
  NoopServiceImpl noop_service;
  std::unique_ptr<BareActionService> bare_actions;  // outlives noop_server
  std::unique_ptr<grpc::Server> noop_server;
  int port = 0;
  if (kind == ServerKind::kAir) {
    ServerOptions options;  // aird's defaults, as aird_main.cc sets them
    options.listen_address = "127.0.0.1:0";
    options.db_path = db_path;
    options.full_fsync = full_fsync;
    absl::StatusOr<std::unique_ptr<AirServer>> started = AirServer::Start(options);
    if (!started.ok()) {
      Reply(reply_fd, absl::StrCat("error ", started.status().ToString()));
      return 1;
    }
    air_server = std::move(*started);
    port = air_server->port();
  } else {
    bare_actions = std::make_unique<BareActionService>(EventHub::kDefaultNotifierThreads);
    noop_server = StartNoopServer(&noop_service, bare_actions.get(), &port);
    if (noop_server == nullptr || port == 0) {
      Reply(reply_fd, "error cannot start the noop server");
      return 1;
    }
  }
  Reply(reply_fd, absl::StrCat("ready ", port));

  std::string line;
  while (std::getline(std::cin, line)) {
    std::vector<std::string> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (!words.empty() && words[0] == "quit") break;
    absl::StatusOr<std::string> result = Execute(air_server.get(), bare_actions.get(), words);
    if (result.ok()) {
      Reply(reply_fd, absl::StrCat("ok ", *result));
    } else {
      Reply(reply_fd, absl::StrCat("error ", result.status().ToString()));
    }
  }
  if (air_server) air_server->Shutdown(absl::Seconds(2));
  if (noop_server) noop_server->Shutdown(std::chrono::system_clock::now() +
                                         std::chrono::seconds(2));
  return 0;
}

}  // namespace air::bench
