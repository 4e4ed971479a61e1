// The group committer: the one write engine of every backend.
//
// Callers queue write functions (Writer::WriteAsync). One writer thread
// takes up to max_batch of them, opens one transaction and runs them back to
// back (optimistically, with no savepoint between them: a savepoint makes
// the database keep undo copies, and almost every function succeeds). If one
// fails, the whole transaction rolls back, that function keeps its error,
// and the others run again, each in its own savepoint this time. One commit
// then makes the batch durable. A completer thread hands the committed
// events to `on_commit` and answers the callers, in commit order, while the
// writer goes on with the next batch. If the transaction itself fails,
// every function in it fails: nothing is acknowledged that was not
// committed.
//
// Backends supply a WriteSession: how to begin, savepoint, commit and roll
// back on their connection, and where event sequences come from.
// Storage-internal.
#ifndef AIR_STORAGE_GROUP_COMMIT_H_
#define AIR_STORAGE_GROUP_COMMIT_H_

#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "domain/clock.h"
#include "storage/sql.h"
#include "storage/sql_transaction.h"
#include "storage/stores.h"

namespace air {

// The writer connection, as the group committer drives it. Used only on the
// writer thread. Savepoints are standard SQL, run through connection().
class WriteSession {
 public:
  virtual ~WriteSession() = default;
  virtual sql::Connection& connection() = 0;
  // Opens the batch's transaction; returns the sequence its first event
  // gets. Takes whatever lock makes writers serial.
  virtual absl::StatusOr<int64_t> Begin() = 0;
  // Makes the batch durable; `next_sequence` follows its last event.
  virtual absl::Status Commit(int64_t next_sequence) = 0;
  // Ends the transaction without its changes (best effort).
  virtual void Rollback() = 0;
  // False once the database ended the transaction on its own (disk full, a
  // lost connection): everything the batch did is gone.
  virtual bool InTransaction() = 0;
  // UNAVAILABLE, saying why the transaction was lost.
  virtual absl::Status LostTransaction() = 0;
};

struct GroupCommitOptions {
  // Largest number of write functions committed together.
  int max_batch = 256;
  // The clock for commit times. Not owned; null means the system clock.
  const Clock* clock = nullptr;
  // Called on the completer thread with each committed batch's events, in
  // commit order, before its callers are answered. May take the events.
  std::function<void(std::vector<v1::Event>&)> on_commit;
  // Tests: every batch runs twice, as if a function in it had failed
  // (first optimistically, then each function again in its savepoint), so
  // a write function that is not safe to re-run shows in any test.
  bool rerun_every_batch_for_testing = false;
};

class GroupCommitter final : public Writer {
 public:
  GroupCommitter(std::unique_ptr<WriteSession> session, const SqlDialect& dialect,
                 GroupCommitOptions options);
  // Stops (see Stop).
  ~GroupCommitter() override;

  using Writer::WriteAsync;
  void WriteAsync(WriteFn fn, DoneFn done) override;

  // Refuses new writes (UNAVAILABLE, STORAGE_CLOSED), commits what is
  // queued, answers every caller and joins the threads. Idempotent.
  void Stop();

 private:
  struct Job {
    WriteFn fn;
    DoneFn done;
  };
  // What is left of a batch once its outcome is durable (or rolled back).
  struct Completion {
    std::vector<v1::Event> events;
    std::vector<DoneFn> dones;
    std::vector<absl::Status> results;
  };

  void WriterLoop();
  void CompleterLoop();
  void RunBatch(std::vector<Job>& batch);
  // Runs the functions of `batch` not in `skip`, in order, inside the open
  // transaction. With `isolate`, each runs in a savepoint and a failure
  // undoes only its own changes; without, the first failure stops the pass
  // and its index goes to *first_failure (the caller rolls back). Returns an
  // error that ends the whole batch.
  absl::Status RunFunctions(std::vector<Job>& batch, SqlWriteTransaction& tx,
                            const std::vector<bool>& skip, bool isolate,
                            std::vector<absl::Status>& results, int* first_failure);

  const std::unique_ptr<WriteSession> session_;  // writer thread only
  const SqlDialect& dialect_;
  const GroupCommitOptions options_;
  const Clock* const clock_;

  absl::Mutex queue_mu_;
  std::deque<Job> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;

  absl::Mutex completion_mu_;
  std::deque<Completion> completions_ ABSL_GUARDED_BY(completion_mu_);
  bool writer_done_ ABSL_GUARDED_BY(completion_mu_) = false;

  std::thread writer_thread_;
  std::thread completer_thread_;
};

}  // namespace air

#endif  // AIR_STORAGE_GROUP_COMMIT_H_
