// Upstream sync and decision delivery end to end: a real AirServer (gRPC on
// port 0, SQLite in a temp dir) syncing from the upstream simulator served
// on its own port, with the simulator's fault flags driving each fault. One
// ManualClock is the world's time (aird's and the simulator's); readiness
// is polled with a deadline, never slept for.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "air/v1/action_service.grpc.pb.h"
#include "air/v1/sync_service.grpc.pb.h"
#include "service/auth.h"
#include "service/server.h"
#include "service/sync_monitor.h"
#include "sim/sim_server.h"
#include "sim/upstream_simulator.h"
#include "storage/storage.h"
#include "tests/support/test_support.h"

namespace air {
namespace {

using testing::TempDir;
using v1::Action;
using v1::Investigation;

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return context;
}

// Polls `done` until it holds or `deadline` (real time) passes.
bool WaitFor(const std::function<bool()>& done, absl::Duration deadline = absl::Seconds(90)) {
  const absl::Time until = absl::Now() + deadline;
  while (absl::Now() < until) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return done();
}

class UpstreamSyncTest : public ::testing::Test {
 protected:
  UpstreamSyncTest() : clock_(kStart) {}

  void SetUp() override {
    sim_ = std::make_unique<sim::UpstreamSimulator>(SimOptions(), &clock_);
    auto server = sim::SimServer::Start(*sim_, "127.0.0.1:0");
    ASSERT_TRUE(server.ok()) << server.status();
    sim_server_ = std::move(*server);
    StartAird();
  }

  void TearDown() override {
    server_.reset();
    sim_server_.reset();
  }

  virtual sim::SimulatorOptions SimOptions() {
    sim::SimulatorOptions options;
    options.seed = 7;
    options.instance = "t1";
    options.arrival_rate = 0;  // investigations start when a test says so
    options.analysis_delay = absl::ZeroDuration();
    options.execution_delay = absl::Seconds(1);
    options.run_duration = absl::Seconds(1);
    options.failure_rate = 0.3;
    options.target_pool = 100000;  // no accidental repeated targets
    options.default_page_size = 7;  // many pages, many page boundaries
    return options;
  }

  ServerOptions Options() {
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.db_path = dir_.File("air.db");
    options.housekeeping_interval = absl::ZeroDuration();
    options.clock = &clock_;
    options.tokens_file = tokens_file_;
    options.policy = policy_;
    UpstreamOptions& up = options.upstream;
    up.target = absl::StrCat("127.0.0.1:", sim_server_->port());
    up.outage_threshold = absl::Minutes(1);
    up.sync.page_size = 0;  // the simulator's default: 7
    up.sync.poll_interval = absl::Milliseconds(10);
    up.sync.rpc_timeout = absl::Seconds(5);
    up.sync.backoff = BackoffPolicy{absl::Milliseconds(2), absl::Milliseconds(40), 2.0, 0.5};
    up.delivery.poll_interval = absl::Milliseconds(10);
    up.delivery.rpc_timeout = absl::Seconds(5);
    up.delivery.backoff = up.sync.backoff;
    up.delivery.batch_size = 5;
    return options;
  }

  void StartAird() {
    server_.reset();
    auto server = AirServer::Start(Options());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    actions_ = v1::ActionService::NewStub(channel_);
    sync_ = v1::SyncService::NewStub(channel_);
  }

  Storage& repo() { return server_->storage(); }

  v1::SyncStatus Status() {
    v1::GetSyncStatusResponse response;
    grpc::Status status =
        sync_->GetSyncStatus(Context().get(), v1::GetSyncStatusRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.status();
  }

  // grpc.health.v1.Health/Check for `service`, made generically (Debian
  // ships no health.proto): 1 SERVING, 2 NOT_SERVING, -1 on error.
  int Health(const std::string& service) {
    std::string request;
    if (!service.empty()) {
      request.push_back(0x0a);
      request.push_back(static_cast<char>(service.size()));
      request += service;
    }
    grpc::Slice slice(request);
    grpc::ByteBuffer request_buffer(&slice, 1), reply;
    grpc::GenericStub generic(channel_);
    grpc::Status call_status;
    absl::Notification done;
    auto context = Context();
    generic.UnaryCall(context.get(), "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                      &request_buffer, &reply, [&](grpc::Status s) {
                        call_status = s;
                        done.Notify();
                      });
    done.WaitForNotification();
    if (!call_status.ok()) return -1;
    std::vector<grpc::Slice> slices;
    if (!reply.Dump(&slices).ok()) return -1;
    std::string bytes;
    for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    return bytes.size() == 2 && bytes[0] == 0x08 ? bytes[1] : 0;
  }

