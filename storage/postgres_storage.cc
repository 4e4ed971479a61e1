// The PostgreSQL backend: the sql:: seam over libpq, the writer and reader
// sessions, migrations, the listener that brings other replicas' events,
// leader election, and Open. Several aird replicas share one database.
//
// Writes: each replica has one writer (the group committer) whose every
// batch first locks the single event_log row, so write transactions are
// serial across all replicas: decisions are first-writer-wins everywhere,
// and event sequences are gap-free and commit in sequence order.
//
// Events from other replicas: a listener connection LISTENs on the event
// channel; each commit NOTIFYs it. The commit observer gets every event of
// every replica exactly once, in sequence order with no gap, read from the
// event log where this replica did not write it. A slow poll
// (fallback_poll) covers a lost notification.
//
// Faults: a lost connection fails the calls that used it with UNAVAILABLE
// and is re-established on next use (the listener retries with backoff).
// The connection string is never logged with its password.
#include "storage/postgres_storage.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "domain/errors.h"
#include "domain/status_macros.h"
#include "spdlog/spdlog.h"
#include "storage/group_commit.h"
#include "storage/postgres_connection.h"
#include "storage/postgres_schema.h"
#include "storage/sql_stores.h"

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

namespace {

// NOTIFY channel for "the event log moved on"; the payload is the new head.
constexpr char kEventChannel[] = "air_events";

constexpr SqlDialect kPostgresDialect = {
    "SELECT first_retained, next_sequence - 1 FROM event_log WHERE id = 1",
    "UPDATE event_log SET first_retained = GREATEST(first_retained, $1) WHERE id = 1",
};

absl::Status Unreachable() {
  return MakeError(absl::StatusCode::kUnavailable,
                   "storage write failed: the database is unreachable; retry",
                   v1::STORAGE_UNAVAILABLE);
}

// A query's rows: libpq returns the whole result at once.
class PostgresRows final : public sql::Rows {
 public:
  explicit PostgresRows(Result result) : result_(std::move(result)) {}
  absl::StatusOr<bool> Next() override { return ++row_ < result_.rows(); }
  int64_t Int(int column) const override { return result_.Int(row_, column); }
  absl::string_view Bytes(int column) const override { return result_.Bytes(row_, column); }
  bool IsNull(int column) const override { return result_.IsNull(row_, column); }

 private:
  Result result_;
  int row_ = -1;
};

// sql::Connection over one libpq connection (prepared statements, binary
// results).
class PostgresSqlConnection final : public sql::Connection {
 public:
  explicit PostgresSqlConnection(std::unique_ptr<pg::Connection> conn) : conn_(std::move(conn)) {}

  absl::StatusOr<std::unique_ptr<sql::Rows>> Query(absl::string_view sql,
                                                   const sql::Params& params) override {
    AIR_ASSIGN_OR_RETURN(Result result, conn_->Exec(sql, Convert(params)));
    return std::unique_ptr<sql::Rows>(new PostgresRows(std::move(result)));
  }

  absl::StatusOr<int64_t> Execute(absl::string_view sql, const sql::Params& params) override {
    AIR_ASSIGN_OR_RETURN(Result result, conn_->Exec(sql, Convert(params)));
    return result.affected();
  }

  pg::Connection& raw() { return *conn_; }

 private:
  static Params Convert(const sql::Params& params) {
    Params out;
    for (const sql::Params::Value& v : params.values()) {
      switch (v.kind) {
        case sql::Params::Kind::kInt:
          out.Int(v.number);
          break;
        case sql::Params::Kind::kText:
          out.Text(v.bytes);
          break;
        case sql::Params::Kind::kBlob:
          out.Bytes(v.bytes);
          break;
        case sql::Params::Kind::kNull:
          out.Null();
          break;
      }
    }
    return out;
  }

