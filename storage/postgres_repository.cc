#include "storage/postgres_repository.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <limits>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "domain/errors.h"
#include "domain/lifecycle.h"
#include "domain/status_macros.h"
#include "spdlog/spdlog.h"
#include "storage/postgres_connection.h"
#include "storage/postgres_schema.h"
#include "storage/record_codec.h"

// Why a stream that has seen event 11 can never miss a 10 that commits later
// ---------------------------------------------------------------------------
// Sequences do not come from a PostgreSQL SEQUENCE (whose values are taken at
// nextval() time and may commit in any order). They come from the one-row
// table event_log, and every write transaction, on every replica, begins by
// locking that row (SELECT ... FOR UPDATE) and holds the lock until it
// commits or rolls back. So write transactions are strictly serial:
//  * a transaction reads next_sequence only after the previous writer has
//    committed (READ COMMITTED: the statement after the lock wait sees the
//    committed row), and assigns the following numbers;
//  * if it rolls back, its numbers were never visible and the next writer
//    reads the same next_sequence again: no gap;
//  * the transaction holding 11 could not even start assigning until the one
//    holding 10 had committed. Once 11 is visible, 10 is already visible.
// A reader that reads `sequence > cursor` therefore never sees a hole that
// fills in later. The same lock makes decisions first-writer-wins across
// replicas (the second decision reads the state the first committed) and
// keeps decision-outbox positions in commit order. The price is one writer
// at a time across the deployment; each replica batches its writes (group
// commit), so the lock is taken once per batch, not once per decision.

namespace air {

using pg::Connection;
using pg::Params;
using pg::Result;
using storage_internal::Micros;
using storage_internal::NotFound;
using storage_internal::ParseBody;

bool IsPostgresDatabase(absl::string_view db) { return pg::IsPostgresUri(db); }
std::string RedactPostgresConninfo(absl::string_view conninfo) {
  return pg::RedactConninfo(conninfo);
}

namespace {

// NOTIFY channel for "the event log moved on"; the payload is the new head.
constexpr char kEventChannel[] = "air_events";

absl::StatusOr<v1::Action> LoadAction(Connection& conn, absl::string_view id,
                                      bool for_update) {
  AIR_ASSIGN_OR_RETURN(
      Result r, conn.Exec(for_update ? "SELECT body FROM actions WHERE id = $1 FOR UPDATE"
                                     : "SELECT body FROM actions WHERE id = $1",
                          Params().Text(id)));
  if (r.rows() == 0) return NotFound("action", id);
  return ParseBody<v1::Action>(r.Bytes(0, 0));
}

absl::StatusOr<v1::Investigation> LoadInvestigation(Connection& conn, absl::string_view id) {
  AIR_ASSIGN_OR_RETURN(Result r, conn.Exec("SELECT body FROM investigations WHERE id = $1",
                                           Params().Text(id)));
  if (r.rows() == 0) return NotFound("investigation", id);
  return ParseBody<v1::Investigation>(r.Bytes(0, 0));
}

absl::StatusOr<EventLogBounds> LoadBounds(Connection& conn) {
  AIR_ASSIGN_OR_RETURN(
      Result r, conn.Exec("SELECT next_sequence, first_retained FROM event_log WHERE id = 1"));
  if (r.rows() != 1) {
    return MakeError(absl::StatusCode::kDataLoss, "storage read failed: the event log is missing",
                     v1::STORAGE_CORRUPT);
  }
  EventLogBounds bounds;
  bounds.head = r.Int(0, 0) - 1;
  bounds.first_retained = r.Int(0, 1);
  return bounds;
}

absl::StatusOr<std::vector<v1::Event>> LoadEvents(Connection& conn, int64_t after, int limit) {
  AIR_ASSIGN_OR_RETURN(
      Result r, conn.Exec("SELECT body FROM events WHERE sequence > $1 ORDER BY sequence LIMIT $2",
                          Params().Int(after).Int(limit)));
  std::vector<v1::Event> events;
  events.reserve(r.rows());
  for (int i = 0; i < r.rows(); ++i) {
    AIR_ASSIGN_OR_RETURN(v1::Event event, ParseBody<v1::Event>(r.Bytes(i, 0)));
    events.push_back(std::move(event));
  }
  return events;
}

absl::StatusOr<std::string> LoadSyncCursor(Connection& conn, absl::string_view name) {
  AIR_ASSIGN_OR_RETURN(Result r, conn.Exec("SELECT cursor FROM sync_cursors WHERE name = $1",
                                           Params().Text(name)));
  if (r.rows() == 0) return std::string();
  return std::string(r.Bytes(0, 0));
}

// Appends "AND <clause with $n>" terms; "$?" in a clause becomes the next
// parameter number.
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

absl::Status Closed() {
  return MakeError(absl::StatusCode::kUnavailable, "storage is shutting down",
                   v1::STORAGE_CLOSED);
}

}  // namespace

// ---------------------------------------------------------------------------

class PostgresRepository::Impl {
 public:
  explicit Impl(const PostgresOptions& options)
      : options_(options),
        clock_(options.clock != nullptr ? options.clock : SystemClock::Get()) {}

  ~Impl() { Stop(); }

  absl::Status Open();
  void Stop();

  void Enqueue(WriteFn fn, DoneFn done) {
    {
      absl::MutexLock lock(&queue_mu_);
      if (!stopping_) {
        queue_.push_back({std::move(fn), std::move(done)});
        return;
      }
    }
    done(Closed());
  }

  // A leased read connection, returned to the pool on destruction.
  class Reader {
   public:
    Reader(Impl* impl, std::unique_ptr<Connection> conn)
        : impl_(impl), conn_(std::move(conn)) {}
    Reader(Reader&& other) noexcept : impl_(other.impl_), conn_(std::move(other.conn_)) {}
    Reader& operator=(Reader&&) = delete;
    ~Reader() {
      if (conn_ != nullptr) impl_->ReturnReader(std::move(conn_));
    }
    Connection& operator*() { return *conn_; }
    Connection* operator->() { return conn_.get(); }

