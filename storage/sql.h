// The thin seam between the storage engine and a SQL database, in the spirit
// of leveldb's Env: the stores, the write transaction and the group
// committer are written once over these few types, and each backend
// (sqlite_storage.cc, postgres_storage.cc) implements them for its library.
// Storage-internal: only storage/*.cc include this.
//
// SQL is written once, with PostgreSQL's numbered placeholders ($1, $2, ...,
// reusable); a backend translates them if its library wants another style.
// Statements are prepared once per connection and cached by their text.
#ifndef AIR_STORAGE_SQL_H_
#define AIR_STORAGE_SQL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace air::sql {

// Parameter values for one statement, in placeholder order ($1 first).
// Text and blobs are viewed, not copied: what they point to must stay alive
// until the statement has run (Connection::Execute returns) or, for
// Connection::Query, until the Rows are destroyed.
class Params {
 public:
  enum class Kind { kInt, kText, kBlob, kNull };
  struct Value {
    Kind kind;
    int64_t number;
    absl::string_view bytes;
  };

  Params& Int(int64_t value) {
    values_.push_back({Kind::kInt, value, {}});
    return *this;
  }
  Params& Text(absl::string_view text) {
    values_.push_back({Kind::kText, 0, text});
    return *this;
  }
  Params& Blob(absl::string_view bytes) {
    values_.push_back({Kind::kBlob, 0, bytes});
    return *this;
  }
  Params& Null() {
    values_.push_back({Kind::kNull, 0, {}});
    return *this;
  }
  const std::vector<Value>& values() const { return values_; }

 private:
  std::vector<Value> values_;
};

// The rows of a query, read forward once. Column accessors are valid after
// Next() returned true and until the next call to Next().
class Rows {
 public:
  virtual ~Rows() = default;
  // Advances to the next row: true when there is one, false at the end.
  virtual absl::StatusOr<bool> Next() = 0;
  // 0 for NULL.
  virtual int64_t Int(int column) const = 0;
  // Text or blob bytes; empty for NULL.
  virtual absl::string_view Bytes(int column) const = 0;
  virtual bool IsNull(int column) const = 0;
};

// One database connection. Not thread-safe: one thread uses it at a time.
// Errors are canonical statuses whose messages name neither SQL nor paths
// (UNAVAILABLE for a lost database, ALREADY_EXISTS for a unique violation).
class Connection {
 public:
  virtual ~Connection() = default;
  // Runs a query. The statement stays busy until the Rows are destroyed.
  virtual absl::StatusOr<std::unique_ptr<Rows>> Query(absl::string_view sql,
                                                      const Params& params) = 0;
  // Runs a statement that returns no rows; returns how many rows it changed.
  virtual absl::StatusOr<int64_t> Execute(absl::string_view sql,
                                          const Params& params) = 0;
  absl::StatusOr<int64_t> Execute(absl::string_view sql) { return Execute(sql, Params()); }

  // The first column of the first row of `sql`, if there is a row.
  absl::StatusOr<std::optional<int64_t>> QueryInt(absl::string_view sql,
                                                  const Params& params);
};

inline absl::StatusOr<std::optional<int64_t>> Connection::QueryInt(absl::string_view sql,
                                                                   const Params& params) {
  absl::StatusOr<std::unique_ptr<Rows>> rows = Query(sql, params);
  if (!rows.ok()) return rows.status();
  absl::StatusOr<bool> row = (*rows)->Next();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<int64_t>();
  return std::optional<int64_t>((*rows)->Int(0));
}

}  // namespace air::sql

#endif  // AIR_STORAGE_SQL_H_
