#include "storage/sql_stores.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "domain/errors.h"
#include "domain/lifecycle.h"
#include "domain/status_macros.h"
#include "storage/record_codec.h"

namespace air {

using sql::Params;
using storage_internal::NotFound;
using storage_internal::ParseBody;

// ---- The pool ----

ReaderPool::ReaderPool(std::vector<std::unique_ptr<ReadSession>> sessions)
    : idle_(std::move(sessions)) {}

ReaderPool::Lease::~Lease() {
  if (session_ != nullptr) pool_->Return(std::move(session_));
}

absl::StatusOr<ReaderPool::Lease> ReaderPool::Acquire() {
  std::unique_ptr<ReadSession> session;
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](std::vector<std::unique_ptr<ReadSession>>* idle) { return !idle->empty(); },
        &idle_));
    session = std::move(idle_.back());
    idle_.pop_back();
  }
  Lease lease(this, std::move(session));
  AIR_RETURN_IF_ERROR(lease.session().Ready());
  return lease;
}

void ReaderPool::Return(std::unique_ptr<ReadSession> session) {
  absl::MutexLock lock(&mu_);
  idle_.push_back(std::move(session));
}

// ---- The shared Storage ----

void SqlStorage::Assemble(std::vector<std::unique_ptr<ReadSession>> readers,
                          std::unique_ptr<WriteSession> session, const SqlDialect& dialect,
                          GroupCommitOptions options) {
  readers_ = std::make_unique<ReaderPool>(std::move(readers));
  stores_ = std::make_unique<SqlStores>(*readers_, dialect);
  options.on_commit = [this](std::vector<v1::Event>& events) {
    LocalCommitObserver local;
    {
      absl::MutexLock lock(&observers_mu_);
      local = local_observer_;
    }
    if (local) local(events);
    Publish(events);
  };
  writer_ = std::make_unique<GroupCommitter>(std::move(session), dialect, std::move(options));
}

void SqlStorage::Publish(std::vector<v1::Event>& events) {
  CommitObserver observer = commit_observer();
  if (observer) observer(events);
}

SqlStorage::CommitObserver SqlStorage::commit_observer() {
  absl::MutexLock lock(&observers_mu_);
  return observer_;
}

void SqlStorage::SetCommitObserver(CommitObserver observer) {
  absl::MutexLock lock(&observers_mu_);
  observer_ = std::move(observer);
}

void SqlStorage::SetLocalCommitObserver(LocalCommitObserver observer) {
  absl::MutexLock lock(&observers_mu_);
  local_observer_ = std::move(observer);
}

namespace {

// Appends "AND <clause>" terms whose "$?" placeholders become the next
// parameter numbers, and collects the values to bind.
class WhereBuilder {
 public:
  void Add(absl::string_view clause, int64_t value) {
    absl::StrAppend(&sql_, " AND ", Number(clause));
    params_.Int(value);
  }
  void Add(absl::string_view clause, const std::string& value) {
    absl::StrAppend(&sql_, " AND ", Number(clause));
    params_.Text(value);
  }
  // A keyset bound over (sort_column, id): two parameters.
  void AddKeyset(absl::string_view sort_column, bool descending, const PageCursor& after) {
    absl::StrAppend(&sql_, " AND (", sort_column, ", id) ", descending ? "<" : ">",
                    Number(" ($?, $?)"));
    params_.Int(after.sort_key).Text(after.id);
  }
  std::string Limit(int64_t limit) {
    params_.Int(limit);
    return absl::StrCat(" LIMIT $", ++next_);
  }
  const std::string& sql() const { return sql_; }
  const Params& params() const { return params_; }

