// Thin RAII wrappers over one sqlite3 connection and its cached prepared
// statements. Internal to storage/: only the SQLite files include this.
#ifndef AIR_STORAGE_SQLITE_CONNECTION_H_
#define AIR_STORAGE_SQLITE_CONNECTION_H_

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace air::sqlite {

// Maps a SQLite result code to a canonical status whose message is safe to
// return to clients: it names neither SQL nor file paths. `what` says which
// operation failed ("read", "commit"...). The detailed SQLite message goes to
// the log.
absl::Status StorageError(int rc, absl::string_view what, sqlite3* db = nullptr);

// A borrowed prepared statement. Resets itself and clears its bindings when
// it goes out of scope, so the cached statement is ready for the next use.
class Statement {
 public:
  Statement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  Statement(Statement&& other) noexcept : stmt_(other.stmt_), db_(other.db_) {
    other.stmt_ = nullptr;
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQLite.
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, absl::string_view text);
  Statement& BindBlob(int index, absl::string_view bytes);
  Statement& BindNull(int index);
  // The same as Bind/BindBlob without SQLite's copy of the bytes, for the
  // hot write paths: the bytes must stay alive and unchanged until the
  // statement has run (never a temporary that dies with the expression).
  Statement& BindUncopied(int index, absl::string_view text);
  Statement& BindBlobUncopied(int index, absl::string_view bytes);

  // Advances: true when a row is available, false when done.
  absl::StatusOr<bool> Step();
  // Runs a statement that returns no rows.
  absl::Status Run();

  int64_t ColumnInt(int column) const;
  absl::string_view ColumnText(int column) const;
  absl::string_view ColumnBlob(int column) const;
  bool ColumnIsNull(int column) const;

 private:
  sqlite3_stmt* stmt_;
  sqlite3* db_;
  int bind_error_ = SQLITE_OK;
};

// One connection. Not thread-safe: one thread uses it at a time.
class Connection {
 public:
  // flags: SQLITE_OPEN_* flags. Sets the busy timeout.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(
      const std::string& path, int flags, absl::Duration busy_timeout);
  ~Connection();

  // Runs one or more statements without results.
  absl::Status Exec(const char* sql);
  // Runs one statement without results through the statement cache: for
  // the ones run all the time (SAVEPOINT, RELEASE, COMMIT), which Exec
  // would parse again at every call.
  absl::Status Run(absl::string_view sql);
  // Returns the cached statement for `sql`, preparing it on first use.
  // Looked up without a copy of `sql` (this runs for every statement).
  absl::StatusOr<Statement> Prepare(absl::string_view sql);
  // A single integer from a one-row query, e.g. a PRAGMA.
  absl::StatusOr<int64_t> QueryInt(const std::string& sql);
  absl::StatusOr<std::string> QueryText(const std::string& sql);

  sqlite3* db() const { return db_; }
  bool InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::map<std::string, sqlite3_stmt*, std::less<>> statements_;
};

}  // namespace air::sqlite

#endif  // AIR_STORAGE_SQLITE_CONNECTION_H_
