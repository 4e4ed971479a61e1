// The SQLite backend: the sql:: seam over sqlite3, the writer and reader
// sessions, migrations, the background checkpointer, and Open.
//
// One writer connection, owned by the group committer's thread; a pool of
// read-only connections (WAL mode: readers never block the writer). Event
// sequences are kept in memory by the writer session: one process writes.
#include "storage/sqlite_storage.h"

#include <algorithm>
#include <filesystem>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "domain/errors.h"
#include "domain/status_macros.h"
#include "spdlog/spdlog.h"
#include "storage/group_commit.h"
#include "storage/sql_stores.h"
#include "storage/sqlite_connection.h"
#include "storage/sqlite_schema.h"

namespace air {

using sqlite::Statement;

namespace {

constexpr SqlDialect kSqliteDialect = {
    "SELECT (SELECT value FROM meta WHERE key = 'first_retained_sequence'), "
    "(SELECT COALESCE(MAX(sequence), 0) FROM events)",
    "UPDATE meta SET value = MAX(value, $1) WHERE key = 'first_retained_sequence'",
};

// A query's rows, stepped lazily on the cached statement.
class SqliteRows final : public sql::Rows {
 public:
  explicit SqliteRows(Statement stmt) : stmt_(std::move(stmt)) {}
  absl::StatusOr<bool> Next() override { return stmt_.Step(); }
  int64_t Int(int column) const override { return stmt_.ColumnInt(column); }
  absl::string_view Bytes(int column) const override { return stmt_.ColumnBlob(column); }
  bool IsNull(int column) const override { return stmt_.ColumnIsNull(column); }

 private:
  Statement stmt_;
};

// sql::Connection over one sqlite3 connection. Placeholders $N become ?N
// (SQLite reads "$1" as a named parameter, numbered by first appearance).
class SqliteSqlConnection final : public sql::Connection {
 public:
  explicit SqliteSqlConnection(std::unique_ptr<sqlite::Connection> conn)
      : conn_(std::move(conn)) {}

  absl::StatusOr<std::unique_ptr<sql::Rows>> Query(absl::string_view sql,
                                                   const sql::Params& params) override {
    AIR_ASSIGN_OR_RETURN(Statement stmt, Bound(sql, params));
    return std::unique_ptr<sql::Rows>(new SqliteRows(std::move(stmt)));
  }

  absl::StatusOr<int64_t> Execute(absl::string_view sql, const sql::Params& params) override {
    AIR_ASSIGN_OR_RETURN(Statement stmt, Bound(sql, params));
    AIR_RETURN_IF_ERROR(stmt.Run());
    return static_cast<int64_t>(sqlite3_changes(conn_->db()));
  }

  sqlite::Connection& raw() { return *conn_; }

 private:
  absl::StatusOr<Statement> Bound(absl::string_view sql, const sql::Params& params) {
    AIR_ASSIGN_OR_RETURN(Statement stmt, conn_->Prepare(Translated(sql)));
    int index = 0;
    for (const sql::Params::Value& v : params.values()) {
      ++index;
      switch (v.kind) {
        case sql::Params::Kind::kInt:
          stmt.Bind(index, v.number);
          break;
        case sql::Params::Kind::kText:
          stmt.BindUncopied(index, v.bytes);
          break;
        case sql::Params::Kind::kBlob:
          stmt.BindBlobUncopied(index, v.bytes);
          break;
        case sql::Params::Kind::kNull:
          stmt.BindNull(index);
          break;
      }
    }
    return stmt;
  }

  const std::string& Translated(absl::string_view sql) {
    auto it = translated_.find(sql);
    if (it != translated_.end()) return it->second;
    std::string out(sql);
    for (size_t i = 0; i + 1 < out.size(); ++i) {
      if (out[i] == '$' && absl::ascii_isdigit(out[i + 1])) out[i] = '?';
    }
    return translated_.emplace(std::string(sql), std::move(out)).first->second;
  }

  std::unique_ptr<sqlite::Connection> conn_;
  absl::flat_hash_map<std::string, std::string> translated_;
};

class SqliteWriteSession final : public WriteSession {
 public:
  SqliteWriteSession(std::unique_ptr<sqlite::Connection> conn, int64_t next_sequence)
      : conn_(std::move(conn)), next_sequence_(next_sequence) {}