 private:
  std::string Number(absl::string_view clause) {
    std::string out;
    for (size_t i = 0; i < clause.size(); ++i) {
      if (clause[i] == '$' && i + 1 < clause.size() && clause[i + 1] == '?') {
        absl::StrAppend(&out, "$", ++next_);
        ++i;
      } else {
        out.push_back(clause[i]);
      }
    }
    return out;
  }
  std::string sql_;
  int next_ = 0;
  Params params_;
};

void AddActionFilter(const ActionFilter& filter, WhereBuilder& where) {
  if (filter.state) where.Add("state = $?", static_cast<int64_t>(*filter.state));
  if (filter.type) where.Add("type = $?", static_cast<int64_t>(*filter.type));
  if (filter.investigation_id) where.Add("investigation_id = $?", *filter.investigation_id);
}

// One keyset page of `Message` rows (sort key, id, body) read by `sql`.
template <typename Message>
absl::StatusOr<std::vector<Message>> ReadPage(sql::Connection& conn, const std::string& sql,
                                              const Params& params, int page_size,
                                              std::optional<PageCursor>& next) {
  AIR_ASSIGN_OR_RETURN(std::unique_ptr<sql::Rows> rows, conn.Query(sql, params));
  std::vector<Message> page;
  PageCursor last;
  while (true) {
    AIR_ASSIGN_OR_RETURN(bool row, rows->Next());
    if (!row) break;
    if (static_cast<int>(page.size()) == page_size) {
      next = last;
      break;
    }
    last = PageCursor{rows->Int(0), std::string(rows->Bytes(1))};
    AIR_ASSIGN_OR_RETURN(Message message, ParseBody<Message>(rows->Bytes(2)));
    page.push_back(std::move(message));
  }
  return page;
}

template <typename Message>
absl::StatusOr<Message> ReadOne(sql::Connection& conn, absl::string_view sql,
                                absl::string_view id, absl::string_view kind) {
  AIR_ASSIGN_OR_RETURN(std::unique_ptr<sql::Rows> rows, conn.Query(sql, Params().Text(id)));
  AIR_ASSIGN_OR_RETURN(bool row, rows->Next());
  if (!row) return NotFound(kind, id);
  return ParseBody<Message>(rows->Bytes(0));
}

}  // namespace

absl::StatusOr<std::vector<v1::Event>> ReadEventsOn(sql::Connection& conn, int64_t after,
                                                    int limit) {
  AIR_ASSIGN_OR_RETURN(
      std::unique_ptr<sql::Rows> rows,
      conn.Query("SELECT body FROM events WHERE sequence > $1 ORDER BY sequence LIMIT $2",
                 Params().Int(after).Int(limit)));
  std::vector<v1::Event> events;
  while (true) {
    AIR_ASSIGN_OR_RETURN(bool row, rows->Next());
    if (!row) break;
    AIR_ASSIGN_OR_RETURN(v1::Event event, ParseBody<v1::Event>(rows->Bytes(0)));
    events.push_back(std::move(event));
  }
  return events;
}

// ---- Investigations and actions ----

absl::StatusOr<v1::Action> SqlStores::GetAction(absl::string_view id) {
  AIR_ASSIGN_OR_RETURN(ReaderPool::Lease reader, readers_.Acquire());
  return ReadOne<v1::Action>(reader.connection(), "SELECT body FROM actions WHERE id = $1", id,
                             "action");
}

absl::StatusOr<v1::Investigation> SqlStores::GetInvestigation(absl::string_view id) {
  AIR_ASSIGN_OR_RETURN(ReaderPool::Lease reader, readers_.Acquire());
  return ReadOne<v1::Investigation>(reader.connection(),
                                    "SELECT body FROM investigations WHERE id = $1", id,
                                    "investigation");
}

absl::StatusOr<ActionPage> SqlStores::ListActions(const ActionQuery& query) {
  WhereBuilder where;
  AddActionFilter(query.filter, where);
  if (query.after) where.AddKeyset("create_us", query.descending, *query.after);
  const std::string limit = where.Limit(query.page_size + 1);
  const char* dir = query.descending ? "DESC" : "ASC";
  const std::string sql =
      absl::StrCat("SELECT create_us, id, body FROM actions WHERE 1 = 1", where.sql(),
                   " ORDER BY create_us ", dir, ", id ", dir, limit);
  AIR_ASSIGN_OR_RETURN(ReaderPool::Lease reader, readers_.Acquire());
  ActionPage page;
  AIR_ASSIGN_OR_RETURN(page.actions, ReadPage<v1::Action>(reader.connection(), sql,
                                                          where.params(), query.page_size,
                                                          page.next));
  return page;
}

absl::StatusOr<InvestigationPage> SqlStores::ListInvestigations(
    const InvestigationQuery& query) {
  const std::string sort_column =
      query.order_by == InvestigationOrder::kUpdateTime ? "update_us" : "create_us";
  const InvestigationFilter& f = query.filter;
  WhereBuilder where;
  if (f.state) where.Add("state = $?", static_cast<int64_t>(*f.state));
  if (f.source) where.Add("source = $?", static_cast<int64_t>(*f.source));
  if (f.verdict) where.Add("verdict = $?", static_cast<int64_t>(*f.verdict));
  if (f.create_after) where.Add("create_us >= $?", absl::ToUnixMicros(*f.create_after));
  if (f.create_before) where.Add("create_us < $?", absl::ToUnixMicros(*f.create_before));
  if (f.update_after) where.Add("update_us >= $?", absl::ToUnixMicros(*f.update_after));
  if (f.update_before) where.Add("update_us < $?", absl::ToUnixMicros(*f.update_before));
  if (query.after) where.AddKeyset(sort_column, query.descending, *query.after);
  const std::string limit = where.Limit(query.page_size + 1);
  const char* dir = query.descending ? "DESC" : "ASC";
  const std::string sql =
      absl::StrCat("SELECT ", sort_column, ", id, body FROM investigations WHERE 1 = 1",
                   where.sql(), " ORDER BY ", sort_column, " ", dir, ", id ", dir, limit);
  AIR_ASSIGN_OR_RETURN(ReaderPool::Lease reader, readers_.Acquire());
  InvestigationPage page;
  AIR_ASSIGN_OR_RETURN(page.investigations,
                       ReadPage<v1::Investigation>(reader.connection(), sql, where.params(),
                                                   query.page_size, page.next));
  return page;
}

