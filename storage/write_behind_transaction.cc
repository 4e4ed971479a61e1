#include "storage/write_behind_transaction.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "domain/status_macros.h"

namespace air {

std::string WriteBehindTransaction::VersionKey(UpstreamKind kind, absl::string_view id) {
  return absl::StrCat(static_cast<int>(kind), ":", id);
}

absl::StatusOr<v1::Investigation> WriteBehindTransaction::GetInvestigation(
    absl::string_view id) {
  if (auto it = investigations_.find(id); it != investigations_.end()) {
    return it->second.value;
  }
  absl::StatusOr<v1::Investigation> loaded = inner_.GetInvestigation(id);
  if (loaded.ok()) investigations_[id] = Entry<v1::Investigation>{*loaded, false};
  return loaded;
}

absl::Status WriteBehindTransaction::PutInvestigation(const v1::Investigation& investigation) {
  investigations_[investigation.id()] = Entry<v1::Investigation>{investigation, true};
  return absl::OkStatus();
}

absl::StatusOr<bool> WriteBehindTransaction::ChangeInvestigation(
    absl::string_view id, absl::FunctionRef<bool(v1::Investigation&)> change) {
  auto it = investigations_.find(id);
  if (it == investigations_.end()) {
    AIR_ASSIGN_OR_RETURN(v1::Investigation loaded, inner_.GetInvestigation(id));
    it = investigations_.emplace(std::string(id), Entry<v1::Investigation>{std::move(loaded)})
             .first;
  }
  it->second.dirty = true;
  return change(it->second.value);
}

absl::StatusOr<std::optional<int64_t>> WriteBehindTransaction::GetUpstreamVersion(
    UpstreamKind kind, absl::string_view id) {
  const std::string key = VersionKey(kind, id);
  if (auto it = versions_.find(key); it != versions_.end()) return it->second.value;
  AIR_ASSIGN_OR_RETURN(std::optional<int64_t> version, inner_.GetUpstreamVersion(kind, id));
  versions_[key] = Entry<std::optional<int64_t>>{version, false};
  return version;
}

absl::Status WriteBehindTransaction::SetUpstreamVersion(UpstreamKind kind,
                                                        absl::string_view id,
                                                        int64_t version) {
  versions_[VersionKey(kind, id)] = Entry<std::optional<int64_t>>{version, true};
  return absl::OkStatus();
}

absl::Status WriteBehindTransaction::PrefetchUpstreamVersions(UpstreamKind kind,
                                                              std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());  // neighbouring keys: neighbouring pages
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  ids.erase(std::remove_if(ids.begin(), ids.end(),
                           [&](const std::string& id) {
                             return versions_.contains(VersionKey(kind, id));
                           }),
            ids.end());
  std::map<std::string, int64_t> found;
  AIR_RETURN_IF_ERROR(inner_.GetUpstreamVersions(kind, ids, found));
  for (const std::string& id : ids) {
    auto it = found.find(id);
    std::optional<int64_t> version;
    if (it != found.end()) version = it->second;
    versions_.emplace(VersionKey(kind, id), Entry<std::optional<int64_t>>{version, false});
  }
  return absl::OkStatus();
}

absl::Status WriteBehindTransaction::Flush() {
  for (auto& [id, entry] : investigations_) {
    if (!entry.dirty) continue;
    AIR_RETURN_IF_ERROR(inner_.PutInvestigation(entry.value));
    entry.dirty = false;
  }
  std::map<UpstreamKind, std::vector<std::pair<std::string, int64_t>>> dirty;
  for (auto& [key, entry] : versions_) {
    if (!entry.dirty) continue;
    const size_t colon = key.find(':');
    const auto kind = static_cast<UpstreamKind>(std::stoi(key.substr(0, colon)));
    dirty[kind].emplace_back(key.substr(colon + 1), *entry.value);
    entry.dirty = false;
  }
  for (auto& [kind, versions] : dirty) {
    std::sort(versions.begin(), versions.end());
    AIR_RETURN_IF_ERROR(inner_.SetUpstreamVersions(kind, versions));
  }
  return absl::OkStatus();
}

}  // namespace air
