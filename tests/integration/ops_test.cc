// Operations over real sockets: the Prometheus endpoint after a scripted
// flow, JSON decision logs without secrets, the health-only listener, and
// online backups under load (OperationsService.BackupDatabase and the real
// `aird --backup` binary) restored and checked.
#include <arpa/inet.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "air/v1/operations_service.grpc.pb.h"
#include "clients/cpp/air_client.h"
#include "domain/status_macros.h"
#include "service/action_commands.h"
#include "service/auth.h"
#include "service/housekeeping.h"
#include "service/logging.h"
#include "spdlog/sinks/ostream_sink.h"
#include "storage/storage.h"
#include "tests/support/server_fixture.h"

namespace air {
namespace {

using testing::GrpcStatusIs;
using testing::ServerFixture;
using testing::TempDir;

// GET http://127.0.0.1:port/path; the body, or "" on failure.
std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request =
        "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    (void)!write(fd, request.data(), request.size());
    char buffer[16384];
    ssize_t n;
    while ((n = read(fd, buffer, sizeof(buffer))) > 0) response.append(buffer, n);
  }
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (!absl::StartsWith(response, "HTTP/1.") || body == std::string::npos) return "";
  return response.substr(body + 4);
}

// One sample of Prometheus text format.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

std::vector<Sample> ParseMetrics(const std::string& text) {
  std::vector<Sample> samples;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    Sample sample;
    const size_t space = line.rfind(' ');
    absl::string_view series = line.substr(0, space);
    if (!absl::SimpleAtod(line.substr(space + 1), &sample.value)) continue;
    const size_t brace = series.find('{');
    sample.name = std::string(series.substr(0, brace));
    if (brace != absl::string_view::npos) {
      absl::string_view labels = series.substr(brace + 1, series.size() - brace - 2);
      for (absl::string_view pair : absl::StrSplit(labels, "\",", absl::SkipEmpty())) {
        const size_t eq = pair.find("=\"");
        absl::string_view value = pair.substr(eq + 2);
        absl::ConsumeSuffix(&value, "\"");
        sample.labels[std::string(pair.substr(0, eq))] = std::string(value);
      }
    }
    samples.push_back(std::move(sample));
  }
  return samples;
}

// The value of the one sample named `name` whose labels include `labels`;
// nullopt if there is none.
std::optional<double> Value(const std::vector<Sample>& samples, const std::string& name,
                            const std::map<std::string, std::string>& labels = {}) {
  for (const Sample& s : samples) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : labels) {
      auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) match = false;
    }
    if (match) return s.value;
  }
  return std::nullopt;
}

class MetricsTest : public ServerFixture {
 protected:
  ServerOptions Options() override {
    ServerOptions options = ServerFixture::Options();
    options.metrics_listen = "127.0.0.1:0";
    return options;
  }
};

