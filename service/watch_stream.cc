#include "service/watch_stream.h"

#include <deque>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "domain/errors.h"
#include "domain/filter.h"
#include "domain/lifecycle.h"
#include "domain/status_macros.h"
#include "service/grpc_status.h"

namespace air {
namespace {

using Reactor = grpc::ServerWriteReactor<grpc::ByteBuffer>;

// A message in wire form, for the raw stream.
grpc::ByteBuffer Serialized(const google::protobuf::MessageLite& message) {
  const std::string bytes = message.SerializeAsString();
  grpc::Slice slice(bytes.data(), bytes.size());
  return grpc::ByteBuffer(&slice, 1);
}

// An event's message: shares the hub's bytes, copies none.
grpc::ByteBuffer Serialized(const PublishedEvent& event) {
  return grpc::ByteBuffer(&event.WireResponse(), 1);
}

bool MatchesFilter(const ActionFilter& filter, const v1::Event& event) {
  if (event.has_action()) return filter.Matches(event.action());
  if (event.has_investigation()) {
    if (filter.HasActionOnlyTerms()) return false;
    return !filter.investigation_id ||
           event.investigation().id() == *filter.investigation_id;
  }
  return false;
}

// A message waiting to be written. `commit_time` is set for an event: the
// send-lag metric times the start of the event's write from it.
struct Outgoing {
  grpc::ByteBuffer bytes;
  std::optional<absl::Time> commit_time;
};

// The stream's state, shared between the gRPC reactor and the hub. Only the
// current "owner" (the thread that set busy_) touches the reactor, and it
// calls Finish as its last act, so the reactor outlives every use.
class WatchCore final : public EventHub::Subscriber {
 public:
  WatchCore(Reactor* reactor, Storage& repository, EventHub& hub,
            ActionFilter filter, int64_t cursor, absl::Duration heartbeat,
            const WatchLimits& limits, WatchSendObserver on_send)
      : reactor_(reactor),
        repository_(repository),
        hub_(hub),
        filter_(std::move(filter)),
        heartbeat_(heartbeat),
        limits_(limits),
        on_send_(std::move(on_send)),
        cursor_(cursor),
        last_send_(absl::Now()) {}

  // Queues messages to send before any event (the initial snapshot).
  void Preload(std::deque<grpc::ByteBuffer> messages) {
    absl::MutexLock lock(&mu_);
    for (grpc::ByteBuffer& message : messages) {
      queue_.push_back(Outgoing{std::move(message), std::nullopt});
    }
  }

  // Ends the stream with `status` as soon as the owner can.
  void RequestClose(const absl::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (!close_status_) close_status_ = status;
    }
    Pump();
  }

  void Wake() override { Pump(); }

  void Tick(absl::Time now) override {
    {
      absl::MutexLock lock(&mu_);
      if (busy_ || finished_ || now - last_send_ < heartbeat_) return;
      bookmark_due_ = true;
    }
    Pump();
  }

  void Close(const absl::Status& status) override { RequestClose(status); }

  // Called by the reactor when the previous write completed.
  void WriteDone(bool ok) {
    if (!ok) {
      absl::MutexLock lock(&mu_);
      if (!close_status_) {
        close_status_ = absl::CancelledError("the client stopped reading");
      }
    }
    Continue();  // this thread still owns the stream
  }

  // Tries to become the owner and send what is due.
  void Pump() {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      if (busy_) {
        dirty_ = true;  // the owner will look again before going idle
        return;
      }
      busy_ = true;
    }
    Continue();
  }

