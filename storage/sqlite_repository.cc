#include "storage/sqlite_repository.h"

#include <algorithm>
#include <deque>
#include <filesystem>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "domain/errors.h"
#include "domain/lifecycle.h"
#include "domain/status_macros.h"
#include "spdlog/spdlog.h"
#include "storage/record_codec.h"
#include "storage/sqlite_connection.h"
#include "storage/sqlite_schema.h"

namespace air {

using sqlite::Connection;
using sqlite::Statement;
using sqlite::StorageError;
using storage_internal::Micros;
using storage_internal::NotFound;
using storage_internal::ParseBody;

namespace {

absl::StatusOr<v1::Action> LoadAction(Connection& conn, absl::string_view id) {
  AIR_ASSIGN_OR_RETURN(Statement stmt,
                       conn.Prepare("SELECT body FROM actions WHERE id = ?"));
  stmt.BindUncopied(1, id);
  AIR_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return NotFound("action", id);
  return ParseBody<v1::Action>(stmt.ColumnBlob(0));
}

absl::StatusOr<v1::Investigation> LoadInvestigation(Connection& conn,
                                                    absl::string_view id) {
  AIR_ASSIGN_OR_RETURN(
      Statement stmt,
      conn.Prepare("SELECT body FROM investigations WHERE id = ?"));
  stmt.BindUncopied(1, id);
  AIR_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return NotFound("investigation", id);
  return ParseBody<v1::Investigation>(stmt.ColumnBlob(0));
}

absl::StatusOr<EventLogBounds> LoadBounds(Connection& conn) {
  EventLogBounds bounds;
  AIR_ASSIGN_OR_RETURN(
      bounds.first_retained,
      conn.QueryInt("SELECT value FROM meta WHERE key = 'first_retained_sequence'"));
  AIR_ASSIGN_OR_RETURN(int64_t max_seq,
                       conn.QueryInt("SELECT COALESCE(MAX(sequence), 0) FROM events"));
  bounds.head = std::max(max_seq, bounds.first_retained - 1);
  return bounds;
}

absl::StatusOr<std::string> LoadSyncCursor(Connection& conn, absl::string_view name) {
  AIR_ASSIGN_OR_RETURN(Statement stmt,
                       conn.Prepare("SELECT cursor FROM sync_cursors WHERE name = ?"));
  stmt.Bind(1, name);
  AIR_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::string();
  return std::string(stmt.ColumnText(0));
}

// Appends "AND <column> = ?" style terms and remembers the values to bind.
class WhereBuilder {
 public:
  void Add(absl::string_view clause, int64_t value) {
    absl::StrAppend(&sql_, " AND ", clause);
    ints_.push_back({++next_, value});
  }
  void Add(absl::string_view clause, std::string value) {
    absl::StrAppend(&sql_, " AND ", clause);
    texts_.push_back({++next_, std::move(value)});
  }
  // A keyset bound over (sort_column, id): two parameters.
  void AddKeyset(absl::string_view sort_column, bool descending,
                 const PageCursor& after) {
    absl::StrAppend(&sql_, " AND (", sort_column, ", id) ",
                    descending ? "<" : ">", " (?, ?)");
    ints_.push_back({++next_, after.sort_key});
    texts_.push_back({++next_, after.id});
  }
  int AddLimit(int64_t limit) {
    ints_.push_back({++next_, limit});
    return next_;
  }
  const std::string& sql() const { return sql_; }
  void BindAll(Statement& stmt) const {
    for (const auto& [index, value] : ints_) stmt.Bind(index, value);
    for (const auto& [index, value] : texts_) stmt.Bind(index, value);
  }

 private:
  std::string sql_;
  int next_ = 0;
  std::vector<std::pair<int, int64_t>> ints_;
  std::vector<std::pair<int, std::string>> texts_;
};

void AddActionFilter(const ActionFilter& filter, WhereBuilder& where) {
  if (filter.state) where.Add("state = ?", static_cast<int64_t>(*filter.state));
  if (filter.type) where.Add("type = ?", static_cast<int64_t>(*filter.type));
  if (filter.investigation_id) {
    where.Add("investigation_id = ?", *filter.investigation_id);
  }
}

}  // namespace

// ---------------------------------------------------------------------------

class SqliteWriteTransaction;

class SqliteRepository::Impl {
 public:
  explicit Impl(const SqliteOptions& options)
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
    // Never silently drop a write: tell the caller.
    done(MakeError(absl::StatusCode::kUnavailable, "storage is shutting down",
                   v1::STORAGE_CLOSED));
  }

  // A leased reader connection, returned to the pool on destruction.
  class Reader {
   public:
    Reader(Impl* impl, std::unique_ptr<Connection> conn)
        : impl_(impl), conn_(std::move(conn)) {}
    ~Reader() { impl_->ReturnReader(std::move(conn_)); }
    Connection& operator*() { return *conn_; }
    Connection* operator->() { return conn_.get(); }

   private:
    Impl* impl_;
    std::unique_ptr<Connection> conn_;
  };

  Reader LeaseReader() {
    absl::MutexLock lock(&readers_mu_);
    readers_mu_.Await(absl::Condition(
        +[](std::vector<std::unique_ptr<Connection>>* v) { return !v->empty(); },
        &idle_readers_));
    std::unique_ptr<Connection> conn = std::move(idle_readers_.back());
    idle_readers_.pop_back();
    return Reader(this, std::move(conn));
  }

  void ReturnReader(std::unique_ptr<Connection> conn) {
    absl::MutexLock lock(&readers_mu_);
    idle_readers_.push_back(std::move(conn));
  }

  void SetObserver(CommitObserver observer) {
    absl::MutexLock lock(&queue_mu_);
    observer_ = std::move(observer);
  }

  const SqliteOptions& options() const { return options_; }

 private:
  friend class SqliteWriteTransaction;
  struct Job {
    WriteFn fn;
    DoneFn done;
  };
  // What is left of a batch once its outcome is durable (or rolled back):
  // the events to announce and the callers to answer.
  struct Completion {
    std::vector<v1::Event> events;
    std::vector<DoneFn> dones;
    std::vector<absl::Status> results;
  };

  absl::Status Migrate();
  absl::Status StartCheckpointer();
  void WriterLoop();
  void RunBatch(std::vector<Job>& batch);
  // Runs the functions of `batch` not in `skip`, in order, inside the open
  // transaction. With `isolate`, each runs in a savepoint and a failure
  // undoes only its own changes; without, the first failure stops the pass
  // and its index goes to *first_failure (the caller rolls back). Returns
  // a storage error that ends the whole batch.
  absl::Status RunFunctions(std::vector<Job>& batch, SqliteWriteTransaction& tx,
                            const std::vector<bool>& skip, bool isolate,
                            std::vector<absl::Status>& results, int* first_failure);
  void CompleterLoop();
  void CheckpointerLoop();
  // sqlite3_wal_hook on the writer: runs inside each COMMIT with the log's
  // size in pages.
  static int OnWalCommit(void* self, sqlite3* db, const char* schema, int pages);

