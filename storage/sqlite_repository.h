// The SQLite implementation of Repository: the embedded default store.
//
// One writer thread owns the only read-write connection and commits queued
// writes in batches (group commit): each write function runs inside its own
// SAVEPOINT of one transaction, so a failed function rolls back alone while
// the batch shares a single durable commit. A second thread then runs the
// commit observer and the done callbacks of each batch, in commit order,
// while the writer goes on with the next batch. Reads use a small pool of
// read-only connections and never block the writer (WAL mode).
#ifndef AIR_STORAGE_SQLITE_REPOSITORY_H_
#define AIR_STORAGE_SQLITE_REPOSITORY_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "domain/clock.h"
#include "storage/repository.h"

namespace air {

struct SqliteOptions {
  // Database file; created if missing.
  std::string path = "air.db";
  // PRAGMA synchronous: false = NORMAL (durable against process crashes; the
  // WAL default), true = FULL (also fsync on every commit, durable against
  // power loss).
  bool full_fsync = false;
  // How long a statement waits for a lock held by another process.
  absl::Duration busy_timeout = absl::Seconds(5);
  // Number of read-only connections.
  int reader_connections = 4;
  // Page cache of the writer connection, in MiB. Index maintenance on
  // large tables (sync ingest) slows sharply once the hot pages no longer
  // fit (SQLite's default is 2 MiB), but every COMMIT also walks the cache's
  // hash table (libsqlite3's pcache truncate: 19% of the writer's samples
  // at approve c=64 with 64 MiB). A/B on one box (docs/benchmarks.md):
  // 16 MiB vs 64 MiB, approve c=64 +11%, sync ingest of 100,000 actions
  // unchanged, server RSS 119 -> 67 MB.
  int writer_cache_mib = 16;
  // Largest number of write functions committed together.
  int max_batch = 256;
  // WAL checkpoints run on a background thread with its own connection once
  // the log holds this many pages, so a commit never waits for the
  // checkpoint's fsyncs (measured: 15-18 ms every ~250 decisions when the
  // writer checkpointed itself). 4,000 pages (16 MiB) rather than SQLite's
  // 1,000: pages that many commits rewrite (index interiors, the newest
  // leaves) are copied once per checkpoint, and the fsyncs come a quarter
  // as often; approve at c=64 +6% (docs/benchmarks.md, session 7).
  // 0 = let the writer checkpoint as SQLite does by default.
  int checkpoint_pages = 4000;
  // If the log still grows past this many pages (the checkpointer cannot
  // keep up, or a long reader pins old frames), the writer checkpoints
  // itself after its commit, as SQLite would: a bound on the WAL's size.
  int checkpoint_writer_fallback_pages = 16000;
  // Called on the checkpointer thread after each background checkpoint with
  // the log's size and the pages copied so far (tests observe it).
  std::function<void(int log_pages, int copied_pages)> on_checkpoint;
  // Runs PRAGMA quick_check at open, refusing a corrupt file.
  bool check_integrity_at_open = true;
  // The clock for commit times. Not owned; defaults to the system clock.
  const Clock* clock = nullptr;
};

class SqliteRepository final : public Repository {
 public:
  // Opens (creating if needed) and migrates the database. Fails with
  // FAILED_PRECONDITION for a file that is not a database, is corrupt, is
  // read-only, or has a newer schema than this binary knows; UNAVAILABLE for
  // I/O errors or locks. The message is fit for an operator.
  static absl::StatusOr<std::unique_ptr<SqliteRepository>> Open(
      const SqliteOptions& options);

  ~SqliteRepository() override;

  void WriteAsync(WriteFn fn, DoneFn done) override;
  absl::StatusOr<v1::Action> GetAction(absl::string_view id) override;
  absl::StatusOr<v1::Investigation> GetInvestigation(absl::string_view id) override;
  absl::StatusOr<ActionPage> ListActions(const ActionQuery& query) override;
  absl::StatusOr<InvestigationPage> ListInvestigations(
      const InvestigationQuery& query) override;
  absl::StatusOr<std::vector<AuditRecord>> ListAudit(
      absl::string_view action_id) override;
  absl::StatusOr<std::vector<v1::Event>> ReadEvents(int64_t after_sequence,
                                                    int limit) override;
  absl::StatusOr<EventLogBounds> GetEventLogBounds() override;
  absl::StatusOr<PendingSnapshot> SnapshotPending(const ActionFilter& filter,
                                                  int limit) override;
  absl::StatusOr<std::vector<OutboxDecision>> ReadDecisionOutbox(int limit) override;
  absl::StatusOr<DecisionOutboxStats> GetDecisionOutboxStats() override;
  absl::StatusOr<std::string> GetSyncCursor(absl::string_view name) override;
  absl::StatusOr<StoreStats> GetStoreStats() override;
  void SetCommitObserver(CommitObserver observer) override;

  // The schema version this binary writes.
  static int SchemaVersion();

  class Impl;

 private:
  explicit SqliteRepository(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace air

#endif  // AIR_STORAGE_SQLITE_REPOSITORY_H_
