// The read side of every store, written once over sql::Connection, and the
// pool of read connections they share. Storage-internal: backends create
// these in their Open (sqlite_storage.cc, postgres_storage.cc).
#ifndef AIR_STORAGE_SQL_STORES_H_
#define AIR_STORAGE_SQL_STORES_H_

#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "storage/sql.h"
#include "storage/group_commit.h"
#include "storage/sql_transaction.h"
#include "storage/storage.h"
#include "storage/stores.h"

namespace air {

// One read connection, as the reader pool uses it.
class ReadSession {
 public:
  virtual ~ReadSession() = default;
  virtual sql::Connection& connection() = 0;
  // Makes the connection usable again if it was lost (a no-op otherwise).
  virtual absl::Status Ready() = 0;
  // Starts a read transaction: the reads until EndSnapshot see one commit.
  virtual absl::Status BeginSnapshot() = 0;
  virtual void EndSnapshot() = 0;
};

// A fixed set of read connections; Lease blocks while all are in use.
class ReaderPool {
 public:
  explicit ReaderPool(std::vector<std::unique_ptr<ReadSession>> sessions);

  // A leased session, returned to the pool on destruction.
  class Lease {
   public:
    Lease(ReaderPool* pool, std::unique_ptr<ReadSession> session)
        : pool_(pool), session_(std::move(session)) {}
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    sql::Connection& connection() { return session_->connection(); }
    ReadSession& session() { return *session_; }

   private:
    ReaderPool* pool_;
    std::unique_ptr<ReadSession> session_;
  };

  // A ready session (UNAVAILABLE if a lost connection cannot be restored).
  absl::StatusOr<Lease> Acquire();

 private:
  void Return(std::unique_ptr<ReadSession> session);

  absl::Mutex mu_;
  std::vector<std::unique_ptr<ReadSession>> idle_ ABSL_GUARDED_BY(mu_);
};

// Every read-side store over one pool.
class SqlStores final : public ActionStore,
                        public EventLog,
                        public AuditTrail,
                        public UpstreamState,
                        public DecisionOutbox {
 public:
  SqlStores(ReaderPool& readers, const SqlDialect& dialect)
      : readers_(readers), dialect_(dialect) {}

  // ActionStore
  absl::StatusOr<v1::Action> GetAction(absl::string_view id) override;
  absl::StatusOr<v1::Investigation> GetInvestigation(absl::string_view id) override;
  absl::StatusOr<ActionPage> ListActions(const ActionQuery& query) override;
  absl::StatusOr<InvestigationPage> ListInvestigations(const InvestigationQuery& query) override;
  absl::StatusOr<PendingSnapshot> SnapshotPending(const ActionFilter& filter,
                                                  int limit) override;
  absl::StatusOr<PendingStats> GetPendingStats() override;
  // EventLog
  absl::StatusOr<std::vector<v1::Event>> ReadEvents(int64_t after_sequence, int limit) override;
  absl::StatusOr<EventLogBounds> GetEventLogBounds() override;
  // AuditTrail
  absl::StatusOr<std::vector<AuditRecord>> ListAudit(absl::string_view action_id) override;
  // UpstreamState
  absl::StatusOr<std::string> GetSyncCursor(absl::string_view name) override;
  // DecisionOutbox
  absl::StatusOr<std::vector<OutboxDecision>> ReadDecisionOutbox(int limit) override;
  absl::StatusOr<DecisionOutboxStats> GetDecisionOutboxStats() override;

 private:
  ReaderPool& readers_;
  const SqlDialect& dialect_;
};

// What every SQL backend's Storage shares: the stores over a reader pool,
// the group committer over a write session, and the commit observers.
class SqlStorage : public Storage {
 public:
  ActionStore& actions() override { return *stores_; }
  EventLog& events() override { return *stores_; }
  AuditTrail& audit() override { return *stores_; }
  UpstreamState& upstream() override { return *stores_; }
  DecisionOutbox& outbox() override { return *stores_; }
  Writer& writer() override { return *writer_; }
  void SetCommitObserver(CommitObserver observer) override;
  void SetLocalCommitObserver(LocalCommitObserver observer) override;

 protected:
  // Builds the stores over `readers` and the writer over `session`.
  void Assemble(std::vector<std::unique_ptr<ReadSession>> readers,
                std::unique_ptr<WriteSession> session, const SqlDialect& dialect,
                GroupCommitOptions options);
  // Commits what is queued, answers its callers and stops the writer's
  // threads. Its connection closes last, after the readers' (SQLite folds
  // the log into the database when the last connection, a writer, closes).
  void StopWriter() {
    if (writer_ != nullptr) writer_->Stop();
  }
  // On the completer thread, with each commit's events: the local
  // observer, then Publish.
  virtual void Publish(std::vector<v1::Event>& events);
  CommitObserver commit_observer();
  ReaderPool& readers() { return *readers_; }
  SqlStores& stores() { return *stores_; }

 private:
  // Declared first: destroyed last.
  std::unique_ptr<GroupCommitter> writer_;
  std::unique_ptr<ReaderPool> readers_;
  std::unique_ptr<SqlStores> stores_;
  absl::Mutex observers_mu_;
  CommitObserver observer_ ABSL_GUARDED_BY(observers_mu_);
  LocalCommitObserver local_observer_ ABSL_GUARDED_BY(observers_mu_);
};

// Events with sequence > after, ascending, at most `limit`, read on `conn`.
absl::StatusOr<std::vector<v1::Event>> ReadEventsOn(sql::Connection& conn, int64_t after,
                                                    int limit);

}  // namespace air

#endif  // AIR_STORAGE_SQL_STORES_H_