TEST_F(MetricsTest, ScrapeAfterAScriptedFlow) {
  ASSERT_GT(server_->metrics_port(), 0);
  // The pending backlog before anything is decided, by type.
  auto pending = server_->storage().actions().GetPendingStats();
  AIR_ASSERT_OK(pending);
  const int64_t soft_delete_before =
      pending->by_type[v1::ACTION_TYPE_SOFT_DELETE_EMAIL];
  const int64_t block_url_before = pending->by_type[v1::ACTION_TYPE_BLOCK_URL];
  ASSERT_GT(soft_delete_before, 0);
  ASSERT_GT(block_url_before, 0);

  // Approve one, reject one, try to approve the rejected one.
  v1::ApproveActionRequest approve;
  approve.set_id("act-1001-1");  // soft-delete email
  v1::ApproveActionResponse approved;
  ASSERT_TRUE(actions_->ApproveAction(Context().get(), approve, &approved).ok());
  v1::RejectActionRequest reject;
  reject.set_id("act-1001-2");  // block URL
  v1::RejectActionResponse rejected;
  ASSERT_TRUE(actions_->RejectAction(Context().get(), reject, &rejected).ok());
  approve.set_id("act-1001-2");
  // Twice: the second call counts through the series cached by the first.
  for (int i = 0; i < 2; ++i) {
    EXPECT_THAT(actions_->ApproveAction(Context().get(), approve, &approved),
                GrpcStatusIs(grpc::StatusCode::FAILED_PRECONDITION));
  }

  // One watch stream connected.
  grpc::ClientContext watch_context;
  v1::WatchActionsRequest watch;
  auto stream = actions_->WatchActions(&watch_context, watch);

  // An hour later, everything still pending is an hour old.
  clock_.Advance(absl::Hours(1));

  std::vector<Sample> samples;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {  // the subscriber registers asynchronously
    samples = ParseMetrics(HttpGet(server_->metrics_port(), "/metrics"));
  } while (Value(samples, "aird_watch_subscribers") != 1.0 && absl::Now() < deadline);
  EXPECT_EQ(Value(samples, "aird_watch_subscribers"), 1.0);

  const std::map<std::string, std::string> approve_ok = {
      {"grpc_service", "air.v1.ActionService"}, {"grpc_method", "ApproveAction"},
      {"grpc_type", "unary"}, {"grpc_code", "OK"}};
  EXPECT_EQ(Value(samples, "grpc_server_handled_total", approve_ok), 1.0);
  EXPECT_EQ(Value(samples, "grpc_server_handled_total",
                  {{"grpc_method", "ApproveAction"}, {"grpc_code", "FAILED_PRECONDITION"}}),
            2.0);
  EXPECT_EQ(Value(samples, "grpc_server_handled_total",
                  {{"grpc_method", "RejectAction"}, {"grpc_code", "OK"}}),
            1.0);
  EXPECT_EQ(Value(samples, "grpc_server_handling_seconds_count",
                  {{"grpc_method", "ApproveAction"}, {"grpc_code", "OK"}}),
            1.0);
  EXPECT_EQ(Value(samples, "grpc_server_handling_seconds_bucket",
                  {{"grpc_method", "ApproveAction"}, {"grpc_code", "OK"}, {"le", "+Inf"}}),
            1.0);
  EXPECT_GT(*Value(samples, "grpc_server_handling_seconds_sum",
                   {{"grpc_method", "ApproveAction"}, {"grpc_code", "OK"}}),
            0.0);

  EXPECT_EQ(Value(samples, "aird_pending_actions", {{"type", "soft_delete_email"}}),
            static_cast<double>(soft_delete_before - 1));
  EXPECT_EQ(Value(samples, "aird_pending_actions", {{"type", "block_url"}}),
            static_cast<double>(block_url_before - 1));
  EXPECT_EQ(Value(samples, "aird_pending_actions", {{"type", "disable_driver"}}), 0.0);
  EXPECT_EQ(Value(samples, "aird_oldest_pending_action_age_seconds"), 3600.0);
  EXPECT_EQ(Value(samples, "aird_decisions_total", {{"outcome", "approved"}, {"source", "api"}}),
            1.0);
  EXPECT_EQ(Value(samples, "aird_decisions_total", {{"outcome", "rejected"}, {"source", "api"}}),
            1.0);
  EXPECT_EQ(Value(samples, "aird_actions_expired_total"), 0.0);
  EXPECT_EQ(Value(samples, "aird_sync_state", {{"state", "disabled"}}), 1.0);
  EXPECT_EQ(Value(samples, "aird_sync_lag_seconds"), 0.0);
  EXPECT_EQ(Value(samples, "aird_decision_outbox_backlog"), 0.0);
  EXPECT_GT(*Value(samples, "aird_database_size_bytes"), 4096.0);
  EXPECT_GT(*Value(samples, "aird_event_log_head_sequence"), 0.0);

  // Past every deadline: the sweeper expires the rest.
  clock_.Advance(absl::Hours(24 * 8));
  auto expired = server_->expiry_sweeper().RunOnce();
  AIR_ASSERT_OK(expired);
  ASSERT_GT(*expired, 1);  // so the decision counter is also found in its cache
  samples = ParseMetrics(HttpGet(server_->metrics_port(), "/metrics"));
  EXPECT_EQ(Value(samples, "aird_actions_expired_total"), static_cast<double>(*expired));
  EXPECT_EQ(Value(samples, "aird_decisions_total", {{"outcome", "expired"}, {"source", "expiry"}}),
            static_cast<double>(*expired));
  EXPECT_EQ(Value(samples, "aird_pending_actions", {{"type", "soft_delete_email"}}), 0.0);
  EXPECT_EQ(Value(samples, "aird_oldest_pending_action_age_seconds"), 0.0);

  watch_context.TryCancel();
  v1::WatchActionsResponse ignored;
  while (stream->Read(&ignored)) {
  }
  (void)stream->Finish();
}

