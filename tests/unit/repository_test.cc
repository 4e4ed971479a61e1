// The repository contract and the commands on top of it, run unchanged
// against both backends: SQLite on real temp files, and PostgreSQL on a real
// server started in a temporary directory (tests/support/postgres_server.h).
#include <sqlite3.h>

#include <atomic>
#include <set>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

#include "domain/errors.h"
#include "domain/status_macros.h"
#include "service/action_commands.h"
#include "service/housekeeping.h"
#include "storage/postgres_storage.h"
#include "storage/sqlite_storage.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "tests/support/postgres_server.h"
#include "tests/support/test_support.h"

namespace air {
namespace {

using testing::PostgresServer;
using testing::StatusIs;
using testing::TempDir;
using v1::Action;
using v1::Investigation;

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

// kSqliteRerun runs every write batch twice (GroupCommitOptions), so any
// write function that reports more than its committed run fails a test.
enum class Backend { kSqlite, kSqliteRerun, kPostgres };

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  switch (info.param) {
    case Backend::kSqlite:
      return "Sqlite";
    case Backend::kSqliteRerun:
      return "SqliteRerun";
    case Backend::kPostgres:
      return "Postgres";
  }
  return "";
}

using testing::SharedPostgres;

// One PostgreSQL server for the whole binary, started by the first test that
// needs it; each test gets its own database.
::testing::Environment* const kPostgresEnvironment =
    ::testing::AddGlobalTestEnvironment(new testing::SharedPostgresEnvironment);

class RepositoryTest : public ::testing::TestWithParam<Backend> {
 protected:
  RepositoryTest() : clock_(kStart) {}

  void SetUp() override {
    if (GetParam() == Backend::kPostgres) {
      PostgresServer* server = SharedPostgres();
      ASSERT_NE(server, nullptr);
      auto url = server->CreateDatabase();
      ASSERT_TRUE(url.ok()) << url.status();
      url_ = *url;
    }
    Reopen();
  }

  void Reopen() {
    repo_.reset();
    if (GetParam() != Backend::kPostgres) {
      SqliteOptions options;
      options.rerun_every_batch_for_testing = GetParam() == Backend::kSqliteRerun;
      options.path = dir_.File("air.db");
      options.clock = &clock_;
      auto repo = OpenSqliteStorage(options);
      ASSERT_TRUE(repo.ok()) << repo.status();
      repo_ = std::move(*repo);
    } else {
      PostgresOptions options;
      options.conninfo = url_;
      options.clock = &clock_;
      auto repo = OpenPostgresStorage(options);
      ASSERT_TRUE(repo.ok()) << repo.status();
      repo_ = std::move(*repo);
    }
  }

  // Runs raw SQL on the database behind the (closed) repository, as an
  // intruder with database access would; true if it succeeded.
  bool ExecRaw(const std::string& sql) {
    if (GetParam() == Backend::kPostgres) return PostgresServer::Exec(url_, sql).ok();
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(dir_.File("air.db").c_str(), &db), SQLITE_OK);
    const bool ok = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
    sqlite3_close(db);
    return ok;
  }

  // Creates investigation `inv` with `n` pending actions inv-a0..a(n-1).
  void Seed(const std::string& inv, int n, v1::ActionType type = v1::ACTION_TYPE_BLOCK_URL) {
    AIR_ASSERT_OK(repo_->writer().Write([&](WriteTransaction& tx) -> absl::Status {
      Investigation investigation;
      investigation.set_id(inv);
      investigation.set_state(Investigation::STATE_RUNNING);
      AIR_RETURN_IF_ERROR(CreateInvestigationTx(tx, investigation));
      for (int i = 0; i < n; ++i) {
        Action action;
        action.set_id(absl::StrCat(inv, "-a", i));
        action.set_investigation_id(inv);
        action.set_type(type);
        AIR_RETURN_IF_ERROR(ProposeActionTx(tx, action, kDefaultActionTtl).status());
      }
      return absl::OkStatus();
    }));
  }

  absl::StatusOr<std::vector<Action>> Decide(std::vector<std::string> ids,
                                             v1::Decision::Outcome outcome,
                                             std::string request_id = "",
                                             std::string decider = "alice") {
    DecideActionsInput input;
    input.ids = std::move(ids);
    input.command.outcome = outcome;
    input.command.decider = std::move(decider);
    input.request_id = std::move(request_id);
    input.fingerprint = absl::StrCat(outcome, absl::StrJoin(input.ids, ","));
    return repo_->writer().Write<std::vector<Action>>(
        [&](WriteTransaction& tx) { return DecideActionsTx(tx, input); });
  }

