// SyncMonitor: what the sync worker and decision delivery have been doing,
// turned into the operator's view (air.v1.SyncStatus) and a health verdict.
//
// The workers report every attempt here; readers (GetSyncStatus, the health
// service) ask for a snapshot. Outage rule: the link is in OUTAGE, and
// health reports NOT_SERVING for kSyncHealthService, when no page has been
// synced for longer than `outage_threshold` (counting from start if none
// ever was), or when decision delivery has been failing for that long.
// Thread-safe; time comes from the injected clock.
#ifndef AIR_SERVICE_SYNC_MONITOR_H_
#define AIR_SERVICE_SYNC_MONITOR_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "air/v1/sync_service.pb.h"
#include "domain/clock.h"
#include "storage/storage.h"

namespace air {

// The grpc.health.v1 service name that carries the sync verdict.
inline constexpr char kSyncHealthService[] = "air.v1.SyncService";

// Counts from applying one page.
struct PageTally {
  int64_t applied = 0;
  int64_t unchanged = 0;
  int64_t stale = 0;
  int64_t malformed = 0;
  int64_t conflicting = 0;
};

class SyncMonitor {
 public:
  // `upstream`: what to show as the upstream ("" = disabled). `on_health`
  // is called with the new verdict whenever it changes (and once at start);
  // it must not call back into the monitor.
  SyncMonitor(std::string upstream, absl::Duration outage_threshold,
              const Clock* clock, std::function<void(bool serving)> on_health = nullptr);

  void RecordSyncSuccess(const PageTally& tally, bool caught_up,
                         std::optional<absl::Time> upstream_head_time);
  void RecordSyncFailure(const absl::Status& status);
  void RecordDeliverySuccess(int64_t delivered, int64_t refused);
  void RecordDeliveryFailure(const absl::Status& status);

  // The status now; `outbox` fills the backlog fields.
  v1::SyncStatus Snapshot(const DecisionOutboxStats& outbox) const;
  // Several replicas: true while another replica syncs (STATE_STANDBY,
  // health SERVING); false when this one takes over, which restarts the
  // outage clock (no sync was due from it before).
  void SetStandby(bool standby);

  // Re-evaluates the verdict against the clock (the workers call this after
  // every attempt; tests may call it after moving a manual clock).
  void Evaluate();
  bool serving() const;

 private:
  v1::SyncStatus::State StateLocked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EvaluateLocked(std::function<void(bool)>* notify) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Notify(std::function<void(bool)> notify, bool serving);

  const std::string upstream_;
  const absl::Duration outage_threshold_;
  const Clock* const clock_;
  const std::function<void(bool)> on_health_;
  const absl::Time start_time_;

  mutable absl::Mutex mu_;
  std::optional<absl::Time> last_sync_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Time> caught_up_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Time> upstream_head_ ABSL_GUARDED_BY(mu_);
  bool attempted_ ABSL_GUARDED_BY(mu_) = false;
  bool last_caught_up_ ABSL_GUARDED_BY(mu_) = false;
  int consecutive_sync_failures_ ABSL_GUARDED_BY(mu_) = 0;
  int consecutive_delivery_failures_ ABSL_GUARDED_BY(mu_) = 0;
  // When delivery started failing (cleared by a success).
  std::optional<absl::Time> delivery_failing_since_ ABSL_GUARDED_BY(mu_);
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  PageTally totals_ ABSL_GUARDED_BY(mu_);
  int64_t delivered_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
  bool serving_ ABSL_GUARDED_BY(mu_) = true;
  bool standby_ ABSL_GUARDED_BY(mu_) = false;
  // When this replica last took over syncing (start_time_ at first).
  absl::Time active_since_ ABSL_GUARDED_BY(mu_);
};

}  // namespace air

#endif  // AIR_SERVICE_SYNC_MONITOR_H_