// Each event a stream sends is timed from its commit, on the server's
// clock: to a subscriber that resumes 3 s after a decision, it goes 3 s
// late, in the 5 s bucket and not the 1 s one.
TEST_F(MetricsTest, WatchSendsAreTimedFromTheirCommit) {
  const int64_t head_before = server_->hub().head();
  v1::ApproveActionRequest approve;
  approve.set_id("act-1001-1");
  v1::ApproveActionResponse approved;
  ASSERT_TRUE(actions_->ApproveAction(Context().get(), approve, &approved).ok());
  const int64_t events = server_->hub().head() - head_before;
  ASSERT_GT(events, 0);

  clock_.Advance(absl::Seconds(3));
  grpc::ClientContext watch_context;
  v1::WatchActionsRequest watch;
  watch.set_after_sequence(head_before);
  auto stream = actions_->WatchActions(&watch_context, watch);
  v1::WatchActionsResponse response;
  for (int64_t i = 0; i < events; ++i) {
    ASSERT_TRUE(stream->Read(&response));
    ASSERT_TRUE(response.has_event());
  }

  // Each send is counted before its write starts, so before the client
  // could read it.
  const std::vector<Sample> samples =
      ParseMetrics(HttpGet(server_->metrics_port(), "/metrics"));
  EXPECT_EQ(Value(samples, "aird_watch_send_lag_seconds_count"),
            static_cast<double>(events));
  EXPECT_EQ(Value(samples, "aird_watch_send_lag_seconds_sum"), 3.0 * events);
  EXPECT_EQ(Value(samples, "aird_watch_send_lag_seconds_bucket", {{"le", "1"}}), 0.0);
  EXPECT_EQ(Value(samples, "aird_watch_send_lag_seconds_bucket", {{"le", "5"}}),
            static_cast<double>(events));

  watch_context.TryCancel();
  while (stream->Read(&response)) {
  }
  (void)stream->Finish();
}

TEST_F(MetricsTest, UnknownMethodsDoNotGrowTheLabelSet) {
  grpc::GenericStub stub(channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1), response;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&context, "/evil.Service/Method123", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   status = s;
                   done.Notify();
                 });
  done.WaitForNotification();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  const std::string text = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_EQ(text.find("evil"), std::string::npos);
}

TEST_F(MetricsTest, TheMetricsPortCannotBeShared) {
  ServerOptions options = Options();
  options.db_path = dir_.File("other.db");
  options.metrics_listen = absl::StrCat("127.0.0.1:", server_->metrics_port());
  auto second = AirServer::Start(options);
  EXPECT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
}

// ---------------------------------------------------------------------------

constexpr char kApproverToken[] = "approver-token-0123456789-secret";
constexpr char kAdminToken[] = "admin-token-9876543210-secret";

class AuthenticatedOpsTest : public ServerFixture {
 protected:
  void SetUp() override {
    std::ofstream(dir_.File("tokens"))
        << "token sha256:" << Sha256Hex(kApproverToken) << " soar-bot approver\n"
        << "token sha256:" << Sha256Hex(kAdminToken) << " ops-admin admin\n";
    ServerFixture::SetUp();
  }
  ServerOptions Options() override {
    ServerOptions options = ServerFixture::Options();
    options.tokens_file = dir_.File("tokens");
    options.health_listen = "127.0.0.1:0";
    return options;
  }
  std::unique_ptr<grpc::ClientContext> As(const std::string& token) {
    auto context = Context();
    context->AddMetadata("authorization", "Bearer " + token);
    return context;
  }
};