   private:
    Impl* impl_;
    std::unique_ptr<Connection> conn_;
  };

  absl::StatusOr<Reader> LeaseReader() {
    std::unique_ptr<Connection> conn;
    {
      absl::MutexLock lock(&readers_mu_);
      readers_mu_.Await(absl::Condition(
          +[](std::vector<std::unique_ptr<Connection>>* v) { return !v->empty(); },
          &idle_readers_));
      conn = std::move(idle_readers_.back());
      idle_readers_.pop_back();
    }
    Reader reader(this, std::move(conn));
    if (!reader->ok()) AIR_RETURN_IF_ERROR(reader->Reset());
    return reader;
  }

  void ReturnReader(std::unique_ptr<Connection> conn) {
    if (conn->ok() && conn->InTransaction()) (void)conn->Run("ROLLBACK");
    absl::MutexLock lock(&readers_mu_);
    idle_readers_.push_back(std::move(conn));
  }

  void SetObserver(CommitObserver observer) {
    absl::MutexLock lock(&publish_mu_);
    observer_ = std::move(observer);
  }

  void SetConnectionObserver(ConnectionObserver observer) {
    absl::MutexLock lock(&publish_mu_);
    connection_observer_ = std::move(observer);
  }

  void SetLocalObserver(CommitObserver observer) {
    absl::MutexLock lock(&queue_mu_);
    local_observer_ = std::move(observer);
  }

 private:
  friend class PostgresWriteTransaction;
  struct Job {
    WriteFn fn;
    DoneFn done;
  };

  absl::Status Migrate(Connection& conn);
  void WriterLoop();
  void RunBatch(std::vector<Job>& batch);
  absl::Status EnsureWriter();
  void ListenLoop();
  // Hands the observer every committed event after published_, in order.
  // `local`: the events this replica just committed (may be null).
  void PublishCommitted(std::vector<v1::Event>* local);
  void CatchUpLocked(int64_t up_to) ABSL_EXCLUSIVE_LOCKS_REQUIRED(publish_mu_);

  const PostgresOptions options_;
  const Clock* const clock_;

  // Owned by the writer thread once it starts.
  std::unique_ptr<Connection> writer_;

  absl::Mutex queue_mu_;
  std::deque<Job> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  CommitObserver local_observer_ ABSL_GUARDED_BY(queue_mu_);
  std::thread writer_thread_;

  absl::Mutex readers_mu_;
  std::vector<std::unique_ptr<Connection>> idle_readers_ ABSL_GUARDED_BY(readers_mu_);

  // Delivery of committed events (ours and other replicas') to the observer.
  absl::Mutex publish_mu_;
  CommitObserver observer_ ABSL_GUARDED_BY(publish_mu_);
  int64_t published_ ABSL_GUARDED_BY(publish_mu_) = 0;
  ConnectionObserver connection_observer_ ABSL_GUARDED_BY(publish_mu_);

  // Writer reconnection backoff (writer thread only): while the database is
  // down, writes fail fast with UNAVAILABLE instead of each paying for a
  // connection attempt.
  absl::Time next_reconnect_ = absl::InfinitePast();
  absl::Duration reconnect_backoff_ = absl::Milliseconds(100);

  std::thread listen_thread_;
  int wake_fd_ = -1;  // eventfd: stops the listener's poll
};

// The WriteTransaction handed to write functions on the writer thread.
class PostgresWriteTransaction final : public WriteTransaction {
 public:
  PostgresWriteTransaction(Connection& conn, int64_t next_sequence, absl::Time now)
      : conn_(conn), next_sequence_(next_sequence), now_(now) {}

  absl::StatusOr<v1::Action> GetAction(absl::string_view id) override {
    // FOR UPDATE is redundant while the event_log lock serialises writers,
    // and cheap; it keeps a decision's read-check-write safe on its own.
    return LoadAction(conn_, id, /*for_update=*/true);
  }
  absl::StatusOr<v1::Investigation> GetInvestigation(absl::string_view id) override {
    return LoadInvestigation(conn_, id);
  }

  absl::Status PutAction(const v1::Action& action) override {
    return conn_.Run(
        "INSERT INTO actions (id, investigation_id, type, state, create_us, expire_us, body) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET "
        "investigation_id = EXCLUDED.investigation_id, type = EXCLUDED.type, "
        "state = EXCLUDED.state, create_us = EXCLUDED.create_us, "
        "expire_us = EXCLUDED.expire_us, body = EXCLUDED.body",
        Params()
            .Text(action.id())
            .Text(action.investigation_id())
            .Int(action.type())
            .Int(action.state())
            .Int(Micros(action.create_time()))
            .Int(Micros(action.expire_time()))
            .Bytes(action.SerializeAsString()));
  }

  absl::Status PutInvestigation(const v1::Investigation& inv) override {
    return conn_.Run(
        "INSERT INTO investigations (id, state, source, verdict, create_us, update_us, body) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET "
        "state = EXCLUDED.state, source = EXCLUDED.source, verdict = EXCLUDED.verdict, "
        "create_us = EXCLUDED.create_us, update_us = EXCLUDED.update_us, body = EXCLUDED.body",
        Params()
            .Text(inv.id())
            .Int(inv.state())
            .Int(inv.source())
            .Int(inv.verdict())
            .Int(Micros(inv.create_time()))
            .Int(Micros(inv.update_time()))
            .Bytes(inv.SerializeAsString()));
  }

