// The group committer over a fault-injecting write session: what callers
// are told when the database refuses to begin or to commit, and that a
// failed batch publishes nothing. No database: the session and its
// connection are fakes that record the statements they are given.
#include "storage/group_commit.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "domain/errors.h"
#include "gtest/gtest.h"
#include "tests/support/test_support.h"

namespace air {
namespace {

using testing::StatusIs;

constexpr SqlDialect kDialect = {"bounds", "raise"};

// Accepts every statement and returns no rows.
class RecordingConnection final : public sql::Connection {
 public:
  class NoRows final : public sql::Rows {
   public:
    absl::StatusOr<bool> Next() override { return false; }
    int64_t Int(int) const override { return 0; }
    absl::string_view Bytes(int) const override { return {}; }
    bool IsNull(int) const override { return true; }
  };
  absl::StatusOr<std::unique_ptr<sql::Rows>> Query(absl::string_view sql,
                                                   const sql::Params&) override {
    Record(sql);
    return std::unique_ptr<sql::Rows>(new NoRows);
  }
  absl::StatusOr<int64_t> Execute(absl::string_view sql, const sql::Params&) override {
    Record(sql);
    return 1;
  }
  std::vector<std::string> statements() {
    absl::MutexLock lock(&mu_);
    return statements_;
  }

 private:
  void Record(absl::string_view sql) {
    absl::MutexLock lock(&mu_);
    statements_.emplace_back(sql);
  }
  absl::Mutex mu_;
  std::vector<std::string> statements_ ABSL_GUARDED_BY(mu_);
};

struct SessionFaults {
  absl::Status begin;
  absl::Status commit;
};

class FakeSession final : public WriteSession {
 public:
  FakeSession(RecordingConnection* conn, SessionFaults faults) : conn_(conn), faults_(faults) {}
  sql::Connection& connection() override { return *conn_; }
  absl::StatusOr<int64_t> Begin() override {
    if (!faults_.begin.ok()) return faults_.begin;
    open_ = true;
    return next_;
  }
  absl::Status Commit(int64_t next_sequence) override {
    open_ = false;
    if (!faults_.commit.ok()) return faults_.commit;
    next_ = next_sequence;
    return absl::OkStatus();
  }
  void Rollback() override { open_ = false; }
  bool InTransaction() override { return open_; }
  absl::Status LostTransaction() override { return absl::UnavailableError("lost"); }

 private:
  RecordingConnection* conn_;
  const SessionFaults faults_;
  int64_t next_ = 1;
  bool open_ = false;
};

class GroupCommitTest : public ::testing::Test {
 protected:
  void Start(SessionFaults faults) {
    GroupCommitOptions options;
    options.on_commit = [this](std::vector<v1::Event>& events) {
      absl::MutexLock lock(&mu_);
      for (const v1::Event& e : events) published_.push_back(e.sequence());
    };
    committer_ = std::make_unique<GroupCommitter>(
        std::make_unique<FakeSession>(&conn_, faults), kDialect, options);
  }
  std::vector<int64_t> published() {
    absl::MutexLock lock(&mu_);
    return published_;
  }
  static absl::Status AppendOneEvent(WriteTransaction& tx) {
    v1::Event event;
    event.set_type(v1::Event::TYPE_ACTION_CREATED);
    return tx.events().AppendEvent(event).status();
  }

  RecordingConnection conn_;
  absl::Mutex mu_;
  std::vector<int64_t> published_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<GroupCommitter> committer_;
};

TEST_F(GroupCommitTest, CommittedEventsArePublishedInSequence) {
  Start({});
  AIR_ASSERT_OK(committer_->Write(AppendOneEvent));
  AIR_ASSERT_OK(committer_->Write(AppendOneEvent));
  committer_->Stop();
  EXPECT_EQ(published(), (std::vector<int64_t>{1, 2}));
}

TEST_F(GroupCommitTest, AFailedCommitFailsEveryWriteAndPublishesNothing) {
  Start({absl::OkStatus(), MakeError(absl::StatusCode::kUnavailable, "disk full",
                                     v1::STORAGE_FULL)});
  EXPECT_THAT(committer_->Write(AppendOneEvent), StatusIs(absl::StatusCode::kUnavailable));
  committer_->Stop();
  EXPECT_TRUE(published().empty());
}

TEST_F(GroupCommitTest, AFailedBeginFailsTheWriteWithoutRunningIt) {
  Start({MakeError(absl::StatusCode::kUnavailable, "unreachable", v1::STORAGE_UNAVAILABLE),
         absl::OkStatus()});
  bool ran = false;
  EXPECT_THAT(committer_->Write([&](WriteTransaction&) {
    ran = true;
    return absl::OkStatus();
  }),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_FALSE(ran);
}

TEST_F(GroupCommitTest, AFailingWriteKeepsItsErrorAndOthersRunAgainInSavepoints) {
  Start({});
  // The first write holds the writer until the next two are queued, so all
  // three share one batch.
  absl::Notification gate;
  committer_->WriteAsync(
      [&](WriteTransaction&) {
        gate.WaitForNotification();
        return absl::OkStatus();
      },
      nullptr);
  absl::Notification failed_done, ok_done;
  absl::Status failed, ok;
  committer_->WriteAsync([](WriteTransaction&) { return absl::NotFoundError("no"); },
                         [&](absl::Status s) {
                           failed = s;
                           failed_done.Notify();
                         });
  committer_->WriteAsync(AppendOneEvent, [&](absl::Status s) {
    ok = s;
    ok_done.Notify();
  });
  gate.Notify();
  failed_done.WaitForNotification();
  ok_done.WaitForNotification();
  EXPECT_THAT(failed, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(ok.ok()) << ok;
  committer_->Stop();
  EXPECT_EQ(published(), (std::vector<int64_t>{1}));
  const std::vector<std::string> statements = conn_.statements();
  EXPECT_EQ(std::count(statements.begin(), statements.end(), "SAVEPOINT write_fn"), 2);
}

TEST_F(GroupCommitTest, WritesAfterStopAreRefusedNotDropped) {
  Start({});
  committer_->Stop();
  EXPECT_THAT(committer_->Write([](WriteTransaction&) { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace air