  grpc::Status Decide(const std::string& id, bool approve, Action* out = nullptr) {
    if (approve) {
      v1::ApproveActionRequest request;
      request.set_id(id);
      request.set_comment("confirmed by the SOC");
      v1::ApproveActionResponse response;
      grpc::Status s = actions_->ApproveAction(Context().get(), request, &response);
      if (out != nullptr) *out = response.action();
      return s;
    }
    v1::RejectActionRequest request;
    request.set_id(id);
    request.set_comment("false positive");
    v1::RejectActionResponse response;
    grpc::Status s = actions_->RejectAction(Context().get(), request, &response);
    if (out != nullptr) *out = response.action();
    return s;
  }

  // Every action of the simulator exists here.
  bool AllActionsSynced() {
    for (const upstream::v1::Action& a : sim_->Actions()) {
      if (!repo().actions().GetAction(a.id()).ok()) return false;
    }
    return true;
  }

  // "" when aird holds exactly the simulator's latest state and has nothing
  // left to deliver; otherwise the first difference.
  std::string Divergence() {
    for (const upstream::v1::Investigation& inv : sim_->Investigations()) {
      absl::StatusOr<Investigation> local = repo().actions().GetInvestigation(inv.id());
      if (!local.ok()) return absl::StrCat("investigation ", inv.id(), " missing");
      if (local->state() != inv.state()) {
        return absl::StrCat("investigation ", inv.id(), " is ",
                            Investigation::State_Name(local->state()), " here, ",
                            Investigation::State_Name(inv.state()), " upstream");
      }
      if (local->display_name() != inv.display_name()) {
        return absl::StrCat("investigation ", inv.id(), " has another title");
      }
    }
    const std::vector<upstream::v1::Action> actions = sim_->Actions();
    for (const upstream::v1::Action& a : actions) {
      absl::StatusOr<Action> local = repo().actions().GetAction(a.id());
      if (!local.ok()) return absl::StrCat("action ", a.id(), " missing");
      if (local->state() != a.state()) {
        return absl::StrCat("action ", a.id(), " is ", Action::State_Name(local->state()),
                            " here, ", Action::State_Name(a.state()), " upstream");
      }
      if (local->failure_reason() != a.failure_reason()) {
        return absl::StrCat("action ", a.id(), " failure reason differs");
      }
    }
    if (CountLocalActions() != static_cast<int>(actions.size())) {
      return absl::StrCat(CountLocalActions(), " actions here, ", actions.size(), " upstream");
    }
    absl::StatusOr<DecisionOutboxStats> outbox = repo().outbox().GetDecisionOutboxStats();
    if (!outbox.ok() || outbox->backlog != 0) return "decisions still waiting for delivery";
    return "";
  }

  int CountLocalActions() {
    int count = 0;
    ActionQuery query;
    query.page_size = 1000;
    while (true) {
      absl::StatusOr<ActionPage> page = repo().actions().ListActions(query);
      if (!page.ok()) return -1;
      count += static_cast<int>(page->actions.size());
      if (!page->next) return count;
      query.after = page->next;
    }
  }

  // How many TYPE_ACTION_CREATED events each action got.
  std::map<std::string, int> CreatedEvents() {
    std::map<std::string, int> created;
    int64_t after = 0;
    while (true) {
      absl::StatusOr<std::vector<v1::Event>> events = repo().events().ReadEvents(after, 1000);
      if (!events.ok() || events->empty()) return created;
      for (const v1::Event& e : *events) {
        if (e.type() == v1::Event::TYPE_ACTION_CREATED) ++created[e.action().id()];
        after = e.sequence();
      }
    }
  }

