// The SQLite backend (storage/sqlite_storage.cc): the embedded default.
// Its settings, for the storage factory and for tests that tune them.
// Storage-internal: outside storage/, open a database with Storage::Open.
#ifndef AIR_STORAGE_SQLITE_STORAGE_H_
#define AIR_STORAGE_SQLITE_STORAGE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "domain/clock.h"
#include "storage/storage.h"

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
  // hash table, so a larger cache costs every decision (docs/benchmarks.md).
  int writer_cache_mib = 16;
  // Largest number of write functions committed together.
  int max_batch = 256;
  // WAL checkpoints run on a background thread with its own connection once
  // the log holds this many pages, so a commit never waits for the
  // checkpoint's fsyncs. 4,000 pages (16 MiB) rather than SQLite's 1,000:
  // pages that many commits rewrite (index interiors, the newest leaves)
  // are copied once per checkpoint, and the fsyncs come a quarter as often.
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
  // Tests: run every write batch twice (see GroupCommitOptions).
  bool rerun_every_batch_for_testing = false;
};

// Opens (creating if needed) and migrates the database file. See
// Storage::Open for the errors; messages name the file.
absl::StatusOr<std::unique_ptr<Storage>> OpenSqliteStorage(const SqliteOptions& options);

// The schema version this binary writes.
int SqliteSchemaVersion();

}  // namespace air

#endif  // AIR_STORAGE_SQLITE_STORAGE_H_