TEST_F(AuthenticatedOpsTest, DecisionsAreLoggedAsJsonLinesWithoutSecrets) {
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  sink->set_formatter(MakeLogFormatter(LogFormat::kJson));
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
  spdlog::set_level(spdlog::level::trace);

  v1::ApproveActionRequest approve;
  approve.set_id("act-1001-1");
  approve.set_comment("confirmed phish");
  v1::ApproveActionResponse approved;
  ASSERT_TRUE(actions_->ApproveAction(As(kApproverToken).get(), approve, &approved).ok());
  v1::RejectActionRequest reject;
  reject.set_id("act-1001-2");
  v1::RejectActionResponse rejected;
  ASSERT_TRUE(actions_->RejectAction(As(kApproverToken).get(), reject, &rejected).ok());
  // A refused call is logged (warn) without the token it presented.
  EXPECT_THAT(actions_->RejectAction(As("wrong-token-also-secret").get(), reject, &rejected),
              GrpcStatusIs(grpc::StatusCode::UNAUTHENTICATED));
  spdlog::set_default_logger(previous);

  int decisions = 0, rpcs = 0;
  for (absl::string_view line : absl::StrSplit(log.str(), '\n', absl::SkipEmpty())) {
    google::protobuf::Struct event;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(line), &event).ok())
        << "not a JSON object: " << line;
    const auto& f = event.fields();
    ASSERT_TRUE(f.count("time") && f.count("level") && f.count("component") && f.count("msg"))
        << line;
    if (f.at("component").string_value() == "decision") {
      ++decisions;
      EXPECT_EQ(f.at("principal").string_value(), "soar-bot") << line;
      EXPECT_EQ(f.at("level").string_value(), "info");
      const std::string id = f.at("action_id").string_value();
      EXPECT_EQ(f.at("outcome").string_value(), id == "act-1001-1" ? "approved" : "rejected");
      EXPECT_EQ(f.at("source").string_value(), "api");
      EXPECT_EQ(f.count("comment"), 0u);  // free text stays out of the logs
    }
    if (f.at("component").string_value() == "rpc") {
      ++rpcs;
      EXPECT_TRUE(f.count("method") && f.count("code")) << line;
    }
  }
  EXPECT_EQ(decisions, 2);
  EXPECT_GE(rpcs, 1);  // at least the refused call (OK calls log at debug)
  EXPECT_EQ(log.str().find(kApproverToken), std::string::npos);
  EXPECT_EQ(log.str().find("wrong-token-also-secret"), std::string::npos);
  EXPECT_EQ(log.str().find(Sha256Hex(kApproverToken)), std::string::npos);
}

TEST_F(AuthenticatedOpsTest, TheHealthListenerServesHealthOnlyInPlaintext) {
  ASSERT_GT(server_->health_port(), 0);
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->health_port()),
                                     grpc::InsecureChannelCredentials());
  client::ClientOptions quick;
  quick.deadline = absl::Seconds(2);
  client::AirClient client(channel, quick);
  auto health = client.CheckHealth("");
  AIR_ASSERT_OK(health);
  EXPECT_EQ(*health, client::HealthStatus::kServing);
  auto sync = client.CheckHealth("air.v1.SyncService");
  AIR_ASSERT_OK(sync);
  EXPECT_EQ(*sync, client::HealthStatus::kServing);
  // The API is not there, even with an admin token.
  auto stub = v1::ActionService::NewStub(channel);
  v1::GetActionRequest get;
  get.set_id("act-1001-1");
  v1::GetActionResponse got;
  EXPECT_THAT(stub->GetAction(As(kAdminToken).get(), get, &got),
              GrpcStatusIs(grpc::StatusCode::UNIMPLEMENTED));
  server_->Shutdown(absl::Seconds(1));
  auto after = client.CheckHealth("");
  EXPECT_FALSE(after.ok() && *after == client::HealthStatus::kServing);
}