  absl::StatusOr<int64_t> AppendEvent(v1::Event event) override {
    const int64_t sequence = next_sequence_;
    event.set_sequence(sequence);
    SetTimestamp(now_, event.mutable_commit_time());
    AIR_RETURN_IF_ERROR(conn_.Run(
        "INSERT INTO events (sequence, commit_us, body) VALUES ($1, $2, $3)",
        Params().Int(sequence).Int(absl::ToUnixMicros(now_)).Bytes(event.SerializeAsString())));
    ++next_sequence_;
    events_.push_back(std::move(event));
    return sequence;
  }

  absl::Status AppendAudit(const AuditRecord& r) override {
    return conn_.Run(
        "INSERT INTO decision_audit (action_id, investigation_id, from_state, to_state, "
        "outcome, source, decider, comment, policy_rule, request_id, decide_us) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        Params()
            .Text(r.action_id)
            .Text(r.investigation_id)
            .Int(r.from_state)
            .Int(r.to_state)
            .Int(r.decision.outcome())
            .Int(r.decision.source())
            .Text(r.decision.decider())
            .Text(r.decision.comment())
            .Text(r.decision.policy_rule())
            .Text(r.request_id)
            .Int(Micros(r.decision.decide_time())));
  }

  absl::StatusOr<std::optional<StoredRequest>> FindRequest(
      absl::string_view request_id) override {
    AIR_ASSIGN_OR_RETURN(
        Result r, conn_.Exec("SELECT fingerprint, response FROM request_log WHERE request_id = $1",
                             Params().Text(request_id)));
    if (r.rows() == 0) return std::optional<StoredRequest>();
    return std::optional<StoredRequest>(
        StoredRequest{std::string(r.Bytes(0, 0)), std::string(r.Bytes(0, 1))});
  }

  absl::Status SaveRequest(absl::string_view request_id, const StoredRequest& request) override {
    return conn_.Run(
        "INSERT INTO request_log (request_id, fingerprint, response, create_us) "
        "VALUES ($1, $2, $3, $4)",
        Params()
            .Text(request_id)
            .Text(request.fingerprint)
            .Bytes(request.response)
            .Int(absl::ToUnixMicros(now_)));
  }

  absl::StatusOr<std::vector<std::string>> PendingActionsDueBy(absl::Time deadline,
                                                               int limit) override {
    AIR_ASSIGN_OR_RETURN(
        Result r, conn_.Exec("SELECT id FROM actions WHERE state = 1 AND expire_us <= $1 "
                             "ORDER BY expire_us LIMIT $2",
                             Params().Int(absl::ToUnixMicros(deadline)).Int(limit)));
    std::vector<std::string> ids;
    for (int i = 0; i < r.rows(); ++i) ids.emplace_back(r.Bytes(i, 0));
    return ids;
  }

  absl::StatusOr<int64_t> PruneEvents(absl::Time older_than, int64_t max_events) override {
    const int64_t head = next_sequence_ - 1;
    if (head <= 0) return 0;
    int64_t keep_from = std::max<int64_t>(head - std::max<int64_t>(max_events, 1) + 1, 1);
    AIR_ASSIGN_OR_RETURN(
        Result by_time,
        conn_.Exec("SELECT COALESCE(MIN(sequence), $1) FROM events WHERE commit_us >= $2",
                   Params().Int(head).Int(absl::ToUnixMicros(older_than))));
    if (by_time.rows() == 1) keep_from = std::max(keep_from, std::min(by_time.Int(0, 0), head));
    AIR_ASSIGN_OR_RETURN(Result del, conn_.Exec("DELETE FROM events WHERE sequence < $1",
                                                Params().Int(keep_from)));
    AIR_RETURN_IF_ERROR(conn_.Run(
        "UPDATE event_log SET first_retained = GREATEST(first_retained, $1) WHERE id = 1",
        Params().Int(keep_from)));
    return del.affected();
  }

  absl::Time Now() const override { return now_; }

  absl::StatusOr<std::optional<int64_t>> GetUpstreamVersion(UpstreamKind kind,
                                                            absl::string_view id) override {
    AIR_ASSIGN_OR_RETURN(
        Result r, conn_.Exec("SELECT version FROM upstream_versions WHERE kind = $1 AND id = $2",
                             Params().Int(static_cast<int64_t>(kind)).Text(id)));
    if (r.rows() == 0) return std::optional<int64_t>();
    return std::optional<int64_t>(r.Int(0, 0));
  }

  absl::Status SetUpstreamVersion(UpstreamKind kind, absl::string_view id,
                                  int64_t version) override {
    return conn_.Run(
        "INSERT INTO upstream_versions (kind, id, version) VALUES ($1, $2, $3) "
        "ON CONFLICT (kind, id) DO UPDATE SET version = EXCLUDED.version",
        Params().Int(static_cast<int64_t>(kind)).Text(id).Int(version));
  }

  absl::StatusOr<std::string> GetSyncCursor(absl::string_view name) override {
    return LoadSyncCursor(conn_, name);
  }

  absl::Status SetSyncCursor(absl::string_view name, absl::string_view cursor) override {
    return conn_.Run(
        "INSERT INTO sync_cursors (name, cursor, update_us) VALUES ($1, $2, $3) "
        "ON CONFLICT (name) DO UPDATE SET cursor = EXCLUDED.cursor, "
        "update_us = EXCLUDED.update_us",
        Params().Text(name).Text(cursor).Int(absl::ToUnixMicros(now_)));
  }