  // Decides roughly half of the pending actions here: approves every
  // second one, rejects every fourth. Returns the ids decided.
  std::set<std::string> DecideSome() {
    std::set<std::string> decided;
    int i = 0;
    for (const upstream::v1::Action& a : sim_->Actions()) {
      absl::StatusOr<Action> local = repo().actions().GetAction(a.id());
      if (!local.ok() || local->state() != Action::STATE_PENDING) continue;
      ++i;
      if (i % 4 == 0) {
        EXPECT_TRUE(Decide(a.id(), /*approve=*/false).ok());
        decided.insert(a.id());
      } else if (i % 2 == 0) {
        EXPECT_TRUE(Decide(a.id(), /*approve=*/true).ok());
        decided.insert(a.id());
      }
    }
    return decided;
  }

  // Lets approved actions run to completion upstream, then waits until aird
  // has it all.
  void RunApprovedAndConverge() {
    ASSERT_TRUE(WaitFor([&] {
      absl::StatusOr<DecisionOutboxStats> outbox = repo().outbox().GetDecisionOutboxStats();
      return outbox.ok() && outbox->backlog == 0;
    })) << "decisions not delivered";
    clock_.Advance(absl::Seconds(5));  // past execution_delay + run_duration
    sim_->Advance();                   // runs them now, not at the next poll
    std::string divergence;
    EXPECT_TRUE(WaitFor([&] {
      divergence = Divergence();
      return divergence.empty();
    })) << divergence;
  }

  // The invariants every scenario ends with.
  void ExpectNothingDuplicatedOrLost(const std::set<std::string>& decided) {
    for (const auto& [id, count] : CreatedEvents()) {
      EXPECT_EQ(count, 1) << "action " << id << " created " << count << " times";
    }
    EXPECT_EQ(CreatedEvents().size(), sim_->Actions().size());
    const std::map<std::string, int> per_action = sim_->DecisionsPerAction();
    for (const std::string& id : decided) {
      auto it = per_action.find(id);
      ASSERT_NE(it, per_action.end()) << "decision on " << id << " never reached the upstream";
      EXPECT_EQ(it->second, 1) << id;
    }
    for (const auto& [request_id, applied] : sim_->AppliedRequests()) {
      EXPECT_EQ(applied, 1) << request_id;
    }
    EXPECT_EQ(sim_->stats().decisions_applied, static_cast<int64_t>(decided.size()));
    EXPECT_EQ(sim_->stats().repeated_executions, 0);
  }

  TempDir dir_;
  std::string tokens_file_;  // empty: no authentication
  DecisionPolicy policy_;    // default: no automation
  ManualClock clock_;
  std::unique_ptr<sim::UpstreamSimulator> sim_;
  std::unique_ptr<sim::SimServer> sim_server_;
  std::unique_ptr<AirServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ActionService::Stub> actions_;
  std::unique_ptr<v1::SyncService::Stub> sync_;
};

// ---- Convergence under each fault -------------------------------------------

struct FaultCase {
  std::string name;
  sim::SimulatorFaults faults;
  bool down_at_first = false;     // the upstream is down while work piles up
  bool crash_midway = false;      // the upstream's server crashes and restarts
};

class UpstreamFaultTest : public UpstreamSyncTest,
                          public ::testing::WithParamInterface<FaultCase> {};

TEST_P(UpstreamFaultTest, ConvergesWithNothingDuplicatedOrLost) {
  const FaultCase& c = GetParam();
  sim_->SetFaults(c.faults);
  if (c.down_at_first) sim_->SetDown(true);
  sim_->CreateInvestigations(20);
  if (c.down_at_first) {
    EXPECT_TRUE(WaitFor([&] { return Status().consecutive_sync_failures() >= 3; }));
    EXPECT_EQ(Status().state(), v1::SyncStatus::STATE_DEGRADED);
    sim_->SetDown(false);
  }
  ASSERT_TRUE(WaitFor([&] { return AllActionsSynced(); })) << "first investigations not synced";

  std::set<std::string> decided = DecideSome();
  sim_->CreateInvestigations(10);  // sync goes on while decisions go out
  if (c.crash_midway) {
    ASSERT_TRUE(sim_server_->Restart(absl::Milliseconds(200)).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return AllActionsSynced(); })) << "later investigations not synced";
  for (const std::string& id : DecideSome()) decided.insert(id);
  RunApprovedAndConverge();
  ExpectNothingDuplicatedOrLost(decided);
  // Every approval ran to its end, and results came back with their reason.
  std::map<Action::State, int> ends;
  for (const upstream::v1::Action& a : sim_->Actions()) ++ends[a.state()];
  EXPECT_EQ(ends[Action::STATE_APPROVED] + ends[Action::STATE_RUNNING], 0);
  EXPECT_GT(ends[Action::STATE_COMPLETED], 0);
  EXPECT_GT(ends[Action::STATE_FAILED], 0);
  EXPECT_GT(ends[Action::STATE_REJECTED], 0);
  EXPECT_GT(ends[Action::STATE_PENDING], 0);
  const v1::SyncStatus status = Status();
  EXPECT_EQ(status.decision_backlog(), 0);
  // A malformed record in a reply that was lost never arrived.
  if (c.faults.lost_reply_rate == 0) {
    EXPECT_EQ(status.records_malformed(), sim_->stats().malformed_sent);
  } else {
    EXPECT_LE(status.records_malformed(), sim_->stats().malformed_sent);
  }
}

