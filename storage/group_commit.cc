#include "storage/group_commit.h"

#include <algorithm>
#include <utility>

#include "absl/synchronization/notification.h"
#include "domain/errors.h"
#include "domain/status_macros.h"

namespace air {

absl::Status Writer::Write(WriteFn fn) {
  absl::Notification done;
  absl::Status result;
  WriteAsync(std::move(fn), [&](absl::Status status) {
    result = std::move(status);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

GroupCommitter::GroupCommitter(std::unique_ptr<WriteSession> session,
                               const SqlDialect& dialect, GroupCommitOptions options)
    : session_(std::move(session)),
      dialect_(dialect),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : SystemClock::Get()) {
  completer_thread_ = std::thread([this] { CompleterLoop(); });
  writer_thread_ = std::thread([this] { WriterLoop(); });
}

GroupCommitter::~GroupCommitter() { Stop(); }

void GroupCommitter::WriteAsync(WriteFn fn, DoneFn done) {
  {
    absl::MutexLock lock(&queue_mu_);
    if (!stopping_) {
      queue_.push_back({std::move(fn), std::move(done)});
      return;
    }
  }
  // Never silently drop a write: tell the caller.
  if (done) {
    done(MakeError(absl::StatusCode::kUnavailable, "storage is shutting down",
                   v1::STORAGE_CLOSED));
  }
}

void GroupCommitter::Stop() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  if (writer_thread_.joinable()) writer_thread_.join();
  {
    absl::MutexLock lock(&completion_mu_);
    writer_done_ = true;
  }
  if (completer_thread_.joinable()) completer_thread_.join();
}

void GroupCommitter::WriterLoop() {
  std::vector<Job> batch;
  while (true) {
    {
      absl::MutexLock lock(&queue_mu_);
      queue_mu_.Await(absl::Condition(
          +[](GroupCommitter* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->queue_mu_) {
            return self->stopping_ || !self->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stopping, and everything queued is done
      while (!queue_.empty() && static_cast<int>(batch.size()) < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    RunBatch(batch);
    batch.clear();
  }
}

void GroupCommitter::CompleterLoop() {
  while (true) {
    Completion completion;
    {
      absl::MutexLock lock(&completion_mu_);
      completion_mu_.Await(absl::Condition(
          +[](GroupCommitter* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->completion_mu_) {
            return self->writer_done_ || !self->completions_.empty();
          },
          this));
      if (completions_.empty()) return;  // the writer stopped, all answered
      completion = std::move(completions_.front());
      completions_.pop_front();
    }
    if (!completion.events.empty() && options_.on_commit) options_.on_commit(completion.events);
    for (size_t i = 0; i < completion.dones.size(); ++i) {
      if (completion.dones[i]) completion.dones[i](std::move(completion.results[i]));
    }
  }
}

absl::Status GroupCommitter::RunFunctions(std::vector<Job>& batch, SqlWriteTransaction& tx,
                                          const std::vector<bool>& skip, bool isolate,
                                          std::vector<absl::Status>& results,
                                          int* first_failure) {
  for (size_t i = 0; i < batch.size(); ++i) {
    if (skip[i]) continue;
    const SqlWriteTransaction::Mark mark = tx.mark();
    if (isolate) AIR_RETURN_IF_ERROR(session_->connection().Execute("SAVEPOINT write_fn").status());
    results[i] = batch[i].fn(tx);
    if (!session_->InTransaction()) {
      // The database ended the transaction on its own: everything this
      // batch did so far is gone.
      return results[i].ok() ? session_->LostTransaction() : results[i];
    }
    if (!isolate) {
      if (!results[i].ok()) {
        *first_failure = static_cast<int>(i);
        return absl::OkStatus();
      }
      continue;
    }
    if (results[i].ok()) {
      AIR_RETURN_IF_ERROR(session_->connection().Execute("RELEASE write_fn").status());
    } else {
      tx.RollBackTo(mark);
      AIR_RETURN_IF_ERROR(session_->connection().Execute("ROLLBACK TO write_fn").status());
      AIR_RETURN_IF_ERROR(session_->connection().Execute("RELEASE write_fn").status());
    }
  }
  return absl::OkStatus();
}

void GroupCommitter::RunBatch(std::vector<Job>& batch) {
  std::vector<absl::Status> results(batch.size());
  std::vector<bool> skip(batch.size(), false);
  std::vector<v1::Event> events;
  absl::StatusOr<int64_t> first_sequence = session_->Begin();
  absl::Status batch_error = first_sequence.status();
  if (batch_error.ok()) {
    SqlWriteTransaction tx(session_->connection(), dialect_, *first_sequence, clock_->Now());
    const SqlWriteTransaction::Mark batch_start = tx.mark();
    int failed = -1;
    batch_error = RunFunctions(batch, tx, skip, /*isolate=*/false, results, &failed);
    const bool rerun = batch_error.ok() && (failed >= 0 || options_.rerun_every_batch_for_testing);
    if (rerun) {
      tx.RollBackTo(batch_start);
      session_->Rollback();
      if (failed >= 0) skip[failed] = true;
      if (std::count(skip.begin(), skip.end(), false) > 0) {
        first_sequence = session_->Begin();
        batch_error = first_sequence.status();
        if (batch_error.ok()) {
          SqlWriteTransaction retry(session_->connection(), dialect_, *first_sequence,
                                    tx.Now());
          batch_error = RunFunctions(batch, retry, skip, /*isolate=*/true, results, nullptr);
          if (batch_error.ok()) batch_error = retry.Flush();
          if (batch_error.ok()) batch_error = session_->Commit(retry.next_sequence());
          if (batch_error.ok()) events = std::move(retry.appended_events());
        }
      }
    } else if (batch_error.ok()) {
      batch_error = tx.Flush();
      if (batch_error.ok()) batch_error = session_->Commit(tx.next_sequence());
      if (batch_error.ok()) events = std::move(tx.appended_events());
    }
  }
  if (!batch_error.ok()) {
    session_->Rollback();
    events.clear();
    for (absl::Status& r : results) {
      if (r.ok()) r = batch_error;
    }
  }

  Completion completion;
  completion.events = std::move(events);
  completion.results = std::move(results);
  completion.dones.reserve(batch.size());
  for (Job& job : batch) completion.dones.push_back(std::move(job.done));
  absl::MutexLock lock(&completion_mu_);
  completions_.push_back(std::move(completion));
}

}  // namespace air