  absl::StatusOr<int64_t> EnqueueDecision(const OutboxDecision& d) override {
    AIR_ASSIGN_OR_RETURN(
        Result r,
        conn_.Exec("INSERT INTO decision_outbox (request_id, action_id, outcome, source, "
                   "decider, comment, decide_us, duplicate_of, upstream_version, enqueue_us) "
                   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                   "ON CONFLICT (request_id) DO NOTHING RETURNING position",
                   Params()
                       .Text(d.request_id)
                       .Text(d.action_id)
                       .Int(d.decision.outcome())
                       .Int(d.decision.source())
                       .Text(d.decision.decider())
                       .Text(d.decision.comment())
                       .Int(Micros(d.decision.decide_time()))
                       .Text(d.duplicate_of)
                       .Int(d.upstream_version)
                       .Int(absl::ToUnixMicros(now_))));
    if (r.rows() == 0) {
      return MakeError(absl::StatusCode::kAlreadyExists,
                       absl::StrCat("decision ", d.request_id, " is already in the outbox"),
                       v1::DECISION_ALREADY_QUEUED, {{"action_id", d.action_id}});
    }
    return r.Int(0, 0);
  }

  absl::Status MarkDecisionDelivered(int64_t position, absl::string_view result) override {
    AIR_ASSIGN_OR_RETURN(
        Result r, conn_.Exec("UPDATE decision_outbox SET delivered_us = $1, result = $2 "
                             "WHERE position = $3 AND delivered_us IS NULL",
                             Params().Int(absl::ToUnixMicros(now_)).Text(result).Int(position)));
    if (r.affected() > 0) return absl::OkStatus();
    AIR_ASSIGN_OR_RETURN(Result exists,
                         conn_.Exec("SELECT 1 FROM decision_outbox WHERE position = $1",
                                    Params().Int(position)));
    if (exists.rows() > 0) return absl::OkStatus();  // delivered before: nothing to do
    return MakeError(absl::StatusCode::kNotFound,
                     absl::StrCat("no decision at outbox position ", position),
                     v1::DECISION_NOT_FOUND);
  }

  absl::StatusOr<std::optional<TargetApproval>> FindTargetApproval(
      absl::string_view target_key) override {
    AIR_ASSIGN_OR_RETURN(
        Result r, conn_.Exec("SELECT action_id, approve_us FROM target_approvals "
                             "WHERE target_key = $1",
                             Params().Text(target_key)));
    if (r.rows() == 0) return std::optional<TargetApproval>();
    return std::optional<TargetApproval>(TargetApproval{
        std::string(target_key), std::string(r.Bytes(0, 0)), absl::FromUnixMicros(r.Int(0, 1))});
  }

  absl::Status RecordTargetApproval(const TargetApproval& approval) override {
    return conn_.Run(
        "INSERT INTO target_approvals (target_key, action_id, approve_us) VALUES ($1, $2, $3) "
        "ON CONFLICT (target_key) DO UPDATE SET action_id = EXCLUDED.action_id, "
        "approve_us = EXCLUDED.approve_us",
        Params()
            .Text(approval.target_key)
            .Text(approval.action_id)
            .Int(absl::ToUnixMicros(approval.approve_time)));
  }

  // Savepoint bookkeeping: what to undo if the current function fails.
  struct Mark {
    int64_t next_sequence;
    size_t events;
  };
  Mark mark() const { return {next_sequence_, events_.size()}; }
  void RollBackTo(const Mark& m) {
    next_sequence_ = m.next_sequence;
    events_.resize(m.events);
  }
  int64_t next_sequence() const { return next_sequence_; }
  std::vector<v1::Event>& events() { return events_; }

