#include "storage/repository.h"

#include "absl/synchronization/notification.h"
#include "domain/status_macros.h"

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

absl::StatusOr<bool> WriteTransaction::ChangeInvestigation(
    absl::string_view id, absl::FunctionRef<bool(v1::Investigation&)> change) {
  AIR_ASSIGN_OR_RETURN(v1::Investigation investigation, GetInvestigation(id));
  const bool changed = change(investigation);
  AIR_RETURN_IF_ERROR(PutInvestigation(investigation));
  return changed;
}

absl::Status WriteTransaction::GetUpstreamVersions(UpstreamKind kind,
                                                   const std::vector<std::string>& ids,
                                                   std::map<std::string, int64_t>& versions) {
  for (const std::string& id : ids) {
    AIR_ASSIGN_OR_RETURN(std::optional<int64_t> version, GetUpstreamVersion(kind, id));
    if (version.has_value()) versions[id] = *version;
  }
  return absl::OkStatus();
}

absl::Status WriteTransaction::SetUpstreamVersions(
    UpstreamKind kind, const std::vector<std::pair<std::string, int64_t>>& versions) {
  for (const auto& [id, version] : versions) {
    AIR_RETURN_IF_ERROR(SetUpstreamVersion(kind, id, version));
  }
  return absl::OkStatus();
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
