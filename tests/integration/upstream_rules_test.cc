// The pieces under upstream sync, each on its own: the reconciliation and
// duplicate rules, record validation, backoff, the storage added for sync
// (versions, cursors, the decision outbox, the v1 -> v2 migration) and the
// simulator's contract. Kept beside the sync integration test because the
// unit-test directory belongs to another area.
#include <sqlite3.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "domain/backoff.h"
#include "domain/errors.h"
#include "domain/status_macros.h"
#include "domain/upstream_sync.h"
#include "service/action_commands.h"
#include "service/upstream_commands.h"
#include "service/upstream_sync_worker.h"
#include "sim/upstream_simulator.h"
#include "storage/sqlite_storage.h"
#include "storage/sqlite_schema.h"
#include "storage/write_behind_transaction.h"
#include "tests/support/test_support.h"

namespace air {
namespace {

using testing::StatusIs;
using testing::TempDir;
using v1::Action;
using v1::Investigation;

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

// ---- Reconciliation plans ---------------------------------------------------

TEST(PlanActionSyncTest, WalksOnlyLegalSteps) {
  using S = Action;
  struct Case {
    ActionState local, remote;
    std::vector<ActionState> steps;
    bool conflict;
  };
  const std::vector<Case> cases = {
      {S::STATE_PENDING, S::STATE_PENDING, {}, false},
      {S::STATE_PENDING, S::STATE_APPROVED, {S::STATE_APPROVED}, false},
      {S::STATE_PENDING, S::STATE_COMPLETED, {S::STATE_APPROVED, S::STATE_COMPLETED}, false},
      {S::STATE_PENDING, S::STATE_FAILED, {S::STATE_APPROVED, S::STATE_FAILED}, false},
      {S::STATE_PENDING, S::STATE_EXPIRED, {S::STATE_EXPIRED}, false},
      {S::STATE_APPROVED, S::STATE_PENDING, {}, false},  // our approval in flight
      {S::STATE_APPROVED, S::STATE_RUNNING, {S::STATE_RUNNING}, false},
      {S::STATE_APPROVED, S::STATE_REJECTED, {S::STATE_CANCELLED}, true},
      {S::STATE_RUNNING, S::STATE_APPROVED, {}, false},  // an older report
      {S::STATE_RUNNING, S::STATE_FAILED, {S::STATE_FAILED}, false},
      {S::STATE_REJECTED, S::STATE_PENDING, {}, false},
      {S::STATE_REJECTED, S::STATE_COMPLETED, {}, true},  // ran despite our rejection
      {S::STATE_COMPLETED, S::STATE_RUNNING, {}, false},
      {S::STATE_EXPIRED, S::STATE_APPROVED, {}, true},
  };
  for (const Case& c : cases) {
    const ActionSyncPlan plan = PlanActionSync(c.local, c.remote);
    EXPECT_EQ(plan.steps, c.steps) << S::State_Name(c.local) << " -> " << S::State_Name(c.remote);
    EXPECT_EQ(plan.conflict, c.conflict) << S::State_Name(c.local) << " -> "
                                         << S::State_Name(c.remote);
    ActionState at = c.local;
    for (ActionState step : plan.steps) {
      EXPECT_TRUE(CheckActionTransition(at, step).ok());
      at = step;
    }
  }
}

// ---- Validation -------------------------------------------------------------

upstream::v1::Action GoodAction() {
  upstream::v1::Action a;
  a.set_id("up-1");
  a.set_version(1);
  a.set_investigation_id("inv-1");
  a.set_type(v1::ACTION_TYPE_BLOCK_URL);
  a.set_state(Action::STATE_PENDING);
  a.mutable_target()->set_kind(v1::Entity::KIND_URL);
  a.mutable_target()->set_identifier("https://phish.example.com/x");
  return a;
}

TEST(ValidateUpstreamTest, RefusesEachKindOfMalformedRecord) {
  EXPECT_TRUE(ValidateUpstreamAction(GoodAction()).ok());
  std::vector<std::pair<std::string, std::function<void(upstream::v1::Action&)>>> faults = {
      {"missing id", [](auto& a) { a.clear_id(); }},
      {"bad id", [](auto& a) { a.set_id("has space"); }},
      {"version 0", [](auto& a) { a.set_version(0); }},
      {"missing investigation", [](auto& a) { a.clear_investigation_id(); }},
      {"unknown type", [](auto& a) { a.set_type(static_cast<v1::ActionType>(999)); }},
      {"unspecified type", [](auto& a) { a.set_type(v1::ACTION_TYPE_UNSPECIFIED); }},
      {"unknown state", [](auto& a) { a.set_state(static_cast<Action::State>(77)); }},
      {"unknown kind",
       [](auto& a) { a.mutable_target()->set_kind(static_cast<v1::Entity::Kind>(55)); }},
      {"long identifier",
       [](auto& a) { a.mutable_target()->set_identifier(std::string(2049, 'x')); }},
      {"long failure reason", [](auto& a) { a.set_failure_reason(std::string(1025, 'x')); }},
      {"invalid UTF-8",
       [](auto& a) { a.mutable_target()->set_display_name(std::string("\xff\xfe", 2)); }},
  };
  for (auto& [name, break_it] : faults) {
    upstream::v1::Action a = GoodAction();
    break_it(a);
    absl::Status s = ValidateUpstreamAction(a);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument)) << name;
    EXPECT_EQ(ErrorReasonOf(s), v1::MALFORMED_UPSTREAM_RECORD) << name;
  }
  // 2048 characters (not bytes) is still fine.
  upstream::v1::Action longest = GoodAction();
  std::string identifier;
  for (int i = 0; i < 2048; ++i) identifier += "\xc3\xa9";  // é
  longest.mutable_target()->set_identifier(identifier);
  EXPECT_TRUE(ValidateUpstreamAction(longest).ok());

