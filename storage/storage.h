// Storage: the stores of one database plus what its backend can do, opened
// by one factory from the --db value. The rest of aird composes these parts
// and never asks which database is in use.
//
// Backends: a SQLite file (the default; one process, always the leader,
// online backup) or a PostgreSQL URI (postgresql://... or postgres://...;
// several replicas share the database, one leads at a time).
#ifndef AIR_STORAGE_STORAGE_H_
#define AIR_STORAGE_STORAGE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "domain/clock.h"
#include "storage/sqlite_backup.h"
#include "storage/stores.h"

namespace air {

struct StorageOptions {
  // A SQLite database file (created if missing), or a PostgreSQL URI.
  std::string database = "air.db";
  // SQLite: fsync every commit (synchronous=FULL) instead of NORMAL.
  bool full_fsync = false;
  // Largest number of write functions committed together.
  int max_batch = 256;
  // The clock for commit times. Not owned; null means the system clock.
  const Clock* clock = nullptr;
  // Tests: run every write batch twice (see GroupCommitOptions).
  bool rerun_every_batch_for_testing = false;
};

// Leadership among processes sharing one database: the leader runs the
// upstream sync, decision delivery and the expiry sweeper.
class LeaderElection {
 public:
  virtual ~LeaderElection() = default;
  virtual bool is_leader() const = 0;
  // Gives up leadership (on_change(false) if leader) and stops. Idempotent.
  virtual void Stop() = 0;
};

// An online backup of the serving database, where the backend has one.
class OnlineBackup {
 public:
  virtual ~OnlineBackup() = default;
  // Copies one consistent snapshot to `dest` (see storage/sqlite_backup.h).
  virtual absl::StatusOr<BackupResult> BackupTo(const std::string& dest) = 0;
  // A path prefix beside the database for temporary copies.
  virtual std::string scratch_prefix() const = 0;
};

// A gauge that only one backend has (database file sizes...), for metrics.
struct StorageGauge {
  std::string name;
  std::string help;
  double value = 0;
};

class Storage {
 public:
  // Every commit's events, from every process sharing the database, once
  // each, in sequence order. May take the events.
  using CommitObserver = std::function<void(std::vector<v1::Event>&)>;
  // The events of this process's own commits only.
  using LocalCommitObserver = std::function<void(const std::vector<v1::Event>&)>;
  // UNAVAILABLE when the database connection is lost, OK when it is back.
  using ConnectionObserver = std::function<void(const absl::Status&)>;

  // Opens (creating and migrating if needed) the database named by
  // options.database. FAILED_PRECONDITION for a database that is not aird's,
  // is corrupt or read-only, or has a newer schema than this binary;
  // UNAVAILABLE when it cannot be reached. Messages never contain a
  // password.
  static absl::StatusOr<std::unique_ptr<Storage>> Open(const StorageOptions& options);

  // Stops the writer (queued writes are committed and answered) and closes.
  virtual ~Storage() = default;

  virtual ActionStore& actions() = 0;
  virtual EventLog& events() = 0;
  virtual AuditTrail& audit() = 0;
  virtual UpstreamState& upstream() = 0;
  virtual DecisionOutbox& outbox() = 0;
  virtual Writer& writer() = 0;

  // Observers run on storage threads and must be quick. Set them before the
  // first write. The local observer runs before the commit observer.
  virtual void SetCommitObserver(CommitObserver observer) = 0;
  virtual void SetLocalCommitObserver(LocalCommitObserver observer) = 0;
  // Never called by a backend whose database cannot be lost (SQLite).
  virtual void SetConnectionObserver(ConnectionObserver observer) = 0;

  // Starts leader election; `on_change` runs on an election thread when
  // this process becomes or stops being the leader. A backend with one
  // process (SQLite) calls on_change(true) at once, from this call, and
  // never on_change(false).
  virtual std::unique_ptr<LeaderElection> StartLeaderElection(
      absl::Duration retry_interval, std::function<void(bool leader)> on_change) = 0;

  // The online backup, or null when the backend has none (PostgreSQL:
  // use pg_dump).
  virtual OnlineBackup* backup() = 0;

  // The backend's own gauges, read at metrics scrape time.
  virtual std::vector<StorageGauge> ReadGauges() = 0;
};

// `database` fit for logs: a PostgreSQL URI without its password.
std::string DescribeDatabase(const std::string& database);

// `aird --backup`: copies the database at `database` to `dest` without
// opening it for serving. FAILED_PRECONDITION for a backend without online
// backups, with what to use instead.
absl::StatusOr<BackupResult> BackupDatabase(const std::string& database,
                                            const std::string& dest);

}  // namespace air

#endif  // AIR_STORAGE_STORAGE_H_
