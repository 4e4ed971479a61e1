#include "service/sync_monitor.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "domain/lifecycle.h"

namespace air {
namespace {

// Errors shown to operators are capped like every other string we return.
constexpr size_t kMaxErrorLength = 1024;

std::string Describe(const absl::Status& status) {
  std::string text = absl::StrCat(absl::StatusCodeToString(status.code()), ": ",
                                  status.message());
  if (text.size() > kMaxErrorLength) text.resize(kMaxErrorLength);
  return text;
}

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t nanos = absl::ToInt64Nanoseconds(d);
  out->set_seconds(nanos / 1000000000);
  out->set_nanos(static_cast<int32_t>(nanos % 1000000000));
}

}  // namespace

SyncMonitor::SyncMonitor(std::string upstream, absl::Duration outage_threshold,
                         const Clock* clock, std::function<void(bool)> on_health)
    : upstream_(std::move(upstream)),
      outage_threshold_(outage_threshold),
      clock_(clock != nullptr ? clock : SystemClock::Get()),
      on_health_(std::move(on_health)),
      start_time_(clock_->Now()) {
  active_since_ = start_time_;
  Notify(on_health_, true);
}

void SyncMonitor::RecordSyncSuccess(const PageTally& tally, bool caught_up,
                                    std::optional<absl::Time> upstream_head_time) {
  std::function<void(bool)> notify;
  bool serving;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    attempted_ = true;
    last_sync_ = now;
    last_caught_up_ = caught_up;
    if (caught_up) caught_up_ = now;
    if (upstream_head_time.has_value()) upstream_head_ = upstream_head_time;
    consecutive_sync_failures_ = 0;
    if (consecutive_delivery_failures_ == 0) last_error_.clear();
    totals_.applied += tally.applied;
    totals_.unchanged += tally.unchanged;
    totals_.stale += tally.stale;
    totals_.malformed += tally.malformed;
    totals_.conflicting += tally.conflicting;
    EvaluateLocked(&notify);
    serving = serving_;
  }
  Notify(std::move(notify), serving);
}

void SyncMonitor::RecordSyncFailure(const absl::Status& status) {
  std::function<void(bool)> notify;
  bool serving;
  {
    absl::MutexLock lock(&mu_);
    attempted_ = true;
    last_caught_up_ = false;
    ++consecutive_sync_failures_;
    last_error_ = absl::StrCat("sync: ", Describe(status));
    EvaluateLocked(&notify);
    serving = serving_;
  }
  Notify(std::move(notify), serving);
}

void SyncMonitor::RecordDeliverySuccess(int64_t delivered, int64_t refused) {
  std::function<void(bool)> notify;
  bool serving;
  {
    absl::MutexLock lock(&mu_);
    delivered_ += delivered;
    refused_ += refused;
    consecutive_delivery_failures_ = 0;
    delivery_failing_since_.reset();
    if (consecutive_sync_failures_ == 0) last_error_.clear();
    EvaluateLocked(&notify);
    serving = serving_;
  }
  Notify(std::move(notify), serving);
}

void SyncMonitor::RecordDeliveryFailure(const absl::Status& status) {
  std::function<void(bool)> notify;
  bool serving;
  {
    absl::MutexLock lock(&mu_);
    ++consecutive_delivery_failures_;
    if (!delivery_failing_since_.has_value()) delivery_failing_since_ = clock_->Now();
    last_error_ = absl::StrCat("decision delivery: ", Describe(status));
    EvaluateLocked(&notify);
    serving = serving_;
  }
  Notify(std::move(notify), serving);
}

void SyncMonitor::Evaluate() {
  std::function<void(bool)> notify;
  bool serving;
  {
    absl::MutexLock lock(&mu_);
    EvaluateLocked(&notify);
    serving = serving_;
  }
  Notify(std::move(notify), serving);
}

bool SyncMonitor::serving() const {
  absl::MutexLock lock(&mu_);
  return serving_;
}

v1::SyncStatus::State SyncMonitor::StateLocked(absl::Time now) const {
  if (upstream_.empty()) return v1::SyncStatus::STATE_DISABLED;
  if (standby_) return v1::SyncStatus::STATE_STANDBY;
  const absl::Time synced = std::max(last_sync_.value_or(active_since_), active_since_);
  const bool sync_out = now - synced > outage_threshold_;
  const bool delivery_out = delivery_failing_since_.has_value() &&
                            now - *delivery_failing_since_ > outage_threshold_;
  if (sync_out || delivery_out) return v1::SyncStatus::STATE_OUTAGE;
  if (consecutive_sync_failures_ > 0 || consecutive_delivery_failures_ > 0) {
    return v1::SyncStatus::STATE_DEGRADED;
  }
  if (!attempted_) return v1::SyncStatus::STATE_STARTING;
  return v1::SyncStatus::STATE_HEALTHY;
}

void SyncMonitor::EvaluateLocked(std::function<void(bool)>* notify) {
  const bool serving = StateLocked(clock_->Now()) != v1::SyncStatus::STATE_OUTAGE;
  if (serving != serving_) {
    serving_ = serving;
    *notify = on_health_;
  }
}

void SyncMonitor::Notify(std::function<void(bool)> notify, bool serving) {
  if (notify) notify(serving);
}

void SyncMonitor::SetStandby(bool standby) {
  std::function<void(bool)> notify;
  bool serving;
  {
    absl::MutexLock lock(&mu_);
    if (standby_ == standby) return;
    standby_ = standby;
    if (!standby) {
      active_since_ = clock_->Now();
      // A delivery failure seen before standing by is no longer current.
      delivery_failing_since_.reset();
    }
    EvaluateLocked(&notify);
    serving = serving_;
  }
  Notify(std::move(notify), serving);
}

v1::SyncStatus SyncMonitor::Snapshot(const DecisionOutboxStats& outbox) const {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  v1::SyncStatus status;
  status.set_state(StateLocked(now));
  status.set_upstream(upstream_);
  if (last_sync_) SetTimestamp(*last_sync_, status.mutable_last_sync_time());
  if (caught_up_) SetTimestamp(*caught_up_, status.mutable_caught_up_time());
  if (upstream_head_) SetTimestamp(*upstream_head_, status.mutable_upstream_head_time());
  if (!upstream_.empty()) {
    const absl::Duration lag =
        last_caught_up_ ? absl::ZeroDuration()
                        : std::max(absl::ZeroDuration(), now - caught_up_.value_or(start_time_));
    SetDuration(lag, status.mutable_lag());
  }
  status.set_decision_backlog(outbox.backlog);
  if (outbox.oldest_undelivered) {
    SetTimestamp(*outbox.oldest_undelivered, status.mutable_oldest_undelivered_time());
  }
  status.set_consecutive_sync_failures(consecutive_sync_failures_);
  status.set_consecutive_delivery_failures(consecutive_delivery_failures_);
  status.set_last_error(last_error_);
  status.set_records_applied(totals_.applied);
  status.set_records_stale(totals_.stale);
  status.set_records_malformed(totals_.malformed);
  status.set_records_conflicting(totals_.conflicting);
  status.set_decisions_delivered(delivered_);
  status.set_decisions_refused(refused_);
  return status;
}

}  // namespace air
