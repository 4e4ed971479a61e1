// Several AirServer replicas on one real PostgreSQL database (started in a
// temporary directory by tests/support/postgres_server.h), over real gRPC:
// a decision made on one replica reaches watchers on the others, in order
// and without gaps; replicas racing to decide one action produce exactly one
// winner and the same refusal as a local race; one replica leads, and when
// it goes another takes over.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "air/v1/action_service.grpc.pb.h"
#include "air/v1/error_reason.pb.h"
#include "domain/status_macros.h"
#include "service/action_commands.h"
#include "service/server.h"
#include "storage/postgres_storage.h"
#include "tests/support/postgres_server.h"
#include "tests/support/server_fixture.h"
#include "tests/support/test_support.h"

namespace air {
namespace {

using testing::DetailsOf;
using testing::PostgresServer;
using v1::Action;
using v1::Event;

::testing::Environment* const kPostgresEnvironment =
    ::testing::AddGlobalTestEnvironment(new testing::SharedPostgresEnvironment);

PostgresServer& Postgres() {
  PostgresServer* server = testing::SharedPostgres();
  if (server == nullptr) std::abort();
  return *server;
}

std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::Seconds(20)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
  return context;
}

// Waits (polling, with a deadline) until `done` holds.
template <typename Fn>
bool Eventually(Fn done, absl::Duration timeout = absl::Seconds(15)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return done();
}

class ReplicasTest : public ::testing::Test {
 protected:
  struct Replica {
    std::unique_ptr<AirServer> server;
    std::unique_ptr<v1::ActionService::Stub> actions;
  };

  void SetUp() override {
    auto url = Postgres().CreateDatabase();
    ASSERT_TRUE(url.ok()) << url.status();
    url_ = *url;
  }

  void StartReplicas(int n) {
    for (int i = 0; i < n; ++i) {
      ServerOptions options;
      options.listen_address = "127.0.0.1:0";
      options.db_path = url_;
      options.housekeeping_interval = absl::ZeroDuration();
      options.leader_retry_interval = absl::Milliseconds(100);
      auto server = AirServer::Start(options);
      ASSERT_TRUE(server.ok()) << server.status();
      Replica replica;
      replica.server = std::move(*server);
      replica.actions = v1::ActionService::NewStub(
          grpc::CreateChannel(absl::StrCat("127.0.0.1:", replica.server->port()),
                              grpc::InsecureChannelCredentials()));
      replicas_.push_back(std::move(replica));
    }
  }

  // Creates investigation `inv` with `n` pending actions inv-a0.. through
  // replica 0's repository, as the upstream sync would.
  void Seed(const std::string& inv, int n) {
    AIR_ASSERT_OK(replicas_[0].server->storage().writer().Write([&](WriteTransaction& tx) -> absl::Status {
      v1::Investigation investigation;
      investigation.set_id(inv);
      investigation.set_state(v1::Investigation::STATE_RUNNING);
      AIR_RETURN_IF_ERROR(CreateInvestigationTx(tx, investigation));
      for (int i = 0; i < n; ++i) {
        Action action;
        action.set_id(absl::StrCat(inv, "-a", i));
        action.set_investigation_id(inv);
        action.set_type(v1::ACTION_TYPE_BLOCK_URL);
        AIR_RETURN_IF_ERROR(ProposeActionTx(tx, action, kDefaultActionTtl).status());
      }
      return absl::OkStatus();
    }));
  }

  grpc::Status Approve(Replica& replica, const std::string& id, const std::string& decider = "",
                       Action* out = nullptr) {
    v1::ApproveActionRequest request;
    request.set_id(id);
    if (!decider.empty()) request.set_comment(decider);
    v1::ApproveActionResponse response;
    grpc::Status status = replica.actions->ApproveAction(Context().get(), request, &response);
    if (out != nullptr) *out = response.action();
    return status;
  }

  grpc::Status Reject(Replica& replica, const std::string& id) {
    v1::RejectActionRequest request;
    request.set_id(id);
    v1::RejectActionResponse response;
    return replica.actions->RejectAction(Context().get(), request, &response);
  }

  // Reads events from a WatchActions stream on `replica` after `after`
  // until `count` events arrived (or the deadline).
  std::vector<Event> WatchFor(Replica& replica, int64_t after, size_t count) {
    auto context = Context(absl::Seconds(30));
    v1::WatchActionsRequest request;
    request.set_after_sequence(after);
    request.mutable_heartbeat_interval()->set_nanos(100'000'000);
    auto reader = replica.actions->WatchActions(context.get(), request);
    std::vector<Event> events;
    v1::WatchActionsResponse message;
    while (events.size() < count && reader->Read(&message)) {
      if (message.has_event()) events.push_back(message.event());
    }
    context->TryCancel();
    reader->Finish();
    return events;
  }