  upstream::v1::Investigation inv;
  inv.set_id("inv-1");
  inv.set_version(3);
  inv.set_state(Investigation::STATE_RUNNING);
  EXPECT_TRUE(ValidateUpstreamInvestigation(inv).ok());
  inv.set_display_name(std::string(513, 'x'));
  EXPECT_THAT(ValidateUpstreamInvestigation(inv), StatusIs(absl::StatusCode::kInvalidArgument));
  inv.clear_display_name();
  inv.set_state(Investigation::STATE_UNSPECIFIED);
  EXPECT_THAT(ValidateUpstreamInvestigation(inv), StatusIs(absl::StatusCode::kInvalidArgument));
}

// ---- Duplicate rule ---------------------------------------------------------

TEST(DuplicateRuleTest, SameTargetWithinAnHourUnlessTheOriginalFailed) {
  Action original;
  original.set_id("a-1");
  original.set_type(v1::ACTION_TYPE_BLOCK_URL);
  original.mutable_target()->set_identifier("https://x.example");
  original.set_state(Action::STATE_APPROVED);
  Action other = original;
  other.set_id("a-2");
  EXPECT_EQ(DuplicateTargetKey(original), DuplicateTargetKey(other));
  other.set_type(v1::ACTION_TYPE_SOFT_DELETE_EMAIL);
  EXPECT_NE(DuplicateTargetKey(original), DuplicateTargetKey(other));
  other.mutable_target()->clear_identifier();
  EXPECT_EQ(DuplicateTargetKey(other), "");

  EXPECT_TRUE(IsDuplicateApproval(original, kStart, kStart + absl::Minutes(59), "a-2"));
  EXPECT_FALSE(IsDuplicateApproval(original, kStart, kStart + absl::Minutes(60), "a-2"));
  EXPECT_FALSE(IsDuplicateApproval(original, kStart, kStart, "a-1"));  // itself
  original.set_state(Action::STATE_COMPLETED);
  EXPECT_TRUE(IsDuplicateApproval(original, kStart, kStart + absl::Minutes(5), "a-2"));
  original.set_state(Action::STATE_FAILED);
  EXPECT_FALSE(IsDuplicateApproval(original, kStart, kStart + absl::Minutes(5), "a-2"));
}

// ---- Backoff ----------------------------------------------------------------

TEST(BackoffTest, GrowsWithJitterToTheCapAndNeverSpins) {
  Backoff backoff(BackoffPolicy{absl::Milliseconds(100), absl::Seconds(10), 2.0, 0.5}, 42);
  absl::Duration nominal = absl::Milliseconds(100);
  for (int i = 0; i < 100; ++i) {
    const absl::Duration d = backoff.NextDelay();
    EXPECT_LE(d, nominal);
    EXPECT_GE(d, nominal / 2);
    nominal = std::min(nominal * 2, absl::Seconds(10));
  }
  EXPECT_EQ(backoff.failures(), 100);
  backoff.Reset();
  EXPECT_LE(backoff.NextDelay(), absl::Milliseconds(100));

  Backoff zero(BackoffPolicy{absl::ZeroDuration(), absl::ZeroDuration(), 0, 1.0});
  for (int i = 0; i < 10; ++i) EXPECT_GT(zero.NextDelay(), absl::ZeroDuration());
}