TEST_F(AuthenticatedOpsTest, BackupNeedsTheAdminRole) {
  auto stub = v1::OperationsService::NewStub(channel_);
  for (const std::string& token : {std::string(), std::string(kApproverToken)}) {
    auto context = token.empty() ? Context() : As(token);
    auto reader = stub->BackupDatabase(context.get(), v1::BackupDatabaseRequest());
    v1::BackupDatabaseResponse message;
    EXPECT_FALSE(reader->Read(&message));
    EXPECT_THAT(reader->Finish(),
                GrpcStatusIs(token.empty() ? grpc::StatusCode::UNAUTHENTICATED
                                           : grpc::StatusCode::PERMISSION_DENIED));
  }
  client::ClientOptions admin;
  admin.bearer_token = kAdminToken;
  client::AirClient client(channel_, admin);
  std::ostringstream file;
  auto info = client.BackupDatabase(file, absl::Seconds(30));
  AIR_ASSERT_OK(info);
  EXPECT_EQ(static_cast<int64_t>(file.str().size()), info->size_bytes());
  EXPECT_TRUE(absl::StartsWith(file.str(), "SQLite format 3"));

  // The real airctl: refused for an approver (exit 1, file untouched), then
  // written for an admin.
  const std::string to = dir_.File("airctl-backup.db");
  const std::string airctl = absl::StrCat(AIRCTL_PATH, " --server=127.0.0.1:", server_->port());
  EXPECT_NE(std::system(absl::StrCat(airctl, " --token=", kApproverToken, " backup --to=", to,
                                     " > /dev/null 2> ", dir_.File("airctl.err"))
                            .c_str()),
            0);
  EXPECT_FALSE(std::filesystem::exists(to));
  EXPECT_FALSE(std::filesystem::exists(to + ".partial"));
  ASSERT_EQ(std::system(absl::StrCat(airctl, " --token=", kAdminToken, " -o json backup --to=",
                                     to, " > ", dir_.File("airctl.out"))
                            .c_str()),
            0);
  std::ifstream out(dir_.File("airctl.out"));
  std::string json((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  v1::BackupInfo printed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &printed).ok()) << json;
  EXPECT_EQ(static_cast<int64_t>(std::filesystem::file_size(to)), printed.size_bytes());
  EXPECT_EQ(printed.event_sequence(), info->event_sequence());
}

// ---------------------------------------------------------------------------

class BackupTest : public ServerFixture {
 protected:
  static constexpr int kInvestigations = 100;
  static constexpr int kActionsEach = 40;

  void SetUp() override {
    StartServer(/*demo=*/false);
    // 4000 pending actions to decide while backups run.
    for (int i = 0; i < kInvestigations; ++i) {
      AIR_ASSERT_OK(server_->storage().writer().Write([&](WriteTransaction& tx) -> absl::Status {
        v1::Investigation inv;
        inv.set_id(absl::StrCat("inv-", i));
        inv.set_display_name("load");
        inv.set_source(v1::Investigation::SOURCE_ALERT);
        inv.set_verdict(v1::VERDICT_MALICIOUS);
        AIR_RETURN_IF_ERROR(CreateInvestigationTx(tx, inv));
        for (int j = 0; j < kActionsEach; ++j) {
          v1::Action action;
          action.set_id(absl::StrCat("act-", i, "-", j));
          action.set_investigation_id(inv.id());
          action.set_type(v1::ACTION_TYPE_BLOCK_URL);
          action.mutable_target()->set_kind(v1::Entity::KIND_URL);
          action.mutable_target()->set_identifier(absl::StrCat("https://x", i, "-", j, ".example/"));
          AIR_RETURN_IF_ERROR(ProposeActionTx(tx, action, absl::Hours(24)).status());
        }
        return absl::OkStatus();
      }));
    }
  }

  // Decides actions from several threads until stopped or out of actions.
  class Load {
   public:
    Load(std::shared_ptr<grpc::Channel> channel, int threads) {
      for (int t = 0; t < threads; ++t) {
        workers_.emplace_back([this, channel, t, threads] {
          auto stub = v1::ActionService::NewStub(channel);
          for (int n = t; n < kInvestigations * kActionsEach && !stop_; n += threads) {
            if (n == 0) continue;  // act-0-0 is decided before the load
            const std::string id = absl::StrCat("act-", n / kActionsEach, "-", n % kActionsEach);
            grpc::Status status;
            if (n % 3 == 0) {
              v1::RejectActionRequest request;
              request.set_id(id);
              v1::RejectActionResponse response;
              status = stub->RejectAction(ServerFixture::Context().get(), request, &response);
            } else {
              v1::ApproveActionRequest request;
              request.set_id(id);
              v1::ApproveActionResponse response;
              status = stub->ApproveAction(ServerFixture::Context().get(), request, &response);
            }
            if (status.ok()) {
              ++decided_;
            } else {
              ++failed_;
            }
          }
        });
      }
    }
    ~Load() { Stop(); }
    void Stop() {
      stop_ = true;
      for (auto& w : workers_) {
        if (w.joinable()) w.join();
      }
    }
    int64_t decided() const { return decided_; }
    int64_t failed() const { return failed_; }
    // Waits (bounded) until at least `n` decisions completed.
    bool WaitFor(int64_t n) const {
      const absl::Time deadline = absl::Now() + absl::Seconds(60);
      while (decided_ < n && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
      return decided_ >= n;
    }

   private:
    std::atomic<bool> stop_{false};
    std::atomic<int64_t> decided_{0};
    std::atomic<int64_t> failed_{0};
    std::vector<std::thread> workers_;
  };

