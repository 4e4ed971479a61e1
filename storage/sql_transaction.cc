#include "storage/sql_transaction.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "domain/errors.h"
#include "domain/lifecycle.h"
#include "domain/status_macros.h"
#include "storage/record_codec.h"

namespace air {

using sql::Params;
using storage_internal::Micros;
using storage_internal::NotFound;
using storage_internal::ParseBody;

namespace {

// Bulk upstream-version statements take this many ids at most.
constexpr int kVersionChunk = 128;

}  // namespace

absl::StatusOr<EventLogBounds> ReadEventLogBounds(sql::Connection& conn,
                                                  const SqlDialect& dialect) {
  AIR_ASSIGN_OR_RETURN(std::unique_ptr<sql::Rows> rows,
                       conn.Query(dialect.event_log_bounds, Params()));
  AIR_ASSIGN_OR_RETURN(bool row, rows->Next());
  if (!row) {
    return MakeError(absl::StatusCode::kDataLoss,
                     "storage read failed: the event log is missing", v1::STORAGE_CORRUPT);
  }
  EventLogBounds bounds;
  bounds.first_retained = rows->Int(0);
  bounds.head = std::max(rows->Int(1), bounds.first_retained - 1);
  return bounds;
}

SqlWriteTransaction::Mark SqlWriteTransaction::mark() {
  ++generation_;
  return {next_sequence_, events_.size(), undo_.size()};
}

void SqlWriteTransaction::RollBackTo(const Mark& m) {
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

absl::Status SqlWriteTransaction::Flush() {
  for (auto& [id, cached] : investigations_) {
    if (!cached.dirty) continue;
    AIR_RETURN_IF_ERROR(WriteInvestigation(cached.value));
    cached.dirty = false;
  }
  return absl::OkStatus();
}

// ---- Investigations and actions ----

absl::StatusOr<v1::Action> SqlWriteTransaction::GetAction(absl::string_view id) {
  AIR_ASSIGN_OR_RETURN(std::unique_ptr<sql::Rows> rows,
                       conn_.Query("SELECT body FROM actions WHERE id = $1", Params().Text(id)));
  AIR_ASSIGN_OR_RETURN(bool row, rows->Next());
  if (!row) return NotFound("action", id);
  return ParseBody<v1::Action>(rows->Bytes(0));
}

absl::StatusOr<bool> SqlWriteTransaction::RowExists(absl::string_view sql,
                                                    absl::string_view id) {
  AIR_ASSIGN_OR_RETURN(std::unique_ptr<sql::Rows> rows, conn_.Query(sql, Params().Text(id)));
  return rows->Next();
}

absl::StatusOr<bool> SqlWriteTransaction::HasAction(absl::string_view id) {
  return RowExists("SELECT 1 FROM actions WHERE id = $1", id);
}

absl::StatusOr<bool> SqlWriteTransaction::HasInvestigation(absl::string_view id) {
  if (investigations_.contains(id)) return true;
  return RowExists("SELECT 1 FROM investigations WHERE id = $1", id);
}

absl::StatusOr<v1::Investigation> SqlWriteTransaction::GetInvestigation(absl::string_view id) {
  AIR_ASSIGN_OR_RETURN(CachedInvestigation * cached, Cached(id));
  return cached->value;
}

absl::Status SqlWriteTransaction::PutInvestigation(const v1::Investigation& inv) {
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

absl::StatusOr<bool> SqlWriteTransaction::ChangeInvestigation(
    absl::string_view id, absl::FunctionRef<bool(v1::Investigation&)> change) {
  AIR_ASSIGN_OR_RETURN(CachedInvestigation * cached, Cached(id));
  SaveForUndo(id, *cached);
  cached->dirty = true;
  return change(cached->value);
}

absl::StatusOr<SqlWriteTransaction::CachedInvestigation*> SqlWriteTransaction::Cached(
    absl::string_view id) {
  if (auto it = investigations_.find(id); it != investigations_.end()) return &it->second;
  AIR_ASSIGN_OR_RETURN(
      std::unique_ptr<sql::Rows> rows,
      conn_.Query("SELECT body FROM investigations WHERE id = $1", Params().Text(id)));
  AIR_ASSIGN_OR_RETURN(bool row, rows->Next());
  if (!row) return NotFound("investigation", id);
  AIR_ASSIGN_OR_RETURN(v1::Investigation loaded, ParseBody<v1::Investigation>(rows->Bytes(0)));
  undo_.push_back({std::string(id), std::nullopt});
  return &investigations_
              .emplace(std::string(id), CachedInvestigation{std::move(loaded), false, generation_})
              .first->second;
}

void SqlWriteTransaction::SaveForUndo(absl::string_view id, CachedInvestigation& cached) {
  if (cached.saved_in == generation_) return;
  undo_.push_back({std::string(id), cached});
  cached.saved_in = generation_;
}

absl::Status SqlWriteTransaction::PutAction(const v1::Action& action) {
  // Databases rewrite every index that contains a column named in SET,
  // changed or not. investigation_id, type and create_us never change once
  // an action exists, so the upsert sets only the mutable columns; its WHERE
  // makes it a no-op if they did differ, and then the full update below
  // keeps the row consistent.
  static constexpr absl::string_view kUpsert =
      "INSERT INTO actions (id, investigation_id, type, state, create_us, expire_us, body) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET "
      "state = excluded.state, expire_us = excluded.expire_us, body = excluded.body "
      "WHERE actions.investigation_id = excluded.investigation_id "
      "AND actions.type = excluded.type AND actions.create_us = excluded.create_us";
  static constexpr absl::string_view kFullUpdate =
      "UPDATE actions SET investigation_id = $2, type = $3, state = $4, "
      "create_us = $5, expire_us = $6, body = $7 WHERE id = $1";
  const std::string body = action.SerializeAsString();
  Params params;
  params.Text(action.id())
      .Text(action.investigation_id())
      .Int(action.type())
      .Int(action.state())
      .Int(Micros(action.create_time()))
      .Int(Micros(action.expire_time()))
      .Blob(body);
  AIR_ASSIGN_OR_RETURN(int64_t changed, conn_.Execute(kUpsert, params));
  if (changed == 0) AIR_RETURN_IF_ERROR(conn_.Execute(kFullUpdate, params).status());
  return absl::OkStatus();
}

absl::Status SqlWriteTransaction::WriteInvestigation(const v1::Investigation& inv) {
  // As in PutAction: create_us never changes, so the upsert leaves it (and
  // the index on it) alone unless it did differ.
  static constexpr absl::string_view kUpsert =
      "INSERT INTO investigations (id, state, source, verdict, create_us, update_us, body) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET "
      "state = excluded.state, source = excluded.source, verdict = excluded.verdict, "
      "update_us = excluded.update_us, body = excluded.body "
      "WHERE investigations.create_us = excluded.create_us";
  static constexpr absl::string_view kFullUpdate =
      "UPDATE investigations SET state = $2, source = $3, verdict = $4, "
      "create_us = $5, update_us = $6, body = $7 WHERE id = $1";
  const std::string body = inv.SerializeAsString();
  Params params;
  params.Text(inv.id())
      .Int(inv.state())
      .Int(inv.source())
      .Int(inv.verdict())
      .Int(Micros(inv.create_time()))
      .Int(Micros(inv.update_time()))
      .Blob(body);
  AIR_ASSIGN_OR_RETURN(int64_t changed, conn_.Execute(kUpsert, params));
  if (changed == 0) AIR_RETURN_IF_ERROR(conn_.Execute(kFullUpdate, params).status());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> SqlWriteTransaction::PendingActionsDueBy(
    absl::Time deadline, int limit) {
  AIR_ASSIGN_OR_RETURN(std::unique_ptr<sql::Rows> rows,
                       conn_.Query("SELECT id FROM actions WHERE state = 1 AND expire_us <= $1 "
                                   "ORDER BY expire_us LIMIT $2",
                                   Params().Int(absl::ToUnixMicros(deadline)).Int(limit)));
  std::vector<std::string> ids;
  while (true) {
    AIR_ASSIGN_OR_RETURN(bool row, rows->Next());
    if (!row) break;
    ids.emplace_back(rows->Bytes(0));
  }
  return ids;
}

absl::StatusOr<std::optional<TargetApproval>> SqlWriteTransaction::FindTargetApproval(
    absl::string_view target_key) {
  AIR_ASSIGN_OR_RETURN(
      std::unique_ptr<sql::Rows> rows,
      conn_.Query("SELECT action_id, approve_us FROM target_approvals WHERE target_key = $1",
                  Params().Text(target_key)));
  AIR_ASSIGN_OR_RETURN(bool row, rows->Next());
  if (!row) return std::optional<TargetApproval>();
  return std::optional<TargetApproval>(TargetApproval{
      std::string(target_key), std::string(rows->Bytes(0)), absl::FromUnixMicros(rows->Int(1))});
}

absl::Status SqlWriteTransaction::RecordTargetApproval(const TargetApproval& approval) {
  // An upsert changes the row in place (a replace would delete and insert).
  return conn_
      .Execute("INSERT INTO target_approvals (target_key, action_id, approve_us) "
               "VALUES ($1, $2, $3) ON CONFLICT (target_key) DO UPDATE SET "
               "action_id = excluded.action_id, approve_us = excluded.approve_us",
               Params()
                   .Text(approval.target_key)
                   .Text(approval.action_id)
                   .Int(absl::ToUnixMicros(approval.approve_time)))
      .status();
}

// ---- The event log ----

absl::StatusOr<int64_t> SqlWriteTransaction::AppendEvent(v1::Event event) {
  const int64_t sequence = next_sequence_;
  event.set_sequence(sequence);
  SetTimestamp(now_, event.mutable_commit_time());
  const std::string body = event.SerializeAsString();
  AIR_RETURN_IF_ERROR(
      conn_
          .Execute("INSERT INTO events (sequence, commit_us, body) VALUES ($1, $2, $3)",
                   Params().Int(sequence).Int(absl::ToUnixMicros(now_)).Blob(body))
          .status());
  ++next_sequence_;
  events_.push_back(std::move(event));
  return sequence;
}

absl::StatusOr<int64_t> SqlWriteTransaction::PruneEvents(absl::Time older_than,
                                                         int64_t max_events) {
  const int64_t head = next_sequence_ - 1;
  if (head <= 0) return 0;
  // Keep at most max_events, and always the newest event.
  int64_t keep_from = std::max<int64_t>(head - std::max<int64_t>(max_events, 1) + 1, 1);
  AIR_ASSIGN_OR_RETURN(
      std::optional<int64_t> oldest_recent,
      conn_.QueryInt("SELECT MIN(sequence) FROM events WHERE commit_us >= $1",
                     Params().Int(absl::ToUnixMicros(older_than))));
  // MIN over no rows is NULL, read as 0: nothing is recent, keep only the head.
  const int64_t recent_from = oldest_recent.value_or(0) > 0 ? *oldest_recent : head;
  keep_from = std::max(keep_from, std::min(recent_from, head));
  AIR_ASSIGN_OR_RETURN(int64_t deleted, conn_.Execute("DELETE FROM events WHERE sequence < $1",
                                                      Params().Int(keep_from)));
  AIR_RETURN_IF_ERROR(
      conn_.Execute(dialect_.raise_first_retained, Params().Int(keep_from)).status());
  return deleted;
}

// ---- Audit ----

absl::Status SqlWriteTransaction::AppendAudit(const AuditRecord& r) {
  return conn_
      .Execute("INSERT INTO decision_audit (action_id, investigation_id, from_state, "
               "to_state, outcome, source, decider, comment, policy_rule, request_id, "
               "decide_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
                   .Int(Micros(r.decision.decide_time())))
      .status();
}

// ---- Idempotency records ----

absl::StatusOr<std::optional<StoredRequest>> SqlWriteTransaction::FindRequest(
    absl::string_view request_id) {
  AIR_ASSIGN_OR_RETURN(
      std::unique_ptr<sql::Rows> rows,
      conn_.Query("SELECT fingerprint, response FROM request_log WHERE request_id = $1",
                  Params().Text(request_id)));
  AIR_ASSIGN_OR_RETURN(bool row, rows->Next());
  if (!row) return std::optional<StoredRequest>();
  return std::optional<StoredRequest>(
      StoredRequest{std::string(rows->Bytes(0)), std::string(rows->Bytes(1))});
}

absl::Status SqlWriteTransaction::SaveRequest(absl::string_view request_id,
                                              const StoredRequest& request) {
  return conn_
      .Execute("INSERT INTO request_log (request_id, fingerprint, response, create_us) "
               "VALUES ($1, $2, $3, $4)",
               Params()
                   .Text(request_id)
                   .Text(request.fingerprint)
                   .Blob(request.response)
                   .Int(absl::ToUnixMicros(now_)))
      .status();
}

// ---- Upstream sync state ----

absl::StatusOr<std::optional<int64_t>> SqlWriteTransaction::GetUpstreamVersion(
    UpstreamKind kind, absl::string_view id) {
  return conn_.QueryInt("SELECT version FROM upstream_versions WHERE kind = $1 AND id = $2",
                        Params().Int(static_cast<int64_t>(kind)).Text(id));
}

absl::Status SqlWriteTransaction::SetUpstreamVersion(UpstreamKind kind, absl::string_view id,
                                                     int64_t version) {
  return SetUpstreamVersions(kind, {{std::string(id), version}});
}

// A page of versions in statements of one shape (prepared once): ids in
// chunks of kVersionChunk, the last chunk padded with NULL, which no id
// equals.
absl::Status SqlWriteTransaction::GetUpstreamVersions(UpstreamKind kind,
                                                      const std::vector<std::string>& ids,
                                                      std::map<std::string, int64_t>& versions) {
  static const std::string kSelect = [] {
    std::string sql = "SELECT id, version FROM upstream_versions WHERE kind = $1 AND id IN (";
    for (int i = 0; i < kVersionChunk; ++i) absl::StrAppend(&sql, i ? ", $" : "$", i + 2);
    return sql + ")";
  }();
  for (size_t start = 0; start < ids.size(); start += kVersionChunk) {
    Params params;
    params.Int(static_cast<int64_t>(kind));
    for (size_t i = start; i < start + kVersionChunk; ++i) {
      if (i < ids.size()) {
        params.Text(ids[i]);
      } else {
        params.Null();
      }
    }
    AIR_ASSIGN_OR_RETURN(std::unique_ptr<sql::Rows> rows, conn_.Query(kSelect, params));
    while (true) {
      AIR_ASSIGN_OR_RETURN(bool row, rows->Next());
      if (!row) break;
      versions[std::string(rows->Bytes(0))] = rows->Int(1);
    }
  }
  return absl::OkStatus();
}

// Writes in statements of a few shapes: chunks of kVersionChunk rows, then
// the rest in power-of-two chunks. (An upsert may not name one row twice,
// so a chunk cannot be padded with repeats.)
absl::Status SqlWriteTransaction::SetUpstreamVersions(
    UpstreamKind kind, const std::vector<std::pair<std::string, int64_t>>& versions) {
  static const std::vector<std::string> kInserts = [] {
    std::vector<std::string> inserts;  // [k]: 2^k rows
    for (int rows = 1; rows <= kVersionChunk; rows *= 2) {
      std::string sql = "INSERT INTO upstream_versions (kind, id, version) VALUES ";
      for (int i = 0; i < rows; ++i) {
        absl::StrAppend(&sql, i ? ", " : "", "($1, $", 2 * i + 2, ", $", 2 * i + 3, ")");
      }
      inserts.push_back(sql + " ON CONFLICT (kind, id) DO UPDATE SET version = excluded.version");
    }
    return inserts;
  }();
  size_t start = 0;
  while (start < versions.size()) {
    size_t shape = kInserts.size() - 1;
    while ((size_t{1} << shape) > versions.size() - start) --shape;
    const size_t rows = size_t{1} << shape;
    Params params;
    params.Int(static_cast<int64_t>(kind));
    for (size_t i = start; i < start + rows; ++i) {
      params.Text(versions[i].first).Int(versions[i].second);
    }
    AIR_RETURN_IF_ERROR(conn_.Execute(kInserts[shape], params).status());
    start += rows;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SqlWriteTransaction::GetSyncCursor(absl::string_view name) {
  AIR_ASSIGN_OR_RETURN(
      std::unique_ptr<sql::Rows> rows,
      conn_.Query("SELECT cursor FROM sync_cursors WHERE name = $1", Params().Text(name)));
  AIR_ASSIGN_OR_RETURN(bool row, rows->Next());
  return row ? std::string(rows->Bytes(0)) : std::string();
}

absl::Status SqlWriteTransaction::SetSyncCursor(absl::string_view name,
                                                absl::string_view cursor) {
  return conn_
      .Execute("INSERT INTO sync_cursors (name, cursor, update_us) VALUES ($1, $2, $3) "
               "ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, "
               "update_us = excluded.update_us",
               Params().Text(name).Text(cursor).Int(absl::ToUnixMicros(now_)))
      .status();
}

// ---- The decision outbox ----

absl::StatusOr<int64_t> SqlWriteTransaction::EnqueueDecision(const OutboxDecision& d) {
  AIR_ASSIGN_OR_RETURN(
      std::optional<int64_t> position,
      conn_.QueryInt("INSERT INTO decision_outbox (request_id, action_id, outcome, source, "
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
  if (!position.has_value()) {
    return MakeError(absl::StatusCode::kAlreadyExists,
                     absl::StrCat("decision ", d.request_id, " is already in the outbox"),
                     v1::DECISION_ALREADY_QUEUED, {{"action_id", d.action_id}});
  }
  return *position;
}

absl::Status SqlWriteTransaction::MarkDecisionDelivered(int64_t position,
                                                        absl::string_view result) {
  AIR_ASSIGN_OR_RETURN(
      int64_t changed,
      conn_.Execute("UPDATE decision_outbox SET delivered_us = $1, result = $2 "
                    "WHERE position = $3 AND delivered_us IS NULL",
                    Params().Int(absl::ToUnixMicros(now_)).Text(result).Int(position)));
  if (changed > 0) return absl::OkStatus();
  AIR_ASSIGN_OR_RETURN(std::optional<int64_t> exists,
                       conn_.QueryInt("SELECT 1 FROM decision_outbox WHERE position = $1",
                                      Params().Int(position)));
  if (exists.has_value()) return absl::OkStatus();  // delivered before: nothing to do
  return MakeError(absl::StatusCode::kNotFound,
                   absl::StrCat("no decision at outbox position ", position),
                   v1::DECISION_NOT_FOUND);
}

}  // namespace air