  const SqliteOptions options_;
  const Clock* const clock_;

  // Owned by the writer thread once it starts.
  std::unique_ptr<Connection> writer_;
  int64_t next_sequence_ = 1;

  absl::Mutex queue_mu_;
  std::deque<Job> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  CommitObserver observer_ ABSL_GUARDED_BY(queue_mu_);
  std::thread writer_thread_;

  // Batches handed from the writer to the completer thread, in commit order.
  // The completer runs the observer and the done callbacks (answering a
  // gRPC call costs about as much as deciding it), so the writer starts
  // the next batch at once instead of waiting for them.
  absl::Mutex completion_mu_;
  std::deque<Completion> completions_ ABSL_GUARDED_BY(completion_mu_);
  bool writer_done_ ABSL_GUARDED_BY(completion_mu_) = false;
  std::thread completer_thread_;

  absl::Mutex readers_mu_;
  std::vector<std::unique_ptr<Connection>> idle_readers_
      ABSL_GUARDED_BY(readers_mu_);

  // The background checkpointer (see SqliteOptions::checkpoint_pages).
  std::unique_ptr<Connection> checkpoint_conn_;  // owned by its thread
  absl::Mutex checkpoint_mu_;
  bool checkpoint_requested_ ABSL_GUARDED_BY(checkpoint_mu_) = false;
  bool checkpoint_stopping_ ABSL_GUARDED_BY(checkpoint_mu_) = false;
  std::thread checkpoint_thread_;
};

// The WriteTransaction handed to write functions on the writer thread.
class SqliteWriteTransaction final : public WriteTransaction {
  struct CachedInvestigation;

 public:
  SqliteWriteTransaction(Connection& conn, int64_t& next_sequence, absl::Time now)
      : conn_(conn), next_sequence_(next_sequence), now_(now) {}

  absl::StatusOr<v1::Action> GetAction(absl::string_view id) override {
    return LoadAction(conn_, id);
  }
  absl::StatusOr<bool> HasAction(absl::string_view id) override {
    return RowExists("SELECT 1 FROM actions WHERE id = ?", id);
  }
  absl::StatusOr<bool> HasInvestigation(absl::string_view id) override {
    if (investigations_.contains(id)) return true;
    return RowExists("SELECT 1 FROM investigations WHERE id = ?", id);
  }
  // Investigations are read once per batch and written back once, by
  // Flush() before COMMIT: a batch of decisions on one investigation's
  // actions (the common case in an incident) updates its counts in memory
  // instead of re-reading, re-serializing and rewriting the row (and its
  // indexes) for every decision. Nothing else in a write transaction reads
  // the investigations table, and events carry copies made when appended.
  absl::StatusOr<v1::Investigation> GetInvestigation(absl::string_view id) override {
    AIR_ASSIGN_OR_RETURN(CachedInvestigation * cached, Cached(id));
    return cached->value;
  }

  absl::Status PutInvestigation(const v1::Investigation& inv) override {
    auto it = investigations_.find(inv.id());
    if (it == investigations_.end()) {
      undo_.push_back({inv.id(), std::nullopt});
      investigations_.emplace(inv.id(), CachedInvestigation{inv, true, generation_});
    } else {
      SaveForUndo(it->first, it->second);
      it->second.value = inv;
      it->second.dirty = true;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<bool> ChangeInvestigation(
      absl::string_view id, absl::FunctionRef<bool(v1::Investigation&)> change) override {
    AIR_ASSIGN_OR_RETURN(CachedInvestigation * cached, Cached(id));
    SaveForUndo(id, *cached);
    cached->dirty = true;
    return change(cached->value);
  }

  // The cached copy of investigation `id`, read on first use.
  absl::StatusOr<CachedInvestigation*> Cached(absl::string_view id) {
    if (auto it = investigations_.find(id); it != investigations_.end()) return &it->second;
    AIR_ASSIGN_OR_RETURN(v1::Investigation loaded, LoadInvestigation(conn_, id));
    undo_.push_back({std::string(id), std::nullopt});
    return &investigations_
                .emplace(std::string(id),
                         CachedInvestigation{std::move(loaded), false, generation_})
                .first->second;
  }

  // Keeps what `cached` is now, for a rollback to the latest mark, unless
  // it was kept since that mark already (the first copy is the one a
  // rollback restores, so a decision batch copies each investigation once
  // per function, not once per change).
  void SaveForUndo(absl::string_view id, CachedInvestigation& cached) {
    if (cached.saved_in == generation_) return;
    undo_.push_back({std::string(id), cached});
    cached.saved_in = generation_;
  }

  absl::StatusOr<bool> RowExists(const char* sql, absl::string_view id) {
    AIR_ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare(sql));
    stmt.BindUncopied(1, id);
    return stmt.Step();
  }

  // Writes the investigations changed in this batch.
  absl::Status Flush() {
    for (auto& [id, cached] : investigations_) {
      if (!cached.dirty) continue;
      AIR_RETURN_IF_ERROR(WriteInvestigation(cached.value));
      cached.dirty = false;
    }
    return absl::OkStatus();
  }

  absl::Status PutAction(const v1::Action& action) override {
    // SQLite rewrites every index that contains a column named in SET,
    // changed or not. investigation_id, type and create_us never change
    // once an action exists, so the upsert sets only the mutable columns
    // (2 of the 5 indexes instead of 4); its WHERE makes it a no-op if they
    // did differ, and then the full update below keeps the row consistent.
    static const std::string kUpsert =
        "INSERT INTO actions (id, investigation_id, type, state, create_us, expire_us, "
        "body) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
        "state = excluded.state, expire_us = excluded.expire_us, body = excluded.body "
        "WHERE investigation_id = excluded.investigation_id AND type = excluded.type "
        "AND create_us = excluded.create_us";
    static const std::string kFullUpdate =
        "UPDATE actions SET investigation_id = ?2, type = ?3, state = ?4, "
        "create_us = ?5, expire_us = ?6, body = ?7 WHERE id = ?1";
    const std::string body = action.SerializeAsString();
    for (const std::string* sql : {&kUpsert, &kFullUpdate}) {
      AIR_ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare(*sql));
      stmt.BindUncopied(1, action.id())
          .BindUncopied(2, action.investigation_id())
          .Bind(3, static_cast<int64_t>(action.type()))
          .Bind(4, static_cast<int64_t>(action.state()))
          .Bind(5, Micros(action.create_time()))
          .Bind(6, Micros(action.expire_time()))
          .BindBlobUncopied(7, body);
      AIR_RETURN_IF_ERROR(stmt.Run());
      if (sqlite3_changes(conn_.db()) > 0) break;
    }
    return absl::OkStatus();
  }

