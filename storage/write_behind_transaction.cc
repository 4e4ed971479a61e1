#include "storage/write_behind_transaction.h"

#include <algorithm>
#include <map>

#include "domain/status_macros.h"

namespace air {

absl::StatusOr<std::optional<int64_t>> WriteBehindTransaction::GetUpstreamVersion(
    UpstreamKind kind, absl::string_view id) {
  VersionMap& versions = Versions(kind);
  if (auto it = versions.find(id); it != versions.end()) return it->second.value;
  AIR_ASSIGN_OR_RETURN(std::optional<int64_t> version,
                       inner_.upstream().GetUpstreamVersion(kind, id));
  versions.emplace(std::string(id), Entry{version, false});
  return version;
}

absl::Status WriteBehindTransaction::SetUpstreamVersion(UpstreamKind kind,
                                                        absl::string_view id,
                                                        int64_t version) {
  Versions(kind).insert_or_assign(std::string(id), Entry{version, true});
  return absl::OkStatus();
}

absl::Status WriteBehindTransaction::GetUpstreamVersions(
    UpstreamKind kind, const std::vector<std::string>& ids,
    std::map<std::string, int64_t>& versions) {
  for (const std::string& id : ids) {
    AIR_ASSIGN_OR_RETURN(std::optional<int64_t> version, GetUpstreamVersion(kind, id));
    if (version.has_value()) versions[id] = *version;
  }
  return absl::OkStatus();
}

absl::Status WriteBehindTransaction::SetUpstreamVersions(
    UpstreamKind kind, const std::vector<std::pair<std::string, int64_t>>& versions) {
  for (const auto& [id, version] : versions) {
    AIR_RETURN_IF_ERROR(SetUpstreamVersion(kind, id, version));
  }
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
  AIR_RETURN_IF_ERROR(inner_.upstream().GetUpstreamVersions(kind, ids, found));
  for (std::string& id : ids) {
    auto it = found.find(id);
    std::optional<int64_t> version;
    if (it != found.end()) version = it->second;
    versions.emplace(std::move(id), Entry{version, false});
  }
  return absl::OkStatus();
}

absl::Status WriteBehindTransaction::Flush() {
  for (UpstreamKind kind : {UpstreamKind::kInvestigation, UpstreamKind::kAction}) {
    std::vector<std::pair<std::string, int64_t>> dirty;
    for (auto& [id, entry] : Versions(kind)) {
      if (!entry.dirty) continue;
      dirty.emplace_back(id, *entry.value);
      entry.dirty = false;
    }
    if (dirty.empty()) continue;
    std::sort(dirty.begin(), dirty.end());
    AIR_RETURN_IF_ERROR(inner_.upstream().SetUpstreamVersions(kind, dirty));
  }
  return absl::OkStatus();
}

}  // namespace air
