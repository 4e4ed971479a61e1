#include "storage/repository.h"

#include "absl/synchronization/notification.h"

namespace air {

absl::Status Repository::Write(WriteFn fn) {
  absl::Notification done;
  absl::Status result;
  WriteAsync(std::move(fn), [&](absl::Status status) {
    result = std::move(status);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

}  // namespace air
