// UpstreamLink: everything aird runs to stay in step with an upstream
// engine, wired in one place so AirServer only creates, starts and stops it:
// the upstream client (a gRPC channel to HOST:PORT, or an in-process
// channel to a simulator it owns), the sync worker, decision delivery, the
// SyncMonitor, and the air.v1.SyncService handler.
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

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "air/v1/event.pb.h"
#include "domain/clock.h"
#include "service/sync_monitor.h"
#include "service/upstream_sync_worker.h"
#include "sim/upstream_simulator.h"
#include "storage/repository.h"

namespace grpc {
class Service;
}  // namespace grpc

namespace air {

namespace sim {
class SimServer;
}  // namespace sim
class SyncServiceImpl;
class AccessControl;

struct UpstreamOptions {
  // "" = no upstream; "sim" = run the simulator in-process; otherwise the
  // upstream's "HOST:PORT".
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
  // For target "sim": the simulator's story and faults.
  sim::SimulatorOptions simulator;
};

class UpstreamLink {
 public:
  // Builds the link (nothing runs until Start). `repository`, `clock` and
  // `access` (who may read the sync status; null: anyone) are not owned.
  // INVALID_ARGUMENT for a malformed target.
  static absl::StatusOr<std::unique_ptr<UpstreamLink>> Create(
      const UpstreamOptions& options, Repository& repository, const Clock* clock,
      const AccessControl* access);
  ~UpstreamLink();

  // The gRPC service to register on aird's server (air.v1.SyncService).
  grpc::Service* sync_service();
  // Starts syncing and delivering. `set_health` receives the verdict for
  // kSyncHealthService now and on every change.
  void Start(std::function<void(bool serving)> set_health);
  // Stops both workers (each within one RPC timeout). Idempotent.
  void Stop();
  // Tell the link about committed events (from the commit observer): a new
  // decision wakes delivery at once instead of at its next poll.
  void OnCommit(const std::vector<v1::Event>& events);

  const SyncMonitor& monitor() const { return *monitor_; }
  // The in-process simulator for target "sim"; null otherwise.
  sim::UpstreamSimulator* simulator() { return simulator_.get(); }
  // The workers, for tests that step them; null without an upstream.
  UpstreamSyncWorker* sync_worker() { return sync_.get(); }
  DecisionDeliveryWorker* delivery_worker() { return delivery_.get(); }

 private:
  UpstreamLink() = default;

  std::function<void(bool)> set_health_;
  std::unique_ptr<sim::UpstreamSimulator> simulator_;
  std::unique_ptr<sim::SimServer> sim_server_;
  std::unique_ptr<UpstreamClient> client_;
  std::unique_ptr<SyncMonitor> monitor_;
  std::unique_ptr<UpstreamSyncWorker> sync_;
  std::unique_ptr<DecisionDeliveryWorker> delivery_;
  std::unique_ptr<SyncServiceImpl> service_;
};

}  // namespace air

#endif  // AIR_SERVICE_UPSTREAM_LINK_H_