  std::unique_ptr<pg::Connection> conn_;
};

class PostgresWriteSession final : public WriteSession {
 public:
  explicit PostgresWriteSession(std::unique_ptr<pg::Connection> conn) : conn_(std::move(conn)) {}

  sql::Connection& connection() override { return conn_; }

  absl::StatusOr<int64_t> Begin() override {
    AIR_RETURN_IF_ERROR(EnsureConnected());
    AIR_RETURN_IF_ERROR(raw().Run("BEGIN"));
    // The lock that makes writers serial (see the comment at the top).
    AIR_ASSIGN_OR_RETURN(Result head,
                         raw().Exec("SELECT next_sequence FROM event_log WHERE id = 1 FOR UPDATE"));
    if (head.rows() != 1) {
      return MakeError(absl::StatusCode::kDataLoss,
                       "storage write failed: the event log is missing", v1::STORAGE_CORRUPT);
    }
    first_sequence_ = head.Int(0, 0);
    return first_sequence_;
  }
  absl::Status Commit(int64_t next_sequence) override {
    if (next_sequence != first_sequence_) {
      AIR_RETURN_IF_ERROR(raw().Run("UPDATE event_log SET next_sequence = $1 WHERE id = 1",
                                    Params().Int(next_sequence)));
      // Delivered to listeners at commit, never before.
      AIR_RETURN_IF_ERROR(raw().Run(
          "SELECT pg_notify($1, $2)",
          Params().Text(kEventChannel).Text(std::to_string(next_sequence - 1))));
    }
    return raw().Run("COMMIT");
  }
  void Rollback() override {
    if (raw().ok() && raw().InTransaction()) (void)raw().Run("ROLLBACK");
  }
  bool InTransaction() override { return raw().ok() && raw().InTransaction(); }
  absl::Status LostTransaction() override { return Unreachable(); }

 private:
  pg::Connection& raw() { return conn_.raw(); }

  // While the database is down, writes fail fast with UNAVAILABLE instead
  // of each paying for a connection attempt.
  absl::Status EnsureConnected() {
    if (raw().ok()) return absl::OkStatus();
    const absl::Time now = absl::Now();
    if (now < next_reconnect_) return Unreachable();
    absl::Status reset = raw().Reset();
    if (reset.ok()) {
      reconnect_backoff_ = absl::Milliseconds(100);
      spdlog::info("storage: writer reconnected to PostgreSQL");
    } else {
      next_reconnect_ = now + reconnect_backoff_;
      reconnect_backoff_ = std::min(reconnect_backoff_ * 2, absl::Seconds(5));
    }
    return reset;
  }

  PostgresSqlConnection conn_;
  int64_t first_sequence_ = 0;
  absl::Time next_reconnect_ = absl::InfinitePast();
  absl::Duration reconnect_backoff_ = absl::Milliseconds(100);
};

class PostgresReadSession final : public ReadSession {
 public:
  explicit PostgresReadSession(std::unique_ptr<pg::Connection> conn) : conn_(std::move(conn)) {}
  sql::Connection& connection() override { return conn_; }
  absl::Status Ready() override {
    if (!conn_.raw().ok()) return conn_.raw().Reset();
    if (conn_.raw().InTransaction()) return conn_.raw().Run("ROLLBACK");
    return absl::OkStatus();
  }
  absl::Status BeginSnapshot() override {
    return conn_.raw().Run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  }
  void EndSnapshot() override {
    if (conn_.raw().ok() && conn_.raw().InTransaction()) (void)conn_.raw().Run("COMMIT");
  }

 private:
  PostgresSqlConnection conn_;
};

class PostgresLeaderElection final : public LeaderElection {
 public:
  struct Options {
    std::string conninfo;
    // Which lock: replicas of one deployment use the same key.
    int64_t lock_key = 0x6169722d6c656164;  // "air-lead"
    // How often a follower tries to take the lock, and a leader checks that
    // its connection still holds it.
    absl::Duration retry_interval = absl::Seconds(1);
  };

