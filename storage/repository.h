// The repository: durable home of investigations, actions, the event log
// (transactional outbox), the decision audit and idempotency records, and
// the upstream sync state (record versions, cursors, the decision outbox).
//
// Contract for every implementation (SQLite now, PostgreSQL later):
//  * Thread-safe. Reads may run concurrently with each other and with writes.
//  * All changes go through Write/WriteAsync: a function that runs against a
//    WriteTransaction. Either every change it made commits (and only after it
//    is durable is `done` called with OK), or none does. A function that
//    returns an error has its changes rolled back; other functions batched
//    into the same commit are unaffected (group commit).
//  * A write function may run more than once before it commits (when another
//    function in its batch fails, the SQLite backend rolls the batch back and
//    runs the others again). So it must act only through the transaction,
//    and set rather than append to anything it reports to its caller. The
//    last run is the one that commits; a function that returned an error is
//    not run again.
//  * Events appended in a transaction get gap-free, increasing sequences in
//    commit order, and become visible to readers atomically with the change
//    they describe.
//  * Missing rows are NOT_FOUND; storage faults are UNAVAILABLE with a message
//    that names no SQL and no file path.
#ifndef AIR_STORAGE_REPOSITORY_H_
#define AIR_STORAGE_REPOSITORY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
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

// Operator gauges (metrics), read at scrape time, never on a request path.
struct StoreStats {
  // Pending actions by type; types with none are absent.
  std::map<v1::ActionType, int64_t> pending_by_type;
  // Create time of the oldest pending action; unset when none is pending.
  std::optional<absl::Time> oldest_pending_create_time;
  // Bytes in use by the database file and its write-ahead log.
  int64_t database_bytes = 0;
  int64_t wal_bytes = 0;
};

// The latest original (non-duplicate) approval of a target, for the
// duplicate rule. `target_key` comes from DuplicateTargetKey().
struct TargetApproval {
  std::string target_key;
  std::string action_id;
  absl::Time approve_time = absl::InfinitePast();
};

// Changes inside one write. Used only on the thread that runs the write
// function, and only while it runs.
class WriteTransaction {
 public:
  virtual ~WriteTransaction() = default;

  virtual absl::StatusOr<v1::Action> GetAction(absl::string_view id) = 0;
  virtual absl::StatusOr<v1::Investigation> GetInvestigation(
      absl::string_view id) = 0;
  // Whether the record exists. Creates ask this for every new record, and
  // the usual answer, no, then costs no NotFound error (an ErrorInfo payload)
  // and no parse. The defaults use Get*; backends answer from an index.
  virtual absl::StatusOr<bool> HasAction(absl::string_view id);
  virtual absl::StatusOr<bool> HasInvestigation(absl::string_view id);
  // Inserts or replaces by id.
  virtual absl::Status PutAction(const v1::Action& action) = 0;
  virtual absl::Status PutInvestigation(const v1::Investigation& investigation) = 0;
  // Edits the stored investigation `id` in place: `change` edits it, the
  // edited record is kept as PutInvestigation would keep it, and `change`'s
  // result is returned. Every action created or decided updates its
  // investigation's counts this way, so a backend that buffers
  // investigations edits its buffer instead of copying the record out and
  // back in. The default is GetInvestigation + PutInvestigation. `change`
  // must not read or write records through the transaction (the record it
  // edits may live in a map that another read would grow).
  virtual absl::StatusOr<bool> ChangeInvestigation(
      absl::string_view id, absl::FunctionRef<bool(v1::Investigation&)> change);
  // Assigns the next sequence and commit_time, stores the event, and returns
  // the sequence.
  virtual absl::StatusOr<int64_t> AppendEvent(v1::Event event) = 0;
  virtual absl::Status AppendAudit(const AuditRecord& record) = 0;
  // The first result of `request_id`, if it was seen before.
  virtual absl::StatusOr<std::optional<StoredRequest>> FindRequest(
      absl::string_view request_id) = 0;
  virtual absl::Status SaveRequest(absl::string_view request_id,
                                   const StoredRequest& request) = 0;
  // Ids of pending actions whose expire_time is at or before `deadline`,
  // oldest first, at most `limit`.
  virtual absl::StatusOr<std::vector<std::string>> PendingActionsDueBy(
      absl::Time deadline, int limit) = 0;
  // Deletes events committed before `older_than`, and the oldest events
  // beyond `max_events`; never the newest one. Returns how many were deleted.
  virtual absl::StatusOr<int64_t> PruneEvents(absl::Time older_than,
                                              int64_t max_events) = 0;
  // The current time of the repository's clock (one clock for a whole batch).
  virtual absl::Time Now() const = 0;

