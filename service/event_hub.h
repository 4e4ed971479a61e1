// EventHub: tells watch streams that the event log moved on.
//
// The writer publishes each commit's events here (after the commit is
// durable). The hub keeps the most recent ones in a bounded ring, so that
// caught-up subscribers read them from memory; a subscriber that lags
// beyond the ring reads from the repository instead. Nothing is buffered per
// subscriber, so a slow subscriber costs no memory and never blocks the
// writer or anyone else.
//
// Each event is kept once, shared by every stream that sends it: the ring
// holds it parsed (for filters) and, built on first use, in the wire form of
// a WatchActionsResponse, so a fan-out to N streams serializes it once, not
// N times.
//
// A notifier thread wakes subscribers after each publish and gives each a
// periodic Tick (for heartbeats). Subscribers must not block in Wake/Tick.
#ifndef AIR_SERVICE_EVENT_HUB_H_
#define AIR_SERVICE_EVENT_HUB_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include "absl/base/call_once.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "air/v1/event.pb.h"

namespace air {

// A committed event as the hub keeps it. Immutable once published, except
// for the lazily built wire form (thread-safe).
class PublishedEvent {
 public:
  explicit PublishedEvent(v1::Event event) : event_(std::move(event)) {}

  const v1::Event& event() const { return event_; }
  int64_t sequence() const { return event_.sequence(); }

  // The serialized WatchActionsResponse{event}: built once, then shared
  // (a reference-counted slice; a copy of the ByteBuffer copies no bytes).
  const grpc::Slice& WireResponse() const;

  // Serializes WatchActionsResponse{event: `event`} without building the
  // response message (no copy of the event).
  static grpc::Slice SerializeResponse(const v1::Event& event);

 private:
  const v1::Event event_;
  mutable absl::once_flag wire_once_;
  mutable std::optional<grpc::Slice> wire_;
};

class EventHub {
 public:
  class Subscriber {
   public:
    virtual ~Subscriber() = default;
    // New events may be available.
    virtual void Wake() = 0;
    // Periodic call, at least every tick interval.
    virtual void Tick(absl::Time now) = 0;
    // The hub is shutting down: end with `status`.
    virtual void Close(const absl::Status& status) = 0;
  };

  // `head`: the last committed sequence at start. `ring_capacity`: how many
  // recent events are kept in memory.
  // `notifier_threads`: threads that wake subscribers after a publish, each
  // for a fixed share of them (waking a stream writes to its socket, so
  // one thread serializes a fan-out to many connections).
  static constexpr int kDefaultNotifierThreads = 2;
  EventHub(int64_t head, size_t ring_capacity = 16384,
           absl::Duration tick = absl::Milliseconds(50),
           int notifier_threads = kDefaultNotifierThreads);
  ~EventHub();

  // Appends committed events (consecutive sequences) and wakes subscribers.
  // Takes the events: the ring keeps them without a copy.
  void Publish(std::vector<v1::Event>&& events);

  // The last published sequence.
  int64_t head() const;

  // Appends events with sequence > `after` (at most `limit`) to `out` and
  // returns true if the ring still holds sequence after + 1 (or nothing is
  // newer); false if the caller must read the repository.
  bool ReadRecent(int64_t after, int limit,
                  std::vector<std::shared_ptr<const PublishedEvent>>* out) const;

  // Registers a subscriber. UNAVAILABLE once shut down.
  absl::Status Subscribe(std::shared_ptr<Subscriber> subscriber);
  void Unsubscribe(const Subscriber* subscriber);
  size_t subscriber_count() const;

  // Closes every subscriber with UNAVAILABLE and refuses new ones.
  void Shutdown();
  // The database behind the log was lost: ends every subscriber with
  // `status` and refuses new ones with it (clients resume elsewhere) until
  // Resume().
  void Suspend(const absl::Status& status);
  void Resume();

 private:
  void NotifierLoop(size_t shard);

  const size_t ring_capacity_;
  const absl::Duration tick_;
  const size_t notifier_count_;

  mutable absl::Mutex mu_;
  // The last published sequence. Written only under mu_ (with the ring), so
  // that head() and a caught-up ReadRecent can read it without the lock.
  std::atomic<int64_t> head_;
  std::deque<std::shared_ptr<const PublishedEvent>> ring_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<const Subscriber*, std::shared_ptr<Subscriber>> subscribers_
      ABSL_GUARDED_BY(mu_);
  // Bumped by every publish; each notifier wakes its share once per change.
  uint64_t wake_generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status suspended_ ABSL_GUARDED_BY(mu_);  // OK unless suspended
  std::vector<std::thread> notifiers_;
};

}  // namespace air

#endif  // AIR_SERVICE_EVENT_HUB_H_
