#include "storage/repository.h"

#include "absl/synchronization/notification.h"

namespace air {
namespace {

absl::StatusOr<bool> FoundOrNot(const absl::Status& status) {
  if (status.ok()) return true;
  if (status.code() == absl::StatusCode::kNotFound) return false;
  return status;
}

}  // namespace

absl::StatusOr<bool> WriteTransaction::HasAction(absl::string_view id) {
  return FoundOrNot(GetAction(id).status());
}

absl::StatusOr<bool> WriteTransaction::HasInvestigation(absl::string_view id) {
  return FoundOrNot(GetInvestigation(id).status());
}

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
