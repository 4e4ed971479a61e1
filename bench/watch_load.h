// WatchActions subscribers for the fan-out and lag scenarios. Each one has
// its own channel (its own HTTP/2 connection, like a separate client), reads
// with the callback API, checks that sequences arrive without a gap, and
// records commit-to-receipt latency for actions whose target display_name is
// "t=<CLOCK_REALTIME ns>" (stamped by the server child just before commit).
#ifndef AIR_BENCH_WATCH_LOAD_H_
#define AIR_BENCH_WATCH_LOAD_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "air/v1/action_service.grpc.pb.h"

namespace air::bench {

class WatchSubscriber final
    : public grpc::ClientReadReactor<v1::WatchActionsResponse> {
 public:
  // Watches from the current head (after_sequence 0), no filter.
  // `bdp_probe`: see NewDedicatedChannel.
  WatchSubscriber(int port, int index, bool bdp_probe);
  ~WatchSubscriber() override;

  void Start();
  // Stops reading: the read in flight completes, the next is not started, so
  // gRPC flow control soon stops the server's writes.
  void Pause();
  // Reads again (and catches up).
  void Resume();
  // Cancels the stream and waits until gRPC is done with it (also done by
  // the destructor).
  void CancelAndWait();

  int64_t received() const;
  int64_t last_sequence() const;
  // Sequences that did not follow the previous one by exactly 1.
  int64_t gaps() const;
  // Returns and clears the latencies recorded so far (nanoseconds).
  std::vector<int64_t> TakeLatencies();
  bool done() const { return done_.HasBeenNotified(); }
  std::string final_status() const;

  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ActionService::Stub> stub_;
  grpc::ClientContext context_;
  v1::WatchActionsRequest request_;
  v1::WatchActionsResponse response_;

  mutable absl::Mutex mu_;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  bool read_parked_ ABSL_GUARDED_BY(mu_) = false;
  int64_t received_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t gaps_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int64_t> latencies_ns_ ABSL_GUARDED_BY(mu_);
  std::string final_status_ ABSL_GUARDED_BY(mu_);
  bool started_ = false;  // set by Start(), before any callback
  absl::Notification done_;
};

}  // namespace air::bench

#endif  // AIR_BENCH_WATCH_LOAD_H_
