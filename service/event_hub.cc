#include "service/event_hub.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <algorithm>

#include "absl/hash/hash.h"
#include "absl/time/clock.h"
#include "air/v1/action_service.pb.h"
#include "domain/errors.h"

namespace air {

grpc::Slice PublishedEvent::SerializeResponse(const v1::Event& event) {
  using google::protobuf::io::CodedOutputStream;
  using google::protobuf::internal::WireFormatLite;
  // Exactly what WatchActionsResponse{event} serializes to: the field's tag,
  // its length, the event.
  const uint32_t tag = WireFormatLite::MakeTag(v1::WatchActionsResponse::kEventFieldNumber,
                                               WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  const size_t body = event.ByteSizeLong();
  const size_t total = CodedOutputStream::VarintSize32(tag) +
                       CodedOutputStream::VarintSize32(static_cast<uint32_t>(body)) + body;
  grpc::Slice slice(total);
  uint8_t* out = const_cast<uint8_t*>(slice.begin());
  out = CodedOutputStream::WriteVarint32ToArray(tag, out);
  out = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(body), out);
  event.SerializeWithCachedSizesToArray(out);
  return slice;
}

const grpc::Slice& PublishedEvent::WireResponse() const {
  absl::call_once(wire_once_, [this] { wire_.emplace(SerializeResponse(event_)); });
  return *wire_;
}

EventHub::EventHub(int64_t head, size_t ring_capacity, absl::Duration tick,
                   int notifier_threads)
    : ring_capacity_(ring_capacity),
      tick_(tick),
      notifier_count_(static_cast<size_t>(std::max(notifier_threads, 1))),
      head_(head) {
  for (size_t i = 0; i < notifier_count_; ++i) {
    notifiers_.emplace_back([this, i] { NotifierLoop(i); });
  }
}

EventHub::~EventHub() {
  Shutdown();
  for (std::thread& notifier : notifiers_) notifier.join();
}

void EventHub::Publish(std::vector<v1::Event>&& events) {
  absl::MutexLock lock(&mu_);
  int64_t head = head_.load(std::memory_order_relaxed);  // only written under mu_
  for (v1::Event& event : events) {
    if (event.sequence() <= head) continue;  // already published
    head = event.sequence();
    ring_.push_back(std::make_shared<const PublishedEvent>(std::move(event)));
  }
  while (ring_.size() > ring_capacity_) ring_.pop_front();
  head_.store(head, std::memory_order_release);
  ++wake_generation_;
}

int64_t EventHub::head() const { return head_.load(std::memory_order_acquire); }

bool EventHub::ReadRecent(int64_t after, int limit,
                          std::vector<std::shared_ptr<const PublishedEvent>>* out) const {
  // Without the lock when there is nothing newer: every stream asks once
  // more after each write it finishes, and in a fan-out those questions
  // from gRPC's threads would queue on the lock behind the notifiers. A
  // publish this misses wakes the caller afterwards.
  if (after >= head_.load(std::memory_order_acquire)) return true;
  absl::MutexLock lock(&mu_);
  if (after >= head_.load(std::memory_order_relaxed)) return true;
  if (ring_.empty() || ring_.front()->sequence() > after + 1) return false;
  const size_t start = static_cast<size_t>(after + 1 - ring_.front()->sequence());
  for (size_t i = start; i < ring_.size() && limit > 0; ++i, --limit) {
    out->push_back(ring_[i]);
  }
  return true;
}

absl::Status EventHub::Subscribe(std::shared_ptr<Subscriber> subscriber) {
  absl::MutexLock lock(&mu_);
  if (shutdown_) {
    return MakeError(absl::StatusCode::kUnavailable,
                     "the server is shutting down; resume on another server",
                     v1::SHUTTING_DOWN);
  }
  if (!suspended_.ok()) return suspended_;
  subscribers_[subscriber.get()] = std::move(subscriber);
  return absl::OkStatus();
}

void EventHub::Unsubscribe(const Subscriber* subscriber) {
  std::shared_ptr<Subscriber> removed;  // destroyed outside the lock
  absl::MutexLock lock(&mu_);
  auto it = subscribers_.find(subscriber);
  if (it != subscribers_.end()) {
    removed = std::move(it->second);
    subscribers_.erase(it);
  }
}

size_t EventHub::subscriber_count() const {
  absl::MutexLock lock(&mu_);
  return subscribers_.size();
}

void EventHub::Shutdown() {
  std::vector<std::shared_ptr<Subscriber>> to_close;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return;
    shutdown_ = true;
    for (auto& [key, subscriber] : subscribers_) to_close.push_back(subscriber);
  }
  const absl::Status status = MakeError(
      absl::StatusCode::kUnavailable,
      "the server is shutting down; resume from your last sequence",
      v1::SHUTTING_DOWN);
  for (auto& subscriber : to_close) subscriber->Close(status);
}

void EventHub::Suspend(const absl::Status& status) {
  std::vector<std::shared_ptr<Subscriber>> to_close;
  {
    absl::MutexLock lock(&mu_);
    suspended_ = status;
    for (auto& [key, subscriber] : subscribers_) to_close.push_back(subscriber);
    subscribers_.clear();
  }
  for (auto& subscriber : to_close) subscriber->Close(status);
}

void EventHub::Resume() {
  absl::MutexLock lock(&mu_);
  suspended_ = absl::OkStatus();
}

void EventHub::NotifierLoop(size_t shard) {
  // A subscriber belongs to one shard for its whole life (by its address),
  // so every publish wakes it exactly once, whoever handles the others.
  auto mine = [&](const Subscriber* subscriber) {
    return absl::HashOf(subscriber) % notifier_count_ == shard;
  };
  std::vector<std::shared_ptr<Subscriber>> targets;
  absl::Time last_tick = absl::Now();
  uint64_t seen_generation = 0;
  while (true) {
    bool wake;
    {
      absl::MutexLock lock(&mu_);
      struct Args {
        EventHub* hub;
        uint64_t seen;
      } args{this, seen_generation};
      mu_.AwaitWithTimeout(
          absl::Condition(
              +[](Args* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                return a->hub->wake_generation_ != a->seen || a->hub->shutdown_;
              },
              &args),
          tick_);
      if (shutdown_) return;
      wake = wake_generation_ != seen_generation;
      seen_generation = wake_generation_;
      targets.clear();
      for (auto& [key, subscriber] : subscribers_) {
        if (mine(key)) targets.push_back(subscriber);
      }
    }
    if (wake) {
      for (auto& subscriber : targets) subscriber->Wake();
    }
    const absl::Time now = absl::Now();
    if (now - last_tick >= tick_) {
      last_tick = now;
      for (auto& subscriber : targets) subscriber->Tick(now);
    }
    targets.clear();  // drop references outside the lock
  }
}

}  // namespace air