  absl::Status WriteInvestigation(const v1::Investigation& inv) {
    // As in PutAction: create_us never changes, so the upsert leaves it (and
    // the index on it) alone unless it did differ.
    static const std::string kUpsert =
        "INSERT INTO investigations (id, state, source, verdict, create_us, update_us, "
        "body) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
        "state = excluded.state, source = excluded.source, verdict = excluded.verdict, "
        "update_us = excluded.update_us, body = excluded.body "
        "WHERE create_us = excluded.create_us";
    static const std::string kFullUpdate =
        "UPDATE investigations SET state = ?2, source = ?3, verdict = ?4, "
        "create_us = ?5, update_us = ?6, body = ?7 WHERE id = ?1";
    const std::string body = inv.SerializeAsString();
    for (const std::string* sql : {&kUpsert, &kFullUpdate}) {
      AIR_ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare(*sql));
      stmt.BindUncopied(1, inv.id())
          .Bind(2, static_cast<int64_t>(inv.state()))
          .Bind(3, static_cast<int64_t>(inv.source()))
          .Bind(4, static_cast<int64_t>(inv.verdict()))
          .Bind(5, Micros(inv.create_time()))
          .Bind(6, Micros(inv.update_time()))
          .BindBlobUncopied(7, body);
      AIR_RETURN_IF_ERROR(stmt.Run());
      if (sqlite3_changes(conn_.db()) > 0) break;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> AppendEvent(v1::Event event) override {
    const int64_t sequence = next_sequence_;
    event.set_sequence(sequence);
    SetTimestamp(now_, event.mutable_commit_time());
    AIR_ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("INSERT INTO events (sequence, commit_us, body) VALUES (?, ?, ?)"));
    const std::string body = event.SerializeAsString();
    stmt.Bind(1, sequence).Bind(2, absl::ToUnixMicros(now_)).BindBlobUncopied(3, body);
    AIR_RETURN_IF_ERROR(stmt.Run());
    ++next_sequence_;
    events_.push_back(std::move(event));
    return sequence;
  }

  absl::Status AppendAudit(const AuditRecord& r) override {
    AIR_ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("INSERT INTO decision_audit (action_id, investigation_id, "
                      "from_state, to_state, outcome, source, decider, comment, "
                      "policy_rule, request_id, decide_us) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    stmt.Bind(1, r.action_id)
        .Bind(2, r.investigation_id)
        .Bind(3, static_cast<int64_t>(r.from_state))
        .Bind(4, static_cast<int64_t>(r.to_state))
        .Bind(5, static_cast<int64_t>(r.decision.outcome()))
        .Bind(6, static_cast<int64_t>(r.decision.source()))
        .Bind(7, r.decision.decider())
        .Bind(8, r.decision.comment())
        .Bind(9, r.decision.policy_rule())
        .Bind(10, r.request_id)
        .Bind(11, Micros(r.decision.decide_time()));
    return stmt.Run();
  }

  absl::StatusOr<std::optional<StoredRequest>> FindRequest(
      absl::string_view request_id) override {
    AIR_ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("SELECT fingerprint, response FROM request_log WHERE request_id = ?"));
    stmt.Bind(1, request_id);
    AIR_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<StoredRequest>();
    return std::optional<StoredRequest>(StoredRequest{
        std::string(stmt.ColumnText(0)), std::string(stmt.ColumnBlob(1))});
  }