  // Runs `fns` as one batch (a first write holds the writer until all are
  // queued) and returns their results, in order.
  std::vector<absl::Status> RunInOneBatch(const std::vector<Writer::WriteFn>& fns) {
    absl::Notification gate;
    absl::Mutex mu;
    size_t pending = fns.size() + 1;
    std::vector<absl::Status> results(fns.size());
    auto finish = [&](std::optional<size_t> i, absl::Status s) {
      absl::MutexLock lock(&mu);
      if (i.has_value()) results[*i] = std::move(s);
      --pending;
    };
    repo_->writer().WriteAsync(
        [&](WriteTransaction&) {
          gate.WaitForNotification();
          return absl::OkStatus();
        },
        [&](absl::Status s) { finish(std::nullopt, std::move(s)); });
    for (size_t i = 0; i < fns.size(); ++i) {
      repo_->writer().WriteAsync(fns[i], [&, i](absl::Status s) { finish(i, std::move(s)); });
    }
    gate.Notify();
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(+[](size_t* p) { return *p == 0; }, &pending));
    return results;
  }

  TempDir dir_;
  std::string url_;  // PostgreSQL only
  ManualClock clock_;
  std::unique_ptr<Storage> repo_;
};

INSTANTIATE_TEST_SUITE_P(Backends, RepositoryTest,
                         ::testing::Values(Backend::kSqlite, Backend::kSqliteRerun,
                                           Backend::kPostgres),
                         BackendName);

TEST_P(RepositoryTest, SurvivesReopen) {
  Seed("inv-1", 2);
  AIR_ASSERT_OK(Decide({"inv-1-a0"}, v1::Decision::OUTCOME_APPROVED));
  Reopen();
  auto action = repo_->actions().GetAction("inv-1-a0");
  AIR_ASSERT_OK(action);
  EXPECT_EQ(action->state(), Action::STATE_APPROVED);
  auto inv = repo_->actions().GetInvestigation("inv-1");
  AIR_ASSERT_OK(inv);
  EXPECT_EQ(inv->state(), Investigation::STATE_PENDING_ACTION);  // approved, not yet run
  EXPECT_EQ(inv->action_counts().pending(), 1);
  auto bounds = repo_->events().GetEventLogBounds();
  AIR_ASSERT_OK(bounds);
  // created(inv) + 2 x action created + the first's inv state change + approve
  EXPECT_EQ(bounds->head, 1 + 2 + 1 + 1);
}

