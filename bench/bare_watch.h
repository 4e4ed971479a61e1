// The fan-out ceiling: ActionService.WatchActions with nothing behind it.
//
// air-bench compares aird's commit-to-receipt latency with what gRPC alone
// costs on the same machine, as it compares ApproveAction with a no-op
// unary call. This service answers WatchActions with no storage, no event
// log, no filter and no catch-up: Publish() serializes one
// WatchActionsResponse and notifier threads (as many as aird's EventHub
// has) hand the same bytes to every open stream, one write outstanding per
// stream. The subscribers are air-bench's own WatchSubscriber, unchanged:
// they cannot tell this server from aird.
#ifndef AIR_BENCH_BARE_WATCH_H_
#define AIR_BENCH_BARE_WATCH_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "air/v1/action_service.grpc.pb.h"
#include "air/v1/event.pb.h"

namespace air::bench {

class BareWatchService final
    : public v1::ActionService::WithRawCallbackMethod_WatchActions<
          v1::ActionService::CallbackService> {
 public:
  explicit BareWatchService(int notifier_threads = 2);
  // Stops the notifiers. Shut the grpc::Server down first.
  ~BareWatchService() override;

  grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchActions(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) override;

  // Gives `event` the next sequence and sends it to every open stream.
  // Returns the sequence.
  int64_t Publish(v1::Event event);
  int64_t head() const;

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
};

}  // namespace air::bench

#endif  // AIR_BENCH_BARE_WATCH_H_