  absl::Status SaveRequest(absl::string_view request_id,
                           const StoredRequest& request) override {
    AIR_ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("INSERT INTO request_log (request_id, fingerprint, "
                      "response, create_us) VALUES (?, ?, ?, ?)"));
    stmt.Bind(1, request_id)
        .Bind(2, request.fingerprint)
        .BindBlob(3, request.response)
        .Bind(4, absl::ToUnixMicros(now_));
    return stmt.Run();
  }

  absl::StatusOr<std::vector<std::string>> PendingActionsDueBy(
      absl::Time deadline, int limit) override {
    AIR_ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("SELECT id FROM actions WHERE state = 1 AND expire_us <= ? "
                      "ORDER BY expire_us LIMIT ?"));
    stmt.Bind(1, absl::ToUnixMicros(deadline)).Bind(2, limit);
    std::vector<std::string> ids;
    while (true) {
      AIR_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      ids.emplace_back(stmt.ColumnText(0));
    }
    return ids;
  }

  absl::StatusOr<int64_t> PruneEvents(absl::Time older_than,
                                      int64_t max_events) override {
    const int64_t head = next_sequence_ - 1;
    if (head <= 0) return 0;
    // Keep at most max_events, and always the newest event.
    int64_t keep_from = std::max<int64_t>(head - std::max<int64_t>(max_events, 1) + 1, 1);
    AIR_ASSIGN_OR_RETURN(
        Statement by_time,
        conn_.Prepare("SELECT COALESCE(MIN(sequence), ?) FROM events WHERE commit_us >= ?"));
    by_time.Bind(1, head).Bind(2, absl::ToUnixMicros(older_than));
    AIR_ASSIGN_OR_RETURN(bool row, by_time.Step());
    if (row) keep_from = std::max(keep_from, std::min(by_time.ColumnInt(0), head));
    AIR_ASSIGN_OR_RETURN(Statement del,
                         conn_.Prepare("DELETE FROM events WHERE sequence < ?"));
    del.Bind(1, keep_from);
    AIR_RETURN_IF_ERROR(del.Run());
    const int64_t deleted = sqlite3_changes(conn_.db());
    AIR_ASSIGN_OR_RETURN(
        Statement meta,
        conn_.Prepare("UPDATE meta SET value = MAX(value, ?) "
                      "WHERE key = 'first_retained_sequence'"));
    meta.Bind(1, keep_from);
    AIR_RETURN_IF_ERROR(meta.Run());
    return deleted;
  }

  absl::Time Now() const override { return now_; }

  absl::StatusOr<std::optional<int64_t>> GetUpstreamVersion(
      UpstreamKind kind, absl::string_view id) override {
    AIR_ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("SELECT version FROM upstream_versions WHERE kind = ? AND id = ?"));
    stmt.Bind(1, static_cast<int64_t>(kind)).Bind(2, id);
    AIR_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<int64_t>();
    return std::optional<int64_t>(stmt.ColumnInt(0));
  }

  absl::Status SetUpstreamVersion(UpstreamKind kind, absl::string_view id,
                                  int64_t version) override {
    AIR_ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("INSERT OR REPLACE INTO upstream_versions (kind, id, version) "
                      "VALUES (?, ?, ?)"));
    stmt.Bind(1, static_cast<int64_t>(kind)).Bind(2, id).Bind(3, version);
    return stmt.Run();
  }

  // A page of versions in statements of a fixed shape (prepared once): ids
  // in chunks of kVersionChunk, the last chunk padded with NULL, which no
  // id equals.
  absl::Status GetUpstreamVersions(UpstreamKind kind, const std::vector<std::string>& ids,
                                   std::map<std::string, int64_t>& versions) override {
    static const std::string kSelect = [] {
      std::string sql = "SELECT id, version FROM upstream_versions WHERE kind = ?1 AND id IN (";
      for (int i = 0; i < kVersionChunk; ++i) absl::StrAppend(&sql, i ? ", ?" : "?", i + 2);
      return sql + ")";
    }();
    for (size_t start = 0; start < ids.size(); start += kVersionChunk) {
      AIR_ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare(kSelect));
      stmt.Bind(1, static_cast<int64_t>(kind));
      for (int i = 0; i < kVersionChunk; ++i) {
        if (start + i < ids.size()) {
          stmt.BindUncopied(i + 2, ids[start + i]);
        } else {
          stmt.BindNull(i + 2);
        }
      }
      while (true) {
        AIR_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        versions[std::string(stmt.ColumnText(0))] = stmt.ColumnInt(1);
      }
    }
    return absl::OkStatus();
  }

  // The same for writes: rows in chunks of kVersionChunk, the last chunk
  // padded with copies of its last row (writing it again changes nothing).
  absl::Status SetUpstreamVersions(
      UpstreamKind kind,
      const std::vector<std::pair<std::string, int64_t>>& versions) override {
    static const std::string kInsert = [] {
      std::string sql = "INSERT OR REPLACE INTO upstream_versions (kind, id, version) VALUES ";
      for (int i = 0; i < kVersionChunk; ++i) {
        absl::StrAppend(&sql, i ? ", " : "", "(?1, ?", 2 * i + 2, ", ?", 2 * i + 3, ")");
      }
      return sql;
    }();
    for (size_t start = 0; start < versions.size(); start += kVersionChunk) {
      AIR_ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare(kInsert));
      stmt.Bind(1, static_cast<int64_t>(kind));
      for (int i = 0; i < kVersionChunk; ++i) {
        const auto& [id, version] = versions[std::min(start + i, versions.size() - 1)];
        stmt.BindUncopied(2 * i + 2, id).Bind(2 * i + 3, version);
      }
      AIR_RETURN_IF_ERROR(stmt.Run());
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> GetSyncCursor(absl::string_view name) override {
    return LoadSyncCursor(conn_, name);
  }

  absl::Status SetSyncCursor(absl::string_view name, absl::string_view cursor) override {
    AIR_ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("INSERT OR REPLACE INTO sync_cursors (name, cursor, update_us) "
                      "VALUES (?, ?, ?)"));
    stmt.Bind(1, name).Bind(2, cursor).Bind(3, absl::ToUnixMicros(now_));
    return stmt.Run();
  }

  absl::StatusOr<int64_t> EnqueueDecision(const OutboxDecision& d) override {
    AIR_ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("INSERT INTO decision_outbox (request_id, action_id, outcome, "
                      "source, decider, comment, decide_us, duplicate_of, "
                      "upstream_version, enqueue_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                      "ON CONFLICT (request_id) DO NOTHING"));
    stmt.Bind(1, d.request_id)
        .Bind(2, d.action_id)
        .Bind(3, static_cast<int64_t>(d.decision.outcome()))
        .Bind(4, static_cast<int64_t>(d.decision.source()))
        .Bind(5, d.decision.decider())
        .Bind(6, d.decision.comment())
        .Bind(7, Micros(d.decision.decide_time()))
        .Bind(8, d.duplicate_of)
        .Bind(9, d.upstream_version)
        .Bind(10, absl::ToUnixMicros(now_));
    AIR_RETURN_IF_ERROR(stmt.Run());
    if (sqlite3_changes(conn_.db()) == 0) {
      return MakeError(absl::StatusCode::kAlreadyExists,
                       absl::StrCat("decision ", d.request_id, " is already in the outbox"),
                       v1::DECISION_ALREADY_QUEUED, {{"action_id", d.action_id}});
    }
    return static_cast<int64_t>(sqlite3_last_insert_rowid(conn_.db()));
  }

  absl::Status MarkDecisionDelivered(int64_t position, absl::string_view result) override {
    AIR_ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("UPDATE decision_outbox SET delivered_us = ?, result = ? "
                      "WHERE position = ? AND delivered_us IS NULL"));
    stmt.Bind(1, absl::ToUnixMicros(now_)).Bind(2, result).Bind(3, position);
    AIR_RETURN_IF_ERROR(stmt.Run());
    if (sqlite3_changes(conn_.db()) > 0) return absl::OkStatus();
    AIR_ASSIGN_OR_RETURN(
        Statement exists,
        conn_.Prepare("SELECT 1 FROM decision_outbox WHERE position = ?"));
    exists.Bind(1, position);
    AIR_ASSIGN_OR_RETURN(bool row, exists.Step());
    if (row) return absl::OkStatus();  // delivered before: nothing to do
    return MakeError(absl::StatusCode::kNotFound,
                     absl::StrCat("no decision at outbox position ", position),
                     v1::DECISION_NOT_FOUND);
  }

  absl::StatusOr<std::optional<TargetApproval>> FindTargetApproval(
      absl::string_view target_key) override {
    AIR_ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("SELECT action_id, approve_us FROM target_approvals "
                      "WHERE target_key = ?"));
    stmt.Bind(1, target_key);
    AIR_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<TargetApproval>();
    return std::optional<TargetApproval>(
        TargetApproval{std::string(target_key), std::string(stmt.ColumnText(0)),
                       absl::FromUnixMicros(stmt.ColumnInt(1))});
  }

  absl::Status RecordTargetApproval(const TargetApproval& approval) override {
    AIR_ASSIGN_OR_RETURN(
        Statement stmt,
        // An upsert changes the row in place; INSERT OR REPLACE would delete
        // it and insert it again.
        conn_.Prepare("INSERT INTO target_approvals (target_key, action_id, approve_us) "
                      "VALUES (?, ?, ?) ON CONFLICT (target_key) DO UPDATE SET "
                      "action_id = excluded.action_id, approve_us = excluded.approve_us"));
    stmt.Bind(1, approval.target_key)
        .Bind(2, approval.action_id)
        .Bind(3, absl::ToUnixMicros(approval.approve_time));
    return stmt.Run();
  }

  static constexpr int kVersionChunk = 128;

  // Savepoint bookkeeping: what to undo if the current function fails.
  struct Mark {
    int64_t next_sequence;
    size_t events;
    size_t undo;
  };
  Mark mark() {
    ++generation_;
    return {next_sequence_, events_.size(), undo_.size()};
  }
  void RollBackTo(const Mark& m) {
    ++generation_;
    next_sequence_ = m.next_sequence;
    events_.resize(m.events);
    while (undo_.size() > m.undo) {
      Undo& u = undo_.back();
      if (u.before.has_value()) {
        investigations_[u.id] = *std::move(u.before);
      } else {
        investigations_.erase(u.id);
      }
      undo_.pop_back();
    }
  }
  std::vector<v1::Event>& events() { return events_; }

 private:
  Connection& conn_;
  int64_t& next_sequence_;
  const absl::Time now_;
  std::vector<v1::Event> events_;

  struct CachedInvestigation {
    v1::Investigation value;
    bool dirty = false;  // changed since read: Flush() writes it
    // The mark generation in which undo_ last got a copy of this entry.
    uint64_t saved_in = 0;
  };
  // What an entry was before a change, to restore on savepoint rollback
  // (nullopt: it was not cached).
  struct Undo {
    std::string id;
    std::optional<CachedInvestigation> before;
  };
  absl::flat_hash_map<std::string, CachedInvestigation> investigations_;
  std::vector<Undo> undo_;
  uint64_t generation_ = 1;  // bumped by every mark and rollback
};

