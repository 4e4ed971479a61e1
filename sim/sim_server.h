// The gRPC face of the simulator: air.upstream.v1.UpstreamService over an
// UpstreamSimulator, served on a TCP port (air-upstream-sim, tests,
// air-bench) or only in-process. Adds the latency fault, and can really
// crash and restart its server (connections and calls in flight are lost;
// the simulator's state, like a real engine's database, survives).
#ifndef AIR_SIM_SIM_SERVER_H_
#define AIR_SIM_SIM_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "air/upstream/v1/upstream_service.grpc.pb.h"
#include "sim/upstream_simulator.h"

namespace air::sim {

// How the simulator's TCP port is secured (in-process channels never are).
struct SimServerSecurity {
  // PEM files of the server's certificate and key: TLS when both are set.
  std::string cert_file;
  std::string key_file;
  // When set, every call must carry "authorization: Bearer <token>", as a
  // real upstream's API gateway would demand (UNAUTHENTICATED otherwise).
  std::string required_token;
};

class UpstreamSimService final : public upstream::v1::UpstreamService::Service {
 public:
  UpstreamSimService(UpstreamSimulator& simulator, std::string required_token)
      : simulator_(simulator), required_token_(std::move(required_token)) {}

  grpc::Status ListChanges(grpc::ServerContext* context,
                           const upstream::v1::ListChangesRequest* request,
                           upstream::v1::ListChangesResponse* response) override;
  grpc::Status SubmitDecision(grpc::ServerContext* context,
                              const upstream::v1::SubmitDecisionRequest* request,
                              upstream::v1::SubmitDecisionResponse* response) override;

 private:
  void AddLatency();
  grpc::Status CheckToken(const grpc::ServerContext& context) const;
  UpstreamSimulator& simulator_;
  const std::string required_token_;
};

class SimServer {
 public:
  // Serves `simulator` (not owned; must outlive the server) on
  // `listen_address` ("HOST:PORT", port 0 picks one), or only in-process
  // when the address is empty. UNAVAILABLE if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<SimServer>> Start(
      UpstreamSimulator& simulator, const std::string& listen_address,
      SimServerSecurity security = {});
  ~SimServer();

  // The bound TCP port (0 when in-process only).
  int port() const;
  // A channel to this server that bypasses the network.
  std::shared_ptr<grpc::Channel> InProcessChannel();
  // Crash and restart: stops the server at once, waits `downtime`, and
  // serves again on the same port. TCP only (an in-process channel does not
  // survive its server; use UpstreamSimulator::Crash there).
  absl::Status Restart(absl::Duration downtime);
  void Shutdown();

 private:
  SimServer(UpstreamSimulator& simulator, std::string listen_address,
            SimServerSecurity security);
  absl::Status BuildLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  UpstreamSimService service_;
  const std::string listen_address_;
  const SimServerSecurity security_;
  mutable absl::Mutex mu_;
  std::unique_ptr<grpc::Server> server_ ABSL_GUARDED_BY(mu_);
  int port_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace air::sim

#endif  // AIR_SIM_SIM_SERVER_H_