  std::string url_;
  std::vector<Replica> replicas_;
};

TEST_F(ReplicasTest, ADecisionOnOneReplicaReachesAWatcherOnAnother) {
  StartReplicas(2);
  Seed("inv-1", 2);
  const int64_t head = replicas_[0].server->storage().events().GetEventLogBounds()->head;
  // Replica 1 learns about replica 0's commits through NOTIFY.
  ASSERT_TRUE(Eventually([&] { return replicas_[1].server->hub().head() == head; }));

  // The watcher on replica 1 is subscribed before the decision on replica 0.
  auto context = Context(absl::Seconds(30));
  v1::WatchActionsRequest request;
  request.set_after_sequence(head);
  auto reader = replicas_[1].actions->WatchActions(context.get(), request);
  ASSERT_TRUE(Approve(replicas_[0], "inv-1-a0").ok());
  v1::WatchActionsResponse message;
  std::vector<Event> events;
  while (reader->Read(&message)) {
    if (!message.has_event()) continue;
    events.push_back(message.event());
    if (message.event().type() == Event::TYPE_ACTION_APPROVED) break;
  }
  context->TryCancel();
  reader->Finish();
  ASSERT_FALSE(events.empty());
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].sequence(), head + 1 + static_cast<int64_t>(i));
  }
  EXPECT_EQ(events.back().type(), Event::TYPE_ACTION_APPROVED);
  EXPECT_EQ(events.back().action().id(), "inv-1-a0");
}

