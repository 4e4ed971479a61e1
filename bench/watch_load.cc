#include "bench/watch_load.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bench/bench_stats.h"
#include "bench/unary_load.h"

namespace air::bench {

WatchSubscriber::WatchSubscriber(int port, int index, bool bdp_probe)
    : channel_(NewDedicatedChannel(port, 1'000'000 + index, bdp_probe)),
      stub_(v1::ActionService::NewStub(channel_)) {}

// gRPC still uses this object until OnDone: cancel and wait for it.
WatchSubscriber::~WatchSubscriber() { CancelAndWait(); }

void WatchSubscriber::Start() {
  started_ = true;
  stub_->async()->WatchActions(&context_, &request_, this);
  StartRead(&response_);
  StartCall();
}

void WatchSubscriber::Pause() {
  absl::MutexLock lock(&mu_);
  paused_ = true;
}

void WatchSubscriber::Resume() {
  bool read = false;
  {
    absl::MutexLock lock(&mu_);
    paused_ = false;
    read = read_parked_;
    read_parked_ = false;
  }
  if (read) StartRead(&response_);
}

void WatchSubscriber::CancelAndWait() {
  if (!started_) return;
  if (!done_.HasBeenNotified()) context_.TryCancel();
  done_.WaitForNotification();
}

void WatchSubscriber::OnReadDone(bool ok) {
  if (!ok) return;  // OnDone follows
  const int64_t now = WallNanos();
  {
    absl::MutexLock lock(&mu_);
    if (response_.has_event()) {
      const v1::Event& event = response_.event();
      if (last_sequence_ != 0 && event.sequence() != last_sequence_ + 1) ++gaps_;
      last_sequence_ = event.sequence();
      ++received_;
      const std::string& name = event.action().target().display_name();
      int64_t stamp = 0;
      if (event.has_action() && name.rfind("t=", 0) == 0 &&
          absl::SimpleAtoi(absl::string_view(name).substr(2), &stamp)) {
        latencies_ns_.push_back(now - stamp);
      }
    } else if (response_.has_bookmark()) {
      if (last_sequence_ != 0 && response_.bookmark().sequence() < last_sequence_) ++gaps_;
    }
    if (paused_) {
      read_parked_ = true;
      return;
    }
  }
  StartRead(&response_);
}

void WatchSubscriber::OnDone(const grpc::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    final_status_ = absl::StrCat(status.error_code(), ": ", status.error_message());
  }
  done_.Notify();
}

int64_t WatchSubscriber::received() const {
  absl::MutexLock lock(&mu_);
  return received_;
}

int64_t WatchSubscriber::last_sequence() const {
  absl::MutexLock lock(&mu_);
  return last_sequence_;
}

int64_t WatchSubscriber::gaps() const {
  absl::MutexLock lock(&mu_);
  return gaps_;
}

std::vector<int64_t> WatchSubscriber::TakeLatencies() {
  absl::MutexLock lock(&mu_);
  std::vector<int64_t> out;
  out.swap(latencies_ns_);
  return out;
}

std::string WatchSubscriber::final_status() const {
  absl::MutexLock lock(&mu_);
  return final_status_;
}

}  // namespace air::bench
