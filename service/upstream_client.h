// The client side of air.upstream.v1.UpstreamService, as the sync worker and
// decision delivery see it. An interface so that tests and benchmarks can
// put a fault-injecting or in-process upstream behind it; the production
// implementation is a gRPC stub on a channel to the upstream.
//
// Thread-safe. Errors are the upstream's canonical codes as absl::Status
// (the ErrorInfo reason, if any, is kept in the message); a call that
// exceeds `timeout` is DEADLINE_EXCEEDED.
#ifndef AIR_SERVICE_UPSTREAM_CLIENT_H_
#define AIR_SERVICE_UPSTREAM_CLIENT_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "air/upstream/v1/upstream_service.pb.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace air {

class UpstreamClient {
 public:
  virtual ~UpstreamClient() = default;
  virtual absl::StatusOr<upstream::v1::ListChangesResponse> ListChanges(
      const upstream::v1::ListChangesRequest& request, absl::Duration timeout) = 0;
  virtual absl::StatusOr<upstream::v1::SubmitDecisionResponse> SubmitDecision(
      const upstream::v1::SubmitDecisionRequest& request, absl::Duration timeout) = 0;
};

// A client over `channel`.
std::unique_ptr<UpstreamClient> NewGrpcUpstreamClient(
    std::shared_ptr<grpc::Channel> channel);

// True for errors worth retrying the same call for (the upstream is down,
// slow, throttling, or refusing our credentials until an operator fixes
// them); false for answers that retrying cannot change.
bool IsRetryableUpstreamError(const absl::Status& status);

}  // namespace air

#endif  // AIR_SERVICE_UPSTREAM_CLIENT_H_
