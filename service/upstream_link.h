// UpstreamLink: everything aird runs to stay in step with an upstream
// engine, wired in one place so AirServer only creates, starts and stops it:
// the upstream client (a gRPC channel to HOST:PORT), the sync worker,
// decision delivery, the SyncMonitor, and the air.v1.SyncService handler.
//
// Without an upstream (target ""), the link still serves GetSyncStatus
// (STATE_DISABLED) and health stays SERVING, but nothing syncs; decisions
// on local actions never enter the outbox anyway.
#ifndef AIR_SERVICE_UPSTREAM_LINK_H_
#define AIR_SERVICE_UPSTREAM_LINK_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "air/v1/event.pb.h"
#include "domain/clock.h"
#include "service/sync_monitor.h"
#include "service/upstream_sync_worker.h"
#include "storage/storage.h"

namespace grpc {
class Service;
}  // namespace grpc

namespace air {

class SyncServiceImpl;
class AccessControl;

struct UpstreamOptions {
  // "" = no upstream; otherwise the upstream's "HOST:PORT".
  std::string target;
  // TLS to the upstream: the PEM file of the CA that signs its certificate
  // (empty: plaintext, allowed only to a loopback address unless
  // allow_insecure), and optionally a client certificate and key (mTLS).
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // A file holding the bearer token aird presents upstream
  // ("authorization: Bearer ..."); needs TLS. Read once at start.
  std::string token_file;
  // Plaintext to a non-loopback upstream.
  bool allow_insecure = false;
  // After this long without a synced page (or with decision delivery
  // failing), the link is in OUTAGE and health reports NOT_SERVING for
  // "air.v1.SyncService".
  absl::Duration outage_threshold = absl::Minutes(5);
  UpstreamSyncOptions sync;
  DecisionDeliveryOptions delivery;
};

class UpstreamLink {
 public:
  // Builds the link (nothing runs until Start). `repository`, `clock` and
  // `access` (who may read the sync status; null: anyone) are not owned.
  // INVALID_ARGUMENT for a malformed target.
  static absl::StatusOr<std::unique_ptr<UpstreamLink>> Create(
      const UpstreamOptions& options, Storage& repository, const Clock* clock,
      const AccessControl* access);
  ~UpstreamLink();

  // The gRPC service to register on aird's server (air.v1.SyncService).
  grpc::Service* sync_service();
  // Starts syncing and delivering. `set_health` receives the verdict for
  // kSyncHealthService now and on every change. With `run_workers` false
  // (a replica that is not the leader) nothing syncs until SetLeader(true).
  void Start(std::function<void(bool serving)> set_health, bool run_workers = true);
  // Several replicas on one database: only the leader runs the sync worker
  // and decision delivery. true starts fresh workers (they reload the cursor
  // and the outbox from storage); false stops them. Thread-safe.
  void SetLeader(bool leader);
  // Stops both workers (each within one RPC timeout). Idempotent.
  void Stop();
  // Tell the link about committed events (from the commit observer): a new
  // decision wakes delivery at once instead of at its next poll.
  void OnCommit(const std::vector<v1::Event>& events);

  const SyncMonitor& monitor() const { return *monitor_; }
  // The workers, for tests that step them; null without an upstream.
  UpstreamSyncWorker* sync_worker() {
    absl::MutexLock lock(&workers_mu_);
    return sync_.get();
  }
  DecisionDeliveryWorker* delivery_worker() {
    absl::MutexLock lock(&workers_mu_);
    return delivery_.get();
  }
  // Whether this replica's workers run (false before Start and when not the
  // leader).
  bool running() {
    absl::MutexLock lock(&workers_mu_);
    return running_;
  }

 private:
  UpstreamLink(Storage& repository, const UpstreamOptions& options);
  void MakeWorkers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(workers_mu_);

  Storage& repository_;
  const UpstreamOptions options_;
  std::function<void(bool)> set_health_;
  std::unique_ptr<UpstreamClient> client_;
  std::unique_ptr<SyncMonitor> monitor_;
  // Guards the workers' lifetime against OnCommit on the writer thread.
  absl::Mutex workers_mu_;
  std::unique_ptr<UpstreamSyncWorker> sync_ ABSL_GUARDED_BY(workers_mu_);
  std::unique_ptr<DecisionDeliveryWorker> delivery_ ABSL_GUARDED_BY(workers_mu_);
  bool running_ ABSL_GUARDED_BY(workers_mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(workers_mu_) = false;
  // What OnCommit wakes: a separate lock, since the writer thread calls
  // OnCommit while a worker being stopped may wait for that very writer.
  absl::Mutex wake_mu_ ABSL_ACQUIRED_AFTER(workers_mu_);
  DecisionDeliveryWorker* wake_target_ ABSL_GUARDED_BY(wake_mu_) = nullptr;
  std::unique_ptr<SyncServiceImpl> service_;
};

}  // namespace air

#endif  // AIR_SERVICE_UPSTREAM_LINK_H_