sim::SimulatorFaults Faults(std::function<void(sim::SimulatorFaults&)> set) {
  sim::SimulatorFaults faults;
  set(faults);
  return faults;
}

INSTANTIATE_TEST_SUITE_P(
    Faults, UpstreamFaultTest,
    ::testing::Values(
        FaultCase{"Healthy", {}},
        FaultCase{"DownAtFirst", {}, /*down_at_first=*/true},
        FaultCase{"Slow", Faults([](auto& f) {
                    f.latency = absl::Milliseconds(15);
                    f.latency_jitter = absl::Milliseconds(15);
                  })},
        FaultCase{"Erroring", Faults([](auto& f) { f.error_rate = 0.3; })},
        FaultCase{"LosingReplies", Faults([](auto& f) { f.lost_reply_rate = 0.3; })},
        FaultCase{"Duplicating", Faults([](auto& f) { f.duplicate_rate = 0.3; })},
        FaultCase{"Reordering", Faults([](auto& f) { f.reorder = true; })},
        FaultCase{"ReplayingOldVersions", Faults([](auto& f) { f.replay_rate = 0.3; })},
        FaultCase{"CrashRestart", {}, false, /*crash_midway=*/true},
        FaultCase{"EverythingAtOnce", Faults([](auto& f) {
                    f.error_rate = 0.2;
                    f.lost_reply_rate = 0.2;
                    f.latency = absl::Milliseconds(2);
                    f.duplicate_rate = 0.2;
                    f.reorder = true;
                    f.replay_rate = 0.2;
                    f.malformed_rate = 0.1;
                  }),
                  true, true}),
    [](const ::testing::TestParamInfo<FaultCase>& info) { return info.param.name; });

// ---- Decision delivery ------------------------------------------------------

TEST_F(UpstreamSyncTest, DecisionDeliverySurvivesARestartOfAird) {
  sim_->CreateInvestigations(6);
  ASSERT_TRUE(WaitFor([&] { return AllActionsSynced(); }));
  sim_->SetDown(true);
  std::set<std::string> decided = DecideSome();
  ASSERT_GE(decided.size(), 3u);
  ASSERT_TRUE(WaitFor([&] { return Status().consecutive_delivery_failures() >= 2; }));
  EXPECT_EQ(Status().decision_backlog(), static_cast<int64_t>(decided.size()));
  EXPECT_EQ(sim_->stats().decisions_applied, 0);

  // aird stops with everything undelivered and comes back on the same file;
  // the upstream then loses half its replies, so retries meet decisions it
  // already applied.
  StartAird();
  EXPECT_EQ(Status().decision_backlog(), static_cast<int64_t>(decided.size()));
  sim::SimulatorFaults faults;
  faults.lost_reply_rate = 0.5;
  sim_->SetFaults(faults);
  sim_->SetDown(false);
  RunApprovedAndConverge();
  ExpectNothingDuplicatedOrLost(decided);
  EXPECT_GE(sim_->stats().submit_calls, static_cast<int64_t>(decided.size()));

  // Once more, now with nothing left to send: a restart sends nothing again.
  const int64_t calls = sim_->stats().submit_calls;
  StartAird();
  ASSERT_TRUE(WaitFor([&] { return Status().state() == v1::SyncStatus::STATE_HEALTHY; }));
  EXPECT_EQ(sim_->stats().submit_calls, calls);
  EXPECT_EQ(Status().decision_backlog(), 0);
}

