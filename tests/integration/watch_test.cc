// WatchActions through a real gRPC channel: live events, resume, snapshot
// handover, filters, retention, stalled subscribers and shutdown.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <set>
#include <thread>

#include "air/v1/error_reason.pb.h"
#include "domain/status_macros.h"
#include "service/action_commands.h"
#include "service/event_hub.h"
#include "service/housekeeping.h"
#include "storage/storage.h"
#include "tests/support/server_fixture.h"

namespace air {
namespace {

using testing::DetailsOf;
using testing::GrpcStatusIs;
using v1::Action;
using v1::Event;
using v1::WatchActionsRequest;
using v1::WatchActionsResponse;

class WatchTest : public testing::ServerFixture {
 protected:
  struct Stream {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientReader<WatchActionsResponse>> reader;

    // Reads one message; false when the stream ended.
    bool Next(WatchActionsResponse* message) { return reader->Read(message); }
    // Reads until an event arrives (skipping bookmarks).
    bool NextEvent(Event* event) {
      WatchActionsResponse message;
      while (reader->Read(&message)) {
        if (message.has_event()) {
          *event = message.event();
          return true;
        }
      }
      return false;
    }
  };

  Stream Watch(WatchActionsRequest request, absl::Duration timeout = absl::Seconds(20)) {
    Stream stream;
    stream.context = Context(timeout);
    stream.reader = actions_->WatchActions(stream.context.get(), request);
    return stream;
  }

  // Proposes a new pending action on inv-1001 directly through the
  // repository, as the upstream sync would.
  void Propose(const std::string& id,
               v1::ActionType type = v1::ACTION_TYPE_SOFT_DELETE_EMAIL) {
    AIR_ASSERT_OK(server_->storage().writer().Write([&](WriteTransaction& tx) -> absl::Status {
      Action action;
      action.set_id(id);
      action.set_investigation_id("inv-1001");
      action.set_type(type);
      return ProposeActionTx(tx, action, kDefaultActionTtl).status();
    }));
  }

  grpc::Status Approve(const std::string& id) {
    v1::ApproveActionRequest request;
    request.set_id(id);
    v1::ApproveActionResponse response;
    return actions_->ApproveAction(Context().get(), request, &response);
  }

  int64_t Head() { return server_->hub().head(); }
};

TEST_F(WatchTest, DeliversNewPendingActionsAndDecisionsLive) {
  // Pin the cursor: the call may reach the server after Propose commits.
  WatchActionsRequest request;
  request.set_after_sequence(Head());
  Stream stream = Watch(request);
  Propose("act-new-1");
  Event event;
  ASSERT_TRUE(stream.NextEvent(&event));
  EXPECT_EQ(event.type(), Event::TYPE_ACTION_CREATED);
  EXPECT_EQ(event.action().id(), "act-new-1");
  EXPECT_EQ(event.action().state(), Action::STATE_PENDING);
  const int64_t created_at = event.sequence();
  ASSERT_TRUE(Approve("act-new-1").ok());
  ASSERT_TRUE(stream.NextEvent(&event));
  EXPECT_EQ(event.sequence(), created_at + 1);
  EXPECT_EQ(event.type(), Event::TYPE_ACTION_APPROVED);
  EXPECT_EQ(event.action().decision().outcome(), v1::Decision::OUTCOME_APPROVED);
  stream.context->TryCancel();
}

TEST_F(WatchTest, ResumesAfterDisconnectWithNoGapAndNoDuplicate) {
  const int64_t start = Head();
  WatchActionsRequest request;
  request.set_after_sequence(start);
  Stream first = Watch(request);
  for (int i = 0; i < 5; ++i) Propose(absl::StrCat("act-r", i));
  Event event;
  int64_t last = start;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(first.NextEvent(&event));
    EXPECT_EQ(event.sequence(), last + 1);
    last = event.sequence();
  }
  first.context->TryCancel();
  (void)first.reader->Finish();

