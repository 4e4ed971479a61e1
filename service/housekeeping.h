// Background upkeep: the expiry sweeper (pending actions past their deadline
// become expired, counted as rejected) and event-log retention. Each has a
// RunOnce() that tests call directly with an injected clock; PeriodicTask
// runs them on a timer in the server.
#ifndef AIR_SERVICE_HOUSEKEEPING_H_
#define AIR_SERVICE_HOUSEKEEPING_H_

#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "storage/stores.h"

namespace air {

class ExpirySweeper {
 public:
  explicit ExpirySweeper(Writer& writer, int batch_size = 200)
      : writer_(writer), batch_size_(batch_size) {}

  // Expires every pending action whose deadline has passed, per the
  // repository's clock. Returns how many expired.
  absl::StatusOr<int> RunOnce();

 private:
  Writer& writer_;
  const int batch_size_;
};

class EventRetention {
 public:
  EventRetention(Writer& writer, absl::Duration window, int64_t max_events)
      : writer_(writer), window_(window), max_events_(max_events) {}

  // Deletes events older than the window or beyond the row cap. Returns how
  // many were deleted.
  absl::StatusOr<int64_t> RunOnce();

 private:
  Writer& writer_;
  const absl::Duration window_;
  const int64_t max_events_;
};

// Calls `task` every `interval` on its own thread until destroyed.
class PeriodicTask {
 public:
  PeriodicTask(absl::Duration interval, std::function<void()> task);
  ~PeriodicTask();

 private:
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace air

#endif  // AIR_SERVICE_HOUSEKEEPING_H_