absl::Status SqliteRepository::Impl::Open() {
  const std::string& path = options_.path;
  auto fail = [&](absl::StatusCode code, absl::string_view why) {
    return absl::Status(code, absl::StrCat("database ", path, ": ", why));
  };
  absl::StatusOr<std::unique_ptr<Connection>> writer = Connection::Open(
      path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, options_.busy_timeout);
  if (!writer.ok()) {
    return fail(writer.status().code(), writer.status().message());
  }
  writer_ = std::move(*writer);
  if (sqlite3_db_readonly(writer_->db(), "main") == 1) {
    return fail(absl::StatusCode::kFailedPrecondition,
                "the file is read-only; aird needs to write it");
  }
  // The first read detects a file that is not a database at all.
  absl::StatusOr<std::string> mode = writer_->QueryText("PRAGMA journal_mode = WAL");
  if (!mode.ok()) {
    return fail(mode.status().code() == absl::StatusCode::kDataLoss
                    ? absl::StatusCode::kFailedPrecondition
                    : mode.status().code(),
                mode.status().code() == absl::StatusCode::kDataLoss
                    ? absl::StrCat(mode.status().message(), " (is this an aird database?)")
                    : std::string(mode.status().message()));
  }
  if (*mode != "wal") {
    return fail(absl::StatusCode::kFailedPrecondition,
                "cannot switch to WAL mode (is the directory writable?)");
  }
  if (options_.check_integrity_at_open) {
    absl::StatusOr<std::string> check = writer_->QueryText("PRAGMA quick_check(1)");
    if (!check.ok() || *check != "ok") {
      return fail(absl::StatusCode::kFailedPrecondition,
                  "the file is corrupt (PRAGMA quick_check failed); restore "
                  "it from a backup");
    }
  }
  AIR_RETURN_IF_ERROR(writer_->Exec(
      absl::StrCat("PRAGMA cache_size = -", std::max(options_.writer_cache_mib, 1) * 1024)
          .c_str()));
  // Savepoint undo journals (one per write function in a group commit) stay
  // in memory instead of spilling to temp files: measured 41 -> 5 pwrite
  // calls per decision (docs/benchmarks.md).
  AIR_RETURN_IF_ERROR(writer_->Exec("PRAGMA temp_store = MEMORY"));
  AIR_RETURN_IF_ERROR(writer_->Exec(options_.full_fsync ? "PRAGMA synchronous = FULL"
                                                        : "PRAGMA synchronous = NORMAL"));
  if (absl::Status s = Migrate(); !s.ok()) return fail(s.code(), s.message());

  AIR_ASSIGN_OR_RETURN(EventLogBounds bounds, LoadBounds(*writer_));
  next_sequence_ = bounds.head + 1;

  for (int i = 0; i < std::max(options_.reader_connections, 1); ++i) {
    absl::StatusOr<std::unique_ptr<Connection>> reader = Connection::Open(
        path, SQLITE_OPEN_READONLY, options_.busy_timeout);
    if (!reader.ok()) return fail(reader.status().code(), reader.status().message());
    absl::MutexLock lock(&readers_mu_);
    idle_readers_.push_back(std::move(*reader));
  }
  AIR_RETURN_IF_ERROR(StartCheckpointer());
  completer_thread_ = std::thread([this] { CompleterLoop(); });
  writer_thread_ = std::thread([this] { WriterLoop(); });
  return absl::OkStatus();
}

absl::Status SqliteRepository::Impl::StartCheckpointer() {
  if (options_.checkpoint_pages <= 0) return absl::OkStatus();  // SQLite's default
  absl::StatusOr<std::unique_ptr<Connection>> conn =
      Connection::Open(options_.path, SQLITE_OPEN_READWRITE, options_.busy_timeout);
  if (!conn.ok()) return conn.status();
  checkpoint_conn_ = std::move(*conn);
  // A connection opens the log on its first read; until then a checkpoint
  // through it is a silent no-op.
  AIR_RETURN_IF_ERROR(
      checkpoint_conn_->QueryInt("SELECT COUNT(*) FROM sqlite_master").status());
  // Replaces the writer's automatic checkpoint (itself a WAL hook).
  sqlite3_wal_hook(writer_->db(), &Impl::OnWalCommit, this);
  checkpoint_thread_ = std::thread([this] { CheckpointerLoop(); });
  return absl::OkStatus();
}

int SqliteRepository::Impl::OnWalCommit(void* self_ptr, sqlite3* db, const char* schema,
                                        int pages) {
  Impl* self = static_cast<Impl*>(self_ptr);
  if (pages >= self->options_.checkpoint_writer_fallback_pages) {
    // The bound: copy what can be copied now, as SQLite's autocheckpoint
    // would. PASSIVE never waits for readers.
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    return SQLITE_OK;
  }
  if (pages >= self->options_.checkpoint_pages) {
    absl::MutexLock lock(&self->checkpoint_mu_);
    self->checkpoint_requested_ = true;
  }
  return SQLITE_OK;
}