TEST_F(ReplicasTest, RacingReplicasProduceExactlyOneWinnerAndTheLocalRefusal) {
  StartReplicas(2);
  Seed("inv-1", 2);
  constexpr int kRacers = 8;
  std::atomic<int> won{0}, refused{0}, other{0};
  std::set<std::string> reasons;
  absl::Mutex mu;
  std::vector<std::thread> threads;
  for (int i = 0; i < kRacers; ++i) {
    threads.emplace_back([&, i] {
      Replica& replica = replicas_[i % 2];
      grpc::Status status = i % 4 < 2 ? Approve(replica, "inv-1-a0") : Reject(replica, "inv-1-a0");
      if (status.ok()) {
        ++won;
      } else if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
        ++refused;
        absl::MutexLock lock(&mu);
        reasons.insert(DetailsOf(status).reason);
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(refused.load(), kRacers - 1);
  EXPECT_EQ(other.load(), 0);
  // The same refusal as a second decision on one replica.
  grpc::Status local = Approve(replicas_[0], "inv-1-a0");
  EXPECT_EQ(local.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(reasons, std::set<std::string>{DetailsOf(local).reason});
  EXPECT_EQ(DetailsOf(local).reason, "ACTION_NOT_PENDING");
  auto audit = replicas_[1].server->storage().audit().ListAudit("inv-1-a0");
  AIR_ASSERT_OK(audit);
  EXPECT_EQ(audit->size(), 1u);
}

TEST_F(ReplicasTest, EveryReplicaStreamsEveryEventInOrderWithoutGaps) {
  StartReplicas(3);
  constexpr int kActions = 90;
  Seed("inv-1", kActions);
  const int64_t start = replicas_[0].server->storage().events().GetEventLogBounds()->head;
  // Decide through all three replicas at once.
  std::vector<std::thread> deciders;
  for (int r = 0; r < 3; ++r) {
    deciders.emplace_back([&, r] {
      for (int i = r; i < kActions; i += 3) {
        grpc::Status s = i % 2 ? Approve(replicas_[r], absl::StrCat("inv-1-a", i))
                               : Reject(replicas_[r], absl::StrCat("inv-1-a", i));
        EXPECT_TRUE(s.ok()) << s.error_message();
      }
    });
  }
  for (auto& t : deciders) t.join();
  const int64_t head = replicas_[2].server->storage().events().GetEventLogBounds()->head;
  ASSERT_GT(head, start + kActions);
  for (int r = 0; r < 3; ++r) {
    std::vector<Event> events = WatchFor(replicas_[r], start, static_cast<size_t>(head - start));
    ASSERT_EQ(events.size(), static_cast<size_t>(head - start)) << "replica " << r;
    for (size_t i = 0; i < events.size(); ++i) {
      ASSERT_EQ(events[i].sequence(), start + 1 + static_cast<int64_t>(i)) << "replica " << r;
    }
    // The hub (fed by NOTIFY) holds the same head.
    EXPECT_TRUE(Eventually([&] { return replicas_[r].server->hub().head() == head; }));
  }
}

TEST_F(ReplicasTest, ExactlyOneReplicaLeadsAndAnotherTakesOverWhenItGoes) {
  StartReplicas(3);
  auto leaders = [&] {
    int n = 0;
    for (auto& r : replicas_) n += (r.server != nullptr && r.server->is_leader()) ? 1 : 0;
    return n;
  };
  ASSERT_TRUE(Eventually([&] { return leaders() == 1; }));
  // Stable: still exactly one a little later.
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_EQ(leaders(), 1);
  size_t leader = 0;
  while (!replicas_[leader].server->is_leader()) ++leader;
  const absl::Time stopped = absl::Now();
  replicas_[leader].server.reset();  // shuts down: its session (and lock) ends
  ASSERT_TRUE(Eventually([&] { return leaders() == 1; }, absl::Seconds(10)));
  EXPECT_LT(absl::Now() - stopped, absl::Seconds(5));
}

TEST_F(ReplicasTest, LosingTheDatabaseEndsStreamsAndFailsCallsWithUnavailableUntilItReturns) {
  StartReplicas(1);
  Seed("inv-1", 2);
  Replica& replica = replicas_[0];
  const int64_t head = replica.server->storage().events().GetEventLogBounds()->head;
  ASSERT_TRUE(Eventually([&] { return replica.server->hub().head() == head; }));
  auto context = Context(absl::Seconds(30));
  v1::WatchActionsRequest request;
  request.set_after_sequence(head);
  request.mutable_heartbeat_interval()->set_nanos(100'000'000);
  auto reader = replica.actions->WatchActions(context.get(), request);
  // The stream is live (a first bookmark) before the database goes away.
  v1::WatchActionsResponse message;
  ASSERT_TRUE(reader->Read(&message));

  Postgres().Stop();
  while (reader->Read(&message)) {
  }
  grpc::Status ended = reader->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE) << ended.error_message();
  grpc::Status decided = Approve(replica, "inv-1-a0");
  EXPECT_EQ(decided.error_code(), grpc::StatusCode::UNAVAILABLE) << decided.error_message();
  v1::GetActionRequest get;
  get.set_id("inv-1-a0");
  v1::GetActionResponse got;
  grpc::Status read = replica.actions->GetAction(Context().get(), get, &got);
  EXPECT_EQ(read.error_code(), grpc::StatusCode::UNAVAILABLE) << read.error_message();

  AIR_ASSERT_OK(Postgres().Restart());
  // The replica reconnects by itself (with backoff): the decision succeeds
  // and a new stream sees it.
  grpc::Status retried;
  ASSERT_TRUE(Eventually(
      [&] {
        retried = Approve(replica, "inv-1-a0");
        return retried.ok();
      },
      absl::Seconds(20)))
      << retried.error_code() << " " << retried.error_message();
  // Streams are refused (UNAVAILABLE) until the replica listens again.
  std::vector<Event> events;
  ASSERT_TRUE(Eventually([&] {
    events = WatchFor(replica, head, 1);
    return !events.empty();
  }));
  EXPECT_EQ(events[0].sequence(), head + 1);
  EXPECT_EQ(events[0].type(), Event::TYPE_ACTION_APPROVED);
}

TEST(PostgresOpen, AnUnreachableServerIsUnavailableAndTheMessageHidesThePassword) {
  PostgresOptions options;
  // A port nothing listens on: a fresh PostgreSQL port, after its server is
  // gone, is the surest.
  options.conninfo = absl::StrCat("postgresql://aird:s3cret@127.0.0.1:", 1,
                                  "/air?connect_timeout=2");
  auto repo = OpenPostgresStorage(options);
  EXPECT_THAT(repo, testing::StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(std::string(repo.status().message()).find("s3cret"), std::string::npos)
      << repo.status();
  EXPECT_NE(std::string(repo.status().message()).find("aird:***@127.0.0.1"), std::string::npos)
      << repo.status();
}

TEST(PostgresOpen, RefusesANewerSchema) {
  auto url = Postgres().CreateDatabase();
  ASSERT_TRUE(url.ok()) << url.status();
  {
    PostgresOptions options;
    options.conninfo = *url;
    AIR_ASSERT_OK(OpenPostgresStorage(options));
  }
  AIR_ASSERT_OK(PostgresServer::Exec(*url, "UPDATE air_schema SET version = 999"));
  PostgresOptions options;
  options.conninfo = *url;
  EXPECT_THAT(OpenPostgresStorage(options),
              testing::StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(PostgresOpen, ConnectionStringsAreRedacted) {
  EXPECT_EQ(RedactPostgresConninfo("postgresql://u:pw@h:5432/db"), "postgresql://u:***@h:5432/db");
  EXPECT_EQ(RedactPostgresConninfo("postgresql://h/db?user=u&password=pw&sslmode=require"),
            "postgresql://h/db?user=u&password=***&sslmode=require");
  EXPECT_EQ(RedactPostgresConninfo("host=h password='p w' dbname=d"),
            "host=h password=*** dbname=d");
  EXPECT_EQ(RedactPostgresConninfo("postgresql://u@h/db"), "postgresql://u@h/db");
}

}  // namespace
}  // namespace air