 private:
  // Runs as the owner: writes the next message, finishes, or goes idle.
  void Continue() {
    while (true) {
      std::optional<absl::Status> close;
      bool send = false;
      std::optional<absl::Time> commit_time;  // of the event being sent
      int64_t cursor = 0;
      {
        absl::MutexLock lock(&mu_);
        dirty_ = false;
        if (close_status_) {
          close = *close_status_;
          finished_ = true;
        } else if (!queue_.empty()) {
          current_ = std::move(queue_.front().bytes);
          commit_time = queue_.front().commit_time;
          queue_.pop_front();
          last_send_ = absl::Now();
          send = true;
        } else {
          cursor = cursor_;
        }
      }
      if (close) {
        reactor_->Finish(ToGrpcStatus(*close));
        return;  // busy_ stays set: nobody touches the reactor again
      }
      if (send) {
        if (commit_time && on_send_) on_send_(*commit_time);
        reactor_->StartWrite(&current_);
        return;  // WriteDone continues as the owner
      }

      std::deque<Outgoing> fetched;
      int64_t new_cursor = cursor;
      absl::Status status = Fetch(cursor, &new_cursor, &fetched);
      absl::MutexLock lock(&mu_);
      if (!status.ok()) {
        if (!close_status_) close_status_ = status;
        continue;
      }
      cursor_ = new_cursor;
      for (auto& m : fetched) queue_.push_back(std::move(m));
      if (!queue_.empty() || dirty_ || close_status_) continue;
      if (new_cursor != cursor) continue;  // filtered everything; read on
      if (bookmark_due_) {
        bookmark_due_ = false;
        v1::WatchActionsResponse bookmark;
        bookmark.mutable_bookmark()->set_sequence(cursor_);
        queue_.push_back(Outgoing{Serialized(bookmark), std::nullopt});
        continue;
      }
      busy_ = false;  // idle until the hub wakes us
      return;
    }
  }

  // Reads the next batch after `cursor`: filtered messages into `out` and the
  // last sequence examined into `new_cursor`.
  absl::Status Fetch(int64_t cursor, int64_t* new_cursor,
                     std::deque<Outgoing>* out) {
    std::vector<std::shared_ptr<const PublishedEvent>> recent;
    if (hub_.ReadRecent(cursor, limits_.batch_size, &recent)) {
      for (const auto& published : recent) {
        *new_cursor = published->sequence();
        if (MatchesFilter(filter_, published->event())) {
          out->push_back(Outgoing{Serialized(*published),
                                  ToAbslTime(published->event().commit_time())});
        }
      }
      return absl::OkStatus();
    }
    // Lagging beyond the in-memory ring: catch up from the stored log.
    AIR_ASSIGN_OR_RETURN(std::vector<v1::Event> stored,
                         repository_.events().ReadEvents(cursor, limits_.batch_size));
    if (!stored.empty() && stored.front().sequence() != cursor + 1) {
      return MakeError(absl::StatusCode::kOutOfRange,
                       absl::StrCat("events after ", cursor,
                                    " are no longer retained; list again and "
                                    "watch from the snapshot"),
                       v1::CURSOR_EXPIRED, {{"after_sequence", absl::StrCat(cursor)}});
    }
    for (const v1::Event& event : stored) {
      *new_cursor = event.sequence();
      if (!MatchesFilter(filter_, event)) continue;
      grpc::Slice wire = PublishedEvent::SerializeResponse(event);
      out->push_back(Outgoing{grpc::ByteBuffer(&wire, 1), ToAbslTime(event.commit_time())});
    }
    return absl::OkStatus();
  }

  Reactor* const reactor_;
  Storage& repository_;
  EventHub& hub_;
  const ActionFilter filter_;
  const absl::Duration heartbeat_;
  const WatchLimits limits_;
  const WatchSendObserver on_send_;

  // Written only by the owner, read by gRPC until the write completes.
  grpc::ByteBuffer current_;

  absl::Mutex mu_;
  int64_t cursor_ ABSL_GUARDED_BY(mu_);
  std::deque<Outgoing> queue_ ABSL_GUARDED_BY(mu_);
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool bookmark_due_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> close_status_ ABSL_GUARDED_BY(mu_);
  absl::Time last_send_ ABSL_GUARDED_BY(mu_);
};

class WatchReactor final : public Reactor {
 public:
  WatchReactor(EventHub& hub, WatchSendObserver on_send)
      : hub_(hub), on_send_(std::move(on_send)) {}

  // Validates and starts; on error the stream finishes at once.
  void Start(const v1::WatchActionsRequest& request, Storage& repository,
             const WatchLimits& limits) {
    absl::Status status = Setup(request, repository, limits);
    if (!status.ok()) {
      Finish(ToGrpcStatus(status));
      return;
    }
    core_->Pump();
  }

  void OnWriteDone(bool ok) override { core_->WriteDone(ok); }

  void OnCancel() override {
    if (core_) core_->RequestClose(absl::CancelledError("cancelled by the client"));
  }

  void OnDone() override {
    if (core_) hub_.Unsubscribe(core_.get());
    delete this;
  }