absl::StatusOr<PendingSnapshot> SqlStores::SnapshotPending(const ActionFilter& filter,
                                                           int limit) {
  ActionFilter pending = filter;
  if (pending.state && *pending.state != v1::Action::STATE_PENDING) {
    return PendingSnapshot{};  // the filter excludes every pending action
  }
  pending.state = v1::Action::STATE_PENDING;
  WhereBuilder where;
  AddActionFilter(pending, where);
  const std::string sql = absl::StrCat("SELECT body FROM actions WHERE 1 = 1", where.sql(),
                                       " ORDER BY create_us, id", where.Limit(limit));
  AIR_ASSIGN_OR_RETURN(ReaderPool::Lease reader, readers_.Acquire());
  // One read transaction: the head and the rows come from the same commit.
  AIR_RETURN_IF_ERROR(reader.session().BeginSnapshot());
  auto read = [&]() -> absl::StatusOr<PendingSnapshot> {
    PendingSnapshot snapshot;
    AIR_ASSIGN_OR_RETURN(EventLogBounds bounds,
                         ReadEventLogBounds(reader.connection(), dialect_));
    snapshot.sequence = bounds.head;
    AIR_ASSIGN_OR_RETURN(std::unique_ptr<sql::Rows> rows,
                         reader.connection().Query(sql, where.params()));
    while (true) {
      AIR_ASSIGN_OR_RETURN(bool row, rows->Next());
      if (!row) break;
      AIR_ASSIGN_OR_RETURN(v1::Action action, ParseBody<v1::Action>(rows->Bytes(0)));
      snapshot.actions.push_back(std::move(action));
    }
    return snapshot;
  };
  absl::StatusOr<PendingSnapshot> snapshot = read();
  reader.session().EndSnapshot();
  return snapshot;
}

absl::StatusOr<PendingStats> SqlStores::GetPendingStats() {
  AIR_ASSIGN_OR_RETURN(ReaderPool::Lease reader, readers_.Acquire());
  // Served by the (state, type, ...) index: touches only pending rows.
  AIR_ASSIGN_OR_RETURN(std::unique_ptr<sql::Rows> rows,
                       reader.connection().Query("SELECT type, COUNT(*), MIN(create_us) "
                                                 "FROM actions WHERE state = 1 GROUP BY type",
                                                 Params()));
  PendingStats stats;
  while (true) {
    AIR_ASSIGN_OR_RETURN(bool row, rows->Next());
    if (!row) break;
    stats.by_type[static_cast<v1::ActionType>(rows->Int(0))] = rows->Int(1);
    const absl::Time created = absl::FromUnixMicros(rows->Int(2));
    if (!stats.oldest_create_time || created < *stats.oldest_create_time) {
      stats.oldest_create_time = created;
    }
  }
  return stats;
}

// ---- The event log ----

absl::StatusOr<std::vector<v1::Event>> SqlStores::ReadEvents(int64_t after_sequence,
                                                             int limit) {
  AIR_ASSIGN_OR_RETURN(ReaderPool::Lease reader, readers_.Acquire());
  return ReadEventsOn(reader.connection(), after_sequence, limit);
}

absl::StatusOr<EventLogBounds> SqlStores::GetEventLogBounds() {
  AIR_ASSIGN_OR_RETURN(ReaderPool::Lease reader, readers_.Acquire());
  AIR_RETURN_IF_ERROR(reader.session().BeginSnapshot());
  absl::StatusOr<EventLogBounds> bounds = ReadEventLogBounds(reader.connection(), dialect_);
  reader.session().EndSnapshot();
  return bounds;
}

// ---- The audit ----