  sql::Connection& connection() override { return conn_; }
  absl::StatusOr<int64_t> Begin() override {
    AIR_RETURN_IF_ERROR(raw().Run("BEGIN IMMEDIATE"));
    return next_sequence_;
  }
  absl::Status Commit(int64_t next_sequence) override {
    AIR_RETURN_IF_ERROR(raw().Run("COMMIT"));
    next_sequence_ = next_sequence;
    return absl::OkStatus();
  }
  void Rollback() override {
    if (raw().InTransaction()) (void)raw().Exec("ROLLBACK");
  }
  bool InTransaction() override { return raw().InTransaction(); }
  absl::Status LostTransaction() override {
    return MakeError(absl::StatusCode::kUnavailable, "storage write failed; retry",
                     v1::STORAGE_IO_ERROR);
  }

 private:
  sqlite::Connection& raw() { return conn_.raw(); }
  SqliteSqlConnection conn_;
  int64_t next_sequence_;
};

class SqliteReadSession final : public ReadSession {
 public:
  explicit SqliteReadSession(std::unique_ptr<sqlite::Connection> conn)
      : conn_(std::move(conn)) {}
  sql::Connection& connection() override { return conn_; }
  absl::Status Ready() override { return absl::OkStatus(); }
  absl::Status BeginSnapshot() override { return conn_.raw().Exec("BEGIN"); }
  void EndSnapshot() override { (void)conn_.raw().Exec("COMMIT"); }

 private:
  SqliteSqlConnection conn_;
};

class SqliteOnlineBackup final : public OnlineBackup {
 public:
  explicit SqliteOnlineBackup(std::string path) : path_(std::move(path)) {}
  absl::StatusOr<BackupResult> BackupTo(const std::string& dest) override {
    return BackupSqliteDatabase(path_, dest);
  }
  std::string scratch_prefix() const override { return path_ + ".backup-"; }

 private:
  const std::string path_;
};

// One process: always the leader.
class SoleLeader final : public LeaderElection {
 public:
  explicit SoleLeader(std::function<void(bool)> on_change) : on_change_(std::move(on_change)) {
    on_change_(true);
  }
  bool is_leader() const override { return !stopped_; }
  // The process stops with it: nobody else is told to take over.
  void Stop() override { stopped_ = true; }

 private:
  const std::function<void(bool)> on_change_;
  bool stopped_ = false;
};

// The writer's WAL hook and the thread that checkpoints for it (see
// SqliteOptions::checkpoint_pages).
class Checkpointer {
 public:
  Checkpointer(const SqliteOptions& options, std::unique_ptr<sqlite::Connection> conn)
      : options_(options), conn_(std::move(conn)) {}
  ~Checkpointer() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

  // Installs the hook on `writer` (replacing SQLite's automatic checkpoint,
  // itself a WAL hook) and starts the thread.
  absl::Status Start(sqlite::Connection& writer) {
    // A connection opens the log on its first read; until then a
    // checkpoint through it is a silent no-op.
    AIR_RETURN_IF_ERROR(conn_->QueryInt("SELECT COUNT(*) FROM sqlite_master").status());
    sqlite3_wal_hook(writer.db(), &Checkpointer::OnWalCommit, this);
    thread_ = std::thread([this] { Loop(); });
    return absl::OkStatus();
  }

 private:
  // Runs inside each COMMIT on the writer with the log's size in pages.
  static int OnWalCommit(void* self_ptr, sqlite3* db, const char* schema, int pages) {
    auto* self = static_cast<Checkpointer*>(self_ptr);
    if (pages >= self->options_.checkpoint_writer_fallback_pages) {
      // The bound: copy what can be copied now, as SQLite's autocheckpoint
      // would. PASSIVE never waits for readers.
      sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      return SQLITE_OK;
    }
    if (pages >= self->options_.checkpoint_pages) {
      absl::MutexLock lock(&self->mu_);
      self->requested_ = true;
    }
    return SQLITE_OK;
  }