  // Restores `backup` into a fresh directory the documented way (copy the
  // file, start aird on it) and checks it is whole and self-consistent.
  // Returns the number of decided actions it holds.
  int64_t RestoreAndCheck(const std::string& backup, int64_t expected_head) {
    TempDir restore_dir;
    const std::string db = restore_dir.File("air.db");
    std::filesystem::copy_file(backup, db);
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.db_path = db;
    options.housekeeping_interval = absl::ZeroDuration();
    options.clock = &clock_;
    auto restored = AirServer::Start(options);  // runs PRAGMA quick_check at open
    EXPECT_TRUE(restored.ok()) << restored.status();
    if (!restored.ok()) return -1;
    Storage& repo = (*restored)->storage();

    // The event log: 1..head with no gap, head as the backup announced.
    auto bounds = repo.events().GetEventLogBounds();
    EXPECT_TRUE(bounds.ok());
    EXPECT_EQ(bounds->first_retained, 1);
    EXPECT_EQ(bounds->head, expected_head);
    std::map<std::string, v1::Event::Type> last_decision_event;
    int64_t expected = 1;
    while (expected <= bounds->head) {
      auto events = repo.events().ReadEvents(expected - 1, 1000);
      EXPECT_TRUE(events.ok());
      if (!events.ok() || events->empty()) break;
      for (const v1::Event& e : *events) {
        EXPECT_EQ(e.sequence(), expected) << "gap in the restored event log";
        expected = e.sequence() + 1;
        if (e.type() == v1::Event::TYPE_ACTION_APPROVED ||
            e.type() == v1::Event::TYPE_ACTION_REJECTED) {
          last_decision_event[e.action().id()] = e.type();
        }
      }
    }
    EXPECT_EQ(expected, bounds->head + 1);

    // Every action is there; exactly the decided ones have a decision event
    // (a decision and its event commit together, so a consistent snapshot
    // never has one without the other).
    int64_t total = 0, decided = 0;
    ActionQuery query;
    query.page_size = 1000;
    while (true) {
      auto page = repo.actions().ListActions(query);
      EXPECT_TRUE(page.ok());
      if (!page.ok()) break;
      for (const v1::Action& a : page->actions) {
        ++total;
        const bool is_decided = a.state() == v1::Action::STATE_APPROVED ||
                                a.state() == v1::Action::STATE_REJECTED;
        if (is_decided) {
          ++decided;
          auto it = last_decision_event.find(a.id());
          EXPECT_TRUE(it != last_decision_event.end()) << a.id() << " decided without event";
          if (it != last_decision_event.end()) {
            EXPECT_EQ(it->second, a.state() == v1::Action::STATE_APPROVED
                                      ? v1::Event::TYPE_ACTION_APPROVED
                                      : v1::Event::TYPE_ACTION_REJECTED);
          }
        } else {
          EXPECT_EQ(a.state(), v1::Action::STATE_PENDING);
        }
      }
      if (!page->next) break;
      query.after = page->next;
    }
    EXPECT_EQ(total, kInvestigations * kActionsEach);
    EXPECT_EQ(decided, static_cast<int64_t>(last_decision_event.size()));

    // The action decided before the backups, as it was.
    auto first = repo.actions().GetAction("act-0-0");
    EXPECT_TRUE(first.ok());
    EXPECT_EQ(first->state(), v1::Action::STATE_REJECTED);
    EXPECT_EQ(first->decision().decider(), "anonymous");
    EXPECT_EQ(first->decision().comment(), "decided before the backup");

    // Investigations' counts agree with their actions.
    auto inv = repo.actions().GetInvestigation("inv-0");
    EXPECT_TRUE(inv.ok());

    // The restored aird serves and writes.
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*restored)->port()),
                                       grpc::InsecureChannelCredentials());
    auto stub = v1::ActionService::NewStub(channel);
    v1::GetActionRequest get;
    get.set_id("act-0-0");
    v1::GetActionResponse got;
    EXPECT_TRUE(stub->GetAction(Context().get(), get, &got).ok());
    return decided;
  }
};

