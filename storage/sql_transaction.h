// The WriteTransaction of every backend, written once over sql::Connection.
// The group committer (group_commit.h) creates one per batch on its writer
// thread and hands it to each write function in turn. Storage-internal.
#ifndef AIR_STORAGE_SQL_TRANSACTION_H_
#define AIR_STORAGE_SQL_TRANSACTION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "storage/sql.h"
#include "storage/stores.h"

namespace air {

// The few statements whose SQL differs between backends, because their
// event-log bookkeeping is kept differently.
struct SqlDialect {
  // One row: (first retained sequence, newest sequence or 0).
  const char* event_log_bounds;
  // Raises the first retained sequence to $1; never lowers it.
  const char* raise_first_retained;
};

// Reads the event log's bounds with `dialect` on `conn`.
absl::StatusOr<EventLogBounds> ReadEventLogBounds(sql::Connection& conn,
                                                  const SqlDialect& dialect);

class SqlWriteTransaction final : public WriteTransaction,
                                  private ActionWrites,
                                  private EventWrites,
                                  private AuditWrites,
                                  private RequestWrites,
                                  private UpstreamWrites,
                                  private OutboxWrites {
 public:
  // `next_sequence` is the sequence the batch's first event gets.
  SqlWriteTransaction(sql::Connection& conn, const SqlDialect& dialect,
                      int64_t next_sequence, absl::Time now)
      : conn_(conn), dialect_(dialect), next_sequence_(next_sequence), now_(now) {}

  ActionWrites& actions() override { return *this; }
  EventWrites& events() override { return *this; }
  AuditWrites& audit() override { return *this; }
  RequestWrites& requests() override { return *this; }
  UpstreamWrites& upstream() override { return *this; }
  OutboxWrites& outbox() override { return *this; }
  absl::Time Now() const override { return now_; }

  // ---- For the group committer ----

  // A point to roll the in-memory state back to when a write function
  // fails (the database rolls back to its savepoint alongside).
  struct Mark {
    int64_t next_sequence;
    size_t events;
    size_t undo;
  };
  Mark mark();
  void RollBackTo(const Mark& mark);
  // Writes the investigations the batch changed; runs once, before commit.
  absl::Status Flush();
  int64_t next_sequence() const { return next_sequence_; }
  // The events appended so far, in sequence order.
  std::vector<v1::Event>& appended_events() { return events_; }

 private:
  struct CachedInvestigation {
    v1::Investigation value;
    bool dirty = false;  // changed since read: Flush() writes it
    // The mark generation in which undo_ last got a copy of this entry.
    uint64_t saved_in = 0;
  };
  // What an entry was before a change, to restore on rollback (nullopt: it
  // was not cached).
  struct Undo {
    std::string id;
    std::optional<CachedInvestigation> before;
  };

  // ActionWrites
  absl::StatusOr<v1::Action> GetAction(absl::string_view id) override;
  absl::StatusOr<v1::Investigation> GetInvestigation(absl::string_view id) override;
  absl::StatusOr<bool> HasAction(absl::string_view id) override;
  absl::StatusOr<bool> HasInvestigation(absl::string_view id) override;
  absl::Status PutAction(const v1::Action& action) override;
  absl::Status PutInvestigation(const v1::Investigation& investigation) override;
  absl::StatusOr<bool> ChangeInvestigation(
      absl::string_view id, absl::FunctionRef<bool(v1::Investigation&)> change) override;
  absl::StatusOr<std::vector<std::string>> PendingActionsDueBy(absl::Time deadline,
                                                               int limit) override;
  absl::StatusOr<std::optional<TargetApproval>> FindTargetApproval(
      absl::string_view target_key) override;
  absl::Status RecordTargetApproval(const TargetApproval& approval) override;
  // EventWrites
  absl::StatusOr<int64_t> AppendEvent(v1::Event event) override;
  absl::StatusOr<int64_t> PruneEvents(absl::Time older_than, int64_t max_events) override;
  // AuditWrites
  absl::Status AppendAudit(const AuditRecord& record) override;
  // RequestWrites
  absl::StatusOr<std::optional<StoredRequest>> FindRequest(
      absl::string_view request_id) override;
  absl::Status SaveRequest(absl::string_view request_id, const StoredRequest& request) override;
  // UpstreamWrites
  absl::StatusOr<std::optional<int64_t>> GetUpstreamVersion(UpstreamKind kind,
                                                            absl::string_view id) override;
  absl::Status SetUpstreamVersion(UpstreamKind kind, absl::string_view id,
                                  int64_t version) override;
  absl::Status GetUpstreamVersions(UpstreamKind kind, const std::vector<std::string>& ids,
                                   std::map<std::string, int64_t>& versions) override;
  absl::Status SetUpstreamVersions(
      UpstreamKind kind, const std::vector<std::pair<std::string, int64_t>>& versions) override;
  absl::StatusOr<std::string> GetSyncCursor(absl::string_view name) override;
  absl::Status SetSyncCursor(absl::string_view name, absl::string_view cursor) override;
  // OutboxWrites
  absl::StatusOr<int64_t> EnqueueDecision(const OutboxDecision& decision) override;
  absl::Status MarkDecisionDelivered(int64_t position, absl::string_view result) override;

  // The cached copy of investigation `id`, read on first use.
  absl::StatusOr<CachedInvestigation*> Cached(absl::string_view id);
  // Keeps what `cached` is now for a rollback to the latest mark, unless it
  // was kept since that mark already (the first copy is the one a rollback
  // restores).
  void SaveForUndo(absl::string_view id, CachedInvestigation& cached);
  absl::StatusOr<bool> RowExists(absl::string_view sql, absl::string_view id);
  absl::Status WriteInvestigation(const v1::Investigation& investigation);

  sql::Connection& conn_;
  const SqlDialect& dialect_;
  int64_t next_sequence_;
  const absl::Time now_;
  std::vector<v1::Event> events_;
  // Investigations are read once per batch and written back once, by
  // Flush(): a batch of decisions on one investigation's actions (the common
  // case in an incident) updates its counts in memory instead of rewriting
  // the row and its indexes for every decision. Nothing else in a write
  // reads the investigations table, and events carry copies made when
  // appended.
  absl::flat_hash_map<std::string, CachedInvestigation> investigations_;
  std::vector<Undo> undo_;
  uint64_t generation_ = 1;  // bumped by every mark and rollback
};

}  // namespace air

#endif  // AIR_STORAGE_SQL_TRANSACTION_H_
