// WriteBehindTransaction: a WriteTransaction decorator for bulk upstream
// sync, which asks for and sets the upstream version of every record of a
// page, several times for investigations. Through it a version is read at
// most once (PrefetchUpstreamVersions reads a page's in one bulk call) and
// written once, by Flush(), in bulk. Every other part passes straight
// through. (Investigations need no such buffer: every write transaction
// keeps them in memory until its commit.)
//
// Use it only inside one write function, and call Flush() before returning
// OK; returning an error discards the buffer together with the rest of the
// function's changes.
#ifndef AIR_STORAGE_WRITE_BEHIND_TRANSACTION_H_
#define AIR_STORAGE_WRITE_BEHIND_TRANSACTION_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "storage/stores.h"

namespace air {

class WriteBehindTransaction final : public WriteTransaction, private UpstreamWrites {
 public:
  explicit WriteBehindTransaction(WriteTransaction& inner) : inner_(inner) {}

  // Writes the buffered versions to the inner transaction, one bulk call per
  // kind in id order, and empties the buffer.
  absl::Status Flush();

  // Reads the versions of `ids` in one bulk call, so that the
  // GetUpstreamVersion calls that follow for them are answered from memory.
  absl::Status PrefetchUpstreamVersions(UpstreamKind kind, std::vector<std::string> ids);

  ActionWrites& actions() override { return inner_.actions(); }
  EventWrites& events() override { return inner_.events(); }
  AuditWrites& audit() override { return inner_.audit(); }
  RequestWrites& requests() override { return inner_.requests(); }
  UpstreamWrites& upstream() override { return *this; }
  OutboxWrites& outbox() override { return inner_.outbox(); }
  absl::Time Now() const override { return inner_.Now(); }

 private:
  struct Entry {
    std::optional<int64_t> value;
    bool dirty = false;
  };
  using VersionMap = absl::flat_hash_map<std::string, Entry>;
  // One map per kind, looked up by the id itself (no key to build).
  VersionMap& Versions(UpstreamKind kind) {
    return kind == UpstreamKind::kAction ? action_versions_ : investigation_versions_;
  }

  absl::StatusOr<std::optional<int64_t>> GetUpstreamVersion(UpstreamKind kind,
                                                            absl::string_view id) override;
  absl::Status SetUpstreamVersion(UpstreamKind kind, absl::string_view id,
                                  int64_t version) override;
  absl::Status GetUpstreamVersions(UpstreamKind kind, const std::vector<std::string>& ids,
                                   std::map<std::string, int64_t>& versions) override;
  absl::Status SetUpstreamVersions(
      UpstreamKind kind, const std::vector<std::pair<std::string, int64_t>>& versions) override;
  absl::StatusOr<std::string> GetSyncCursor(absl::string_view name) override {
    return inner_.upstream().GetSyncCursor(name);
  }
  absl::Status SetSyncCursor(absl::string_view name, absl::string_view cursor) override {
    return inner_.upstream().SetSyncCursor(name, cursor);
  }

  WriteTransaction& inner_;
  VersionMap action_versions_;
  VersionMap investigation_versions_;
};

}  // namespace air

#endif  // AIR_STORAGE_WRITE_BEHIND_TRANSACTION_H_
