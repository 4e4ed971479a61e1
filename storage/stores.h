// The stores: what aird keeps, split by area, each behind a small
// interface. Reads go to a store; every change goes through one write
// function that the group committer (Writer) runs in a transaction, where
// the same areas appear as WriteTransaction's parts.
//
// Contract shared by every implementation (storage/sql_stores.cc, over
// SQLite or PostgreSQL):
//  * Thread-safe. Reads may run concurrently with each other and with
//    writes; a read sees only committed data.
//  * Missing rows are NOT_FOUND (ACTION_NOT_FOUND, INVESTIGATION_NOT_FOUND);
//    storage faults are UNAVAILABLE with a message that names no SQL and no
//    file path; an unreadable stored record is DATA_LOSS.
//  * Nothing here says which database is in use.
#ifndef AIR_STORAGE_STORES_H_
#define AIR_STORAGE_STORES_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "air/v1/action.pb.h"
#include "air/v1/event.pb.h"
#include "air/v1/investigation.pb.h"
#include "domain/filter.h"
#include "domain/page_token.h"


namespace air {

struct ActionQuery {
  ActionFilter filter;
  int page_size = 50;
  std::optional<PageCursor> after;  // keyset position; none = first page
  bool descending = false;          // by create_time, then id
};

struct ActionPage {
  std::vector<v1::Action> actions;
  std::optional<PageCursor> next;  // set when another page exists
};

enum class InvestigationOrder { kCreateTime, kUpdateTime };

struct InvestigationQuery {
  InvestigationFilter filter;
  int page_size = 50;
  std::optional<PageCursor> after;
  InvestigationOrder order_by = InvestigationOrder::kCreateTime;
  bool descending = true;
};

struct InvestigationPage {
  std::vector<v1::Investigation> investigations;
  std::optional<PageCursor> next;
};

// The retained part of the event log: sequences first_retained..head are
// stored, so a reader whose cursor is >= first_retained - 1 has lost nothing.
struct EventLogBounds {
  int64_t first_retained = 1;
  int64_t head = 0;  // 0 when no event was ever written
};

// A consistent view of pending actions and the log position it reflects.
struct PendingSnapshot {
  int64_t sequence = 0;
  std::vector<v1::Action> actions;
};

// One row of the append-only decision audit.
struct AuditRecord {
  std::string action_id;
  std::string investigation_id;
  v1::Action::State from_state = v1::Action::STATE_UNSPECIFIED;
  v1::Action::State to_state = v1::Action::STATE_UNSPECIFIED;
  v1::Decision decision;
  std::string request_id;
};

// What a request_id produced the first time, for idempotent replay.
struct StoredRequest {
  std::string fingerprint;  // what the request asked for
  std::string response;     // the serialized first response
};

// Which kind of upstream record a stored upstream version belongs to.
enum class UpstreamKind { kInvestigation = 1, kAction = 2 };

// One decision in the decision outbox: committed locally in the same
// transaction as the decision, then delivered upstream until acknowledged.
struct OutboxDecision {
  // Assigned at enqueue; increases in commit order. Delivery follows it.
  int64_t position = 0;
  // Unique in the outbox; the upstream deduplicates by it.
  std::string request_id;
  std::string action_id;
  // Outcome, source, decider, comment and decide_time.
  v1::Decision decision;
  // For an approval: the earlier action on the same target that this one
  // duplicates (it must not run again), or "".
  std::string duplicate_of;
  // The upstream version of the action the decision was made on.
  int64_t upstream_version = 0;
  // When the decision was enqueued (its commit time).
  absl::Time enqueue_time = absl::InfinitePast();
};

// The undelivered part of the decision outbox.
struct DecisionOutboxStats {
  int64_t backlog = 0;
  // Enqueue time of the oldest undelivered decision; unset when none.
  std::optional<absl::Time> oldest_undelivered;
};

// Pending actions for operator gauges, read at scrape time.
struct PendingStats {
  // Pending actions by type; types with none are absent.
  std::map<v1::ActionType, int64_t> by_type;
  // Create time of the oldest pending action; unset when none is pending.
  std::optional<absl::Time> oldest_create_time;
};

// The latest original (non-duplicate) approval of a target, for the
// duplicate rule. `target_key` comes from DuplicateTargetKey().
struct TargetApproval {
  std::string target_key;
  std::string action_id;
  absl::Time approve_time = absl::InfinitePast();
};

// ---------------------------------------------------------------------------
// Inside a write transaction. Each part is used only on the thread that runs
// the write function, and only while it runs.

// Investigations and actions, and the duplicate rule's record of approved
// targets.
class ActionWrites {
 public:
  virtual ~ActionWrites() = default;
  virtual absl::StatusOr<v1::Action> GetAction(absl::string_view id) = 0;
  virtual absl::StatusOr<v1::Investigation> GetInvestigation(absl::string_view id) = 0;
  // Whether the record exists; creates ask this for every new record, and
  // the usual answer (no) costs no NOT_FOUND payload and no parse.
  virtual absl::StatusOr<bool> HasAction(absl::string_view id) = 0;
  virtual absl::StatusOr<bool> HasInvestigation(absl::string_view id) = 0;
  // Inserts or replaces by id.
  virtual absl::Status PutAction(const v1::Action& action) = 0;
  virtual absl::Status PutInvestigation(const v1::Investigation& investigation) = 0;
  // Edits the stored investigation `id` in place and returns `change`'s
  // result; the edited record is kept as PutInvestigation would keep it.
  // Every action created or decided updates its investigation's counts this
  // way. `change` must not use the transaction.
  virtual absl::StatusOr<bool> ChangeInvestigation(
      absl::string_view id, absl::FunctionRef<bool(v1::Investigation&)> change) = 0;
  // Ids of pending actions whose expire_time is at or before `deadline`,
  // oldest first, at most `limit`.
  virtual absl::StatusOr<std::vector<std::string>> PendingActionsDueBy(absl::Time deadline,
                                                                       int limit) = 0;
  // The latest original approval recorded for `target_key`, if any.
  virtual absl::StatusOr<std::optional<TargetApproval>> FindTargetApproval(
      absl::string_view target_key) = 0;
  // Records an original approval, replacing the previous one for its key.
  virtual absl::Status RecordTargetApproval(const TargetApproval& approval) = 0;
};

// The event log (the transactional outbox behind WatchActions).
class EventWrites {
 public:
  virtual ~EventWrites() = default;
  // Assigns the next sequence and the commit time, stores the event, and
  // returns the sequence. Sequences are gap-free and increase in commit
  // order; the event becomes visible atomically with the changes it
  // describes.
  virtual absl::StatusOr<int64_t> AppendEvent(v1::Event event) = 0;
  // Deletes events committed before `older_than`, and the oldest beyond
  // `max_events`; never the newest one. Returns how many were deleted.
  virtual absl::StatusOr<int64_t> PruneEvents(absl::Time older_than, int64_t max_events) = 0;
};

// The append-only decision audit.
class AuditWrites {
 public:
  virtual ~AuditWrites() = default;
  virtual absl::Status AppendAudit(const AuditRecord& record) = 0;
};

// First results of idempotent requests (request_id).
class RequestWrites {
 public:
  virtual ~RequestWrites() = default;
  // The first result of `request_id`, if it was seen before.
  virtual absl::StatusOr<std::optional<StoredRequest>> FindRequest(
      absl::string_view request_id) = 0;
  // ALREADY_EXISTS if `request_id` is already recorded.
  virtual absl::Status SaveRequest(absl::string_view request_id,
                                   const StoredRequest& request) = 0;
};

// Upstream sync state: the version of each synced record, and cursors.
class UpstreamWrites {
 public:
  virtual ~UpstreamWrites() = default;
  // The last applied upstream version of a record; empty if none.
  virtual absl::StatusOr<std::optional<int64_t>> GetUpstreamVersion(UpstreamKind kind,
                                                                    absl::string_view id) = 0;
  // Records the upstream version applied to a record (insert or replace).
  virtual absl::Status SetUpstreamVersion(UpstreamKind kind, absl::string_view id,
                                          int64_t version) = 0;
  // Bulk forms for a page of records. Adds the version of each id that has
  // one to `versions` (ids without one are left out).
  virtual absl::Status GetUpstreamVersions(UpstreamKind kind,
                                           const std::vector<std::string>& ids,
                                           std::map<std::string, int64_t>& versions) = 0;
  virtual absl::Status SetUpstreamVersions(
      UpstreamKind kind, const std::vector<std::pair<std::string, int64_t>>& versions) = 0;
  // The named cursor, or "" if it was never set. Setting it in the same
  // write as the records it covers makes a resumed sync start exactly after
  // the last committed page.
  virtual absl::StatusOr<std::string> GetSyncCursor(absl::string_view name) = 0;
  virtual absl::Status SetSyncCursor(absl::string_view name, absl::string_view cursor) = 0;
};

// The decision outbox: decisions committed here, then delivered upstream.
class OutboxWrites {
 public:
  virtual ~OutboxWrites() = default;
  // Appends an undelivered decision and returns its position (the field in
  // `decision` is ignored; enqueue_time is the transaction time).
  // ALREADY_EXISTS if its request_id is already in the outbox.
  virtual absl::StatusOr<int64_t> EnqueueDecision(const OutboxDecision& decision) = 0;
  // Marks a decision delivered with a short result for operators. NOT_FOUND
  // for an unknown position; marking it again changes nothing.
  virtual absl::Status MarkDecisionDelivered(int64_t position, absl::string_view result) = 0;
};

// One write transaction, as a write function sees it: a part per area and
// one clock reading for the whole batch.
class WriteTransaction {
 public:
  virtual ~WriteTransaction() = default;
  virtual ActionWrites& actions() = 0;
  virtual EventWrites& events() = 0;
  virtual AuditWrites& audit() = 0;
  virtual RequestWrites& requests() = 0;
  virtual UpstreamWrites& upstream() = 0;
  virtual OutboxWrites& outbox() = 0;
  virtual absl::Time Now() const = 0;
};

// ---------------------------------------------------------------------------
// Reads outside a transaction.

// Investigations and actions.
class ActionStore {
 public:
  virtual ~ActionStore() = default;
  virtual absl::StatusOr<v1::Action> GetAction(absl::string_view id) = 0;
  virtual absl::StatusOr<v1::Investigation> GetInvestigation(absl::string_view id) = 0;
  virtual absl::StatusOr<ActionPage> ListActions(const ActionQuery& query) = 0;
  virtual absl::StatusOr<InvestigationPage> ListInvestigations(
      const InvestigationQuery& query) = 0;
  // Pending actions matching `filter` (at most `limit`) and the event-log
  // head they reflect, read in one consistent snapshot: a watch that starts
  // after `sequence` misses nothing and repeats nothing.
  virtual absl::StatusOr<PendingSnapshot> SnapshotPending(const ActionFilter& filter,
                                                          int limit) = 0;
  // Counts for operator gauges; reads an index, meant for a metrics scrape.
  virtual absl::StatusOr<PendingStats> GetPendingStats() = 0;
};

// The event log.
class EventLog {
 public:
  virtual ~EventLog() = default;
  // Events with sequence > after_sequence, ascending, at most `limit`.
  virtual absl::StatusOr<std::vector<v1::Event>> ReadEvents(int64_t after_sequence,
                                                            int limit) = 0;
  virtual absl::StatusOr<EventLogBounds> GetEventLogBounds() = 0;
};

// The decision audit.
class AuditTrail {
 public:
  virtual ~AuditTrail() = default;
  // The audit of one action, oldest first; empty if there is none.
  virtual absl::StatusOr<std::vector<AuditRecord>> ListAudit(absl::string_view action_id) = 0;
};

// Upstream sync state.
class UpstreamState {
 public:
  virtual ~UpstreamState() = default;
  // The named sync cursor as last committed, or "".
  virtual absl::StatusOr<std::string> GetSyncCursor(absl::string_view name) = 0;
};

// The decision outbox.
class DecisionOutbox {
 public:
  virtual ~DecisionOutbox() = default;
  // Undelivered decisions, lowest position first, at most `limit`.
  virtual absl::StatusOr<std::vector<OutboxDecision>> ReadDecisionOutbox(int limit) = 0;
  virtual absl::StatusOr<DecisionOutboxStats> GetDecisionOutboxStats() = 0;
};

// ---------------------------------------------------------------------------
// Writes.

// Runs write functions in transactions, many to one commit (group commit).
//
//  * A write function acts only through its WriteTransaction. Either every
//    change it made commits, and only once that is durable does its caller
//    hear OK, or none does. A function that returns an error has its
//    changes rolled back; other functions in the same commit are unaffected.
//  * A function may run more than once before it commits (when another in
//    its batch fails, the batch is rolled back and the rest run again). Its
//    result is what it returns, and only the run that commits is returned
//    to the caller: write functions report through their return value, not
//    through what they capture.
//  * If the whole transaction fails (disk full, database lost), every
//    function in it fails with UNAVAILABLE: nothing is acknowledged that was
//    not committed.
class Writer {
 public:
  using WriteFn = std::function<absl::Status(WriteTransaction&)>;
  using DoneFn = std::function<void(absl::Status)>;
  template <typename T>
  using WriteFnOf = std::function<absl::StatusOr<T>(WriteTransaction&)>;
  template <typename T>
  using DoneFnOf = std::function<void(absl::StatusOr<T>)>;

