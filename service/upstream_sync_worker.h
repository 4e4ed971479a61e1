// UpstreamSyncWorker pulls investigations and actions from the upstream and
// applies them; DecisionDeliveryWorker pushes committed decisions back.
//
// Sync: each ListChanges page is applied in ONE repository write, together
// with the cursor that follows it, so a crash at any point resumes exactly
// after the last committed page, and a page is never half applied. Records
// are upserted by upstream id and version (upstream_commands.h): replays,
// duplicates and reordering are ignored as stale; malformed records are
// skipped, counted and logged by id; none of them stops the sync. The write
// also checks that the stored cursor is still the one the page was fetched
// with, so a page can never be applied twice or out of turn.
//
// Delivery: reads the decision outbox in order and calls SubmitDecision with
// each row's stable request_id until the upstream acknowledges it (or
// refuses it for good), then marks it delivered. After a restart it starts
// again from the first undelivered row; the upstream deduplicates a
// decision it had already received.
//
// Both retry failures forever with exponential backoff and jitter, sleeping
// between attempts (never spinning), and report to the SyncMonitor. Start()
// runs them on their own thread; SyncOnce()/DeliverOnce() run one step on
// the caller's thread, for tests and benchmarks. Stop() (or destruction)
// ends the thread within one RPC timeout.
#ifndef AIR_SERVICE_UPSTREAM_SYNC_WORKER_H_
#define AIR_SERVICE_UPSTREAM_SYNC_WORKER_H_

#include <future>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "domain/backoff.h"
#include "domain/lifecycle.h"
#include "domain/policy.h"
#include "service/sync_monitor.h"
#include "service/upstream_client.h"
#include "service/wakeable_sleep.h"
#include "storage/storage.h"

namespace air {

struct UpstreamSyncOptions {
  // Name of the stored cursor (one per upstream).
  std::string cursor_name = "upstream";
  // Changes asked for per ListChanges call; one page is one transaction.
  int page_size = 1000;
  // Wait between polls once caught up.
  absl::Duration poll_interval = absl::Seconds(1);
  // Deadline of each upstream call.
  absl::Duration rpc_timeout = absl::Seconds(10);
  // Retry spacing after failures.
  BackoffPolicy backoff;
  // Time to live of synced actions whose record has no expire_time.
  absl::Duration action_ttl = kDefaultActionTtl;
  // Two-person and automation rules for new actions (not owned; null: none).
  const DecisionPolicy* policy = nullptr;
  // While a page is written, fetch the next one (when the upstream said
  // more are waiting). Doubles the upstream's concurrent calls (to 2).
  bool prefetch = true;
};

// What one SyncOnce() did.
struct SyncPageResult {
  PageTally tally;
  int changes = 0;
  // The upstream has more changes waiting.
  bool has_more = false;
};

class UpstreamSyncWorker {
 public:
  // None of the references is owned; all must outlive the worker.
  UpstreamSyncWorker(Storage& repository, UpstreamClient& client,
                     SyncMonitor& monitor, UpstreamSyncOptions options);
  ~UpstreamSyncWorker();

  void Start();
  void Stop();
  // Start() was called (a stopped worker cannot start again).
  bool started() const { return thread_.joinable() || sleep_.stopped(); }
  // Polls now instead of at the end of the current wait.
  void Wake() { sleep_.Wake(); }

  // Fetches and applies one page. Errors: the upstream's (the cursor is
  // kept) or the repository's (the cursor is reloaded from storage).
  absl::StatusOr<SyncPageResult> SyncOnce();

 private:
  void Run();
  // One ListChanges call. Touches no member state but the options and the
  // client, so the prefetch may run it on another thread.
  absl::StatusOr<upstream::v1::ListChangesResponse> Fetch(const std::string& cursor,
                                                          int page_size);

  Storage& repository_;
  UpstreamClient& client_;
  SyncMonitor& monitor_;
  const UpstreamSyncOptions options_;
  WakeableSleep sleep_;
  std::thread thread_;

  // Used by one caller at a time (the worker thread, or a test).
  absl::Mutex step_mu_;
  std::string cursor_ ABSL_GUARDED_BY(step_mu_);
  bool cursor_loaded_ ABSL_GUARDED_BY(step_mu_) = false;
  // The page size asked for: options_.page_size, halved after
  // RESOURCE_EXHAUSTED until a page gets through.
  int page_size_ ABSL_GUARDED_BY(step_mu_);
  // The next page, being fetched for `prefetch_cursor_`.
  std::future<absl::StatusOr<upstream::v1::ListChangesResponse>> prefetch_
      ABSL_GUARDED_BY(step_mu_);
  std::string prefetch_cursor_ ABSL_GUARDED_BY(step_mu_);
};

struct DecisionDeliveryOptions {
  // Outbox rows read per step.
  int batch_size = 100;
  // Wait between checks of an empty outbox (new decisions also Wake()).
  absl::Duration poll_interval = absl::Seconds(1);
  absl::Duration rpc_timeout = absl::Seconds(10);
  BackoffPolicy backoff;
};

class DecisionDeliveryWorker {
 public:
  DecisionDeliveryWorker(Storage& repository, UpstreamClient& client,
                         SyncMonitor& monitor, DecisionDeliveryOptions options);
  ~DecisionDeliveryWorker();

  void Start();
  void Stop();
  // Checks the outbox now (called after a decision commits).
  void Wake() { sleep_.Wake(); }

  // Delivers up to one batch, in order, stopping at the first retryable
  // failure (returned). Returns how many rows were settled (acknowledged or
  // refused for good).
  absl::StatusOr<int> DeliverOnce();

 private:
  void Run();

  Storage& repository_;
  UpstreamClient& client_;
  SyncMonitor& monitor_;
  const DecisionDeliveryOptions options_;
  WakeableSleep sleep_;
  std::thread thread_;
  absl::Mutex step_mu_;
};

}  // namespace air

#endif  // AIR_SERVICE_UPSTREAM_SYNC_WORKER_H_