TEST_P(RepositoryTest, UnknownIdsAreNotFound) {
  EXPECT_THAT(repo_->actions().GetAction("nope"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(repo_->actions().GetInvestigation("nope"), StatusIs(absl::StatusCode::kNotFound));
  auto decided = Decide({"nope"}, v1::Decision::OUTCOME_APPROVED);
  EXPECT_THAT(decided, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(ErrorMetadata(decided.status(), "action_id"), "nope");
}

// A create of an id whose stored record is unreadable must neither treat it
// as absent nor overwrite it. SQLite answers "exists" from the primary key
// (ALREADY_EXISTS); PostgreSQL uses the default HasAction, which reads the
// record and reports its corruption (DATA_LOSS).
TEST_P(RepositoryTest, ACreateNeverOverwritesAnUnreadableRecord) {
  Seed("inv", 1);
  repo_.reset();
  ASSERT_TRUE(ExecRaw(GetParam() != Backend::kPostgres
                          ? "UPDATE actions SET body = x'ff' WHERE id = 'inv-a0'"
                          : "UPDATE actions SET body = '\\xff'::bytea WHERE id = 'inv-a0'"));
  Reopen();
  absl::Status created = repo_->writer().Write([](WriteTransaction& tx) {
    Action action;
    action.set_id("inv-a0");
    action.set_investigation_id("inv");
    action.set_type(v1::ACTION_TYPE_BLOCK_URL);
    return ProposeActionTx(tx, action, kDefaultActionTtl).status();
  });
  // Both backends answer the create from the id alone.
  EXPECT_THAT(created, StatusIs(absl::StatusCode::kAlreadyExists));
  // Still the unreadable row, not a new action.
  EXPECT_THAT(repo_->actions().GetAction("inv-a0"), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_P(RepositoryTest, ExactlyOneOfManyRacingDecidersWins) {
  Seed("inv-1", 1);
  constexpr int kDeciders = 16;
  std::atomic<int> won{0}, lost{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kDeciders; ++i) {
    threads.emplace_back([&, i] {
      auto r = Decide({"inv-1-a0"}, i % 2 ? v1::Decision::OUTCOME_APPROVED
                                          : v1::Decision::OUTCOME_REJECTED,
                      "", absl::StrCat("decider-", i));
      if (r.ok()) {
        ++won;
      } else if (r.status().code() == absl::StatusCode::kFailedPrecondition) {
        ++lost;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(lost.load(), kDeciders - 1);
  auto audit = repo_->audit().ListAudit("inv-1-a0");
  AIR_ASSERT_OK(audit);
  EXPECT_EQ(audit->size(), 1u);
}

// A batch whose middle write fails runs its other writes again. A write
// reports through its return value, and the caller gets the committed run's
// value only: here the first write ran twice and still reports one id.
TEST_P(RepositoryTest, AWriteRunTwiceReportsOnlyItsCommittedRun) {
  Seed("inv-1", 2);
  absl::Notification gate;
  repo_->writer().WriteAsync(
      [&](WriteTransaction&) {
        gate.WaitForNotification();
        return absl::OkStatus();
      },
      nullptr);
  std::atomic<int> runs{0};
  absl::Notification first_done;
  absl::StatusOr<std::vector<std::string>> first;
  repo_->writer().WriteAsync<std::vector<std::string>>(
      [&](WriteTransaction& tx) -> absl::StatusOr<std::vector<std::string>> {
        ++runs;
        std::vector<std::string> ids;
        AIR_ASSIGN_OR_RETURN(Action action, tx.actions().GetAction("inv-1-a0"));
        ids.push_back(action.id());
        return ids;
      },
      [&](absl::StatusOr<std::vector<std::string>> result) {
        first = std::move(result);
        first_done.Notify();
      });
  absl::Notification failing_done;
  absl::Status failing;
  repo_->writer().WriteAsync(
      [](WriteTransaction& tx) { return tx.actions().GetAction("no-such-action").status(); },
      [&](absl::Status status) {
        failing = std::move(status);
        failing_done.Notify();
      });
  gate.Notify();
  first_done.WaitForNotification();
  failing_done.WaitForNotification();
  EXPECT_THAT(failing, StatusIs(absl::StatusCode::kNotFound));
  AIR_ASSERT_OK(first);
  EXPECT_EQ(*first, std::vector<std::string>{"inv-1-a0"});
  EXPECT_EQ(runs.load(), 2);
}

TEST_P(RepositoryTest, BatchIsAllOrNothing) {
  Seed("inv-1", 3);
  AIR_ASSERT_OK(Decide({"inv-1-a1"}, v1::Decision::OUTCOME_REJECTED));
  auto head_before = repo_->events().GetEventLogBounds()->head;
  auto batch = Decide({"inv-1-a0", "inv-1-a1", "inv-1-a2"}, v1::Decision::OUTCOME_APPROVED);
  EXPECT_THAT(batch, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(ErrorMetadata(batch.status(), "action_id"), "inv-1-a1");
  EXPECT_EQ(repo_->actions().GetAction("inv-1-a0")->state(), Action::STATE_PENDING);
  EXPECT_EQ(repo_->events().GetEventLogBounds()->head, head_before);  // no event leaked
}

TEST_P(RepositoryTest, BatchRefusesMixedTypes) {
  Seed("inv-1", 1, v1::ACTION_TYPE_BLOCK_URL);
  Seed("inv-2", 1, v1::ACTION_TYPE_ISOLATE_DEVICE);
  auto batch = Decide({"inv-1-a0", "inv-2-a0"}, v1::Decision::OUTCOME_APPROVED);
  EXPECT_THAT(batch, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(ErrorReasonOf(batch.status()), v1::MIXED_ACTION_TYPES);
  EXPECT_EQ(repo_->actions().GetAction("inv-1-a0")->state(), Action::STATE_PENDING);
}

TEST_P(RepositoryTest, ReplayedRequestIdReturnsFirstResultUnchanged) {
  Seed("inv-1", 1);
  auto first = Decide({"inv-1-a0"}, v1::Decision::OUTCOME_APPROVED, "req-1");
  AIR_ASSERT_OK(first);
  const int64_t head = repo_->events().GetEventLogBounds()->head;
  clock_.Advance(absl::Minutes(1));
  auto again = Decide({"inv-1-a0"}, v1::Decision::OUTCOME_APPROVED, "req-1");
  AIR_ASSERT_OK(again);
  EXPECT_EQ((*again)[0].SerializeAsString(), (*first)[0].SerializeAsString());
  EXPECT_EQ(repo_->events().GetEventLogBounds()->head, head);
  auto reused = Decide({"inv-1-a0"}, v1::Decision::OUTCOME_REJECTED, "req-1");
  EXPECT_THAT(reused, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(ErrorReasonOf(reused.status()), v1::REQUEST_ID_REUSED);
}

TEST_P(RepositoryTest, AFailedWriteRollsBackAloneInItsBatch) {
  Seed("inv-1", 2);
  // Queue several writes at once so they share a commit; the middle one fails.
  std::atomic<int> pending{3};
  absl::Status results[3];
  absl::Mutex mu;
  for (int i = 0; i < 3; ++i) {
    repo_->writer().WriteAsync(
        [i](WriteTransaction& tx) -> absl::Status {
          if (i == 1) {
            v1::Event event;
            event.set_type(v1::Event::TYPE_ACTION_UPDATED);
            AIR_RETURN_IF_ERROR(tx.events().AppendEvent(event).status());
            return absl::InternalError("deliberate failure after an event");
          }
          DecideActionsInput input;
          input.ids = {absl::StrCat("inv-1-a", i / 2)};
          input.command.outcome = v1::Decision::OUTCOME_APPROVED;
          return DecideActionsTx(tx, input).status();
        },
        [&, i](absl::Status s) {
          absl::MutexLock lock(&mu);
          results[i] = s;
          --pending;
        });
  }
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(+[](std::atomic<int>* p) { return p->load() == 0; }, &pending));
  }
  AIR_ASSERT_OK(results[0]);
  EXPECT_THAT(results[1], StatusIs(absl::StatusCode::kInternal));
  AIR_ASSERT_OK(results[2]);
  // The event log has no gap where the failed write's event was.
  auto events = repo_->events().ReadEvents(0, 1000);
  AIR_ASSERT_OK(events);
  for (size_t i = 0; i < events->size(); ++i) {
    EXPECT_EQ((*events)[i].sequence(), static_cast<int64_t>(i + 1));
    EXPECT_NE((*events)[i].type(), v1::Event::TYPE_ACTION_UPDATED);
  }
}

// The writer keeps a batch's investigations in memory and writes them at
// commit; a failed write function's changes to them must roll back with it.
TEST_P(RepositoryTest, AFailedWritesInvestigationChangeRollsBackInItsBatch) {
  Seed("inv-1", 3);
  absl::Notification gate;
  absl::Mutex mu;
  int pending = 5;
  absl::Status results[5];
  int seen_in_batch_approved = -1;
  auto done = [&](int i) {
    return [&, i](absl::Status s) {
      absl::MutexLock lock(&mu);
      results[i] = s;
      --pending;
    };
  };
  // Holds the writer so that the next writes queue up and share one batch.
  repo_->writer().WriteAsync(
      [&](WriteTransaction&) -> absl::Status {
        gate.WaitForNotification();
        return absl::OkStatus();
      },
      done(0));
  auto approve = [](WriteTransaction& tx, const std::string& id) {
    DecideActionsInput input;
    input.ids = {id};
    input.command.outcome = v1::Decision::OUTCOME_APPROVED;
    return DecideActionsTx(tx, input).status();
  };
  repo_->writer().WriteAsync([&](WriteTransaction& tx) { return approve(tx, "inv-1-a0"); }, done(1));
  repo_->writer().WriteAsync(
      [&](WriteTransaction& tx) -> absl::Status {
        AIR_RETURN_IF_ERROR(approve(tx, "inv-1-a1"));
        return absl::InternalError("deliberate failure after a decision");
      },
      done(2));
  repo_->writer().WriteAsync(
      [&](WriteTransaction& tx) -> absl::Status {
        AIR_ASSIGN_OR_RETURN(Investigation inv, tx.actions().GetInvestigation("inv-1"));
        seen_in_batch_approved = inv.action_counts().approved();
        return absl::OkStatus();
      },
      done(3));
  repo_->writer().WriteAsync([&](WriteTransaction& tx) { return approve(tx, "inv-1-a2"); }, done(4));
  gate.Notify();
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(+[](int* p) { return *p == 0; }, &pending));
  }
  AIR_ASSERT_OK(results[1]);
  EXPECT_THAT(results[2], StatusIs(absl::StatusCode::kInternal));
  AIR_ASSERT_OK(results[4]);
  EXPECT_EQ(seen_in_batch_approved, 1);  // a0 only: a1's change was undone
  auto inv = repo_->actions().GetInvestigation("inv-1");
  AIR_ASSERT_OK(inv);
  EXPECT_EQ(inv->action_counts().approved(), 2);
  EXPECT_EQ(inv->action_counts().pending(), 1);
  auto a1 = repo_->actions().GetAction("inv-1-a1");
  AIR_ASSERT_OK(a1);
  EXPECT_EQ(a1->state(), Action::STATE_PENDING);
}

// A batch first runs its functions without savepoints; when one fails, the
// others run again, each isolated. Every function's effects must commit
// exactly once, a failure in the second pass must stay its own, and no
// function may run more than twice.
TEST_P(RepositoryTest, FunctionsThatRunAgainAfterAFailureCommitOnce) {
  int runs[6] = {0, 0, 0, 0, 0, 0};
  auto append = [](WriteTransaction& tx, const std::string& id) {
    v1::Event event;
    event.set_type(v1::Event::TYPE_INVESTIGATION_CREATED);
    event.mutable_investigation()->set_id(id);
    return tx.events().AppendEvent(std::move(event)).status();
  };
  std::vector<Writer::WriteFn> fns;
  for (int i = 0; i < 6; ++i) {
    fns.push_back([&, i](WriteTransaction& tx) -> absl::Status {
      ++runs[i];
      AIR_RETURN_IF_ERROR(append(tx, absl::StrCat("w", i)));
      if (i == 2) return absl::InternalError("first failure, after its event");
      // Succeeds the first time it runs, fails if it runs again: a
      // failure met only in the isolated pass must undo only itself.
      if (i == 4 && runs[i] > 1) return absl::AbortedError("failed on a re-run");
      return absl::OkStatus();
    });
  }
  const std::vector<absl::Status> results = RunInOneBatch(fns);
  EXPECT_THAT(results[2], StatusIs(absl::StatusCode::kInternal));
  std::set<std::string> committed;
  auto events = repo_->events().ReadEvents(0, 1000);
  AIR_ASSERT_OK(events);
  for (size_t i = 0; i < events->size(); ++i) {
    EXPECT_EQ((*events)[i].sequence(), static_cast<int64_t>(i + 1));  // no gap
    EXPECT_TRUE(committed.insert((*events)[i].investigation().id()).second)
        << "committed twice: " << (*events)[i].investigation().id();
  }
  EXPECT_EQ(committed.count("w2"), 0u);
  for (int i : {0, 1, 3, 5}) {
    EXPECT_TRUE(results[i].ok()) << i << ": " << results[i];
    EXPECT_EQ(committed.count(absl::StrCat("w", i)), 1u) << i;
  }
  // w4 committed if it ran once (a backend that isolates from the start),
  // and is refused with nothing committed if it ran again.
  if (runs[4] == 1) {
    EXPECT_TRUE(results[4].ok()) << results[4];
    EXPECT_EQ(committed.count("w4"), 1u);
  } else {
    EXPECT_THAT(results[4], StatusIs(absl::StatusCode::kAborted));
    EXPECT_EQ(committed.count("w4"), 0u);
  }
  for (int i = 0; i < 6; ++i) EXPECT_LE(runs[i], 2) << i;
  EXPECT_EQ(runs[2], 1);  // a function that failed does not run again
}

// Investigation changes made in place (ChangeInvestigation) and by Put, in
// functions that share a batch: a function that fails leaves none of its
// changes, however many it made, and the others keep all of theirs, once.
// Each function adds its own power of two to action_counts.total, half in
// each of two changes, so the sum names exactly what committed.
TEST_P(RepositoryTest, InvestigationChangesRollBackWithTheirFunction) {
  Seed("inv-1", 0);
  int runs[5] = {0, 0, 0, 0, 0};
  auto add = [](WriteTransaction& tx, int64_t n, bool in_place) -> absl::Status {
    if (in_place) {
      AIR_ASSIGN_OR_RETURN(const bool returned,
                           tx.actions().ChangeInvestigation("inv-1", [n](Investigation& inv) {
                             auto* counts = inv.mutable_action_counts();
                             counts->set_total(counts->total() + n);
                             return n % 2 == 0;
                           }));
      EXPECT_EQ(returned, n % 2 == 0);  // the change's answer comes back
      return absl::OkStatus();
    }
    AIR_ASSIGN_OR_RETURN(Investigation inv, tx.actions().GetInvestigation("inv-1"));
    inv.mutable_action_counts()->set_total(inv.action_counts().total() + n);
    return tx.actions().PutInvestigation(inv);
  };
  std::vector<Writer::WriteFn> fns;
  for (int i = 1; i < 5; ++i) {
    fns.push_back([&, i](WriteTransaction& tx) -> absl::Status {
      ++runs[i];
      const int64_t share = int64_t{1} << (2 * i);  // 4, 16, 64, 256
      AIR_RETURN_IF_ERROR(add(tx, share / 2, /*in_place=*/true));
      AIR_RETURN_IF_ERROR(add(tx, share / 4, /*in_place=*/i % 2 == 0));
      AIR_RETURN_IF_ERROR(add(tx, share / 4, /*in_place=*/true));
      // The first failure comes after a function that then fails only
      // when it runs again, isolated, after the others' changes.
      if (i == 2 && runs[i] > 1) return absl::AbortedError("fails on a re-run");
      if (i == 3) return absl::InternalError("fails after its changes");
      return absl::OkStatus();
    });
  }
  std::vector<absl::Status> results = RunInOneBatch(fns);
  results.insert(results.begin(), absl::OkStatus());  // index by i
  EXPECT_THAT(results[3], StatusIs(absl::StatusCode::kInternal));
  int64_t expected = 4 + 256;
  if (runs[2] == 1) {  // a backend that isolates from the start
    EXPECT_TRUE(results[2].ok()) << results[2];
    expected += 16;
  } else {
    EXPECT_THAT(results[2], StatusIs(absl::StatusCode::kAborted));
  }
  auto inv = repo_->actions().GetInvestigation("inv-1");
  AIR_ASSERT_OK(inv);
  EXPECT_EQ(inv->action_counts().total(), expected);
}

TEST_P(RepositoryTest, EventsAreGapFreeUnderConcurrentWriters) {
  Seed("inv-1", 200);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < 200; i += 4) {
        (void)Decide({absl::StrCat("inv-1-a", i)}, v1::Decision::OUTCOME_APPROVED);
      }
    });
  }
  for (auto& t : threads) t.join();
  auto events = repo_->events().ReadEvents(0, 100000);
  AIR_ASSERT_OK(events);
  for (size_t i = 0; i < events->size(); ++i) {
    ASSERT_EQ((*events)[i].sequence(), static_cast<int64_t>(i + 1));
  }
  EXPECT_EQ(repo_->actions().GetInvestigation("inv-1")->action_counts().approved(), 200);
}

TEST_P(RepositoryTest, AuditIsAppendOnly) {
  Seed("inv-1", 1);
  AIR_ASSERT_OK(Decide({"inv-1-a0"}, v1::Decision::OUTCOME_REJECTED));
  repo_.reset();
  EXPECT_FALSE(ExecRaw("UPDATE decision_audit SET decider = 'mallory'"));
  EXPECT_FALSE(ExecRaw("DELETE FROM decision_audit"));
  Reopen();
  auto audit = repo_->audit().ListAudit("inv-1-a0");
  AIR_ASSERT_OK(audit);
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].decision.decider(), "alice");
}

TEST_P(RepositoryTest, KeysetPagesAreStableWhileRowsAreInserted) {
  Seed("inv-1", 5);
  ActionQuery query;
  query.page_size = 2;
  auto page1 = repo_->actions().ListActions(query);
  AIR_ASSERT_OK(page1);
  ASSERT_EQ(page1->actions.size(), 2u);
  ASSERT_TRUE(page1->next.has_value());
  // New rows arrive (created later) while the client pages.
  clock_.Advance(absl::Seconds(1));
  Seed("inv-2", 3);
  std::vector<std::string> seen;
  for (auto& a : page1->actions) seen.push_back(a.id());
  query.after = page1->next;
  while (true) {
    auto page = repo_->actions().ListActions(query);
    AIR_ASSERT_OK(page);
    for (auto& a : page->actions) seen.push_back(a.id());
    if (!page->next) break;
    query.after = page->next;
  }
  ASSERT_EQ(seen.size(), 8u);
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), 8u);
}

