// The PostgreSQL implementation of Repository: several aird replicas share
// one database.
//
// Writes: each replica has one writer thread and connection that commits
// queued writes in batches (group commit), each write function inside its
// own SAVEPOINT, as the SQLite repository does. Every batch first locks the
// single event_log row, so write transactions are serial across all
// replicas: decisions are first-writer-wins everywhere, and event sequences
// are gap-free and commit in sequence order (the argument is in the .cc).
//
// Events from other replicas: a listener connection LISTENs on the event
// channel; each commit NOTIFYs it. The repository hands the commit observer
// every event of every replica exactly once, in sequence order with no gap,
// reading from the event log what it did not write itself. A slow poll
// (`fallback_poll`) covers a lost notification.
//
// Faults: a lost connection fails the calls that used it with UNAVAILABLE
// and is re-established on next use (the listener retries with backoff).
// The connection string is never logged with its password.
#ifndef AIR_STORAGE_POSTGRES_REPOSITORY_H_
#define AIR_STORAGE_POSTGRES_REPOSITORY_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "domain/clock.h"
#include "storage/repository.h"

namespace air {

struct PostgresOptions {
  // libpq connection string, e.g. "postgresql://aird@db:5432/aird" (or the
  // key=value form). Required.
  std::string conninfo;
  // Number of read connections.
  int reader_connections = 4;
  // Largest number of write functions committed together.
  int max_batch = 256;
  // How often the listener reads the event log without a notification
  // (a safety net; notifications normally wake it at once).
  absl::Duration fallback_poll = absl::Seconds(2);
  // The clock for commit times. Not owned; defaults to the system clock.
  const Clock* clock = nullptr;
};

// True when `db` names a PostgreSQL database (postgresql:// or postgres://)
// rather than a SQLite file.
bool IsPostgresDatabase(absl::string_view db);
// `conninfo` without its password, for logs.
std::string RedactPostgresConninfo(absl::string_view conninfo);

class PostgresRepository final : public Repository {
 public:
  // Connects and migrates. UNAVAILABLE when the server cannot be reached;
  // FAILED_PRECONDITION for a schema newer than this binary knows. The
  // message never contains the password.
  static absl::StatusOr<std::unique_ptr<PostgresRepository>> Open(
      const PostgresOptions& options);

  ~PostgresRepository() override;

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

  // The commit observer receives every replica's events (the event hub
  // needs them all). This one receives only the events this replica
  // committed, before the commit observer, on the writer thread: for what
  // must happen once per decision across the deployment (metrics counters,
  // the decision log). Set before the first write; must be quick.
  void SetLocalCommitObserver(CommitObserver observer);

  // Told when the replica loses its connection to PostgreSQL (UNAVAILABLE)
  // and when it has it back (OK), on the listener thread. aird ends its
  // watch streams on loss, so that clients resume on another replica. Set
  // before the first write; must be quick.
  using ConnectionObserver = std::function<void(const absl::Status&)>;
  void SetConnectionObserver(ConnectionObserver observer);

  // The schema version this binary writes.
  static int SchemaVersion();

  class Impl;

 private:
  explicit PostgresRepository(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Leader election among replicas: a session-level advisory lock held on a
// dedicated connection. Whoever holds it is the leader; when its process
// dies (or its connection drops) PostgreSQL releases the lock and another
// replica's next attempt takes it.
//
// Thread-safe. `on_change(true)` runs when this replica becomes leader,
// `on_change(false)` when it stops being one (connection lost, or Stop);
// both on the election thread, never concurrently.
class PostgresLeaderElection {
 public:
  struct Options {
    std::string conninfo;
    // Which lock: replicas of one deployment use the same key.
    int64_t lock_key = 0x6169722d6c656164;  // "air-lead"
    // How often a follower tries to take the lock, and a leader checks that
    // its connection still holds it.
    absl::Duration retry_interval = absl::Seconds(1);
  };

  // Starts the election thread. Does not wait for the first attempt.
  static std::unique_ptr<PostgresLeaderElection> Start(
      const Options& options, std::function<void(bool leader)> on_change);
  ~PostgresLeaderElection();

  bool is_leader() const;
  // Gives up leadership (on_change(false) if leader) and stops. Idempotent.
  void Stop();

  class Impl;

 private:
  explicit PostgresLeaderElection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace air

#endif  // AIR_STORAGE_POSTGRES_REPOSITORY_H_
