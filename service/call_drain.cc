#include "service/call_drain.h"

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace air {
namespace {

// Lives exactly as long as the call it was created for. gRPC's own services
// (health, reflection) are not counted: a Health.Watch stream would hold
// shutdown for the whole grace period.
class DrainInterceptor final : public grpc::experimental::Interceptor {
 public:
  DrainInterceptor(CallDrain* drain, absl::string_view method)
      : drain_(drain), admitted_(!absl::StartsWith(method, "/grpc.") && drain->Enter()) {}
  ~DrainInterceptor() override {
    if (admitted_) drain_->Exit();
  }
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    methods->Proceed();
  }

 private:
  CallDrain* const drain_;
  const bool admitted_;
};

class DrainInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit DrainInterceptorFactory(CallDrain* drain) : drain_(drain) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new DrainInterceptor(drain_, info->method() != nullptr ? info->method() : "");
  }

 private:
  CallDrain* const drain_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
CallDrain::NewInterceptorFactory() {
  return std::make_unique<DrainInterceptorFactory>(this);
}

void CallDrain::BeginDraining() { draining_.store(true, std::memory_order_release); }

bool CallDrain::Enter() {
  if (draining()) return false;
  in_flight_.fetch_add(1, std::memory_order_acq_rel);
  return true;
}

void CallDrain::Exit() {
  // The last call out wakes AwaitIdle. Signalling under the mutex means a
  // waiter that saw in_flight_ > 0 is already waiting, so no wakeup is lost.
  if (in_flight_.fetch_sub(1, std::memory_order_acq_rel) == 1 && draining()) {
    absl::MutexLock lock(&mu_);
    idle_.SignalAll();
  }
}

bool CallDrain::AwaitIdle(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  while (in_flight() > 0) {
    if (idle_.WaitWithDeadline(&mu_, deadline)) return in_flight() == 0;
  }
  return true;
}

}  // namespace air