absl::StatusOr<std::vector<AuditRecord>> SqlStores::ListAudit(absl::string_view action_id) {
  AIR_ASSIGN_OR_RETURN(ReaderPool::Lease reader, readers_.Acquire());
  AIR_ASSIGN_OR_RETURN(
      std::unique_ptr<sql::Rows> rows,
      reader.connection().Query(
          "SELECT action_id, investigation_id, from_state, to_state, outcome, source, "
          "decider, comment, policy_rule, request_id, decide_us FROM decision_audit "
          "WHERE action_id = $1 ORDER BY id",
          Params().Text(action_id)));
  std::vector<AuditRecord> records;
  while (true) {
    AIR_ASSIGN_OR_RETURN(bool row, rows->Next());
    if (!row) break;
    AuditRecord r;
    r.action_id = std::string(rows->Bytes(0));
    r.investigation_id = std::string(rows->Bytes(1));
    r.from_state = static_cast<v1::Action::State>(rows->Int(2));
    r.to_state = static_cast<v1::Action::State>(rows->Int(3));
    r.decision.set_outcome(static_cast<v1::Decision::Outcome>(rows->Int(4)));
    r.decision.set_source(static_cast<v1::Decision::Source>(rows->Int(5)));
    r.decision.set_decider(std::string(rows->Bytes(6)));
    r.decision.set_comment(std::string(rows->Bytes(7)));
    r.decision.set_policy_rule(std::string(rows->Bytes(8)));
    r.request_id = std::string(rows->Bytes(9));
    SetTimestamp(absl::FromUnixMicros(rows->Int(10)), r.decision.mutable_decide_time());
    records.push_back(std::move(r));
  }
  return records;
}

// ---- Upstream sync state ----

absl::StatusOr<std::string> SqlStores::GetSyncCursor(absl::string_view name) {
  AIR_ASSIGN_OR_RETURN(ReaderPool::Lease reader, readers_.Acquire());
  AIR_ASSIGN_OR_RETURN(std::unique_ptr<sql::Rows> rows,
                       reader.connection().Query("SELECT cursor FROM sync_cursors WHERE name = $1",
                                                 Params().Text(name)));
  AIR_ASSIGN_OR_RETURN(bool row, rows->Next());
  return row ? std::string(rows->Bytes(0)) : std::string();
}

// ---- The decision outbox ----

absl::StatusOr<std::vector<OutboxDecision>> SqlStores::ReadDecisionOutbox(int limit) {
  AIR_ASSIGN_OR_RETURN(ReaderPool::Lease reader, readers_.Acquire());
  AIR_ASSIGN_OR_RETURN(
      std::unique_ptr<sql::Rows> rows,
      reader.connection().Query(
          "SELECT position, request_id, action_id, outcome, source, decider, comment, "
          "decide_us, duplicate_of, upstream_version, enqueue_us FROM decision_outbox "
          "WHERE delivered_us IS NULL ORDER BY position LIMIT $1",
          Params().Int(limit)));
  std::vector<OutboxDecision> out;
  while (true) {
    AIR_ASSIGN_OR_RETURN(bool row, rows->Next());
    if (!row) break;
    OutboxDecision d;
    d.position = rows->Int(0);
    d.request_id = std::string(rows->Bytes(1));
    d.action_id = std::string(rows->Bytes(2));
    d.decision.set_outcome(static_cast<v1::Decision::Outcome>(rows->Int(3)));
    d.decision.set_source(static_cast<v1::Decision::Source>(rows->Int(4)));
    d.decision.set_decider(std::string(rows->Bytes(5)));
    d.decision.set_comment(std::string(rows->Bytes(6)));
    SetTimestamp(absl::FromUnixMicros(rows->Int(7)), d.decision.mutable_decide_time());
    d.duplicate_of = std::string(rows->Bytes(8));
    d.upstream_version = rows->Int(9);
    d.enqueue_time = absl::FromUnixMicros(rows->Int(10));
    out.push_back(std::move(d));
  }
  return out;
}

absl::StatusOr<DecisionOutboxStats> SqlStores::GetDecisionOutboxStats() {
  AIR_ASSIGN_OR_RETURN(ReaderPool::Lease reader, readers_.Acquire());
  AIR_ASSIGN_OR_RETURN(std::unique_ptr<sql::Rows> rows,
                       reader.connection().Query("SELECT COUNT(*), MIN(enqueue_us) FROM "
                                                 "decision_outbox WHERE delivered_us IS NULL",
                                                 Params()));
  AIR_ASSIGN_OR_RETURN(bool row, rows->Next());
  DecisionOutboxStats stats;
  if (row) {
    stats.backlog = rows->Int(0);
    if (!rows->IsNull(1)) stats.oldest_undelivered = absl::FromUnixMicros(rows->Int(1));
  }
  return stats;
}

}  // namespace air