TEST_F(UpstreamSyncTest, ConsoleDecisionsAreAppliedAndNotSentBack) {
  sim_->CreateInvestigation(sim::Playbook::kMalware, 3);
  ASSERT_TRUE(WaitFor([&] { return AllActionsSynced(); }));
  const std::string id = sim_->Actions().front().id();
  ASSERT_TRUE(sim_->DecideInConsole(id, /*approve=*/false, "alice@vendor.example").ok());
  ASSERT_TRUE(WaitFor([&] { return Divergence().empty(); })) << Divergence();
  Action action = *repo().actions().GetAction(id);
  EXPECT_EQ(action.state(), Action::STATE_REJECTED);
  EXPECT_EQ(action.decision().source(), v1::Decision::SOURCE_UPSTREAM);
  EXPECT_EQ(action.decision().decider(), "alice@vendor.example");
  EXPECT_EQ(Status().decision_backlog(), 0);
  EXPECT_EQ(sim_->stats().submit_calls, 0);
  absl::StatusOr<std::vector<AuditRecord>> audit = repo().audit().ListAudit(id);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ(audit->front().decision.source(), v1::Decision::SOURCE_UPSTREAM);
}

TEST_F(UpstreamSyncTest, AnApprovalTheUpstreamOverruledEndsCancelledAndIsRefused) {
  sim_->CreateInvestigation(sim::Playbook::kMalware, 4);
  ASSERT_TRUE(WaitFor([&] { return AllActionsSynced(); }));
  const std::string id = sim_->Actions().front().id();
  sim_->SetDown(true);
  ASSERT_TRUE(Decide(id, /*approve=*/true).ok());
  // Meanwhile someone rejects it in the vendor console.
  ASSERT_TRUE(sim_->DecideInConsole(id, /*approve=*/false, "bob@vendor.example").ok());
  sim_->SetDown(false);
  ASSERT_TRUE(WaitFor([&] {
    const v1::SyncStatus s = Status();
    return s.decisions_refused() == 1 && s.decision_backlog() == 0 &&
           repo().actions().GetAction(id)->state() == Action::STATE_CANCELLED;
  })) << Status().DebugString();
  EXPECT_GE(Status().records_conflicting(), 1);
  EXPECT_EQ(sim_->stats().decisions_applied, 0);  // the console's decision stands
  EXPECT_EQ(sim_->stats().executions, 0);
}

// ---- The duplicate rule -----------------------------------------------------