  void Loop() {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](Checkpointer* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
              return self->stopping_ || self->requested_;
            },
            this));
        if (stopping_) return;
        requested_ = false;
      }
      // PASSIVE: copies the frames no reader still needs and syncs the
      // file without blocking the writer, which keeps appending meanwhile.
      int log_pages = 0;
      int copied_pages = 0;
      const int rc = sqlite3_wal_checkpoint_v2(conn_->db(), "main", SQLITE_CHECKPOINT_PASSIVE,
                                               &log_pages, &copied_pages);
      if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        // Not fatal: the next request tries again, and the writer's
        // fallback bounds the log meanwhile.
        spdlog::warn("storage: background WAL checkpoint failed: {}",
                     sqlite3_errmsg(conn_->db()));
      } else if (options_.on_checkpoint) {
        options_.on_checkpoint(log_pages, copied_pages);
      }
    }
  }

  const SqliteOptions& options_;
  std::unique_ptr<sqlite::Connection> conn_;  // the thread's
  absl::Mutex mu_;
  bool requested_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

absl::Status Migrate(sqlite::Connection& conn) {
  AIR_ASSIGN_OR_RETURN(int64_t version, conn.QueryInt("PRAGMA user_version"));
  const int latest = SqliteSchemaVersion();
  if (version > latest) {
    return absl::FailedPreconditionError(
        absl::StrCat("schema version ", version, " is newer than this aird understands (",
                     latest, "); run a newer aird"));
  }
  for (const sqlite::Migration& m : sqlite::kMigrations) {
    if (m.version <= version) continue;
    AIR_RETURN_IF_ERROR(conn.Exec("BEGIN IMMEDIATE"));
    absl::Status s = conn.Exec(m.sql);
    if (s.ok()) s = conn.Exec(absl::StrCat("PRAGMA user_version = ", m.version).c_str());
    if (s.ok()) s = conn.Exec("COMMIT");
    if (!s.ok()) {
      (void)conn.Exec("ROLLBACK");
      return s;
    }
    spdlog::info("storage: applied schema migration {}", m.version);
  }
  return absl::OkStatus();
}

// Opens the writer connection: WAL, integrity, cache, durability, schema.
absl::StatusOr<std::unique_ptr<sqlite::Connection>> OpenWriter(const SqliteOptions& options) {
  AIR_ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Connection> writer,
                       sqlite::Connection::Open(options.path,
                                                SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                                options.busy_timeout));
  if (sqlite3_db_readonly(writer->db(), "main") == 1) {
    return absl::FailedPreconditionError("the file is read-only; aird needs to write it");
  }
  // The first read detects a file that is not a database at all.
  absl::StatusOr<std::string> mode = writer->QueryText("PRAGMA journal_mode = WAL");
  if (!mode.ok()) {
    if (mode.status().code() != absl::StatusCode::kDataLoss) return mode.status();
    return absl::FailedPreconditionError(
        absl::StrCat(mode.status().message(), " (is this an aird database?)"));
  }
  if (*mode != "wal") {
    return absl::FailedPreconditionError(
        "cannot switch to WAL mode (is the directory writable?)");
  }
  if (options.check_integrity_at_open) {
    absl::StatusOr<std::string> check = writer->QueryText("PRAGMA quick_check(1)");
    if (!check.ok() || *check != "ok") {
      return absl::FailedPreconditionError(
          "the file is corrupt (PRAGMA quick_check failed); restore it from a backup");
    }
  }
  AIR_RETURN_IF_ERROR(writer->Exec(
      absl::StrCat("PRAGMA cache_size = -", std::max(options.writer_cache_mib, 1) * 1024)
          .c_str()));
  // Savepoint undo journals stay in memory instead of spilling to temp
  // files (a write per page otherwise).
  AIR_RETURN_IF_ERROR(writer->Exec("PRAGMA temp_store = MEMORY"));
  AIR_RETURN_IF_ERROR(writer->Exec(options.full_fsync ? "PRAGMA synchronous = FULL"
                                                      : "PRAGMA synchronous = NORMAL"));
  AIR_RETURN_IF_ERROR(Migrate(*writer));
  return writer;
}

class SqliteStorage final : public SqlStorage {
 public:
  explicit SqliteStorage(const SqliteOptions& options) : options_(options) {}