// ---- Storage for sync -------------------------------------------------------

class SyncStorageTest : public ::testing::Test {
 protected:
  SyncStorageTest() : clock_(kStart) {}
  void SetUp() override { Reopen(); }
  void Reopen() {
    repo_.reset();
    SqliteOptions options;
    options.path = dir_.File("air.db");
    options.clock = &clock_;
    auto repo = OpenSqliteStorage(options);
    ASSERT_TRUE(repo.ok()) << repo.status();
    repo_ = std::move(*repo);
  }
  OutboxDecision Decision(const std::string& action_id) {
    OutboxDecision d;
    d.request_id = DecisionRequestId(action_id);
    d.action_id = action_id;
    d.decision.set_outcome(v1::Decision::OUTCOME_APPROVED);
    d.decision.set_decider("alice");
    d.upstream_version = 3;
    return d;
  }

  TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<Storage> repo_;
};

TEST_F(SyncStorageTest, OutboxKeepsOrderSurvivesReopenAndRefusesASecondDecision) {
  AIR_ASSERT_OK(repo_->writer().Write([&](WriteTransaction& tx) -> absl::Status {
    for (const char* id : {"b", "a", "c"}) {
      AIR_RETURN_IF_ERROR(tx.outbox().EnqueueDecision(Decision(id)).status());
    }
    return absl::OkStatus();
  }));
  absl::Status again = repo_->writer().Write([&](WriteTransaction& tx) {
    return tx.outbox().EnqueueDecision(Decision("a")).status();
  });
  EXPECT_THAT(again, StatusIs(absl::StatusCode::kAlreadyExists));

  Reopen();
  auto rows = repo_->outbox().ReadDecisionOutbox(10);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].action_id, "b");
  EXPECT_EQ((*rows)[1].action_id, "a");
  EXPECT_EQ((*rows)[2].action_id, "c");
  EXPECT_EQ((*rows)[0].request_id, "air-decision-b");
  EXPECT_EQ((*rows)[0].upstream_version, 3);
  EXPECT_EQ((*rows)[0].enqueue_time, kStart);
  EXPECT_EQ(repo_->outbox().GetDecisionOutboxStats()->backlog, 3);

  AIR_ASSERT_OK(repo_->writer().Write([&](WriteTransaction& tx) {
    return tx.outbox().MarkDecisionDelivered((*rows)[0].position, "acknowledged");
  }));
  AIR_ASSERT_OK(repo_->writer().Write([&](WriteTransaction& tx) {  // again: no change
    return tx.outbox().MarkDecisionDelivered((*rows)[0].position, "acknowledged");
  }));
  EXPECT_THAT(repo_->writer().Write([&](WriteTransaction& tx) {
    return tx.outbox().MarkDecisionDelivered(999, "x");
  }),
              StatusIs(absl::StatusCode::kNotFound));
  auto left = repo_->outbox().ReadDecisionOutbox(10);
  ASSERT_EQ(left->size(), 2u);
  EXPECT_EQ(left->front().action_id, "a");
  EXPECT_EQ(repo_->outbox().GetDecisionOutboxStats()->backlog, 2);
}