TEST_F(UpstreamSyncTest, AnIdenticalApprovalWithinAnHourIsMarkedDuplicateAndNotRunAgain) {
  // Two users report the same phish: the same URL to block.
  const std::string first_inv = sim_->CreateInvestigation(sim::Playbook::kPhish, 11);
  const std::string second_inv = sim_->CreateInvestigation(sim::Playbook::kPhish, 11);
  ASSERT_TRUE(WaitFor([&] { return AllActionsSynced(); }));
  const std::string first = first_inv + "-a2", second = second_inv + "-a2";
  ASSERT_EQ(repo().actions().GetAction(first)->type(), v1::ACTION_TYPE_BLOCK_URL);
  ASSERT_EQ(repo().actions().GetAction(first)->target().identifier(),
            repo().actions().GetAction(second)->target().identifier());

  Action approved;
  ASSERT_TRUE(Decide(first, true, &approved).ok());
  EXPECT_EQ(approved.duplicate_of(), "");
  ASSERT_TRUE(Decide(second, true, &approved).ok());
  EXPECT_EQ(approved.duplicate_of(), first);
  RunApprovedAndConverge();
  EXPECT_EQ(repo().actions().GetAction(second)->state(), Action::STATE_COMPLETED);
  EXPECT_EQ(repo().actions().GetAction(second)->duplicate_of(), first);
  EXPECT_EQ(sim_->stats().executions, 1);  // the URL was blocked once
  EXPECT_EQ(sim_->stats().repeated_executions, 0);

  // Over an hour after the original, the same target runs again.
  clock_.Advance(absl::Hours(2));
  const std::string third_inv = sim_->CreateInvestigation(sim::Playbook::kPhish, 11);
  ASSERT_TRUE(WaitFor([&] { return AllActionsSynced(); }));
  ASSERT_TRUE(Decide(third_inv + "-a2", true, &approved).ok());
  EXPECT_EQ(approved.duplicate_of(), "");
  RunApprovedAndConverge();
  EXPECT_EQ(sim_->stats().executions, 2);
}

// ---- Bad input --------------------------------------------------------------

TEST_F(UpstreamSyncTest, MalformedRecordsAreSkippedCountedAndDoNotStopSync) {
  sim_->CreateInvestigations(3);
  for (int i = 0; i < 5; ++i) {
    sim_->InjectMalformed();  // missing id, unknown enum, over-long fields, empty
    sim_->CreateInvestigations(2);
  }
  ASSERT_TRUE(WaitFor([&] { return Divergence().empty(); })) << Divergence();
  EXPECT_EQ(Status().records_malformed(), 5);
  EXPECT_EQ(sim_->stats().malformed_sent, 5);
  // Nothing of them reached the repository.
  for (const char* id : {"simt1-bad-enum-2", "simt1-bad-target-4"}) {
    EXPECT_EQ(repo().actions().GetAction(id).status().code(), absl::StatusCode::kNotFound) << id;
  }
  EXPECT_EQ(repo().actions().GetInvestigation("simt1-bad-long-3").status().code(),
            absl::StatusCode::kNotFound);
}

// ---- Health -----------------------------------------------------------------

TEST_F(UpstreamSyncTest, HealthIsNotServingAfterTheConfiguredOutage) {
  sim_->CreateInvestigations(1);
  ASSERT_TRUE(WaitFor([&] { return Status().state() == v1::SyncStatus::STATE_HEALTHY; }));
  EXPECT_EQ(Health(kSyncHealthService), 1);
  EXPECT_TRUE(Status().has_last_sync_time());

  sim_->SetDown(true);
  ASSERT_TRUE(WaitFor([&] { return Status().state() == v1::SyncStatus::STATE_DEGRADED; }));
  EXPECT_EQ(Health(kSyncHealthService), 1);  // within the outage threshold
  clock_.Advance(absl::Minutes(2));           // past it (1 minute)
  ASSERT_TRUE(WaitFor([&] { return Health(kSyncHealthService) == 2; }));
  const v1::SyncStatus status = Status();
  EXPECT_EQ(status.state(), v1::SyncStatus::STATE_OUTAGE);
  EXPECT_GT(status.consecutive_sync_failures(), 0);
  EXPECT_GE(status.lag().seconds(), 120);
  EXPECT_NE(status.last_error(), "");
  EXPECT_EQ(Health(""), 1);  // the API itself still serves

  sim_->SetDown(false);
  ASSERT_TRUE(WaitFor([&] { return Health(kSyncHealthService) == 1; }));
  EXPECT_EQ(Status().state(), v1::SyncStatus::STATE_HEALTHY);
  EXPECT_EQ(Status().last_error(), "");
}