  ~SqliteStorage() override {
    // The writer first: its WAL hook uses the checkpointer.
    StopWriter();
    checkpointer_.reset();
  }

  absl::Status Open() {
    AIR_ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Connection> writer, OpenWriter(options_));
    AIR_ASSIGN_OR_RETURN(int64_t first_retained,
                         writer->QueryInt("SELECT value FROM meta WHERE key = "
                                          "'first_retained_sequence'"));
    AIR_ASSIGN_OR_RETURN(int64_t newest,
                         writer->QueryInt("SELECT COALESCE(MAX(sequence), 0) FROM events"));
    const int64_t next_sequence = std::max(newest, first_retained - 1) + 1;
    std::vector<std::unique_ptr<ReadSession>> readers;
    for (int i = 0; i < std::max(options_.reader_connections, 1); ++i) {
      AIR_ASSIGN_OR_RETURN(
          std::unique_ptr<sqlite::Connection> reader,
          sqlite::Connection::Open(options_.path, SQLITE_OPEN_READONLY, options_.busy_timeout));
      readers.push_back(std::make_unique<SqliteReadSession>(std::move(reader)));
    }
    if (options_.checkpoint_pages > 0) {
      AIR_ASSIGN_OR_RETURN(
          std::unique_ptr<sqlite::Connection> conn,
          sqlite::Connection::Open(options_.path, SQLITE_OPEN_READWRITE, options_.busy_timeout));
      checkpointer_ = std::make_unique<Checkpointer>(options_, std::move(conn));
      AIR_RETURN_IF_ERROR(checkpointer_->Start(*writer));
    }
    GroupCommitOptions commit;
    commit.max_batch = options_.max_batch;
    commit.clock = options_.clock;
    commit.rerun_every_batch_for_testing = options_.rerun_every_batch_for_testing;
    Assemble(std::move(readers),
             std::make_unique<SqliteWriteSession>(std::move(writer), next_sequence),
             kSqliteDialect, std::move(commit));
    backup_ = std::make_unique<SqliteOnlineBackup>(options_.path);
    return absl::OkStatus();
  }

  // One process: the database cannot be lost under it.
  void SetConnectionObserver(ConnectionObserver) override {}

  std::unique_ptr<LeaderElection> StartLeaderElection(
      absl::Duration, std::function<void(bool)> on_change) override {
    return std::make_unique<SoleLeader>(std::move(on_change));
  }

  OnlineBackup* backup() override { return backup_.get(); }

  std::vector<StorageGauge> ReadGauges() override {
    std::vector<StorageGauge> gauges;
    // Pages in use, committed ones still in the log included.
    if (absl::StatusOr<ReaderPool::Lease> reader = readers().Acquire(); reader.ok()) {
      absl::StatusOr<std::optional<int64_t>> pages =
          reader->connection().QueryInt("PRAGMA page_count", sql::Params());
      absl::StatusOr<std::optional<int64_t>> page_size =
          reader->connection().QueryInt("PRAGMA page_size", sql::Params());
      if (pages.ok() && page_size.ok()) {
        gauges.push_back({"aird_database_size_bytes",
                          "Size of the SQLite database file (pages in use).",
                          static_cast<double>(pages->value_or(0) * page_size->value_or(0))});
      }
    }
    std::error_code error;
    const auto wal = std::filesystem::file_size(options_.path + "-wal", error);
    gauges.push_back({"aird_database_wal_size_bytes", "Size of the SQLite write-ahead log file.",
                      error ? 0.0 : static_cast<double>(wal)});
    return gauges;
  }

 private:
  const SqliteOptions options_;
  std::unique_ptr<Checkpointer> checkpointer_;
  std::unique_ptr<SqliteOnlineBackup> backup_;
};

}  // namespace

int SqliteSchemaVersion() {
  int latest = 0;
  for (const sqlite::Migration& m : sqlite::kMigrations) latest = std::max(latest, m.version);
  return latest;
}

absl::StatusOr<std::unique_ptr<Storage>> OpenSqliteStorage(const SqliteOptions& options) {
  auto storage = std::make_unique<SqliteStorage>(options);
  if (absl::Status s = storage->Open(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("database ", options.path, ": ", s.message()));
  }
  return storage;
}

}  // namespace air