void SqliteRepository::Impl::CheckpointerLoop() {
  while (true) {
    {
      absl::MutexLock lock(&checkpoint_mu_);
      checkpoint_mu_.Await(absl::Condition(
          +[](Impl* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->checkpoint_mu_) {
            return self->checkpoint_stopping_ || self->checkpoint_requested_;
          },
          this));
      if (checkpoint_stopping_) return;
      checkpoint_requested_ = false;
    }
    // PASSIVE: copies the frames no reader still needs and syncs the file,
    // without blocking the writer, which keeps appending meanwhile. The log
    // starts over at the writer's next transaction once all of it has been
    // copied.
    int log_pages = 0;
    int copied_pages = 0;
    const int rc = sqlite3_wal_checkpoint_v2(checkpoint_conn_->db(), "main",
                                             SQLITE_CHECKPOINT_PASSIVE, &log_pages,
                                             &copied_pages);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      // Not fatal: the next request tries again, and the writer's fallback
      // bounds the log meanwhile.
      spdlog::warn("storage: background WAL checkpoint failed: {}",
                   sqlite3_errmsg(checkpoint_conn_->db()));
    } else if (options_.on_checkpoint) {
      options_.on_checkpoint(log_pages, copied_pages);
    }
  }
}

absl::Status SqliteRepository::Impl::Migrate() {
  AIR_ASSIGN_OR_RETURN(int64_t version, writer_->QueryInt("PRAGMA user_version"));
  const int latest = SqliteRepository::SchemaVersion();
  if (version > latest) {
    return absl::FailedPreconditionError(absl::StrCat(
        "schema version ", version, " is newer than this aird understands (",
        latest, "); run a newer aird"));
  }
  for (const sqlite::Migration& m : sqlite::kMigrations) {
    if (m.version <= version) continue;
    AIR_RETURN_IF_ERROR(writer_->Exec("BEGIN IMMEDIATE"));
    absl::Status s = writer_->Exec(m.sql);
    if (s.ok()) {
      s = writer_->Exec(absl::StrCat("PRAGMA user_version = ", m.version).c_str());
    }
    if (s.ok()) s = writer_->Exec("COMMIT");
    if (!s.ok()) {
      (void)writer_->Exec("ROLLBACK");
      return s;
    }
    spdlog::info("storage: applied schema migration {}", m.version);
  }
  return absl::OkStatus();
}

void SqliteRepository::Impl::Stop() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  if (writer_thread_.joinable()) writer_thread_.join();
  {
    absl::MutexLock lock(&completion_mu_);
    writer_done_ = true;
  }
  if (completer_thread_.joinable()) completer_thread_.join();
  {
    absl::MutexLock lock(&checkpoint_mu_);
    checkpoint_stopping_ = true;
  }
  if (checkpoint_thread_.joinable()) checkpoint_thread_.join();
}

void SqliteRepository::Impl::CompleterLoop() {
  while (true) {
    Completion completion;
    {
      absl::MutexLock lock(&completion_mu_);
      completion_mu_.Await(absl::Condition(
          +[](Impl* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->completion_mu_) {
            return self->writer_done_ || !self->completions_.empty();
          },
          this));
      if (completions_.empty()) return;  // the writer stopped, all answered
      completion = std::move(completions_.front());
      completions_.pop_front();
    }
    if (!completion.events.empty()) {
      CommitObserver observer;
      {
        absl::MutexLock lock(&queue_mu_);
        observer = observer_;
      }
      if (observer) observer(completion.events);
    }
    for (size_t i = 0; i < completion.dones.size(); ++i) {
      if (completion.dones[i]) completion.dones[i](std::move(completion.results[i]));
    }
  }
}