TEST_F(UpstreamSyncTest, AutomationApprovesSyncedActionsAndTheApprovalGoesUpstream) {
  config::v1::PolicyConfig config;
  config.set_automation_level(config::v1::AUTOMATION_LEVEL_FULL);
  absl::StatusOr<DecisionPolicy> policy = DecisionPolicy::FromConfig(config);
  ASSERT_TRUE(policy.ok()) << policy.status();
  policy_ = *policy;
  StartAird();
  sim_->CreateInvestigation(sim::Playbook::kMalware, 1);  // a malicious verdict
  ASSERT_TRUE(WaitFor([&] { return AllActionsSynced(); }));
  RunApprovedAndConverge();
  const std::map<std::string, int> decisions = sim_->DecisionsPerAction();
  for (const upstream::v1::Action& a : sim_->Actions()) {
    EXPECT_EQ(repo().actions().GetAction(a.id())->decision().source(), v1::Decision::SOURCE_POLICY);
    EXPECT_TRUE(a.state() == Action::STATE_COMPLETED || a.state() == Action::STATE_FAILED)
        << Action::State_Name(a.state());
    EXPECT_EQ(decisions.at(a.id()), 1);
  }
}

TEST_F(UpstreamSyncTest, SyncStatusNeedsAReader) {
  tokens_file_ = dir_.File("tokens");
  std::ofstream(tokens_file_) << "token sha256:" << Sha256Hex("viewer-token-1") << " vic viewer\n";
  StartAird();
  v1::GetSyncStatusResponse response;
  grpc::Status anonymous =
      sync_->GetSyncStatus(Context().get(), v1::GetSyncStatusRequest(), &response);
  EXPECT_EQ(anonymous.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  auto context = Context();
  context->AddMetadata("authorization", "Bearer viewer-token-1");
  grpc::Status reader = sync_->GetSyncStatus(context.get(), v1::GetSyncStatusRequest(), &response);
  EXPECT_TRUE(reader.ok()) << reader.error_message();
  EXPECT_EQ(response.status().upstream(), absl::StrCat("127.0.0.1:", sim_server_->port()));
}

// ---- The simulator's own story (the quick start's upstream) ----------------

// Arrivals on the simulator's clock become investigations and pending
// actions in aird, with nothing but the upstream's address configured.
TEST(SimulatorStoryTest, FeedsAirdInvestigationsAndPendingActions) {
  TempDir dir;
  ManualClock clock(kStart);
  sim::SimulatorOptions sim_options;
  sim_options.arrival_rate = 2;
  sim_options.clean_fraction = 0;
  sim_options.analysis_delay = absl::ZeroDuration();
  sim::UpstreamSimulator simulator(sim_options, &clock);
  auto sim_server = sim::SimServer::Start(simulator, "127.0.0.1:0");
  ASSERT_TRUE(sim_server.ok()) << sim_server.status();
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.db_path = dir.File("air.db");
  options.housekeeping_interval = absl::ZeroDuration();
  options.clock = &clock;
  options.upstream.target = absl::StrCat("127.0.0.1:", (*sim_server)->port());
  options.upstream.sync.poll_interval = absl::Milliseconds(10);
  auto server = AirServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  clock.Advance(absl::Seconds(10));  // about 20 investigations arrive
  ActionQuery pending;
  pending.filter.state = Action::STATE_PENDING;
  pending.page_size = 100;
  ASSERT_TRUE(WaitFor([&] {
    absl::StatusOr<ActionPage> page = (*server)->storage().actions().ListActions(pending);
    return page.ok() && page->actions.size() >= 10;
  }));
  EXPECT_GE(simulator.stats().investigations, 10);
}

// TLS and a bearer token on the upstream link: the simulator serves TLS with
// a certificate from a test CA and demands a token, as a real upstream's API
// gateway would. aird syncs only with the CA and the token; plaintext to a
// non-loopback upstream is refused at start.
class UpstreamTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string d = dir_.path();
    const std::string script =
        "cd " + d + " && "
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=upstream-ca "
        "-keyout ca.key -out ca.pem 2>/dev/null && "
        "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout upstream.key "
        "-out upstream.csr 2>/dev/null && "
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > san.ext && "
        "openssl x509 -req -in upstream.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-days 2 -extfile san.ext -out upstream.pem 2>/dev/null";
    ASSERT_EQ(std::system(script.c_str()), 0);
    std::ofstream(dir_.File("token")) << "s3cret-upstream-token\n";
    sim::SimulatorOptions sim_options;
    sim_options.seed = 3;
    sim_options.instance = "tls";
    sim_options.arrival_rate = 0;
    sim_options.analysis_delay = absl::ZeroDuration();
    sim_ = std::make_unique<sim::UpstreamSimulator>(sim_options, &clock_);
    sim_->CreateInvestigations(3);
    sim::SimServerSecurity security;
    security.cert_file = dir_.File("upstream.pem");
    security.key_file = dir_.File("upstream.key");
    security.required_token = "s3cret-upstream-token";
    auto server = sim::SimServer::Start(*sim_, "127.0.0.1:0", security);
    ASSERT_TRUE(server.ok()) << server.status();
    sim_server_ = std::move(*server);
  }

  ServerOptions Options() {
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.db_path = dir_.File("air.db");
    options.housekeeping_interval = absl::ZeroDuration();
    options.clock = &clock_;
    options.upstream.target = absl::StrCat("localhost:", sim_server_->port());
    options.upstream.sync.poll_interval = absl::Milliseconds(10);
    options.upstream.sync.rpc_timeout = absl::Seconds(5);
    options.upstream.sync.backoff =
        BackoffPolicy{absl::Milliseconds(2), absl::Milliseconds(40), 2.0, 0.5};
    return options;
  }

  ManualClock clock_{kStart};
  TempDir dir_;
  std::unique_ptr<sim::UpstreamSimulator> sim_;
  std::unique_ptr<sim::SimServer> sim_server_;
};

