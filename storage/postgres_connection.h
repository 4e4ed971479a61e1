// A thin libpq wrapper for the PostgreSQL repository: one connection, one
// statement at a time, absl::Status instead of error codes. Results come
// back in binary format (integers as int8, text and bytea as raw bytes), so
// protobuf bodies travel without hex escaping.
//
// Not thread-safe: a Connection is used by one thread at a time (the
// repository leases them). Errors never carry SQL or the connection string:
// the detail goes to the log (passwords redacted), the caller gets a code
// (UNAVAILABLE for a lost or refused connection, ABORTED for serialization
// failures and deadlocks, ALREADY_EXISTS for unique violations, INTERNAL
// otherwise) and a short reason.
#ifndef AIR_STORAGE_POSTGRES_CONNECTION_H_
#define AIR_STORAGE_POSTGRES_CONNECTION_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct pg_conn;
struct pg_result;

namespace air::pg {

// `conninfo` with any password removed (URI user:password@ and password=),
// fit for logs and error messages.
std::string RedactConninfo(absl::string_view conninfo);

// True for a libpq URI (postgresql:// or postgres://).
bool IsPostgresUri(absl::string_view db);

class Params {
 public:
  Params& Int(int64_t value);
  Params& Text(absl::string_view text);
  Params& Bytes(absl::string_view bytes);
  Params& Null();

  int size() const { return static_cast<int>(values_.size()); }
  // Pointers into this object: valid while it lives and is not changed.
  std::vector<const char*> values() const;
  std::vector<int> lengths() const;
  const std::vector<int>& formats() const { return formats_; }

 private:
  std::vector<std::string> values_;
  std::vector<bool> nulls_;
  std::vector<int> formats_;
};

class Result {
 public:
  explicit Result(pg_result* result) : result_(result) {}
  Result(Result&& other) noexcept : result_(other.result_) { other.result_ = nullptr; }
  Result& operator=(Result&& other) noexcept;
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  ~Result();

  int rows() const;
  bool IsNull(int row, int column) const;
  // An int2/int4/int8 column; 0 for NULL.
  int64_t Int(int row, int column) const;
  // A text or bytea column (raw bytes); empty for NULL.
  absl::string_view Bytes(int row, int column) const;
  // Rows changed by an INSERT/UPDATE/DELETE.
  int64_t affected() const;

 private:
  pg_result* result_;
};

class Connection {
 public:
  // Connects (blocking). UNAVAILABLE when the server cannot be reached or
  // refuses the login; the message names the redacted target.
  // `overrides` (libpq keyword, value) win over the connection string.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(
      const std::string& conninfo,
      const std::vector<std::pair<std::string, std::string>>& overrides = {});
  ~Connection();

  // One statement with parameters ($1, $2, ...); binary results.
  absl::StatusOr<Result> Exec(absl::string_view sql, const Params& params = Params());
  // Runs one statement and drops the result.
  absl::Status Run(absl::string_view sql, const Params& params = Params());
  // Several statements, no parameters (migrations).
  absl::Status RunScript(absl::string_view sql);

  // False once the connection is broken; Reset() then reconnects.
  bool ok() const;
  absl::Status Reset();
  // Inside a transaction block (or a failed one)?
  bool InTransaction() const;

  // For LISTEN: the socket to poll, and what arrived. Returns the payloads of
  // the notifications received so far (consumes input first); UNAVAILABLE if
  // the connection is lost.
  int socket() const;
  absl::StatusOr<std::vector<std::string>> ConsumeNotifications();

 private:
  explicit Connection(pg_conn* conn) : conn_(conn) {}
  absl::Status ErrorFrom(pg_result* result, absl::string_view what);
  // The prepared statement for `sql` (prepared on first use), or "" if it
  // cannot be prepared (then the statement runs unprepared).
  std::string Prepared(const std::string& sql, int params);
  pg_conn* conn_;
  // SQL text -> statement name, per session (cleared on Reset).
  std::map<std::string, std::string> prepared_;
};

// The status for a libpq failure. `sqlstate` may be empty (connection lost).
absl::Status PostgresError(absl::string_view sqlstate, absl::string_view what);

}  // namespace air::pg

#endif  // AIR_STORAGE_POSTGRES_CONNECTION_H_