TEST_F(SyncStorageTest, VersionsAndCursorsCommitWithTheirWrite) {
  EXPECT_EQ(*repo_->upstream().GetSyncCursor("upstream"), "");
  absl::Status failed = repo_->writer().Write([&](WriteTransaction& tx) -> absl::Status {
    AIR_RETURN_IF_ERROR(tx.upstream().SetSyncCursor("upstream", "c1.x.5"));
    AIR_RETURN_IF_ERROR(tx.upstream().SetUpstreamVersion(UpstreamKind::kAction, "a-1", 4));
    return absl::AbortedError("the page failed");
  });
  EXPECT_THAT(failed, StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(*repo_->upstream().GetSyncCursor("upstream"), "");  // rolled back together
  AIR_ASSERT_OK(repo_->writer().Write([&](WriteTransaction& tx) -> absl::Status {
    EXPECT_FALSE(tx.upstream().GetUpstreamVersion(UpstreamKind::kAction, "a-1")->has_value());
    AIR_RETURN_IF_ERROR(tx.upstream().SetSyncCursor("upstream", "c1.x.5"));
    return tx.upstream().SetUpstreamVersion(UpstreamKind::kAction, "a-1", 4);
  }));
  Reopen();
  EXPECT_EQ(*repo_->upstream().GetSyncCursor("upstream"), "c1.x.5");
  AIR_ASSERT_OK(repo_->writer().Write([&](WriteTransaction& tx) -> absl::Status {
    EXPECT_EQ(tx.upstream().GetUpstreamVersion(UpstreamKind::kAction, "a-1")->value_or(0), 4);
    // Kinds are separate namespaces.
    EXPECT_FALSE(tx.upstream().GetUpstreamVersion(UpstreamKind::kInvestigation, "a-1")->has_value());
    return absl::OkStatus();
  }));
}

// A sync page reads its records' versions in one bulk call up front; the
// per-record reads after it come from memory, and the page's new versions
// are written back in bulk by Flush.
TEST_F(SyncStorageTest, WriteBehindServesPrefetchedVersionsAndWritesThemInBulk) {
  AIR_ASSERT_OK(repo_->writer().Write([&](WriteTransaction& tx) -> absl::Status {
    return tx.upstream().SetUpstreamVersions(UpstreamKind::kAction, {{"a-1", 3}, {"a-2", 5}});
  }));
  AIR_ASSERT_OK(repo_->writer().Write([&](WriteTransaction& tx) -> absl::Status {
    WriteBehindTransaction buffered(tx);
    AIR_RETURN_IF_ERROR(buffered.PrefetchUpstreamVersions(
        UpstreamKind::kAction, {"a-2", "a-1", "a-3", "a-1"}));
    // Changed underneath, after the prefetch: the buffer still answers.
    AIR_RETURN_IF_ERROR(tx.upstream().SetUpstreamVersion(UpstreamKind::kAction, "a-1", 100));
    AIR_RETURN_IF_ERROR(tx.upstream().SetUpstreamVersion(UpstreamKind::kAction, "a-3", 100));
    EXPECT_EQ(buffered.upstream().GetUpstreamVersion(UpstreamKind::kAction, "a-1")->value_or(0), 3);
    EXPECT_FALSE(buffered.upstream().GetUpstreamVersion(UpstreamKind::kAction, "a-3")->has_value());
    EXPECT_EQ(buffered.upstream().GetUpstreamVersion(UpstreamKind::kAction, "a-2")->value_or(0), 5);
    // Not prefetched: read through.
    EXPECT_FALSE(buffered.upstream().GetUpstreamVersion(UpstreamKind::kInvestigation, "a-1")->has_value());
    AIR_RETURN_IF_ERROR(buffered.upstream().SetUpstreamVersion(UpstreamKind::kAction, "a-2", 6));
    AIR_RETURN_IF_ERROR(buffered.upstream().SetUpstreamVersion(UpstreamKind::kAction, "a-4", 1));
    AIR_RETURN_IF_ERROR(buffered.upstream().SetUpstreamVersion(UpstreamKind::kInvestigation, "i-1", 2));
    EXPECT_FALSE(tx.upstream().GetUpstreamVersion(UpstreamKind::kAction, "a-4")->has_value());
    return buffered.Flush();
  }));
  AIR_ASSERT_OK(repo_->writer().Write([&](WriteTransaction& tx) -> absl::Status {
    std::map<std::string, int64_t> actions, investigations;
    AIR_RETURN_IF_ERROR(
        tx.upstream().GetUpstreamVersions(UpstreamKind::kAction, {"a-1", "a-2", "a-3", "a-4"}, actions));
    AIR_RETURN_IF_ERROR(
        tx.upstream().GetUpstreamVersions(UpstreamKind::kInvestigation, {"i-1"}, investigations));
    // a-1 and a-3 keep what was written underneath: the buffer wrote only
    // what was set through it.
    EXPECT_EQ(actions, (std::map<std::string, int64_t>{
                           {"a-1", 100}, {"a-2", 6}, {"a-3", 100}, {"a-4", 1}}));
    EXPECT_EQ(investigations, (std::map<std::string, int64_t>{{"i-1", 2}}));
    return absl::OkStatus();
  }));
}

// Every write transaction keeps investigations in memory until its commit,
// so the decorator and the transaction under it see one copy.
TEST_F(SyncStorageTest, InvestigationsAreBufferedUntilCommitButEveryEventIsKept) {
  AIR_ASSERT_OK(repo_->writer().Write([&](WriteTransaction& tx) -> absl::Status {
    WriteBehindTransaction buffered(tx);
    Investigation inv;
    inv.set_id("inv-1");
    inv.set_state(Investigation::STATE_RUNNING);
    AIR_RETURN_IF_ERROR(CreateInvestigationTx(buffered, inv));
    for (int i = 0; i < 3; ++i) {
      Action a;
      a.set_id(absl::StrCat("inv-1-a", i));
      a.set_investigation_id("inv-1");
      a.set_type(v1::ACTION_TYPE_BLOCK_URL);
      AIR_RETURN_IF_ERROR(ProposeActionTx(buffered, a, kDefaultActionTtl).status());
    }
    absl::StatusOr<Investigation> buffered_copy = tx.actions().GetInvestigation("inv-1");
    EXPECT_TRUE(buffered_copy.ok());
    EXPECT_EQ(buffered_copy->action_counts().pending(), 3);
    return buffered.Flush();
  }));
  absl::StatusOr<Investigation> inv = repo_->actions().GetInvestigation("inv-1");
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->action_counts().pending(), 3);
  EXPECT_EQ(inv->state(), Investigation::STATE_PENDING_ACTION);
  auto events = repo_->events().ReadEvents(0, 100);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 5u);  // created, 3 actions, one state change
}

