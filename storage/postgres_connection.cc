#include "storage/postgres_connection.h"

#include <endian.h>
#include <libpq-fe.h>

#include <cstring>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "domain/errors.h"
#include "spdlog/spdlog.h"

namespace air::pg {

std::string RedactConninfo(absl::string_view conninfo) {
  std::string out(conninfo);
  // URI form: scheme://user:password@host -> scheme://user:***@host
  static const std::regex kUserInfo(R"(^([a-zA-Z]+://[^:/@?]*):[^@/?]*@)");
  out = std::regex_replace(out, kUserInfo, "$1:***@");
  // Key/value form and URI query parameter: password=... up to a separator.
  static const std::regex kPassword(R"((password\s*=\s*)('[^']*'|[^\s&]*))",
                                    std::regex::icase);
  out = std::regex_replace(out, kPassword, "$1***");
  return out;
}

bool IsPostgresUri(absl::string_view db) {
  return absl::StartsWith(db, "postgresql://") || absl::StartsWith(db, "postgres://");
}

absl::Status PostgresError(absl::string_view sqlstate, absl::string_view what) {
  const absl::string_view cls = sqlstate.substr(0, std::min<size_t>(2, sqlstate.size()));
  // Class 08: connection exception; 57: operator intervention (shutdown);
  // 53: insufficient resources; 58: system error. No state: connection lost.
  if (sqlstate.empty() || cls == "08" || cls == "57" || cls == "53" || cls == "58") {
    return MakeError(absl::StatusCode::kUnavailable,
                     absl::StrCat("storage ", what, " failed: the database is unreachable; retry"),
                     v1::STORAGE_UNAVAILABLE);
  }
  if (sqlstate == "40001" || sqlstate == "40P01") {
    return MakeError(absl::StatusCode::kAborted,
                     absl::StrCat("storage ", what, " failed: a concurrent write conflicted; retry"),
                     v1::STORAGE_CONFLICT);
  }
  if (sqlstate == "23505") {
    return MakeError(absl::StatusCode::kAlreadyExists,
                     absl::StrCat("storage ", what, " failed: the record already exists"),
                     v1::STORAGE_DUPLICATE);
  }
  if (sqlstate == "25P02") {  // in a failed transaction
    return MakeError(absl::StatusCode::kAborted,
                     absl::StrCat("storage ", what, " failed: the transaction was aborted"),
                     v1::STORAGE_CONFLICT);
  }
  return MakeError(absl::StatusCode::kInternal, absl::StrCat("storage ", what, " failed"),
                   v1::STORAGE_ERROR);
}

// ---- Params ----

Params& Params::Int(int64_t value) {
  values_.push_back(std::to_string(value));
  nulls_.push_back(false);
  formats_.push_back(0);
  return *this;
}

Params& Params::Text(absl::string_view text) {
  values_.emplace_back(text);
  nulls_.push_back(false);
  formats_.push_back(0);
  return *this;
}

Params& Params::Bytes(absl::string_view bytes) {
  values_.emplace_back(bytes);
  nulls_.push_back(false);
  formats_.push_back(1);
  return *this;
}

Params& Params::Null() {
  values_.emplace_back();
  nulls_.push_back(true);
  formats_.push_back(0);
  return *this;
}

std::vector<const char*> Params::values() const {
  std::vector<const char*> out;
  out.reserve(values_.size());
  for (size_t i = 0; i < values_.size(); ++i) {
    out.push_back(nulls_[i] ? nullptr : values_[i].c_str());
  }
  return out;
}

std::vector<int> Params::lengths() const {
  std::vector<int> out;
  out.reserve(values_.size());
  for (const std::string& v : values_) out.push_back(static_cast<int>(v.size()));
  return out;
}

// ---- Result ----

Result& Result::operator=(Result&& other) noexcept {
  if (this != &other) {
    if (result_ != nullptr) PQclear(result_);
    result_ = other.result_;
    other.result_ = nullptr;
  }
  return *this;
}

Result::~Result() {
  if (result_ != nullptr) PQclear(result_);
}

int Result::rows() const { return PQntuples(result_); }

bool Result::IsNull(int row, int column) const {
  return PQgetisnull(result_, row, column) == 1;
}

int64_t Result::Int(int row, int column) const {
  if (IsNull(row, column)) return 0;
  const char* v = PQgetvalue(result_, row, column);
  switch (PQgetlength(result_, row, column)) {
    case 8: {
      uint64_t x;
      std::memcpy(&x, v, 8);
      return static_cast<int64_t>(be64toh(x));
    }
    case 4: {
      uint32_t x;
      std::memcpy(&x, v, 4);
      return static_cast<int32_t>(be32toh(x));
    }
    case 2: {
      uint16_t x;
      std::memcpy(&x, v, 2);
      return static_cast<int16_t>(be16toh(x));
    }
    default:
      return 0;
  }
}

absl::string_view Result::Bytes(int row, int column) const {
  if (IsNull(row, column)) return {};
  return absl::string_view(PQgetvalue(result_, row, column),
                           static_cast<size_t>(PQgetlength(result_, row, column)));
}

int64_t Result::affected() const {
  const char* n = PQcmdTuples(result_);
  return (n == nullptr || *n == '\0') ? 0 : std::strtoll(n, nullptr, 10);
}

// ---- Connection ----

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(
    const std::string& conninfo,
    const std::vector<std::pair<std::string, std::string>>& overrides) {
  // Defaults that keep a dead or unreachable server from hanging a call:
  // a connect timeout and TCP keepalives / user timeout. They come before
  // `dbname` (the expanded connection string), so the string's own settings
  // win.
  std::vector<const char*> keywords = {"connect_timeout", "keepalives_idle",
                                       "keepalives_interval", "keepalives_count",
                                       "tcp_user_timeout", "dbname"};
  std::vector<const char*> values = {"5", "10", "5", "3", "30000", conninfo.c_str()};
  for (const auto& [keyword, value] : overrides) {
    keywords.push_back(keyword.c_str());
    values.push_back(value.c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  pg_conn* conn = PQconnectdbParams(keywords.data(), values.data(), /*expand_dbname=*/1);
  if (conn == nullptr) {
    return MakeError(absl::StatusCode::kUnavailable, "cannot allocate a database connection",
                     v1::STORAGE_UNAVAILABLE);
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    // libpq's message may quote the host but never the password.
    std::string why = PQerrorMessage(conn);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    PQfinish(conn);
    return MakeError(absl::StatusCode::kUnavailable,
                     absl::StrCat("cannot connect to PostgreSQL at ", RedactConninfo(conninfo),
                                  ": ", why),
                     v1::STORAGE_UNAVAILABLE);
  }
  // Server NOTICEs ("already exists, skipping") go to the debug log, not
  // to stderr.
  PQsetNoticeProcessor(
      conn, [](void*, const char* message) { spdlog::debug("postgres: {}", message); }, nullptr);
  return std::unique_ptr<Connection>(new Connection(conn));
}

Connection::~Connection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

bool Connection::ok() const { return PQstatus(conn_) == CONNECTION_OK; }

absl::Status Connection::Reset() {
  prepared_.clear();  // prepared statements die with the session
  PQreset(conn_);
  if (PQstatus(conn_) != CONNECTION_OK) return PostgresError("", "reconnect");
  return absl::OkStatus();
}

bool Connection::InTransaction() const {
  const PGTransactionStatusType s = PQtransactionStatus(conn_);
  return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE;
}

absl::Status Connection::ErrorFrom(pg_result* result, absl::string_view what) {
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const char* message = result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn_);
  std::string detail = message != nullptr ? message : "";
  while (!detail.empty() && detail.back() == '\n') detail.pop_back();
  absl::string_view sqlstate = state != nullptr ? state : "";
  if (PQstatus(conn_) != CONNECTION_OK) sqlstate = "";
  // Expected outcomes of concurrency are not worth a warning.
  if (sqlstate == "23505") {
    spdlog::debug("storage {}: {} ({})", std::string(what), detail, std::string(sqlstate));
  } else {
    spdlog::warn("storage {} failed: {} ({})", std::string(what), detail,
                 std::string(sqlstate));
  }
  return PostgresError(sqlstate, what);
}

std::string Connection::Prepared(const std::string& sql, int params) {
  auto it = prepared_.find(sql);
  if (it != prepared_.end()) return it->second;
  // Lists build their WHERE clause from the filter: a bounded set of texts,
  // but keep the cache bounded anyway.
  if (prepared_.size() >= 512) return "";
  const std::string name = absl::StrCat("air_", prepared_.size() + 1);
  pg_result* result = PQprepare(conn_, name.c_str(), sql.c_str(), params, nullptr);
  const bool ok = result != nullptr && PQresultStatus(result) == PGRES_COMMAND_OK;
  if (result != nullptr) PQclear(result);
  if (!ok) return "";
  prepared_.emplace(sql, name);
  return name;
}

absl::StatusOr<Result> Connection::Exec(absl::string_view sql, const Params& params) {
  const std::string text(sql);
  const std::vector<const char*> values = params.values();
  const std::vector<int> lengths = params.lengths();
  // Transaction control runs as is; everything else is prepared once per
  // session (parse and plan once, not per call).
  const bool control = absl::StartsWith(text, "BEGIN") || absl::StartsWith(text, "COMMIT") ||
                       absl::StartsWith(text, "ROLLBACK") ||
                       absl::StartsWith(text, "SAVEPOINT") || absl::StartsWith(text, "RELEASE") ||
                       absl::StartsWith(text, "LISTEN");
  // A failed transaction refuses PREPARE too; run unprepared then.
  const std::string name = control || PQtransactionStatus(conn_) == PQTRANS_INERROR
                               ? std::string()
                               : Prepared(text, params.size());
  pg_result* result =
      name.empty()
          ? PQexecParams(conn_, text.c_str(), params.size(), nullptr, values.data(),
                         lengths.data(), params.formats().data(), /*resultFormat=*/1)
          : PQexecPrepared(conn_, name.c_str(), params.size(), values.data(), lengths.data(),
                           params.formats().data(), /*resultFormat=*/1);
  const ExecStatusType status = result != nullptr ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    absl::Status error = ErrorFrom(result, "query");
    if (result != nullptr) PQclear(result);
    return error;
  }
  return Result(result);
}

absl::Status Connection::Run(absl::string_view sql, const Params& params) {
  return Exec(sql, params).status();
}

absl::Status Connection::RunScript(absl::string_view sql) {
  const std::string text(sql);
  pg_result* result = PQexec(conn_, text.c_str());
  const ExecStatusType status = result != nullptr ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    absl::Status error = ErrorFrom(result, "migration");
    if (result != nullptr) PQclear(result);
    return error;
  }
  PQclear(result);
  return absl::OkStatus();
}

int Connection::socket() const { return PQsocket(conn_); }

absl::StatusOr<std::vector<std::string>> Connection::ConsumeNotifications() {
  if (PQconsumeInput(conn_) == 0 || PQstatus(conn_) != CONNECTION_OK) {
    return PostgresError("", "listen");
  }
  std::vector<std::string> payloads;
  while (PGnotify* n = PQnotifies(conn_)) {
    payloads.emplace_back(n->extra != nullptr ? n->extra : "");
    PQfreemem(n);
  }
  return payloads;
}

}  // namespace air::pg
