#include "service/housekeeping.h"

#include "domain/status_macros.h"
#include "service/action_commands.h"

namespace air {

absl::StatusOr<int> ExpirySweeper::RunOnce() {
  int total = 0;
  while (true) {
    int expired = 0;
    AIR_RETURN_IF_ERROR(writer_.Write([&](WriteTransaction& tx) -> absl::Status {
      expired = 0;
      AIR_ASSIGN_OR_RETURN(std::vector<std::string> due,
                           tx.actions().PendingActionsDueBy(tx.Now(), batch_size_));
      for (const std::string& id : due) {
        AIR_RETURN_IF_ERROR(ExpireActionTx(tx, id));
        ++expired;
      }
      return absl::OkStatus();
    }));
    total += expired;
    if (expired < batch_size_) return total;
  }
}

absl::StatusOr<int64_t> EventRetention::RunOnce() {
  int64_t deleted = 0;
  AIR_RETURN_IF_ERROR(writer_.Write([&](WriteTransaction& tx) -> absl::Status {
    AIR_ASSIGN_OR_RETURN(deleted, tx.events().PruneEvents(tx.Now() - window_, max_events_));
    return absl::OkStatus();
  }));
  return deleted;
}

PeriodicTask::PeriodicTask(absl::Duration interval, std::function<void()> task) {
  thread_ = std::thread([this, interval, task = std::move(task)] {
    absl::MutexLock lock(&mu_);
    while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), interval)) {
      mu_.Unlock();
      task();
      mu_.Lock();
    }
  });
}

PeriodicTask::~PeriodicTask() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

}  // namespace air
