// A sleep that another thread can cut short (Wake) or end for good (Stop),
// for background loops that must wait between attempts but never spin and
// never delay shutdown. Thread-safe.
#ifndef AIR_SERVICE_WAKEABLE_SLEEP_H_
#define AIR_SERVICE_WAKEABLE_SLEEP_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace air {

class WakeableSleep {
 public:
  // Sleeps for `timeout`, or until Wake() or Stop(). Returns false once
  // stopped. A Wake() that arrived while nobody slept ends the next sleep at
  // once, so a wake-up is never lost.
  bool Sleep(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(
                             +[](WakeableSleep* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
                               return self->woken_ || self->stopped_;
                             },
                             this),
                         timeout);
    woken_ = false;
    return !stopped_;
  }
  void Wake() {
    absl::MutexLock lock(&mu_);
    woken_ = true;
  }
  void Stop() {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
  }
  bool stopped() const {
    absl::MutexLock lock(&mu_);
    return stopped_;
  }

 private:
  mutable absl::Mutex mu_;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace air

#endif  // AIR_SERVICE_WAKEABLE_SLEEP_H_