 private:
  Connection& conn_;
  int64_t next_sequence_;
  const absl::Time now_;
  std::vector<v1::Event> events_;
};

absl::Status PostgresRepository::Impl::Open() {
  AIR_ASSIGN_OR_RETURN(writer_, Connection::Open(options_.conninfo));
  AIR_RETURN_IF_ERROR(Migrate(*writer_));
  AIR_ASSIGN_OR_RETURN(EventLogBounds bounds, LoadBounds(*writer_));
  {
    absl::MutexLock lock(&publish_mu_);
    published_ = bounds.head;
  }
  for (int i = 0; i < std::max(options_.reader_connections, 1); ++i) {
    AIR_ASSIGN_OR_RETURN(std::unique_ptr<Connection> reader,
                         Connection::Open(options_.conninfo));
    absl::MutexLock lock(&readers_mu_);
    idle_readers_.push_back(std::move(reader));
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return absl::InternalError("cannot create an eventfd");
  writer_thread_ = std::thread([this] { WriterLoop(); });
  listen_thread_ = std::thread([this] { ListenLoop(); });
  spdlog::info("storage: PostgreSQL at {} (schema {})", pg::RedactConninfo(options_.conninfo),
               PostgresRepository::SchemaVersion());
  return absl::OkStatus();
}

absl::Status PostgresRepository::Impl::Migrate(Connection& conn) {
  const int latest = PostgresRepository::SchemaVersion();
  for (const pg::Migration& m : pg::kMigrations) {
    AIR_RETURN_IF_ERROR(conn.Run("BEGIN"));
    auto step = [&]() -> absl::StatusOr<bool> {
      AIR_RETURN_IF_ERROR(conn.Run("SELECT pg_advisory_xact_lock($1)",
                                   Params().Int(pg::kMigrationLockKey)));
      AIR_RETURN_IF_ERROR(
          conn.Run("CREATE TABLE IF NOT EXISTS air_schema (version INT NOT NULL)"));
      AIR_ASSIGN_OR_RETURN(Result r, conn.Exec("SELECT COALESCE(MAX(version), 0) FROM air_schema"));
      const int64_t version = r.Int(0, 0);
      if (version > latest) {
        return absl::FailedPreconditionError(absl::StrCat(
            "schema version ", version, " is newer than this aird understands (", latest,
            "); run a newer aird"));
      }
      if (m.version <= version) return false;
      AIR_RETURN_IF_ERROR(conn.RunScript(m.sql));
      AIR_RETURN_IF_ERROR(conn.Run("DELETE FROM air_schema"));
      AIR_RETURN_IF_ERROR(
          conn.Run("INSERT INTO air_schema (version) VALUES ($1)", Params().Int(m.version)));
      return true;
    };
    absl::StatusOr<bool> applied = step();
    if (applied.ok()) {
      AIR_RETURN_IF_ERROR(conn.Run("COMMIT"));
      if (*applied) spdlog::info("storage: applied schema migration {}", m.version);
    } else {
      if (conn.ok()) (void)conn.Run("ROLLBACK");
      return applied.status();
    }
  }
  return absl::OkStatus();
}

void PostgresRepository::Impl::Stop() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  if (wake_fd_ >= 0) {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
  if (writer_thread_.joinable()) writer_thread_.join();
  if (listen_thread_.joinable()) listen_thread_.join();
  if (wake_fd_ >= 0) close(wake_fd_);
  wake_fd_ = -1;
}

void PostgresRepository::Impl::WriterLoop() {
  std::vector<Job> batch;
  while (true) {
    {
      absl::MutexLock lock(&queue_mu_);
      queue_mu_.Await(absl::Condition(
          +[](Impl* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->queue_mu_) {
            return self->stopping_ || !self->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stopping, and everything queued is done
      while (!queue_.empty() && static_cast<int>(batch.size()) < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    RunBatch(batch);
    batch.clear();
  }
}

absl::Status PostgresRepository::Impl::EnsureWriter() {
  if (writer_->ok()) return absl::OkStatus();
  const absl::Time now = absl::Now();
  if (now < next_reconnect_) return pg::PostgresError("", "write");
  absl::Status reset = writer_->Reset();
  if (reset.ok()) {
    reconnect_backoff_ = absl::Milliseconds(100);
    spdlog::info("storage: writer reconnected to PostgreSQL");
  } else {
    next_reconnect_ = now + reconnect_backoff_;
    reconnect_backoff_ = std::min(reconnect_backoff_ * 2, absl::Seconds(5));
  }
  return reset;
}

void PostgresRepository::Impl::RunBatch(std::vector<Job>& batch) {
  std::vector<absl::Status> results(batch.size());
  absl::Status batch_error = EnsureWriter();
  if (batch_error.ok()) batch_error = writer_->Run("BEGIN");
  // The lock that makes writers serial (see the comment at the top).
  int64_t next_sequence = 0;
  if (batch_error.ok()) {
    absl::StatusOr<Result> head =
        writer_->Exec("SELECT next_sequence FROM event_log WHERE id = 1 FOR UPDATE");
    if (head.ok() && head->rows() == 1) {
      next_sequence = head->Int(0, 0);
    } else {
      batch_error = head.ok() ? MakeError(absl::StatusCode::kDataLoss,
                                          "storage write failed: the event log is missing",
                                          v1::STORAGE_CORRUPT)
                              : head.status();
    }
  }
  PostgresWriteTransaction tx(*writer_, next_sequence, clock_->Now());
  const int64_t first_sequence = next_sequence;

  for (size_t i = 0; i < batch.size() && batch_error.ok(); ++i) {
    const auto mark = tx.mark();
    batch_error = writer_->Run("SAVEPOINT write_fn");
    if (!batch_error.ok()) break;
    results[i] = batch[i].fn(tx);
    if (!writer_->ok()) {
      batch_error = MakeError(absl::StatusCode::kUnavailable,
                              "storage write failed: the database is unreachable; retry",
                              v1::STORAGE_UNAVAILABLE);
      break;
    }
    if (results[i].ok()) {
      batch_error = writer_->Run("RELEASE write_fn");
    } else {
      tx.RollBackTo(mark);
      batch_error = writer_->Run("ROLLBACK TO write_fn");
      if (batch_error.ok()) batch_error = writer_->Run("RELEASE write_fn");
    }
  }
  if (batch_error.ok() && tx.next_sequence() != first_sequence) {
    batch_error = writer_->Run("UPDATE event_log SET next_sequence = $1 WHERE id = 1",
                               Params().Int(tx.next_sequence()));
    // Delivered to listeners at commit, never before.
    if (batch_error.ok()) {
      batch_error = writer_->Run("SELECT pg_notify($1, $2)",
                                 Params().Text(kEventChannel).Text(
                                     std::to_string(tx.next_sequence() - 1)));
    }
  }
  if (batch_error.ok()) batch_error = writer_->Run("COMMIT");
  if (!batch_error.ok()) {
    if (writer_->ok() && writer_->InTransaction()) (void)writer_->Run("ROLLBACK");
    tx.events().clear();
    for (absl::Status& r : results) {
      if (r.ok()) r = batch_error;
    }
  }

  if (!tx.events().empty()) {
    CommitObserver local;
    {
      absl::MutexLock lock(&queue_mu_);
      local = local_observer_;
    }
    if (local) {
      // A copy: the commit observer below may take the events.
      std::vector<v1::Event> copy = tx.events();
      local(copy);
    }
    PublishCommitted(&tx.events());
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].done) batch[i].done(std::move(results[i]));
  }
}

void PostgresRepository::Impl::PublishCommitted(std::vector<v1::Event>* local) {
  absl::MutexLock lock(&publish_mu_);
  // Until an observer is set nothing is handed out (and published_ stays
  // put), so the first observer still receives everything after Open.
  if (!observer_) return;
  if (local == nullptr || local->empty()) {
    CatchUpLocked(std::numeric_limits<int64_t>::max());
    return;
  }
  const int64_t first = local->front().sequence();
  // Other replicas' commits may sit between what we published and ours:
  // they committed before ours (writers are serial), so they are readable.
  if (first > published_ + 1) CatchUpLocked(first - 1);
  if (first > published_ + 1) return;  // could not read them; the listener will
  auto fresh = std::find_if(local->begin(), local->end(), [this](const v1::Event& e) {
    publish_mu_.AssertHeld();
    return e.sequence() > published_;
  });
  local->erase(local->begin(), fresh);
  if (local->empty()) return;
  published_ = local->back().sequence();
  observer_(*local);
}

void PostgresRepository::Impl::CatchUpLocked(int64_t up_to) {
  constexpr int kPage = 512;
  while (published_ < up_to) {
    absl::StatusOr<Reader> reader = LeaseReader();
    if (!reader.ok()) return;
    absl::StatusOr<std::vector<v1::Event>> events =
        LoadEvents(**reader, published_, static_cast<int>(std::min<int64_t>(kPage, up_to - published_)));
    if (!events.ok() || events->empty()) return;
    if (events->front().sequence() != published_ + 1) {
      // Retention removed events this replica never saw (it was far behind):
      // streams behind them get CURSOR_EXPIRED from the log bounds.
      spdlog::warn("storage: events {}..{} were pruned before this replica saw them",
                   published_ + 1, events->front().sequence() - 1);
    }
    const size_t n = events->size();
    published_ = events->back().sequence();
    observer_(*events);
    if (static_cast<int>(n) < kPage) return;
  }
}

void PostgresRepository::Impl::ListenLoop() {
  std::unique_ptr<Connection> conn;
  absl::Duration backoff = absl::Milliseconds(100);
  auto stopping = [this] {
    absl::MutexLock lock(&queue_mu_);
    return stopping_;
  };
  bool connected = true;  // as last reported
  auto report = [this, &connected](bool now_connected) {
    if (now_connected == connected) return;
    connected = now_connected;
    ConnectionObserver observer;
    {
      absl::MutexLock lock(&publish_mu_);
      observer = connection_observer_;
    }
    if (now_connected) {
      spdlog::info("storage: connected to PostgreSQL again");
    } else {
      spdlog::error("storage: lost the connection to PostgreSQL; reconnecting");
    }
    if (observer) {
      observer(now_connected ? absl::OkStatus() : pg::PostgresError("", "connection"));
    }
  };
  while (!stopping()) {
    if (conn == nullptr || !conn->ok()) {
      if (conn != nullptr) report(false);
      conn.reset();
      absl::StatusOr<std::unique_ptr<Connection>> opened = Connection::Open(options_.conninfo);
      if (opened.ok()) {
        absl::Status listen = (*opened)->Run(absl::StrCat("LISTEN ", kEventChannel));
        if (listen.ok()) {
          conn = std::move(*opened);
          backoff = absl::Milliseconds(100);
        }
      }
      if (conn == nullptr) {
        report(false);
        spdlog::warn("storage: cannot listen for other replicas' events; retrying in {} ms",
                     absl::ToInt64Milliseconds(backoff));
      } else {
        report(true);
      }
    }
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {conn ? conn->socket() : -1, POLLIN, 0}};
    const absl::Duration wait = conn ? options_.fallback_poll : backoff;
    (void)poll(fds, conn ? 2 : 1, static_cast<int>(absl::ToInt64Milliseconds(wait)));
    if (conn == nullptr) {
      backoff = std::min(backoff * 2, absl::Seconds(5));
    } else if (!conn->ConsumeNotifications().ok()) {
      conn.reset();
      report(false);
    }
    // On a notification, and on every fallback poll: read what is new.
    PublishCommitted(nullptr);
  }
}

// ---------------------------------------------------------------------------

PostgresRepository::PostgresRepository(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PostgresRepository::~PostgresRepository() = default;

int PostgresRepository::SchemaVersion() {
  int latest = 0;
  for (const pg::Migration& m : pg::kMigrations) latest = std::max(latest, m.version);
  return latest;
}

absl::StatusOr<std::unique_ptr<PostgresRepository>> PostgresRepository::Open(
    const PostgresOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  AIR_RETURN_IF_ERROR(impl->Open());
  return std::unique_ptr<PostgresRepository>(new PostgresRepository(std::move(impl)));
}

void PostgresRepository::WriteAsync(WriteFn fn, DoneFn done) {
  impl_->Enqueue(std::move(fn), std::move(done));
}

void PostgresRepository::SetCommitObserver(CommitObserver observer) {
  impl_->SetObserver(std::move(observer));
}

void PostgresRepository::SetLocalCommitObserver(CommitObserver observer) {
  impl_->SetLocalObserver(std::move(observer));
}

void PostgresRepository::SetConnectionObserver(ConnectionObserver observer) {
  impl_->SetConnectionObserver(std::move(observer));
}

absl::StatusOr<v1::Action> PostgresRepository::GetAction(absl::string_view id) {
  AIR_ASSIGN_OR_RETURN(auto reader, impl_->LeaseReader());
  return LoadAction(*reader, id, /*for_update=*/false);
}

absl::StatusOr<v1::Investigation> PostgresRepository::GetInvestigation(absl::string_view id) {
  AIR_ASSIGN_OR_RETURN(auto reader, impl_->LeaseReader());
  return LoadInvestigation(*reader, id);
}

absl::StatusOr<ActionPage> PostgresRepository::ListActions(const ActionQuery& query) {
  WhereBuilder where;
  AddActionFilter(query.filter, where);
  if (query.after) where.AddKeyset("create_us", query.descending, *query.after);
  const std::string limit = where.Limit(query.page_size + 1);
  const char* dir = query.descending ? "DESC" : "ASC";
  const std::string sql =
      absl::StrCat("SELECT create_us, id, body FROM actions WHERE 1 = 1", where.sql(),
                   " ORDER BY create_us ", dir, ", id ", dir, limit);
  AIR_ASSIGN_OR_RETURN(auto reader, impl_->LeaseReader());
  AIR_ASSIGN_OR_RETURN(Result r, reader->Exec(sql, where.params()));
  ActionPage page;
  PageCursor last;
  for (int i = 0; i < r.rows(); ++i) {
    if (static_cast<int>(page.actions.size()) == query.page_size) {
      page.next = last;
      break;
    }
    last = PageCursor{r.Int(i, 0), std::string(r.Bytes(i, 1))};
    AIR_ASSIGN_OR_RETURN(v1::Action action, ParseBody<v1::Action>(r.Bytes(i, 2)));
    page.actions.push_back(std::move(action));
  }
  return page;
}

absl::StatusOr<InvestigationPage> PostgresRepository::ListInvestigations(
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
  const std::string sql = absl::StrCat("SELECT ", sort_column,
                                       ", id, body FROM investigations WHERE 1 = 1", where.sql(),
                                       " ORDER BY ", sort_column, " ", dir, ", id ", dir, limit);
  AIR_ASSIGN_OR_RETURN(auto reader, impl_->LeaseReader());
  AIR_ASSIGN_OR_RETURN(Result r, reader->Exec(sql, where.params()));
  InvestigationPage page;
  PageCursor last;
  for (int i = 0; i < r.rows(); ++i) {
    if (static_cast<int>(page.investigations.size()) == query.page_size) {
      page.next = last;
      break;
    }
    last = PageCursor{r.Int(i, 0), std::string(r.Bytes(i, 1))};
    AIR_ASSIGN_OR_RETURN(v1::Investigation inv, ParseBody<v1::Investigation>(r.Bytes(i, 2)));
    page.investigations.push_back(std::move(inv));
  }
  return page;
}

absl::StatusOr<std::vector<AuditRecord>> PostgresRepository::ListAudit(
    absl::string_view action_id) {
  AIR_ASSIGN_OR_RETURN(auto reader, impl_->LeaseReader());
  AIR_ASSIGN_OR_RETURN(
      Result r, reader->Exec("SELECT action_id, investigation_id, from_state, to_state, "
                             "outcome, source, decider, comment, policy_rule, request_id, "
                             "decide_us FROM decision_audit WHERE action_id = $1 ORDER BY id",
                             Params().Text(action_id)));
  std::vector<AuditRecord> records;
  for (int i = 0; i < r.rows(); ++i) {
    AuditRecord a;
    a.action_id = std::string(r.Bytes(i, 0));
    a.investigation_id = std::string(r.Bytes(i, 1));
    a.from_state = static_cast<v1::Action::State>(r.Int(i, 2));
    a.to_state = static_cast<v1::Action::State>(r.Int(i, 3));
    a.decision.set_outcome(static_cast<v1::Decision::Outcome>(r.Int(i, 4)));
    a.decision.set_source(static_cast<v1::Decision::Source>(r.Int(i, 5)));
    a.decision.set_decider(std::string(r.Bytes(i, 6)));
    a.decision.set_comment(std::string(r.Bytes(i, 7)));
    a.decision.set_policy_rule(std::string(r.Bytes(i, 8)));
    a.request_id = std::string(r.Bytes(i, 9));
    SetTimestamp(absl::FromUnixMicros(r.Int(i, 10)), a.decision.mutable_decide_time());
    records.push_back(std::move(a));
  }
  return records;
}

absl::StatusOr<std::vector<v1::Event>> PostgresRepository::ReadEvents(int64_t after_sequence,
                                                                      int limit) {
  AIR_ASSIGN_OR_RETURN(auto reader, impl_->LeaseReader());
  return LoadEvents(*reader, after_sequence, limit);
}

absl::StatusOr<EventLogBounds> PostgresRepository::GetEventLogBounds() {
  AIR_ASSIGN_OR_RETURN(auto reader, impl_->LeaseReader());
  return LoadBounds(*reader);
}

absl::StatusOr<PendingSnapshot> PostgresRepository::SnapshotPending(const ActionFilter& filter,
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
  AIR_ASSIGN_OR_RETURN(auto reader, impl_->LeaseReader());
  // One snapshot for the head and the rows.
  AIR_RETURN_IF_ERROR(reader->Run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  PendingSnapshot snapshot;
  AIR_ASSIGN_OR_RETURN(EventLogBounds bounds, LoadBounds(*reader));
  snapshot.sequence = bounds.head;
  AIR_ASSIGN_OR_RETURN(Result r, reader->Exec(sql, where.params()));
  for (int i = 0; i < r.rows(); ++i) {
    AIR_ASSIGN_OR_RETURN(v1::Action action, ParseBody<v1::Action>(r.Bytes(i, 0)));
    snapshot.actions.push_back(std::move(action));
  }
  AIR_RETURN_IF_ERROR(reader->Run("COMMIT"));
  return snapshot;
}

absl::StatusOr<std::vector<OutboxDecision>> PostgresRepository::ReadDecisionOutbox(int limit) {
  AIR_ASSIGN_OR_RETURN(auto reader, impl_->LeaseReader());
  AIR_ASSIGN_OR_RETURN(
      Result r, reader->Exec("SELECT position, request_id, action_id, outcome, source, decider, "
                             "comment, decide_us, duplicate_of, upstream_version, enqueue_us "
                             "FROM decision_outbox WHERE delivered_us IS NULL "
                             "ORDER BY position LIMIT $1",
                             Params().Int(limit)));
  std::vector<OutboxDecision> out;
  for (int i = 0; i < r.rows(); ++i) {
    OutboxDecision d;
    d.position = r.Int(i, 0);
    d.request_id = std::string(r.Bytes(i, 1));
    d.action_id = std::string(r.Bytes(i, 2));
    d.decision.set_outcome(static_cast<v1::Decision::Outcome>(r.Int(i, 3)));
    d.decision.set_source(static_cast<v1::Decision::Source>(r.Int(i, 4)));
    d.decision.set_decider(std::string(r.Bytes(i, 5)));
    d.decision.set_comment(std::string(r.Bytes(i, 6)));
    SetTimestamp(absl::FromUnixMicros(r.Int(i, 7)), d.decision.mutable_decide_time());
    d.duplicate_of = std::string(r.Bytes(i, 8));
    d.upstream_version = r.Int(i, 9);
    d.enqueue_time = absl::FromUnixMicros(r.Int(i, 10));
    out.push_back(std::move(d));
  }
  return out;
}

absl::StatusOr<DecisionOutboxStats> PostgresRepository::GetDecisionOutboxStats() {
  AIR_ASSIGN_OR_RETURN(auto reader, impl_->LeaseReader());
  AIR_ASSIGN_OR_RETURN(Result r, reader->Exec("SELECT COUNT(*), MIN(enqueue_us) FROM "
                                              "decision_outbox WHERE delivered_us IS NULL"));
  DecisionOutboxStats stats;
  if (r.rows() == 1) {
    stats.backlog = r.Int(0, 0);
    if (!r.IsNull(0, 1)) stats.oldest_undelivered = absl::FromUnixMicros(r.Int(0, 1));
  }
  return stats;
}

absl::StatusOr<std::string> PostgresRepository::GetSyncCursor(absl::string_view name) {
  AIR_ASSIGN_OR_RETURN(auto reader, impl_->LeaseReader());
  return LoadSyncCursor(*reader, name);
}

absl::StatusOr<StoreStats> PostgresRepository::GetStoreStats() {
  AIR_ASSIGN_OR_RETURN(auto reader, impl_->LeaseReader());
  StoreStats stats;
  AIR_ASSIGN_OR_RETURN(Result r, reader->Exec("SELECT type, COUNT(*), MIN(create_us) FROM "
                                              "actions WHERE state = 1 GROUP BY type"));
  for (int i = 0; i < r.rows(); ++i) {
    stats.pending_by_type[static_cast<v1::ActionType>(r.Int(i, 0))] = r.Int(i, 1);
    const absl::Time created = absl::FromUnixMicros(r.Int(i, 2));
    if (!stats.oldest_pending_create_time || created < *stats.oldest_pending_create_time) {
      stats.oldest_pending_create_time = created;
    }
  }
  AIR_ASSIGN_OR_RETURN(Result size,
                       reader->Exec("SELECT pg_database_size(current_database())"));
  stats.database_bytes = size.Int(0, 0);
  stats.wal_bytes = 0;  // the server's WAL is shared and managed by PostgreSQL
  return stats;
}

// ---------------------------------------------------------------------------
// Leader election

class PostgresLeaderElection::Impl {
 public:
  Impl(const Options& options, std::function<void(bool)> on_change)
      : options_(options), on_change_(std::move(on_change)) {}

  void Start() { thread_ = std::thread([this] { Loop(); }); }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
      stop_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

  bool is_leader() const {
    absl::MutexLock lock(&mu_);
    return leader_;
  }

 private:
  void SetLeader(bool leader) {
    {
      absl::MutexLock lock(&mu_);
      if (leader_ == leader) return;
      leader_ = leader;
    }
    spdlog::info("leader election: this replica {} the leader",
                 leader ? "is now" : "is no longer");
    on_change_(leader);
  }

  // One attempt: true if this connection holds the lock afterwards.
  bool Attempt() {
    if (conn_ == nullptr || !conn_->ok()) {
      conn_.reset();
      // Both ends must notice a dead peer within seconds, not at TCP's
      // default of hours: this replica (it must stop leading) through a
      // short user timeout, the server (it must drop the lock so another
      // replica can lead) through the session's keepalive settings.
      absl::StatusOr<std::unique_ptr<Connection>> opened = Connection::Open(
          options_.conninfo, {{"tcp_user_timeout", "5000"},
                              {"keepalives_idle", "3"},
                              {"keepalives_interval", "1"},
                              {"keepalives_count", "3"},
                              {"options", "-c tcp_keepalives_idle=3 -c tcp_keepalives_interval=1 "
                                          "-c tcp_keepalives_count=3 -c tcp_user_timeout=5000"},
                              {"application_name", "aird-leader-election"}});
      if (!opened.ok()) return false;
      conn_ = std::move(*opened);
    }
    if (held_) {
      // Still connected means still held (session locks die with sessions);
      // a round trip proves the session is alive.
      if (conn_->Run("SELECT 1").ok()) return true;
      held_ = false;
      conn_.reset();
      return false;
    }
    absl::StatusOr<Result> r =
        conn_->Exec("SELECT pg_try_advisory_lock($1)::int", Params().Int(options_.lock_key));
    held_ = r.ok() && r->rows() == 1 && r->Int(0, 0) == 1;
    return held_;
  }

  void Loop() {
    while (true) {
      const bool leader = Attempt();
      SetLeader(leader);
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.retry_interval)) break;
    }
    SetLeader(false);
    if (held_ && conn_ != nullptr && conn_->ok()) {
      (void)conn_->Run("SELECT pg_advisory_unlock($1)", Params().Int(options_.lock_key));
    }
    conn_.reset();
  }

  const Options options_;
  const std::function<void(bool)> on_change_;
  std::unique_ptr<Connection> conn_;  // election thread only
  bool held_ = false;                 // election thread only
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool leader_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

PostgresLeaderElection::PostgresLeaderElection(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

PostgresLeaderElection::~PostgresLeaderElection() { Stop(); }

std::unique_ptr<PostgresLeaderElection> PostgresLeaderElection::Start(
    const Options& options, std::function<void(bool leader)> on_change) {
  auto impl = std::make_unique<Impl>(options, std::move(on_change));
  impl->Start();
  return std::unique_ptr<PostgresLeaderElection>(new PostgresLeaderElection(std::move(impl)));
}

bool PostgresLeaderElection::is_leader() const { return impl_->is_leader(); }

void PostgresLeaderElection::Stop() { impl_->Stop(); }

}  // namespace air
