#include "storage/write_behind_transaction.h"

#include <algorithm>
#include <map>

#include "domain/status_macros.h"

namespace air {

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
  VersionMap& versions = Versions(kind);
  if (auto it = versions.find(id); it != versions.end()) return it->second.value;
  AIR_ASSIGN_OR_RETURN(std::optional<int64_t> version, inner_.GetUpstreamVersion(kind, id));
  versions.emplace(std::string(id), Entry<std::optional<int64_t>>{version, false});
  return version;
}

absl::Status WriteBehindTransaction::SetUpstreamVersion(UpstreamKind kind,
                                                        absl::string_view id,
                                                        int64_t version) {
  Versions(kind).insert_or_assign(std::string(id),
                                  Entry<std::optional<int64_t>>{version, true});
  return absl::OkStatus();
}

absl::Status WriteBehindTransaction::PrefetchUpstreamVersions(UpstreamKind kind,
                                                              std::vector<std::string> ids) {
  VersionMap& versions = Versions(kind);
  std::sort(ids.begin(), ids.end());  // neighbouring keys: neighbouring pages
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  ids.erase(std::remove_if(ids.begin(), ids.end(),
                           [&](const std::string& id) { return versions.contains(id); }),
            ids.end());
  std::map<std::string, int64_t> found;
  AIR_RETURN_IF_ERROR(inner_.GetUpstreamVersions(kind, ids, found));
  for (std::string& id : ids) {
    auto it = found.find(id);
    std::optional<int64_t> version;
    if (it != found.end()) version = it->second;
    versions.emplace(std::move(id), Entry<std::optional<int64_t>>{version, false});
  }
  return absl::OkStatus();
}

absl::Status WriteBehindTransaction::Flush() {
  for (auto& [id, entry] : investigations_) {
    if (!entry.dirty) continue;
    AIR_RETURN_IF_ERROR(inner_.PutInvestigation(entry.value));
    entry.dirty = false;
  }
  for (UpstreamKind kind : {UpstreamKind::kInvestigation, UpstreamKind::kAction}) {
    std::vector<std::pair<std::string, int64_t>> dirty;
    for (auto& [id, entry] : Versions(kind)) {
      if (!entry.dirty) continue;
      dirty.emplace_back(id, *entry.value);
      entry.dirty = false;
    }
    if (dirty.empty()) continue;
    std::sort(dirty.begin(), dirty.end());
    AIR_RETURN_IF_ERROR(inner_.SetUpstreamVersions(kind, dirty));
  }
  return absl::OkStatus();
}

}  // namespace air