 private:
  absl::Status Setup(const v1::WatchActionsRequest& request, Storage& repository,
                     const WatchLimits& limits) {
    AIR_ASSIGN_OR_RETURN(ActionFilter filter, ParseActionFilter(request.filter()));
    absl::Duration heartbeat = limits.default_heartbeat;
    if (request.has_heartbeat_interval()) {
      const auto& d = request.heartbeat_interval();
      if (d.seconds() < 0 || d.nanos() < 0) {
        return InvalidField("heartbeat_interval", "must not be negative",
                            v1::INVALID_HEARTBEAT);
      }
      heartbeat = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
      heartbeat = std::clamp(heartbeat, limits.min_heartbeat, limits.max_heartbeat);
    }
    if (request.after_sequence() < 0) {
      return InvalidField("after_sequence", "must not be negative", v1::INVALID_CURSOR);
    }
    if (request.initial_snapshot() && request.after_sequence() != 0) {
      return InvalidField("initial_snapshot",
                          "cannot be combined with after_sequence; a snapshot "
                          "starts a new watch",
                          v1::INVALID_CURSOR);
    }

    std::deque<grpc::ByteBuffer> preload;
    int64_t cursor;
    if (request.initial_snapshot()) {
      AIR_ASSIGN_OR_RETURN(PendingSnapshot snapshot,
                           repository.actions().SnapshotPending(filter, limits.max_snapshot_actions));
      for (v1::Action& action : snapshot.actions) {
        v1::WatchActionsResponse message;
        *message.mutable_snapshot_action() = std::move(action);
        preload.push_back(Serialized(message));
      }
      v1::WatchActionsResponse complete;
      complete.mutable_snapshot_complete()->set_sequence(snapshot.sequence);
      preload.push_back(Serialized(complete));
      cursor = snapshot.sequence;
    } else {
      int64_t head = hub_.head();
      if (request.after_sequence() > head) {
        // With several replicas this one's hub may trail the shared log by
        // a notification: a client resuming here from another replica is not
        // ahead unless the log itself is.
        AIR_ASSIGN_OR_RETURN(EventLogBounds bounds, repository.events().GetEventLogBounds());
        head = std::max(head, bounds.head);
      }
      if (request.after_sequence() > head) {
        return MakeError(absl::StatusCode::kInvalidArgument,
                         absl::StrCat("after_sequence: ", request.after_sequence(),
                                      " is ahead of the head of the event log (",
                                      head, ")"),
                         v1::CURSOR_AHEAD, {{"head", absl::StrCat(head)}});
      }
      cursor = request.after_sequence() == 0 ? head : request.after_sequence();
      if (request.after_sequence() != 0) {
        AIR_ASSIGN_OR_RETURN(EventLogBounds bounds, repository.events().GetEventLogBounds());
        if (cursor < bounds.first_retained - 1) {
          return MakeError(
              absl::StatusCode::kOutOfRange,
              absl::StrCat("events after ", cursor,
                           " are no longer retained (oldest kept: ",
                           bounds.first_retained,
                           "); list again and watch from the snapshot"),
              v1::CURSOR_EXPIRED,
              {{"after_sequence", absl::StrCat(cursor)},
               {"first_retained_sequence", absl::StrCat(bounds.first_retained)}});
        }
      }
    }
    core_ = std::make_shared<WatchCore>(this, repository, hub_, std::move(filter),
                                        cursor, heartbeat, limits, on_send_);
    core_->Preload(std::move(preload));
    AIR_RETURN_IF_ERROR(hub_.Subscribe(core_));
    return absl::OkStatus();
  }

  EventHub& hub_;
  const WatchSendObserver on_send_;
  std::shared_ptr<WatchCore> core_;
};

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* StartWatch(
    grpc::CallbackServerContext* /*context*/, const v1::WatchActionsRequest& request,
    Storage& repository, EventHub& hub, const WatchLimits& limits,
    const WatchSendObserver& on_send) {
  auto* reactor = new WatchReactor(hub, on_send);
  reactor->Start(request, repository, limits);
  return reactor;
}

namespace {
class FinishedWatchReactor final : public Reactor {
 public:
  explicit FinishedWatchReactor(const absl::Status& status) { Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};
}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* FinishedWatch(
    const absl::Status& status) {
  return new FinishedWatchReactor(status);
}

}  // namespace air