TEST_F(BackupTest, OnlineBackupsUnderLoadRestoreWhole) {
  {
    v1::RejectActionRequest reject;
    reject.set_id("act-0-0");
    reject.set_comment("decided before the backup");
    v1::RejectActionResponse rejected;
    ASSERT_TRUE(actions_->RejectAction(Context().get(), reject, &rejected).ok());
  }
  Load load(channel_, 4);
  ASSERT_TRUE(load.WaitFor(200)) << "load did not start";

  // 1. Through the API, as `airctl backup` does.
  const int64_t before_rpc = load.decided();
  client::AirClient client(channel_, client::ClientOptions());
  const std::string rpc_backup = dir_.File("rpc-backup.db");
  absl::StatusOr<v1::BackupInfo> info;
  {
    std::ofstream file(rpc_backup, std::ios::binary);
    info = client.BackupDatabase(file, absl::Seconds(60));
  }
  const int64_t after_rpc = load.decided();
  AIR_ASSERT_OK(info);
  RecordProperty("rpc_backup_bytes", std::to_string(info->size_bytes()));
  RecordProperty("rpc_snapshot_ms",
                 std::to_string(info->snapshot_duration().seconds() * 1000 +
                                info->snapshot_duration().nanos() / 1000000));
  ASSERT_TRUE(load.WaitFor(after_rpc + 200)) << "load stopped";

  // 2. The real binary, as cron or an operator runs it beside the server.
  const int64_t before_cli = load.decided();
  const std::string cli_backup = dir_.File("cli-backup.db");
  const std::string command =
      absl::StrCat(AIRD_PATH, " --backup=", cli_backup, " --db=", dir_.File("air.db"),
                   " --log_format=json > ", dir_.File("backup.out"), " 2> ",
                   dir_.File("backup.err"));
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const int64_t after_cli = load.decided();
  ASSERT_TRUE(load.WaitFor(after_cli + 200)) << "load stopped";
  load.Stop();
  EXPECT_EQ(load.failed(), 0);

  std::ifstream out(dir_.File("backup.out"));
  std::string summary((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(summary, &parsed).ok()) << summary;
  RecordProperty("cli_backup_ms",
                 std::to_string(static_cast<int64_t>(
                     parsed.fields().at("duration_ms").number_value())));
  const int64_t cli_head =
      static_cast<int64_t>(parsed.fields().at("event_sequence").number_value());

  // Each snapshot holds a whole number of decisions, taken between the
  // decisions acknowledged before it started and those after it ended (+1:
  // act-0-0, decided before the load).
  const int64_t rpc_decided = RestoreAndCheck(rpc_backup, info->event_sequence());
  EXPECT_GE(rpc_decided, before_rpc + 1);
  EXPECT_LE(rpc_decided, after_rpc + 1 + 4);  // + calls committed, not yet acknowledged
  const int64_t cli_decided = RestoreAndCheck(cli_backup, cli_head);
  EXPECT_GE(cli_decided, before_cli + 1);
  EXPECT_LE(cli_decided, after_cli + 1 + 4);
  EXPECT_GT(cli_decided, rpc_decided);
}

TEST_F(BackupTest, AirdBackupRefusesAMissingDatabase) {
  const std::string command =
      absl::StrCat(AIRD_PATH, " --backup=", dir_.File("x.db"), " --db=", dir_.File("nope.db"),
                   " --log_format=json 2> ", dir_.File("err"));
  EXPECT_NE(std::system(command.c_str()), 0);
  EXPECT_FALSE(std::filesystem::exists(dir_.File("x.db")));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("nope.db")));
}

}  // namespace
}  // namespace air