TEST_F(UpstreamTlsTest, SyncsOverTlsWithTheBearerToken) {
  ServerOptions options = Options();
  options.upstream.ca_file = dir_.File("ca.pem");
  options.upstream.token_file = dir_.File("token");
  auto server = AirServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE(WaitFor([&] {
    v1::SyncStatus status = (*server)->upstream().monitor().Snapshot({});
    return status.records_applied() > 0;
  })) << (*server)->upstream().monitor().Snapshot({}).DebugString();
  InvestigationQuery all;
  all.page_size = 10;
  absl::StatusOr<InvestigationPage> page = (*server)->storage().actions().ListInvestigations(all);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->investigations.size(), 3u);
}

TEST_F(UpstreamTlsTest, WithoutTheTokenTheUpstreamRefusesAndNothingSyncs) {
  ServerOptions options = Options();
  options.upstream.ca_file = dir_.File("ca.pem");
  auto server = AirServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE(WaitFor([&] {
    v1::SyncStatus status = (*server)->upstream().monitor().Snapshot({});
    return status.consecutive_sync_failures() >= 2;
  }));
  v1::SyncStatus status = (*server)->upstream().monitor().Snapshot({});
  EXPECT_EQ(status.records_applied(), 0);
  EXPECT_THAT(status.last_error(), ::testing::HasSubstr("UNAUTHENTICATED"));
  // The token never appears in what operators see.
  EXPECT_THAT(status.DebugString(), ::testing::Not(::testing::HasSubstr("s3cret")));
}

TEST_F(UpstreamTlsTest, PlaintextToTheTlsUpstreamNeverSyncs) {
  // A plaintext client against a TLS server: the handshake fails, sync
  // retries with backoff and reports the failure.
  ServerOptions options = Options();
  auto server = AirServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE(WaitFor([&] {
    return (*server)->upstream().monitor().Snapshot({}).consecutive_sync_failures() >= 2;
  }));
  EXPECT_EQ((*server)->upstream().monitor().Snapshot({}).records_applied(), 0);
}

TEST_F(UpstreamTlsTest, InsecureSettingsAreRefusedAtStart) {
  ServerOptions options = Options();
  options.upstream.target = "upstream.example:7443";  // not loopback, no CA
  EXPECT_EQ(AirServer::Start(options).status().code(), absl::StatusCode::kFailedPrecondition);
  options.allow_insecure = true;  // accepted when the operator says so
  EXPECT_TRUE(AirServer::Start(options).ok());

  options = Options();
  options.upstream.token_file = dir_.File("token");  // a token without TLS
  EXPECT_EQ(AirServer::Start(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.upstream.ca_file = dir_.File("missing-ca.pem");
  EXPECT_EQ(AirServer::Start(options).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace air