TEST(SchemaMigrationTest, AVersionOneDatabaseGainsTheSyncTables) {
  TempDir dir;
  const std::string path = dir.File("old.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, sqlite::kMigrations[0].sql, nullptr, nullptr, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 1", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  SqliteOptions options;
  options.path = path;
  auto repo = OpenSqliteStorage(options);
  ASSERT_TRUE(repo.ok()) << repo.status();
  EXPECT_GE(SqliteSchemaVersion(), 2);
  EXPECT_EQ((*repo)->outbox().GetDecisionOutboxStats()->backlog, 0);
  EXPECT_EQ(*(*repo)->upstream().GetSyncCursor("upstream"), "");
}

// Migration 3 rebuilds the audit and the decision outbox without
// AUTOINCREMENT: what they held survives, keys keep growing from the last
// one, and the audit stays append-only.
TEST(SchemaMigrationTest, AVersionTwoDatabaseKeepsItsAuditAndOutbox) {
  TempDir dir;
  const std::string path = dir.File("v2.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(sqlite3_exec(db, sqlite::kMigrations[i].sql, nullptr, nullptr, nullptr),
                SQLITE_OK);
    }
    const char* rows = R"sql(
      INSERT INTO decision_audit (id, action_id, investigation_id, from_state, to_state,
        outcome, source, decider, comment, policy_rule, request_id, decide_us)
        VALUES (41, 'a-1', 'inv-1', 1, 2, 1, 1, 'alice', 'ok', '', 'r-1', 1000);
      INSERT INTO decision_outbox (position, request_id, action_id, outcome, source, decider,
        comment, decide_us, duplicate_of, upstream_version, enqueue_us)
        VALUES (7, 'air-decision-a-1', 'a-1', 1, 1, 'alice', 'ok', 1000, '', 3, 1000);
      PRAGMA user_version = 2;)sql";
    ASSERT_EQ(sqlite3_exec(db, rows, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  {
    SqliteOptions options;
    options.path = path;
    auto repo = OpenSqliteStorage(options);
    ASSERT_TRUE(repo.ok()) << repo.status();
    auto audit = (*repo)->audit().ListAudit("a-1");
    ASSERT_TRUE(audit.ok()) << audit.status();
    ASSERT_EQ(audit->size(), 1u);
    EXPECT_EQ((*audit)[0].decision.decider(), "alice");
    auto outbox = (*repo)->outbox().ReadDecisionOutbox(10);
    ASSERT_TRUE(outbox.ok()) << outbox.status();
    ASSERT_EQ(outbox->size(), 1u);
    EXPECT_EQ((*outbox)[0].position, 7);
    EXPECT_EQ((*outbox)[0].upstream_version, 3);
    ASSERT_TRUE((*repo)->writer().Write([](WriteTransaction& tx) -> absl::Status {
      AuditRecord record{"a-2", "inv-1", Action::STATE_PENDING, Action::STATE_REJECTED,
                         v1::Decision(), ""};
      AIR_RETURN_IF_ERROR(tx.audit().AppendAudit(record));
      OutboxDecision decision;
      decision.request_id = "air-decision-a-2";
      decision.action_id = "a-2";
      AIR_ASSIGN_OR_RETURN(int64_t position, tx.outbox().EnqueueDecision(decision));
      if (position != 8) return absl::InternalError(absl::StrCat("position ", position));
      return absl::OkStatus();
    }).ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  auto query_int = [&](const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    const int64_t value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
  };
  EXPECT_EQ(query_int("PRAGMA user_version"), SqliteSchemaVersion());
  EXPECT_EQ(query_int("SELECT MAX(id) FROM decision_audit"), 42);
  EXPECT_EQ(query_int("SELECT COUNT(*) FROM sqlite_sequence"), 0);
  EXPECT_EQ(sqlite3_exec(db, "DELETE FROM decision_audit", nullptr, nullptr, nullptr),
            SQLITE_CONSTRAINT);
  EXPECT_EQ(sqlite3_exec(db, "UPDATE decision_audit SET comment = 'x'", nullptr, nullptr,
                         nullptr),
            SQLITE_CONSTRAINT);
  sqlite3_close(db);
}

// ---- Decisions on upstream actions enter the outbox -------------------------

TEST_F(SyncStorageTest, OnlyDecisionsOnUpstreamActionsAreQueuedOnce) {
  upstream::v1::Investigation inv;
  inv.set_id("inv-9");
  inv.set_version(1);
  inv.set_state(Investigation::STATE_RUNNING);
  upstream::v1::Action synced = GoodAction();
  synced.set_investigation_id("inv-9");
  AIR_ASSERT_OK(repo_->writer().Write([&](WriteTransaction& tx) -> absl::Status {
    AIR_ASSIGN_OR_RETURN(SyncRecordResult r, SyncInvestigationTx(tx, inv));
    EXPECT_EQ(r.outcome, SyncOutcome::kApplied);
    AIR_ASSIGN_OR_RETURN(r, SyncActionTx(tx, synced, kDefaultActionTtl));
    EXPECT_EQ(r.outcome, SyncOutcome::kApplied);
    AIR_ASSIGN_OR_RETURN(r, SyncActionTx(tx, synced, kDefaultActionTtl));
    EXPECT_EQ(r.outcome, SyncOutcome::kStale);  // the same version again
    Action local;
    local.set_id("local-1");
    local.set_investigation_id("inv-9");
    local.set_type(v1::ACTION_TYPE_BLOCK_URL);
    return ProposeActionTx(tx, local, kDefaultActionTtl).status();
  }));
  for (const char* id : {"up-1", "local-1"}) {
    DecideActionsInput input;
    input.ids = {id};
    input.command.outcome = v1::Decision::OUTCOME_REJECTED;
    input.command.decider = "alice";
    AIR_ASSERT_OK(repo_->writer().Write([&](WriteTransaction& tx) {
      return DecideActionsTx(tx, input).status();
    }));
  }
  auto rows = repo_->outbox().ReadDecisionOutbox(10);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);  // the local action has nobody to tell
  EXPECT_EQ(rows->front().action_id, "up-1");
  EXPECT_EQ(rows->front().decision.outcome(), v1::Decision::OUTCOME_REJECTED);
  EXPECT_EQ(rows->front().upstream_version, 1);
}

// ---- The sync worker against a fake upstream --------------------------------

// Refuses pages larger than `max_page` with RESOURCE_EXHAUSTED (a reply too
// large for the channel, or a vendor's 429), and otherwise serves one new
// investigation per call.
class ThrottlingUpstream final : public UpstreamClient {
 public:
  explicit ThrottlingUpstream(int max_page) : max_page_(max_page) {}
  absl::StatusOr<upstream::v1::ListChangesResponse> ListChanges(
      const upstream::v1::ListChangesRequest& request, absl::Duration) override {
    asked.push_back(request.page_size());
    cursors.push_back(request.cursor());
    if (request.page_size() > max_page_) return absl::ResourceExhaustedError("too large");
    if (forget_cursors && !request.cursor().empty()) {
      forget_cursors = false;  // like an upstream that lost its change log once
      return absl::OutOfRangeError("cannot resume from that cursor");
    }
    upstream::v1::ListChangesResponse page;
    upstream::v1::Investigation* inv = page.add_changes()->mutable_investigation();
    inv->set_id(absl::StrCat("inv-", ++served_));
    inv->set_version(1);
    inv->set_state(Investigation::STATE_RUNNING);
    page.set_next_cursor(absl::StrCat("c", served_));
    return page;
  }
  absl::StatusOr<upstream::v1::SubmitDecisionResponse> SubmitDecision(
      const upstream::v1::SubmitDecisionRequest&, absl::Duration) override {
    return absl::UnimplementedError("not used");
  }
  std::vector<int> asked;
  std::vector<std::string> cursors;
  bool forget_cursors = false;

 private:
  const int max_page_;
  int served_ = 0;
};

TEST_F(SyncStorageTest, TheSyncWorkerShrinksPagesTheUpstreamCannotSend) {
  ThrottlingUpstream upstream(/*max_page=*/2);
  SyncMonitor monitor("fake", absl::Hours(1), &clock_);
  UpstreamSyncOptions options;
  options.page_size = 8;
  options.prefetch = false;
  UpstreamSyncWorker worker(*repo_, upstream, monitor, options);
  EXPECT_THAT(worker.SyncOnce(), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(worker.SyncOnce(), StatusIs(absl::StatusCode::kResourceExhausted));
  absl::StatusOr<SyncPageResult> page = worker.SyncOnce();
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->tally.applied, 1);
  ASSERT_TRUE(worker.SyncOnce().status().code() == absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(upstream.asked, (std::vector<int>{8, 4, 2, 4}));  // grows back after a success
  EXPECT_EQ(*repo_->upstream().GetSyncCursor("upstream"), "c1");  // the cursor of the committed page
  EXPECT_TRUE(repo_->actions().GetInvestigation("inv-1").ok());
}

TEST_F(SyncStorageTest, AnUpstreamThatCannotResumeMakesTheWorkerStartOver) {
  ThrottlingUpstream upstream(/*max_page=*/100);
  SyncMonitor monitor("fake", absl::Hours(1), &clock_);
  UpstreamSyncOptions options;
  options.page_size = 10;
  options.prefetch = false;
  UpstreamSyncWorker worker(*repo_, upstream, monitor, options);
  ASSERT_TRUE(worker.SyncOnce().ok());
  upstream.forget_cursors = true;
  absl::StatusOr<SyncPageResult> reset = worker.SyncOnce();
  ASSERT_TRUE(reset.ok()) << reset.status();
  EXPECT_TRUE(reset->has_more);  // go again at once, from the beginning
  EXPECT_EQ(*repo_->upstream().GetSyncCursor("upstream"), "");
  ASSERT_TRUE(worker.SyncOnce().ok());
  EXPECT_EQ(upstream.cursors, (std::vector<std::string>{"", "c1", ""}));
}

// ---- The simulator's contract ----------------------------------------------

class SimulatorTest : public ::testing::Test {
 protected:
  SimulatorTest() : clock_(kStart) {
    sim::SimulatorOptions options;
    options.instance = "u1";
    options.arrival_rate = 0;
    options.analysis_delay = absl::ZeroDuration();
    options.failure_rate = 0;
    sim_ = std::make_unique<sim::UpstreamSimulator>(options, &clock_);
  }
  std::vector<upstream::v1::Change> Drain(std::string* cursor, int page_size = 3) {
    std::vector<upstream::v1::Change> all;
    while (true) {
      upstream::v1::ListChangesRequest request;
      request.set_cursor(*cursor);
      request.set_page_size(page_size);
      auto page = sim_->ListChanges(request);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) return all;
      all.insert(all.end(), page->changes().begin(), page->changes().end());
      EXPECT_FALSE(page->next_cursor().empty());
      *cursor = page->next_cursor();
      if (!page->has_more()) return all;
    }
  }
  upstream::v1::SubmitDecisionRequest Approve(const std::string& action_id) {
    upstream::v1::SubmitDecisionRequest request;
    request.set_request_id(DecisionRequestId(action_id));
    request.set_action_id(action_id);
    request.set_outcome(v1::Decision::OUTCOME_APPROVED);
    return request;
  }
  ManualClock clock_;
  std::unique_ptr<sim::UpstreamSimulator> sim_;
};

TEST_F(SimulatorTest, PlaybooksProposeTheVendorsActions) {
  using T = v1::ActionType;
  const std::map<sim::Playbook, std::vector<T>> expected = {
      {sim::Playbook::kPhish, {T::ACTION_TYPE_SOFT_DELETE_EMAIL, T::ACTION_TYPE_BLOCK_URL}},
      {sim::Playbook::kCompromisedMailbox,
       {T::ACTION_TYPE_TURN_OFF_EXTERNAL_FORWARDING, T::ACTION_TYPE_REMOVE_INBOX_RULE,
        T::ACTION_TYPE_RESET_PASSWORD}},
      {sim::Playbook::kMalware, {T::ACTION_TYPE_QUARANTINE_FILE, T::ACTION_TYPE_ISOLATE_DEVICE}},
      {sim::Playbook::kClean, {}},
  };
  for (const auto& [playbook, types] : expected) {
    const std::string inv = sim_->CreateInvestigation(playbook, 1);
    std::vector<T> got;
    for (const upstream::v1::Action& a : sim_->Actions()) {
      if (a.investigation_id() == inv) got.push_back(a.type());
    }
    EXPECT_EQ(got, types);
  }
  std::map<std::string, Investigation::State> states;
  for (const auto& inv : sim_->Investigations()) states[inv.id()] = inv.state();
  EXPECT_EQ(states["simu1-inv-000004"], Investigation::STATE_NO_THREATS_FOUND);
  EXPECT_EQ(states["simu1-inv-000001"], Investigation::STATE_PENDING_ACTION);
}

TEST_F(SimulatorTest, PagesEveryChangeInOrderWithIncreasingVersions) {
  sim_->CreateInvestigations(5);
  std::string cursor;
  std::vector<upstream::v1::Change> changes = Drain(&cursor);
  std::map<std::string, int64_t> version;
  for (const auto& c : changes) {
    const std::string key = c.has_action() ? "a:" + c.action().id() : "i:" + c.investigation().id();
    const int64_t v = c.has_action() ? c.action().version() : c.investigation().version();
    EXPECT_GT(v, version[key]) << key;
    version[key] = v;
  }
  EXPECT_EQ(static_cast<int64_t>(Drain(&cursor).size()), 0);  // caught up
  sim_->CreateInvestigations(1);
  EXPECT_GE(Drain(&cursor).size(), 1u);  // only what is new

  upstream::v1::ListChangesRequest foreign;
  foreign.set_cursor("c1.zz.3");
  EXPECT_THAT(sim_->ListChanges(foreign), StatusIs(absl::StatusCode::kOutOfRange));
  foreign.set_cursor("garbage");
  EXPECT_THAT(sim_->ListChanges(foreign), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SimulatorTest, DecisionsAreIdempotentByRequestIdAndRunAfterTheirDelay) {
  sim_->CreateInvestigation(sim::Playbook::kMalware, 2);
  const std::string id = sim_->Actions().front().id();
  auto first = sim_->SubmitDecision(Approve(id));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->action().state(), Action::STATE_APPROVED);
  auto again = sim_->SubmitDecision(Approve(id));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->action().version(), first->action().version());
  upstream::v1::SubmitDecisionRequest reused = Approve(id);
  reused.set_outcome(v1::Decision::OUTCOME_REJECTED);
  EXPECT_THAT(sim_->SubmitDecision(reused), StatusIs(absl::StatusCode::kInvalidArgument));
  upstream::v1::SubmitDecisionRequest other = Approve(id);
  other.set_request_id("someone-else");
  absl::StatusOr<upstream::v1::SubmitDecisionResponse> late = sim_->SubmitDecision(other);
  EXPECT_THAT(late, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(ErrorReasonNameOf(late.status()),
            upstream::v1::ErrorReason_Name(upstream::v1::ACTION_NOT_PENDING));
  EXPECT_EQ(sim_->stats().decisions_applied, 1);
  EXPECT_EQ(sim_->stats().duplicate_requests, 1);

  clock_.Advance(absl::Seconds(20));
  sim_->Advance();
  EXPECT_EQ(sim_->Actions().front().state(), Action::STATE_COMPLETED);
  EXPECT_EQ(sim_->stats().executions, 1);
}

TEST_F(SimulatorTest, UndecidedActionsExpireUpstream) {
  sim_->CreateInvestigation(sim::Playbook::kPhish, 5);
  clock_.Advance(absl::Hours(24 * 7) + absl::Seconds(1));
  sim_->Advance();
  for (const auto& a : sim_->Actions()) EXPECT_EQ(a.state(), Action::STATE_EXPIRED);
  EXPECT_EQ(sim_->Investigations().front().state(), Investigation::STATE_TERMINATED_BY_SYSTEM);
}

}  // namespace
}  // namespace air