  PostgresLeaderElection(const Options& options, std::function<void(bool)> on_change)
      : options_(options), on_change_(std::move(on_change)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~PostgresLeaderElection() override { Stop(); }

  void Stop() override {
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
      stop_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

  bool is_leader() const override {
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
      absl::StatusOr<std::unique_ptr<pg::Connection>> opened = Connection::Open(
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
  std::unique_ptr<pg::Connection> conn_;  // election thread only
  bool held_ = false;                 // election thread only
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool leader_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};


absl::Status Migrate(Connection& conn) {
  const int latest = PostgresSchemaVersion();
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


class PostgresStorage final : public SqlStorage {
 public:
  explicit PostgresStorage(const PostgresOptions& options) : options_(options) {}

  ~PostgresStorage() override {
    {
      absl::MutexLock lock(&publish_mu_);
      stopping_ = true;
    }
    if (wake_fd_ >= 0) {
      const uint64_t one = 1;
      (void)!write(wake_fd_, &one, sizeof(one));
    }
    StopWriter();
    if (listen_thread_.joinable()) listen_thread_.join();
    if (wake_fd_ >= 0) close(wake_fd_);
  }

  absl::Status Open() {
    AIR_ASSIGN_OR_RETURN(std::unique_ptr<pg::Connection> writer,
                         Connection::Open(options_.conninfo));
    AIR_RETURN_IF_ERROR(Migrate(*writer));
    std::vector<std::unique_ptr<ReadSession>> readers;
    for (int i = 0; i < std::max(options_.reader_connections, 1); ++i) {
      AIR_ASSIGN_OR_RETURN(std::unique_ptr<pg::Connection> reader,
                           Connection::Open(options_.conninfo));
      readers.push_back(std::make_unique<PostgresReadSession>(std::move(reader)));
    }
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) return absl::InternalError("cannot create an eventfd");
    GroupCommitOptions commit;
    commit.max_batch = options_.max_batch;
    commit.clock = options_.clock;
    commit.rerun_every_batch_for_testing = options_.rerun_every_batch_for_testing;
    Assemble(std::move(readers), std::make_unique<PostgresWriteSession>(std::move(writer)),
             kPostgresDialect, std::move(commit));
    AIR_ASSIGN_OR_RETURN(EventLogBounds bounds, stores().GetEventLogBounds());
    {
      absl::MutexLock lock(&publish_mu_);
      published_ = bounds.head;
    }
    listen_thread_ = std::thread([this] { ListenLoop(); });
    spdlog::info("storage: PostgreSQL at {} (schema {})", pg::RedactConninfo(options_.conninfo),
                 PostgresSchemaVersion());
    return absl::OkStatus();
  }

  void SetConnectionObserver(ConnectionObserver observer) override {
    absl::MutexLock lock(&publish_mu_);
    connection_observer_ = std::move(observer);
  }

  std::unique_ptr<LeaderElection> StartLeaderElection(
      absl::Duration retry_interval, std::function<void(bool)> on_change) override {
    PostgresLeaderElection::Options election;
    election.conninfo = options_.conninfo;
    election.retry_interval = retry_interval;
    return std::make_unique<PostgresLeaderElection>(election, std::move(on_change));
  }

  OnlineBackup* backup() override { return nullptr; }

  std::vector<StorageGauge> ReadGauges() override {
    absl::StatusOr<ReaderPool::Lease> reader = readers().Acquire();
    if (!reader.ok()) return {};
    absl::StatusOr<std::optional<int64_t>> size = reader->connection().QueryInt(
        "SELECT pg_database_size(current_database())", sql::Params());
    if (!size.ok() || !size->has_value()) return {};
    return {{"aird_database_size_bytes", "Size of the PostgreSQL database.",
             static_cast<double>(**size)}};
  }

 private:
  void Publish(std::vector<v1::Event>& events) override { PublishCommitted(&events); }
  void ListenLoop();
  // Hands the observer every committed event after published_, in order.
  // `local`: the events this replica just committed (may be null).
  void PublishCommitted(std::vector<v1::Event>* local);
  void CatchUpLocked(int64_t up_to, const CommitObserver& observer)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(publish_mu_);

  const PostgresOptions options_;
  // Delivery of committed events (ours and other replicas') to the commit
  // observer, in sequence order.
  absl::Mutex publish_mu_;
  int64_t published_ ABSL_GUARDED_BY(publish_mu_) = 0;
  ConnectionObserver connection_observer_ ABSL_GUARDED_BY(publish_mu_);
  bool stopping_ ABSL_GUARDED_BY(publish_mu_) = false;

  std::thread listen_thread_;
  int wake_fd_ = -1;  // eventfd: stops the listener's poll
};

void PostgresStorage::PublishCommitted(std::vector<v1::Event>* local) {
  absl::MutexLock lock(&publish_mu_);
  // Until an observer is set nothing is handed out (and published_ stays
  // put), so the first observer still receives everything after Open.
  const CommitObserver observer = commit_observer();
  if (!observer) return;
  if (local == nullptr || local->empty()) {
    CatchUpLocked(std::numeric_limits<int64_t>::max(), observer);
    return;
  }
  const int64_t first = local->front().sequence();
  // Other replicas' commits may sit between what we published and ours:
  // they committed before ours (writers are serial), so they are readable.
  if (first > published_ + 1) CatchUpLocked(first - 1, observer);
  if (first > published_ + 1) return;  // could not read them; the listener will
  auto fresh = std::find_if(local->begin(), local->end(), [this](const v1::Event& e) {
    publish_mu_.AssertHeld();
    return e.sequence() > published_;
  });
  local->erase(local->begin(), fresh);
  if (local->empty()) return;
  published_ = local->back().sequence();
  observer(*local);
}

void PostgresStorage::CatchUpLocked(int64_t up_to, const CommitObserver& observer) {
  constexpr int kPage = 512;
  while (published_ < up_to) {
    absl::StatusOr<ReaderPool::Lease> reader = readers().Acquire();
    if (!reader.ok()) return;
    absl::StatusOr<std::vector<v1::Event>> events = ReadEventsOn(
        reader->connection(), published_,
        static_cast<int>(std::min<int64_t>(kPage, up_to - published_)));
    if (!events.ok() || events->empty()) return;
    if (events->front().sequence() != published_ + 1) {
      // Retention removed events this replica never saw (it was far behind):
      // streams behind them get CURSOR_EXPIRED from the log bounds.
      spdlog::warn("storage: events {}..{} were pruned before this replica saw them",
                   published_ + 1, events->front().sequence() - 1);
    }
    const size_t n = events->size();
    published_ = events->back().sequence();
    observer(*events);
    if (static_cast<int>(n) < kPage) return;
  }
}

void PostgresStorage::ListenLoop() {
  std::unique_ptr<pg::Connection> conn;
  absl::Duration backoff = absl::Milliseconds(100);
  auto stopping = [this] {
    absl::MutexLock lock(&publish_mu_);
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
      absl::StatusOr<std::unique_ptr<pg::Connection>> opened = Connection::Open(options_.conninfo);
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

}  // namespace

bool IsPostgresDatabase(absl::string_view db) { return pg::IsPostgresUri(db); }

std::string RedactPostgresConninfo(absl::string_view conninfo) {
  return pg::RedactConninfo(conninfo);
}

int PostgresSchemaVersion() {
  int latest = 0;
  for (const pg::Migration& m : pg::kMigrations) latest = std::max(latest, m.version);
  return latest;
}

absl::StatusOr<std::unique_ptr<Storage>> OpenPostgresStorage(const PostgresOptions& options) {
  auto storage = std::make_unique<PostgresStorage>(options);
  AIR_RETURN_IF_ERROR(storage->Open());
  return storage;
}

}  // namespace air
