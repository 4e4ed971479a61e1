// Ceilings for aird's ActionService: the same RPCs with nothing behind them.
//
// air-bench compares aird with what gRPC alone costs on the same machine.
// Served in the no-op child, next to the no-op unary call:
//
// - WatchActions (the fan-out ceiling): no storage, no event log, no filter
//   and no catch-up. Publish() serializes one WatchActionsResponse and
//   notifier threads (as many as aird's EventHub has) hand the same bytes
//   to every open stream, one write outstanding per stream.
// - ApproveAction (the approve ceiling, "storage free"): the request is
//   validated and the domain's ApplyDecision is applied to an action held
//   in memory, then the call finishes on the gRPC thread. No durability,
//   audit, outbox, event or investigation update: what an approval would
//   cost if storing it cost nothing, with the real request and response.
//
// The clients are air-bench's own, unchanged: they cannot tell this server
// from aird.
#ifndef AIR_BENCH_BARE_ACTION_SERVICE_H_
#define AIR_BENCH_BARE_ACTION_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "air/v1/action_service.grpc.pb.h"
#include "air/v1/event.pb.h"

namespace air::bench {

class BareActionService final
    : public v1::ActionService::WithRawCallbackMethod_WatchActions<
          v1::ActionService::CallbackService> {
 public:
  explicit BareActionService(int notifier_threads = 2);
  // Stops the notifiers. Shut the grpc::Server down first.
  ~BareActionService() override;

  grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchActions(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) override;

  // Gives `event` the next sequence and sends it to every open stream.
  // Returns the sequence.
  int64_t Publish(v1::Event event);
  int64_t head() const;

  // The action service's ApproveAction, on actions held in memory.
  grpc::ServerUnaryReactor* ApproveAction(grpc::CallbackServerContext* context,
                                          const v1::ApproveActionRequest* request,
                                          v1::ApproveActionResponse* response) override;
  // Holds `action` (already initialized as pending) for ApproveAction.
  void AddAction(v1::Action action);

 private:
  class Stream;
  void NotifierLoop(size_t shard);
  void Forget(const Stream* stream);

  const size_t notifier_count_;
  mutable absl::Mutex mu_;
  int64_t head_ ABSL_GUARDED_BY(mu_) = 0;
  // The latest events (sequence, wire bytes), enough for any notifier that
  // fell behind by a few publishes.
  std::deque<std::pair<int64_t, grpc::Slice>> recent_ ABSL_GUARDED_BY(mu_);
  // Open streams; the notifier of a stream's shard hands it each event.
  absl::flat_hash_map<const Stream*, std::shared_ptr<Stream>> streams_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> notifiers_;

  // ApproveAction's actions, by id. Their own lock: approvals never wait
  // for the notifiers.
  absl::Mutex actions_mu_;
  absl::flat_hash_map<std::string, v1::Action> actions_ ABSL_GUARDED_BY(actions_mu_);
};

}  // namespace air::bench

#endif  // AIR_BENCH_BARE_ACTION_SERVICE_H_