  // ---- Upstream sync ----
  // The last applied upstream version of a record; empty if none was ever
  // applied.
  virtual absl::StatusOr<std::optional<int64_t>> GetUpstreamVersion(
      UpstreamKind kind, absl::string_view id) = 0;
  // Records the upstream version applied to a record (insert or replace).
  virtual absl::Status SetUpstreamVersion(UpstreamKind kind, absl::string_view id,
                                          int64_t version) = 0;
  // Bulk forms of the two above, for a page of upstream records: a backend
  // can serve a page in a few statements instead of one per record. Adds
  // the version of each id in `ids` that has one to `versions` (ids without
  // one are left out). The defaults call the single-record methods.
  virtual absl::Status GetUpstreamVersions(UpstreamKind kind,
                                           const std::vector<std::string>& ids,
                                           std::map<std::string, int64_t>& versions);
  virtual absl::Status SetUpstreamVersions(
      UpstreamKind kind, const std::vector<std::pair<std::string, int64_t>>& versions);
  // The named sync cursor, or "" if it was never set. Setting it in the same
  // write as the records it covers makes a resumed sync start exactly after
  // the last committed page.
  virtual absl::StatusOr<std::string> GetSyncCursor(absl::string_view name) = 0;
  virtual absl::Status SetSyncCursor(absl::string_view name,
                                     absl::string_view cursor) = 0;

  // ---- Decision outbox ----
  // Appends an undelivered decision and returns its position (the field in
  // `decision` is ignored; enqueue_time is the transaction time).
  // ALREADY_EXISTS if its request_id is already in the outbox.
  virtual absl::StatusOr<int64_t> EnqueueDecision(const OutboxDecision& decision) = 0;
  // Marks a decision delivered, with a short result for operators
  // ("acknowledged", or why the upstream refused it). NOT_FOUND for an
  // unknown position; marking a delivered decision again changes nothing.
  virtual absl::Status MarkDecisionDelivered(int64_t position,
                                             absl::string_view result) = 0;

  // ---- Duplicate rule ----
  // The latest original approval recorded for `target_key`, if any.
  virtual absl::StatusOr<std::optional<TargetApproval>> FindTargetApproval(
      absl::string_view target_key) = 0;
  // Records an original approval, replacing the previous one for its key.
  virtual absl::Status RecordTargetApproval(const TargetApproval& approval) = 0;
};

class Repository {
 public:
  using WriteFn = std::function<absl::Status(WriteTransaction&)>;
  using DoneFn = std::function<void(absl::Status)>;
  // Receives a commit's events, and may move them out: nothing reads them
  // after it returns (bulk ingest publishes tens of thousands a second, and
  // a copy of each would be pure overhead).
  using CommitObserver = std::function<void(std::vector<v1::Event>&)>;

  virtual ~Repository() = default;

  // Queues `fn` to run in a write transaction; `done` runs once the outcome
  // is durable (or rolled back), on a repository thread. `done` must not
  // block or call Write synchronously.
  virtual void WriteAsync(WriteFn fn, DoneFn done) = 0;

  // Blocking form of WriteAsync.
  absl::Status Write(WriteFn fn);

  virtual absl::StatusOr<v1::Action> GetAction(absl::string_view id) = 0;
  virtual absl::StatusOr<v1::Investigation> GetInvestigation(
      absl::string_view id) = 0;
  virtual absl::StatusOr<ActionPage> ListActions(const ActionQuery& query) = 0;
  virtual absl::StatusOr<InvestigationPage> ListInvestigations(
      const InvestigationQuery& query) = 0;
  // The decision audit of one action, oldest first.
  virtual absl::StatusOr<std::vector<AuditRecord>> ListAudit(
      absl::string_view action_id) = 0;

  // Events with sequence > after_sequence, ascending, at most `limit`.
  virtual absl::StatusOr<std::vector<v1::Event>> ReadEvents(
      int64_t after_sequence, int limit) = 0;
  virtual absl::StatusOr<EventLogBounds> GetEventLogBounds() = 0;
  // Pending actions matching `filter` and the head they reflect, read in one
  // consistent snapshot. At most `limit` actions.
  virtual absl::StatusOr<PendingSnapshot> SnapshotPending(
      const ActionFilter& filter, int limit) = 0;

  // Undelivered decisions, lowest position first, at most `limit`.
  virtual absl::StatusOr<std::vector<OutboxDecision>> ReadDecisionOutbox(int limit) = 0;
  virtual absl::StatusOr<DecisionOutboxStats> GetDecisionOutboxStats() = 0;
  // The named sync cursor as last committed, or "".
  virtual absl::StatusOr<std::string> GetSyncCursor(absl::string_view name) = 0;

  // Gauges for operators (pending backlog, database size). Reads an index,
  // not the table; meant for a metrics scrape, not for request paths.
  virtual absl::StatusOr<StoreStats> GetStoreStats() = 0;

  // Called after every commit with the events it made visible, in commit
  // order, on one repository thread, before that commit's done callbacks.
  // Set before the first write; must be quick.
  virtual void SetCommitObserver(CommitObserver observer) = 0;
};

}  // namespace air

#endif  // AIR_STORAGE_REPOSITORY_H_
