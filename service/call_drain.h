// Graceful shutdown of the gRPC server without CANCELLED calls.
//
// gRPC core cancels calls that reach the server after Server::Shutdown has
// begun, and clients see CANCELLED, which they do not retry. So aird drains
// first: from BeginDraining() on, AccessControl refuses every new call with
// UNAVAILABLE (reason SHUTTING_DOWN; clients retry, on another replica or
// after the restart), while the calls admitted before it finish. Only then,
// or when the grace period is over, does Server::Shutdown run.
#ifndef AIR_SERVICE_CALL_DRAIN_H_
#define AIR_SERVICE_CALL_DRAIN_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include <grpcpp/support/server_interceptor.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace air {

class CallDrain {
 public:
  CallDrain() = default;
  CallDrain(const CallDrain&) = delete;
  CallDrain& operator=(const CallDrain&) = delete;

  // A server interceptor factory that counts every call from its creation
  // to its end (register it with ServerBuilder::experimental()).
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
  NewInterceptorFactory();

  // From now on new calls are refused (see draining()).
  void BeginDraining();
  bool draining() const { return draining_.load(std::memory_order_acquire); }

  // Waits until every call admitted before BeginDraining() has ended, or
  // until `deadline`. Returns whether none is left.
  bool AwaitIdle(absl::Time deadline);

  int64_t in_flight() const { return in_flight_.load(std::memory_order_acquire); }

  // Called by the interceptor. Enter() returns false, and counts nothing,
  // once draining has begun.
  bool Enter();
  void Exit();

 private:
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> in_flight_{0};
  absl::Mutex mu_;
  absl::CondVar idle_;  // signalled when in_flight_ reaches 0 while draining
};

}  // namespace air

#endif  // AIR_SERVICE_CALL_DRAIN_H_
