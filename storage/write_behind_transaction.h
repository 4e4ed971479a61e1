// WriteBehindTransaction: a WriteTransaction decorator for bulk writes that
// touch the same rows over and over. Upstream sync is the case: every new
// action rewrites its investigation's counts, and one page holds several
// actions and versions of each investigation. Through this decorator an
// investigation (and an upstream version) is read at most once and written
// once, by Flush(), instead of at every step.
//
// Everything else passes straight through, in order, so events still carry
// each intermediate state. Use it only inside one write function, for code
// that reads investigations and versions through it alone, and call Flush()
// before returning OK; returning an error discards the buffer together with
// the rest of the function's changes.
#ifndef AIR_STORAGE_WRITE_BEHIND_TRANSACTION_H_
#define AIR_STORAGE_WRITE_BEHIND_TRANSACTION_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "storage/repository.h"

namespace air {

class WriteBehindTransaction final : public WriteTransaction {
 public:
  explicit WriteBehindTransaction(WriteTransaction& inner) : inner_(inner) {}

  // Writes the buffered investigations and versions to the inner
  // transaction and empties the buffer. Versions go in one bulk call per
  // kind, in id order.
  absl::Status Flush();

  // Reads the upstream versions of `ids` in one bulk call, so that the
  // GetUpstreamVersion calls that follow for them are answered from memory
  // (a sync page asks for each of its records once, and for each action's
  // investigation).
  absl::Status PrefetchUpstreamVersions(UpstreamKind kind, std::vector<std::string> ids);

  absl::StatusOr<v1::Investigation> GetInvestigation(absl::string_view id) override;
  absl::Status PutInvestigation(const v1::Investigation& investigation) override;
  absl::StatusOr<bool> ChangeInvestigation(
      absl::string_view id, absl::FunctionRef<bool(v1::Investigation&)> change) override;
  absl::StatusOr<std::optional<int64_t>> GetUpstreamVersion(UpstreamKind kind,
                                                            absl::string_view id) override;
  absl::Status SetUpstreamVersion(UpstreamKind kind, absl::string_view id,
                                  int64_t version) override;

  absl::StatusOr<bool> HasInvestigation(absl::string_view id) override {
    if (investigations_.contains(id)) return true;
    return inner_.HasInvestigation(id);
  }

  // Pass-through.
  absl::StatusOr<v1::Action> GetAction(absl::string_view id) override {
    return inner_.GetAction(id);
  }
  absl::StatusOr<bool> HasAction(absl::string_view id) override {
    return inner_.HasAction(id);
  }
  absl::Status PutAction(const v1::Action& action) override { return inner_.PutAction(action); }
  absl::StatusOr<int64_t> AppendEvent(v1::Event event) override {
    return inner_.AppendEvent(std::move(event));
  }
  absl::Status AppendAudit(const AuditRecord& record) override {
    return inner_.AppendAudit(record);
  }
  absl::StatusOr<std::optional<StoredRequest>> FindRequest(
      absl::string_view request_id) override {
    return inner_.FindRequest(request_id);
  }
  absl::Status SaveRequest(absl::string_view request_id,
                           const StoredRequest& request) override {
    return inner_.SaveRequest(request_id, request);
  }
  absl::StatusOr<std::vector<std::string>> PendingActionsDueBy(absl::Time deadline,
                                                               int limit) override {
    return inner_.PendingActionsDueBy(deadline, limit);
  }
  absl::StatusOr<int64_t> PruneEvents(absl::Time older_than, int64_t max_events) override {
    return inner_.PruneEvents(older_than, max_events);
  }
  absl::Time Now() const override { return inner_.Now(); }
  absl::StatusOr<std::string> GetSyncCursor(absl::string_view name) override {
    return inner_.GetSyncCursor(name);
  }
  absl::Status SetSyncCursor(absl::string_view name, absl::string_view cursor) override {
    return inner_.SetSyncCursor(name, cursor);
  }
  absl::StatusOr<int64_t> EnqueueDecision(const OutboxDecision& decision) override {
    return inner_.EnqueueDecision(decision);
  }
  absl::Status MarkDecisionDelivered(int64_t position, absl::string_view result) override {
    return inner_.MarkDecisionDelivered(position, result);
  }
  absl::StatusOr<std::optional<TargetApproval>> FindTargetApproval(
      absl::string_view target_key) override {
    return inner_.FindTargetApproval(target_key);
  }
  absl::Status RecordTargetApproval(const TargetApproval& approval) override {
    return inner_.RecordTargetApproval(approval);
  }

 private:
  template <typename T>
  struct Entry {
    T value;
    bool dirty = false;
  };
  using VersionMap = absl::flat_hash_map<std::string, Entry<std::optional<int64_t>>>;
  // One map per kind, looked up by the id itself (no key to build).
  VersionMap& Versions(UpstreamKind kind) {
    return kind == UpstreamKind::kAction ? action_versions_ : investigation_versions_;
  }

  WriteTransaction& inner_;
  absl::flat_hash_map<std::string, Entry<v1::Investigation>> investigations_;
  VersionMap action_versions_;
  VersionMap investigation_versions_;
};

}  // namespace air

#endif  // AIR_STORAGE_WRITE_BEHIND_TRANSACTION_H_