void SqliteRepository::Impl::WriterLoop() {
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

absl::Status SqliteRepository::Impl::RunFunctions(std::vector<Job>& batch,
                                                  SqliteWriteTransaction& tx,
                                                  const std::vector<bool>& skip,
                                                  bool isolate,
                                                  std::vector<absl::Status>& results,
                                                  int* first_failure) {
  for (size_t i = 0; i < batch.size(); ++i) {
    if (skip[i]) continue;
    const auto mark = tx.mark();
    if (isolate) AIR_RETURN_IF_ERROR(writer_->Run("SAVEPOINT write_fn"));
    results[i] = batch[i].fn(tx);
    if (!writer_->InTransaction()) {
      // SQLite rolled the whole transaction back on its own (disk full, I/O
      // error): everything this batch did so far is gone.
      return results[i].ok() ? MakeError(absl::StatusCode::kUnavailable,
                                         "storage write failed; retry", v1::STORAGE_IO_ERROR)
                             : results[i];
    }
    if (!isolate) {
      if (!results[i].ok()) {
        *first_failure = static_cast<int>(i);
        return absl::OkStatus();
      }
      continue;
    }
    if (results[i].ok()) {
      AIR_RETURN_IF_ERROR(writer_->Run("RELEASE write_fn"));
    } else {
      tx.RollBackTo(mark);
      AIR_RETURN_IF_ERROR(writer_->Exec("ROLLBACK TO write_fn"));
      AIR_RETURN_IF_ERROR(writer_->Exec("RELEASE write_fn"));
    }
  }
  return absl::OkStatus();
}

void SqliteRepository::Impl::RunBatch(std::vector<Job>& batch) {
  std::vector<absl::Status> results(batch.size());
  SqliteWriteTransaction tx(*writer_, next_sequence_, clock_->Now());
  const auto batch_start = tx.mark();

  // Optimistic first pass: the functions run back to back with no savepoint
  // between them. A savepoint makes SQLite copy every page a function is
  // the first to touch into an undo journal, which cost 14-21% of the
  // writer at 16-64 concurrent decisions (docs/benchmarks.md), and almost
  // every function succeeds. If one fails, the whole transaction rolls back,
  // that function keeps its error, and the others run again, each isolated
  // in a savepoint this time (the contract in repository.h allows re-runs).
  std::vector<bool> skip(batch.size(), false);
  bool open = false;
  absl::Status batch_error = writer_->Run("BEGIN IMMEDIATE");
  if (batch_error.ok()) {
    open = true;
    int failed = -1;
    batch_error = RunFunctions(batch, tx, skip, /*isolate=*/false, results, &failed);
    if (batch_error.ok() && failed >= 0) {
      tx.RollBackTo(batch_start);
      batch_error = writer_->Exec("ROLLBACK");
      open = false;
      skip[failed] = true;
      const bool others = std::count(skip.begin(), skip.end(), false) > 0;
      if (batch_error.ok() && others) {
        batch_error = writer_->Run("BEGIN IMMEDIATE");
        if (batch_error.ok()) {
          open = true;
          batch_error = RunFunctions(batch, tx, skip, /*isolate=*/true, results, nullptr);
        }
      }
    }
  }
  if (batch_error.ok() && open) batch_error = tx.Flush();
  if (batch_error.ok() && open) batch_error = writer_->Run("COMMIT");
  if (!batch_error.ok()) {
    if (writer_->InTransaction()) (void)writer_->Exec("ROLLBACK");
    tx.RollBackTo(batch_start);
    for (absl::Status& r : results) {
      if (r.ok()) r = batch_error;
    }
  }

  Completion completion;
  completion.events = std::move(tx.events());
  completion.results = std::move(results);
  completion.dones.reserve(batch.size());
  for (Job& job : batch) completion.dones.push_back(std::move(job.done));
  absl::MutexLock lock(&completion_mu_);
  completions_.push_back(std::move(completion));
}

// ---------------------------------------------------------------------------

SqliteRepository::SqliteRepository(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

SqliteRepository::~SqliteRepository() = default;

int SqliteRepository::SchemaVersion() {
  int latest = 0;
  for (const sqlite::Migration& m : sqlite::kMigrations) latest = std::max(latest, m.version);
  return latest;
}

absl::StatusOr<std::unique_ptr<SqliteRepository>> SqliteRepository::Open(
    const SqliteOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  AIR_RETURN_IF_ERROR(impl->Open());
  return std::unique_ptr<SqliteRepository>(new SqliteRepository(std::move(impl)));
}

void SqliteRepository::WriteAsync(WriteFn fn, DoneFn done) {
  impl_->Enqueue(std::move(fn), std::move(done));
}

void SqliteRepository::SetCommitObserver(CommitObserver observer) {
  impl_->SetObserver(std::move(observer));
}

absl::StatusOr<v1::Action> SqliteRepository::GetAction(absl::string_view id) {
  auto reader = impl_->LeaseReader();
  return LoadAction(*reader, id);
}

absl::StatusOr<v1::Investigation> SqliteRepository::GetInvestigation(
    absl::string_view id) {
  auto reader = impl_->LeaseReader();
  return LoadInvestigation(*reader, id);
}

absl::StatusOr<ActionPage> SqliteRepository::ListActions(const ActionQuery& query) {
  WhereBuilder where;
  AddActionFilter(query.filter, where);
  if (query.after) where.AddKeyset("create_us", query.descending, *query.after);
  const int limit_index = where.AddLimit(query.page_size + 1);
  const char* dir = query.descending ? "DESC" : "ASC";
  const std::string sql = absl::StrCat(
      "SELECT create_us, id, body FROM actions WHERE 1 = 1", where.sql(),
      " ORDER BY create_us ", dir, ", id ", dir, " LIMIT ?", limit_index);
  auto reader = impl_->LeaseReader();
  AIR_ASSIGN_OR_RETURN(Statement stmt, reader->Prepare(sql));
  where.BindAll(stmt);
  ActionPage page;
  PageCursor last;
  while (true) {
    AIR_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    if (static_cast<int>(page.actions.size()) == query.page_size) {
      page.next = last;
      break;
    }
    last = PageCursor{stmt.ColumnInt(0), std::string(stmt.ColumnText(1))};
    AIR_ASSIGN_OR_RETURN(v1::Action action, ParseBody<v1::Action>(stmt.ColumnBlob(2)));
    page.actions.push_back(std::move(action));
  }
  return page;
}

absl::StatusOr<InvestigationPage> SqliteRepository::ListInvestigations(
    const InvestigationQuery& query) {
  const std::string sort_column =
      query.order_by == InvestigationOrder::kUpdateTime ? "update_us" : "create_us";
  const InvestigationFilter& f = query.filter;
  WhereBuilder where;
  if (f.state) where.Add("state = ?", static_cast<int64_t>(*f.state));
  if (f.source) where.Add("source = ?", static_cast<int64_t>(*f.source));
  if (f.verdict) where.Add("verdict = ?", static_cast<int64_t>(*f.verdict));
  if (f.create_after) where.Add("create_us >= ?", absl::ToUnixMicros(*f.create_after));
  if (f.create_before) where.Add("create_us < ?", absl::ToUnixMicros(*f.create_before));
  if (f.update_after) where.Add("update_us >= ?", absl::ToUnixMicros(*f.update_after));
  if (f.update_before) where.Add("update_us < ?", absl::ToUnixMicros(*f.update_before));
  if (query.after) where.AddKeyset(sort_column, query.descending, *query.after);
  const int limit_index = where.AddLimit(query.page_size + 1);
  const char* dir = query.descending ? "DESC" : "ASC";
  const std::string sql = absl::StrCat(
      "SELECT ", sort_column, ", id, body FROM investigations WHERE 1 = 1",
      where.sql(), " ORDER BY ", sort_column, " ", dir, ", id ", dir,
      " LIMIT ?", limit_index);
  auto reader = impl_->LeaseReader();
  AIR_ASSIGN_OR_RETURN(Statement stmt, reader->Prepare(sql));
  where.BindAll(stmt);
  InvestigationPage page;
  PageCursor last;
  while (true) {
    AIR_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    if (static_cast<int>(page.investigations.size()) == query.page_size) {
      page.next = last;
      break;
    }
    last = PageCursor{stmt.ColumnInt(0), std::string(stmt.ColumnText(1))};
    AIR_ASSIGN_OR_RETURN(v1::Investigation inv,
                         ParseBody<v1::Investigation>(stmt.ColumnBlob(2)));
    page.investigations.push_back(std::move(inv));
  }
  return page;
}

absl::StatusOr<std::vector<AuditRecord>> SqliteRepository::ListAudit(
    absl::string_view action_id) {
  auto reader = impl_->LeaseReader();
  AIR_ASSIGN_OR_RETURN(
      Statement stmt,
      reader->Prepare("SELECT action_id, investigation_id, from_state, to_state, "
                      "outcome, source, decider, comment, policy_rule, "
                      "request_id, decide_us FROM decision_audit "
                      "WHERE action_id = ? ORDER BY id"));
  stmt.Bind(1, action_id);
  std::vector<AuditRecord> records;
  while (true) {
    AIR_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    AuditRecord r;
    r.action_id = std::string(stmt.ColumnText(0));
    r.investigation_id = std::string(stmt.ColumnText(1));
    r.from_state = static_cast<v1::Action::State>(stmt.ColumnInt(2));
    r.to_state = static_cast<v1::Action::State>(stmt.ColumnInt(3));
    r.decision.set_outcome(static_cast<v1::Decision::Outcome>(stmt.ColumnInt(4)));
    r.decision.set_source(static_cast<v1::Decision::Source>(stmt.ColumnInt(5)));
    r.decision.set_decider(std::string(stmt.ColumnText(6)));
    r.decision.set_comment(std::string(stmt.ColumnText(7)));
    r.decision.set_policy_rule(std::string(stmt.ColumnText(8)));
    r.request_id = std::string(stmt.ColumnText(9));
    SetTimestamp(absl::FromUnixMicros(stmt.ColumnInt(10)),
                 r.decision.mutable_decide_time());
    records.push_back(std::move(r));
  }
  return records;
}

absl::StatusOr<std::vector<v1::Event>> SqliteRepository::ReadEvents(
    int64_t after_sequence, int limit) {
  auto reader = impl_->LeaseReader();
  AIR_ASSIGN_OR_RETURN(
      Statement stmt,
      reader->Prepare("SELECT body FROM events WHERE sequence > ? "
                      "ORDER BY sequence LIMIT ?"));
  stmt.Bind(1, after_sequence).Bind(2, limit);
  std::vector<v1::Event> events;
  while (true) {
    AIR_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    AIR_ASSIGN_OR_RETURN(v1::Event event, ParseBody<v1::Event>(stmt.ColumnBlob(0)));
    events.push_back(std::move(event));
  }
  return events;
}

absl::StatusOr<EventLogBounds> SqliteRepository::GetEventLogBounds() {
  auto reader = impl_->LeaseReader();
  AIR_RETURN_IF_ERROR(reader->Exec("BEGIN"));
  absl::StatusOr<EventLogBounds> bounds = LoadBounds(*reader);
  (void)reader->Exec("COMMIT");
  return bounds;
}

absl::StatusOr<PendingSnapshot> SqliteRepository::SnapshotPending(
    const ActionFilter& filter, int limit) {
  ActionFilter pending = filter;
  if (pending.state && *pending.state != v1::Action::STATE_PENDING) {
    return PendingSnapshot{};  // the filter excludes every pending action
  }
  pending.state = v1::Action::STATE_PENDING;
  WhereBuilder where;
  AddActionFilter(pending, where);
  const int limit_index = where.AddLimit(limit);
  const std::string sql =
      absl::StrCat("SELECT body FROM actions WHERE 1 = 1", where.sql(),
                   " ORDER BY create_us, id LIMIT ?", limit_index);
  auto reader = impl_->LeaseReader();
  // One read transaction: the head and the rows come from the same snapshot.
  AIR_RETURN_IF_ERROR(reader->Exec("BEGIN"));
  auto read = [&]() -> absl::StatusOr<PendingSnapshot> {
    PendingSnapshot snapshot;
    AIR_ASSIGN_OR_RETURN(EventLogBounds bounds, LoadBounds(*reader));
    snapshot.sequence = bounds.head;
    AIR_ASSIGN_OR_RETURN(Statement stmt, reader->Prepare(sql));
    where.BindAll(stmt);
    while (true) {
      AIR_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      AIR_ASSIGN_OR_RETURN(v1::Action action, ParseBody<v1::Action>(stmt.ColumnBlob(0)));
      snapshot.actions.push_back(std::move(action));
    }
    return snapshot;
  };
  absl::StatusOr<PendingSnapshot> snapshot = read();
  (void)reader->Exec("COMMIT");
  return snapshot;
}

absl::StatusOr<std::vector<OutboxDecision>> SqliteRepository::ReadDecisionOutbox(
    int limit) {
  auto reader = impl_->LeaseReader();
  AIR_ASSIGN_OR_RETURN(
      Statement stmt,
      reader->Prepare("SELECT position, request_id, action_id, outcome, source, "
                      "decider, comment, decide_us, duplicate_of, upstream_version, "
                      "enqueue_us FROM decision_outbox WHERE delivered_us IS NULL "
                      "ORDER BY position LIMIT ?"));
  stmt.Bind(1, limit);
  std::vector<OutboxDecision> out;
  while (true) {
    AIR_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    OutboxDecision d;
    d.position = stmt.ColumnInt(0);
    d.request_id = std::string(stmt.ColumnText(1));
    d.action_id = std::string(stmt.ColumnText(2));
    d.decision.set_outcome(static_cast<v1::Decision::Outcome>(stmt.ColumnInt(3)));
    d.decision.set_source(static_cast<v1::Decision::Source>(stmt.ColumnInt(4)));
    d.decision.set_decider(std::string(stmt.ColumnText(5)));
    d.decision.set_comment(std::string(stmt.ColumnText(6)));
    SetTimestamp(absl::FromUnixMicros(stmt.ColumnInt(7)),
                 d.decision.mutable_decide_time());
    d.duplicate_of = std::string(stmt.ColumnText(8));
    d.upstream_version = stmt.ColumnInt(9);
    d.enqueue_time = absl::FromUnixMicros(stmt.ColumnInt(10));
    out.push_back(std::move(d));
  }
  return out;
}

absl::StatusOr<DecisionOutboxStats> SqliteRepository::GetDecisionOutboxStats() {
  auto reader = impl_->LeaseReader();
  AIR_ASSIGN_OR_RETURN(
      Statement stmt,
      reader->Prepare("SELECT COUNT(*), MIN(enqueue_us) FROM decision_outbox "
                      "WHERE delivered_us IS NULL"));
  AIR_ASSIGN_OR_RETURN(bool row, stmt.Step());
  DecisionOutboxStats stats;
  if (row) {
    stats.backlog = stmt.ColumnInt(0);
    if (!stmt.ColumnIsNull(1)) stats.oldest_undelivered = absl::FromUnixMicros(stmt.ColumnInt(1));
  }
  return stats;
}

absl::StatusOr<std::string> SqliteRepository::GetSyncCursor(absl::string_view name) {
  auto reader = impl_->LeaseReader();
  return LoadSyncCursor(*reader, name);
}

absl::StatusOr<StoreStats> SqliteRepository::GetStoreStats() {
  StoreStats stats;
  {
    auto reader = impl_->LeaseReader();
    AIR_RETURN_IF_ERROR(reader->Exec("BEGIN"));
    auto read = [&]() -> absl::Status {
      // Served by the actions_by_state_type index: touches only pending rows.
      AIR_ASSIGN_OR_RETURN(
          Statement stmt,
          reader->Prepare("SELECT type, COUNT(*), MIN(create_us) FROM actions "
                          "WHERE state = 1 GROUP BY type"));
      int64_t oldest = 0;
      bool any = false;
      while (true) {
        AIR_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        stats.pending_by_type[static_cast<v1::ActionType>(stmt.ColumnInt(0))] =
            stmt.ColumnInt(1);
        const int64_t created = stmt.ColumnInt(2);
        if (!any || created < oldest) oldest = created;
        any = true;
      }
      if (any) stats.oldest_pending_create_time = absl::FromUnixMicros(oldest);
      AIR_ASSIGN_OR_RETURN(int64_t pages, reader->QueryInt("PRAGMA page_count"));
      AIR_ASSIGN_OR_RETURN(int64_t page_size, reader->QueryInt("PRAGMA page_size"));
      stats.database_bytes = pages * page_size;
      return absl::OkStatus();
    };
    absl::Status status = read();
    (void)reader->Exec("COMMIT");
    AIR_RETURN_IF_ERROR(status);
  }
  std::error_code error;
  const auto wal = std::filesystem::file_size(impl_->options().path + "-wal", error);
  stats.wal_bytes = error ? 0 : static_cast<int64_t>(wal);
  return stats;
}

}  // namespace air
