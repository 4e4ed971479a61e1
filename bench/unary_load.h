// Closed-loop unary load: `concurrency` callers, each with one call in flight
// that starts the next call as soon as the previous one completes. Calls go
// out over a few channels, each with its own HTTP/2 connection.
#ifndef AIR_BENCH_UNARY_LOAD_H_
#define AIR_BENCH_UNARY_LOAD_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "bench/bench_stats.h"

namespace air::bench {

// A channel to 127.0.0.1:port with a connection of its own (a local
// subchannel pool, so channels never share a connection). `bdp_probe` false
// turns off HTTP/2 BDP probing (GRPC_ARG_HTTP2_BDP_PROBE), as
// clients/README.md recommends for channels that only watch.
std::shared_ptr<grpc::Channel> NewDedicatedChannel(int port, int index, bool bdp_probe = true);

struct LoadResult {
  int64_t calls = 0;       // completed inside the measurement window
  int64_t errors = 0;      // of those, how many failed
  std::string first_error;
  double seconds = 0;      // length of the window
  double calls_per_second = 0;
  LatencySummary latency;  // of calls completed inside the window
  bool exhausted = false;  // the call source ran dry before the window ended
};

// Starts one call on behalf of caller `slot`; must eventually invoke `done`
// exactly once (from any thread). Returns false, without calling `done`,
// when there is nothing left to call (e.g. no pending action left).
using StartCallFn =
    std::function<bool(int slot, std::function<void(const grpc::Status&)> done)>;

LoadResult RunClosedLoop(int concurrency, absl::Duration duration,
                         const StartCallFn& start_call);

}  // namespace air::bench

#endif  // AIR_BENCH_UNARY_LOAD_H_