TEST_P(RepositoryTest, FiltersUseTheRightRows) {
  Seed("inv-1", 3, v1::ACTION_TYPE_BLOCK_URL);
  Seed("inv-2", 2, v1::ACTION_TYPE_ISOLATE_DEVICE);
  AIR_ASSERT_OK(Decide({"inv-2-a0"}, v1::Decision::OUTCOME_APPROVED));
  ActionQuery query;
  query.page_size = 100;
  query.filter.state = Action::STATE_PENDING;
  query.filter.type = v1::ACTION_TYPE_ISOLATE_DEVICE;
  auto page = repo_->actions().ListActions(query);
  AIR_ASSERT_OK(page);
  ASSERT_EQ(page->actions.size(), 1u);
  EXPECT_EQ(page->actions[0].id(), "inv-2-a1");
  query.filter = ActionFilter{};
  query.filter.investigation_id = "inv-1";
  EXPECT_EQ(repo_->actions().ListActions(query)->actions.size(), 3u);
}

TEST_P(RepositoryTest, ExpirySweeperUsesTheInjectedClock) {
  Seed("inv-1", 2);
  ExpirySweeper sweeper(repo_->writer());
  clock_.Advance(kDefaultActionTtl - absl::Seconds(1));
  EXPECT_EQ(*sweeper.RunOnce(), 0);
  // A decision in the last second still counts.
  AIR_ASSERT_OK(Decide({"inv-1-a0"}, v1::Decision::OUTCOME_APPROVED));
  clock_.Advance(absl::Seconds(1));
  // After the deadline a late decision loses to expiry...
  auto late = Decide({"inv-1-a1"}, v1::Decision::OUTCOME_APPROVED);
  EXPECT_THAT(late, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(ErrorMetadata(late.status(), "state"), "STATE_EXPIRED");
  // ...and the sweeper records it.
  EXPECT_EQ(*sweeper.RunOnce(), 1);
  auto action = repo_->actions().GetAction("inv-1-a1");
  EXPECT_EQ(action->state(), Action::STATE_EXPIRED);
  EXPECT_EQ(action->decision().source(), v1::Decision::SOURCE_EXPIRY);
  EXPECT_EQ(repo_->actions().GetInvestigation("inv-1")->state(),
            Investigation::STATE_TERMINATED_BY_SYSTEM);
  EXPECT_EQ(*sweeper.RunOnce(), 0);
}

TEST_P(RepositoryTest, RetentionPrunesByAgeAndCapButKeepsTheHead) {
  Seed("inv-1", 10);  // 1 + 10 + 1 = 12 events
  clock_.Advance(absl::Hours(1));
  Seed("inv-2", 1);   // 3 more, newer
  EventRetention by_age(repo_->writer(), absl::Minutes(30), 1'000'000);
  EXPECT_EQ(*by_age.RunOnce(), 12);
  auto bounds = repo_->events().GetEventLogBounds();
  EXPECT_EQ(bounds->first_retained, 13);
  EXPECT_EQ(bounds->head, 15);
  EventRetention by_cap(repo_->writer(), absl::Hours(1000), 1);
  EXPECT_EQ(*by_cap.RunOnce(), 2);
  EXPECT_EQ(repo_->events().GetEventLogBounds()->first_retained, 15);
  Reopen();  // the head survives even when most of the log is gone
  EXPECT_EQ(repo_->events().GetEventLogBounds()->head, 15);
}

// The bulk version calls a sync page uses agree with the single-record ones,
// across more ids than one statement takes (the SQLite backend works in
// chunks of 128, the last one padded), with kinds kept apart.
TEST_P(RepositoryTest, BulkUpstreamVersionsAgreeWithSingleOnes) {
  std::vector<std::pair<std::string, int64_t>> written;
  for (int i = 0; i < 300; ++i) written.emplace_back(absl::StrCat("a-", 1000 + i), i + 1);
  AIR_ASSERT_OK(repo_->writer().Write([&](WriteTransaction& tx) -> absl::Status {
    AIR_RETURN_IF_ERROR(tx.upstream().SetUpstreamVersions(UpstreamKind::kAction, written));
    AIR_RETURN_IF_ERROR(tx.upstream().SetUpstreamVersion(UpstreamKind::kInvestigation, "a-1000", 77));
    // A later bulk write replaces what it names and nothing else.
    return tx.upstream().SetUpstreamVersions(UpstreamKind::kAction, {{"a-1001", 500}, {"a-new", 9}});
  }));
  AIR_ASSERT_OK(repo_->writer().Write([&](WriteTransaction& tx) -> absl::Status {
    std::vector<std::string> ids = {"a-missing", "a-new"};
    for (const auto& [id, version] : written) ids.push_back(id);
    std::map<std::string, int64_t> found;
    AIR_RETURN_IF_ERROR(tx.upstream().GetUpstreamVersions(UpstreamKind::kAction, ids, found));
    EXPECT_EQ(found.size(), 301u);
    EXPECT_EQ(found.count("a-missing"), 0u);
    EXPECT_EQ(found["a-new"], 9);
    EXPECT_EQ(found["a-1000"], 1);
    EXPECT_EQ(found["a-1001"], 500);
    EXPECT_EQ(found["a-1299"], 300);
    for (const std::string& id : {"a-1000", "a-1001", "a-1150", "a-missing"}) {
      AIR_ASSIGN_OR_RETURN(std::optional<int64_t> single,
                           tx.upstream().GetUpstreamVersion(UpstreamKind::kAction, id));
      EXPECT_EQ(single.has_value(), found.count(id) == 1) << id;
      if (single.has_value()) {
        EXPECT_EQ(*single, found[id]) << id;
      }
    }
    std::map<std::string, int64_t> investigations;
    AIR_RETURN_IF_ERROR(
        tx.upstream().GetUpstreamVersions(UpstreamKind::kInvestigation, ids, investigations));
    EXPECT_EQ(investigations, (std::map<std::string, int64_t>{{"a-1000", 77}}));
    std::map<std::string, int64_t> none;
    AIR_RETURN_IF_ERROR(tx.upstream().GetUpstreamVersions(UpstreamKind::kAction, {}, none));
    EXPECT_TRUE(none.empty());
    return absl::OkStatus();
  }));
}

// Writes `transactions` commits of 20 investigations each (several WAL pages
// per commit) through `repo`.
void WriteInvestigations(Storage& repo, int transactions) {
  for (int t = 0; t < transactions; ++t) {
    AIR_ASSERT_OK(repo.writer().Write([t](WriteTransaction& tx) {
      for (int i = 0; i < 20; ++i) {
        Investigation inv;
        inv.set_id(absl::StrCat("inv-", t, "-", i));
        inv.set_display_name(std::string(400, 'x'));
        AIR_RETURN_IF_ERROR(CreateInvestigationTx(tx, inv));
      }
      return absl::OkStatus();
    }));
  }
}

TEST(SqliteCheckpoint, RunsOnTheBackgroundThreadAndLosesNothing) {
  TempDir dir;
  absl::Notification copied;
  SqliteOptions options;
  options.path = dir.File("air.db");
  options.checkpoint_pages = 16;
  options.on_checkpoint = [&](int /*log_pages*/, int copied_pages) {
    if (copied_pages > 0 && !copied.HasBeenNotified()) copied.Notify();
  };
  {
    auto repo = OpenSqliteStorage(options);
    AIR_ASSERT_OK(repo);
    WriteInvestigations(**repo, 40);
    EXPECT_TRUE(copied.WaitForNotificationWithTimeout(absl::Seconds(30)));
    auto page = (*repo)->actions().ListInvestigations(InvestigationQuery{});
    AIR_ASSERT_OK(page);
  }
  options.on_checkpoint = nullptr;
  auto reopened = OpenSqliteStorage(options);
  AIR_ASSERT_OK(reopened);
  auto inv = (*reopened)->actions().GetInvestigation("inv-39-19");
  AIR_ASSERT_OK(inv);
  EXPECT_EQ(inv->display_name(), std::string(400, 'x'));
}

// The writer's fallback bounds the log when background checkpoints do not
// happen: the WAL file stops growing (the log restarts from its beginning)
// instead of holding every commit.
TEST(SqliteCheckpoint, TheWriterFallbackBoundsTheLog) {
  auto wal_bytes_after = [](const std::string& dir_path, int fallback_pages) {
    SqliteOptions options;
    options.path = dir_path + "/air.db";
    options.checkpoint_pages = 1'000'000'000;  // the background thread never runs
    options.checkpoint_writer_fallback_pages = fallback_pages;
    auto repo = OpenSqliteStorage(options);
    EXPECT_TRUE(repo.ok()) << repo.status();
    WriteInvestigations(**repo, 60);
    return std::filesystem::file_size(options.path + "-wal");
  };
  TempDir bounded_dir, unbounded_dir;
  const auto bounded = wal_bytes_after(bounded_dir.path(), 32);
  const auto unbounded = wal_bytes_after(unbounded_dir.path(), 1'000'000'000);
  EXPECT_LT(bounded, 64u * 4096 + 64 * 1024) << "fallback at 32 pages";
  EXPECT_GT(unbounded, 3 * bounded);
}

TEST(RepositoryOpen, RefusesAFileThatIsNotADatabase) {
  TempDir dir;
  std::ofstream(dir.File("junk.db")) << std::string(8192, 'x');
  SqliteOptions options;
  options.path = dir.File("junk.db");
  auto repo = OpenSqliteStorage(options);
  EXPECT_THAT(repo, StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(RepositoryOpen, RefusesATruncatedDatabase) {
  TempDir dir;
  {
    SqliteOptions options;
    options.path = dir.File("air.db");
    auto repo = OpenSqliteStorage(options);
    AIR_ASSERT_OK(repo);
    AIR_ASSERT_OK((*repo)->writer().Write([](WriteTransaction& tx) {
      for (int i = 0; i < 200; ++i) {
        Investigation inv;
        inv.set_id(absl::StrCat("inv-", i));
        inv.set_display_name(std::string(500, 'x'));
        AIR_RETURN_IF_ERROR(CreateInvestigationTx(tx, inv));
      }
      return absl::OkStatus();
    }));
  }
  // Checkpointed on close; now cut the file in half.
  const auto size = std::filesystem::file_size(dir.File("air.db"));
  std::filesystem::resize_file(dir.File("air.db"), size / 2);
  SqliteOptions options;
  options.path = dir.File("air.db");
  EXPECT_THAT(OpenSqliteStorage(options),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(RepositoryOpen, RefusesANewerSchema) {
  TempDir dir;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.File("air.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 999", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  SqliteOptions options;
  options.path = dir.File("air.db");
  EXPECT_THAT(OpenSqliteStorage(options),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(RepositoryOpen, MissingDirectoryIsAClearError) {
  SqliteOptions options;
  options.path = "/nonexistent-dir/air.db";
  auto repo = OpenSqliteStorage(options);
  EXPECT_THAT(repo, StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace air
