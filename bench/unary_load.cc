#include "bench/unary_load.h"

#include <atomic>
#include <limits>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace air::bench {

std::shared_ptr<grpc::Channel> NewDedicatedChannel(int port, int index, bool bdp_probe) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("air.bench.channel", index);  // distinct args: distinct channel
  if (!bdp_probe) args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials(), args);
}

namespace {

struct Caller {
  std::vector<int64_t> latencies_ns;
  int64_t errors = 0;
  std::string first_error;
};

class Loop {
 public:
  Loop(int concurrency, const StartCallFn& start_call)
      : start_call_(start_call), callers_(concurrency), active_(concurrency) {}

  void Launch(int slot) {
    if (stop_.load(std::memory_order_acquire)) {
      Retire();
      return;
    }
    const int64_t start = WallNanos();
    const bool started = start_call_(slot, [this, slot, start](const grpc::Status& status) {
      const int64_t end = WallNanos();
      if (end <= window_end_.load(std::memory_order_acquire)) {
        Caller& caller = callers_[slot];
        caller.latencies_ns.push_back(end - start);
        if (!status.ok()) {
          if (caller.errors++ == 0) {
            caller.first_error = absl::StrCat(status.error_code(), ": ", status.error_message());
          }
        }
      }
      Launch(slot);
    });
    if (!started) {
      // Out of work: the window closes now for everyone.
      const int64_t now = WallNanos();
      int64_t end = window_end_.load();
      while (now < end && !window_end_.compare_exchange_weak(end, now)) {
      }
      exhausted_.store(true);
      stop_.store(true, std::memory_order_release);
      Retire();
    }
  }

  // Closes the window at `end` and stops launching calls.
  void Stop(int64_t end) {
    int64_t current = window_end_.load();
    while (end < current && !window_end_.compare_exchange_weak(current, end)) {
    }
    stop_.store(true, std::memory_order_release);
  }

  // Waits until every caller has retired; false on timeout.
  bool Drain(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(
        absl::Condition(+[](int* active) { return *active == 0; }, &active_), timeout);
  }

  int64_t window_end() const { return window_end_.load(); }
  bool exhausted() const { return exhausted_.load(); }
  const std::vector<Caller>& callers() const { return callers_; }

 private:
  void Retire() {
    absl::MutexLock lock(&mu_);
    --active_;
  }

  const StartCallFn& start_call_;
  std::vector<Caller> callers_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> exhausted_{false};
  std::atomic<int64_t> window_end_{std::numeric_limits<int64_t>::max()};
  absl::Mutex mu_;
  int active_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

LoadResult RunClosedLoop(int concurrency, absl::Duration duration,
                         const StartCallFn& start_call) {
  // Heap-allocated: leaked rather than freed under calls that never finished.
  auto* owned = new Loop(concurrency, start_call);
  Loop& loop = *owned;
  const int64_t start = WallNanos();
  for (int slot = 0; slot < concurrency; ++slot) loop.Launch(slot);
  const absl::Time deadline = absl::Now() + duration;
  while (absl::Now() < deadline && !loop.exhausted()) {
    absl::SleepFor(std::min(absl::Milliseconds(10), deadline - absl::Now()));
  }
  loop.Stop(WallNanos());
  LoadResult result;
  if (!loop.Drain(absl::Seconds(60))) {
    // Calls still in flight after a minute: report what we have, never hang.
    result.errors += 1;
    result.first_error = "calls still in flight 60 s after the window closed";
    owned = nullptr;
  }
  result.exhausted = loop.exhausted();
  result.seconds = static_cast<double>(loop.window_end() - start) / 1e9;
  std::vector<int64_t> all;
  for (const Caller& caller : loop.callers()) {
    all.insert(all.end(), caller.latencies_ns.begin(), caller.latencies_ns.end());
    if (caller.errors > 0 && result.first_error.empty()) {
      result.first_error = caller.first_error;
    }
    result.errors += caller.errors;
  }
  result.calls = static_cast<int64_t>(all.size());
  result.calls_per_second =
      result.seconds > 0 ? static_cast<double>(result.calls) / result.seconds : 0;
  result.latency = Summarize(std::move(all));
  delete owned;
  return result;
}

}  // namespace air::bench