  for (int i = 5; i < 8; ++i) Propose(absl::StrCat("act-r", i));
  request.set_after_sequence(last);
  Stream second = Watch(request);
  std::vector<int64_t> sequences;
  while (static_cast<int64_t>(sequences.size()) < Head() - last) {
    ASSERT_TRUE(second.NextEvent(&event));
    sequences.push_back(event.sequence());
  }
  for (size_t i = 0; i < sequences.size(); ++i) {
    EXPECT_EQ(sequences[i], last + 1 + static_cast<int64_t>(i));
  }
  second.context->TryCancel();
}

TEST_F(WatchTest, ResumesAcrossAServerRestart) {
  const int64_t start = Head();
  Propose("act-before-restart");
  StartServer(/*demo=*/false);
  Propose("act-after-restart");
  WatchActionsRequest request;
  request.set_after_sequence(start);
  Stream stream = Watch(request);
  std::vector<std::string> created;
  Event event;
  int64_t expected = start + 1;
  while (created.size() < 2) {
    ASSERT_TRUE(stream.NextEvent(&event));
    EXPECT_EQ(event.sequence(), expected++);
    if (event.type() == Event::TYPE_ACTION_CREATED) created.push_back(event.action().id());
  }
  EXPECT_EQ(created, (std::vector<std::string>{"act-before-restart", "act-after-restart"}));
  stream.context->TryCancel();
}

TEST_F(WatchTest, ShutdownEndsStreamsWithUnavailable) {
  WatchActionsRequest request;
  request.set_after_sequence(Head());
  Stream stream = Watch(request);
  Propose("act-x");
  Event event;
  ASSERT_TRUE(stream.NextEvent(&event));  // the stream is live
  server_->Shutdown(absl::Seconds(5));
  while (stream.NextEvent(&event)) {
  }
  EXPECT_THAT(stream.reader->Finish(), GrpcStatusIs(grpc::StatusCode::UNAVAILABLE));
}

TEST_F(WatchTest, SnapshotThenLiveHasNoGapAtTheBoundary) {
  // A writer creates actions continuously while the snapshot is taken; each
  // must be delivered exactly once: in the snapshot or as a live event.
  constexpr int kActions = 300;
  std::atomic<bool> go{false};
  std::thread writer([&] {
    while (!go.load()) std::this_thread::yield();
    for (int i = 0; i < kActions; ++i) Propose(absl::StrCat("act-s", i));
  });
  WatchActionsRequest request;
  request.set_initial_snapshot(true);
  request.set_filter("type = ACTION_TYPE_SOFT_DELETE_EMAIL");
  go = true;
  Stream stream = Watch(request);
  std::map<std::string, int> seen;
  bool complete = false;
  int64_t snapshot_sequence = -1;
  WatchActionsResponse message;
  int created_seen = 0;
  while (created_seen < kActions && stream.Next(&message)) {
    std::string id;
    if (message.has_snapshot_action()) {
      ASSERT_FALSE(complete);
      id = message.snapshot_action().id();
    } else if (message.has_snapshot_complete()) {
      complete = true;
      snapshot_sequence = message.snapshot_complete().sequence();
      continue;
    } else if (message.has_event() && message.event().type() == Event::TYPE_ACTION_CREATED) {
      ASSERT_TRUE(complete);
      EXPECT_GT(message.event().sequence(), snapshot_sequence);
      id = message.event().action().id();
    } else {
      continue;
    }
    if (id.rfind("act-s", 0) == 0) ++created_seen;
    ++seen[id];
  }
  writer.join();
  stream.context->TryCancel();
  EXPECT_TRUE(complete);
  for (int i = 0; i < kActions; ++i) {
    EXPECT_EQ(seen[absl::StrCat("act-s", i)], 1) << i;
  }
  // The demo's pending soft deletes are in the snapshot too.
  EXPECT_EQ(seen["act-1001-1"], 1);
}

TEST_F(WatchTest, FiltersApplyToTheResourceAfterTheChange) {
  WatchActionsRequest request;
  request.set_filter("type = ACTION_TYPE_ISOLATE_DEVICE AND state = STATE_PENDING");
  request.set_after_sequence(Head());
  Stream stream = Watch(request);
  Propose("act-f1", v1::ACTION_TYPE_BLOCK_URL);
  Propose("act-f2", v1::ACTION_TYPE_ISOLATE_DEVICE);
  Event event;
  ASSERT_TRUE(stream.NextEvent(&event));
  EXPECT_EQ(event.action().id(), "act-f2");
  EXPECT_EQ(event.type(), Event::TYPE_ACTION_CREATED);
  stream.context->TryCancel();

  WatchActionsRequest bad;
  bad.set_filter("state = STATE_NAPPING");
  Stream rejected = Watch(bad);
  WatchActionsResponse message;
  EXPECT_FALSE(rejected.Next(&message));
  grpc::Status status = rejected.reader->Finish();
  EXPECT_THAT(status, GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(DetailsOf(status).bad_field, "filter");
}

TEST_F(WatchTest, CursorAheadOfTheHeadIsInvalidArgument) {
  WatchActionsRequest request;
  request.set_after_sequence(Head() + 10);
  Stream stream = Watch(request);
  WatchActionsResponse message;
  EXPECT_FALSE(stream.Next(&message));
  grpc::Status status = stream.reader->Finish();
  EXPECT_THAT(status, GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(DetailsOf(status).reason, v1::ErrorReason_Name(v1::CURSOR_AHEAD));
}

TEST_F(WatchTest, ExpiredCursorIsOutOfRangeNeverASilentSkip) {
  const int64_t old_cursor = 3;
  clock_.Advance(absl::Hours(24 * 8));
  Propose("act-new");  // a fresh event inside the window
  auto pruned = server_->event_retention().RunOnce();
  ASSERT_TRUE(pruned.ok());
  ASSERT_GT(*pruned, 0);
  WatchActionsRequest request;
  request.set_after_sequence(old_cursor);
  Stream stream = Watch(request);
  WatchActionsResponse message;
  EXPECT_FALSE(stream.Next(&message));
  grpc::Status status = stream.reader->Finish();
  EXPECT_THAT(status, GrpcStatusIs(grpc::StatusCode::OUT_OF_RANGE));
  EXPECT_EQ(DetailsOf(status).reason, v1::ErrorReason_Name(v1::CURSOR_EXPIRED));
}

TEST_F(WatchTest, IdleStreamsGetBookmarksWithTheHead) {
  WatchActionsRequest request;
  request.mutable_heartbeat_interval()->set_nanos(100'000'000);  // 100 ms
  Stream stream = Watch(request);
  WatchActionsResponse message;
  ASSERT_TRUE(stream.Next(&message));
  ASSERT_TRUE(message.has_bookmark());
  EXPECT_EQ(message.bookmark().sequence(), Head());
  stream.context->TryCancel();
}

TEST_F(WatchTest, AStalledSubscriberDoesNotDelayALiveOne) {
  // One subscriber never reads; another reads everything. The writer must
  // not block, and the live reader must see every event in order.
  WatchActionsRequest request;
  request.set_after_sequence(Head());
  Stream stalled = Watch(request, absl::Seconds(60));
  Stream live = Watch(request, absl::Seconds(60));
  const int64_t start = Head();
  constexpr int kActions = 3000;  // ~1 MB of events: beyond the flow-control window
  std::thread writer([&] {
    for (int i = 0; i < kActions; i += 100) {
      AIR_ASSERT_OK(server_->storage().writer().Write([&](WriteTransaction& tx) -> absl::Status {
        for (int k = i; k < i + 100; ++k) {
          Action action;
          action.set_id(absl::StrCat("act-load-", k));
          action.set_investigation_id("inv-1001");
          action.set_type(v1::ACTION_TYPE_BLOCK_URL);
          action.mutable_target()->set_identifier(std::string(300, 'u'));
          AIR_RETURN_IF_ERROR(ProposeActionTx(tx, action, kDefaultActionTtl).status());
        }
        return absl::OkStatus();
      }));
    }
  });
  writer.join();  // the writer finished while a subscriber stalls
  Event event;
  int64_t expected = start + 1;
  while (expected <= Head()) {
    ASSERT_TRUE(live.NextEvent(&event));
    ASSERT_EQ(event.sequence(), expected++);
  }
  // The stalled one catches up afterwards, from the stored log, with no gap.
  expected = start + 1;
  while (expected <= Head()) {
    ASSERT_TRUE(stalled.NextEvent(&event));
    ASSERT_EQ(event.sequence(), expected++);
  }
  live.context->TryCancel();
  stalled.context->TryCancel();
}

TEST_F(WatchTest, CancelledStreamsAreReleased) {
  // Thousands of subscribers connect and cancel; run under ASan to show no leak.
  for (int i = 0; i < 2000; ++i) {
    Stream stream = Watch({});
    stream.context->TryCancel();
    (void)stream.reader->Finish();
  }
  // Every cancelled stream unsubscribes; poll with a deadline.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (server_->hub().subscriber_count() > 0 && absl::Now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(server_->hub().subscriber_count(), 0u);
}

}  // namespace
}  // namespace air