  virtual ~Writer() = default;

  // Queues `fn`; `done` runs once the outcome is durable (or rolled back), on
  // a storage thread, in commit order. `done` must not block or call Write.
  virtual void WriteAsync(WriteFn fn, DoneFn done) = 0;

  // The same for a function with a result: `done` receives the result of
  // the run that committed.
  template <typename T>
  void WriteAsync(WriteFnOf<T> fn, DoneFnOf<T> done);

  // Blocking forms.
  absl::Status Write(WriteFn fn);
  template <typename T>
  absl::StatusOr<T> Write(WriteFnOf<T> fn);
};

template <typename T>
void Writer::WriteAsync(WriteFnOf<T> fn, DoneFnOf<T> done) {
  // The result slot is assigned, never appended to, on every run; the last
  // run's value is the one that committed.
  auto result = std::make_shared<absl::StatusOr<T>>();
  WriteAsync(
      [fn = std::move(fn), result](WriteTransaction& tx) -> absl::Status {
        *result = fn(tx);
        return result->status();
      },
      [done = std::move(done), result](absl::Status status) {
        if (!status.ok()) {
          done(std::move(status));
        } else {
          done(std::move(*result));
        }
      });
}

template <typename T>
absl::StatusOr<T> Writer::Write(WriteFnOf<T> fn) {
  absl::StatusOr<T> out;
  absl::Status status = Write([&fn, &out](WriteTransaction& tx) -> absl::Status {
    out = fn(tx);
    return out.status();
  });
  if (!status.ok()) return status;
  return out;
}

}  // namespace air

#endif  // AIR_STORAGE_STORES_H_
