#include "bench/bare_action_service.h"

#include <algorithm>
#include <string>

#include "absl/hash/hash.h"
#include "domain/errors.h"
#include "domain/lifecycle.h"
#include "domain/validation.h"
#include "service/grpc_status.h"

namespace air::bench {
namespace {

// Far more than a notifier can fall behind at the rates air-bench publishes
// (a subscriber would see a gap, and air-bench report it, if it did).
constexpr size_t kRecentEvents = 65536;

}  // namespace

// One WatchActions call. Owned by the service's map until OnDone; a
// notifier may hold a reference a little longer, so Send checks
// `finishing_` before touching the call.
class BareActionService::Stream final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  Stream(BareActionService& service, int64_t next_sequence)
      : service_(service), next_sequence_(next_sequence) {}

  // Sequences below this were handed to the stream (or predate it). Only
  // the notifier of the stream's shard reads or writes it.
  int64_t& next_sequence() { return next_sequence_; }

  // Writes `wire` now, or after the writes before it: one write
  // outstanding, as gRPC requires.
  void Send(const grpc::Slice& wire) {
    {
      absl::MutexLock lock(&mu_);
      if (finishing_) return;
      if (writing_) {
        pending_.emplace_back(&wire, 1);
        return;
      }
      writing_ = true;
      current_ = grpc::ByteBuffer(&wire, 1);
    }
    StartWrite(&current_);  // outside the lock: OnWriteDone may run inline
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      End(grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped reading"));
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      if (finishing_ || pending_.empty()) {
        writing_ = false;
        return;
      }
      current_ = std::move(pending_.front());
      pending_.pop_front();
    }
    StartWrite(&current_);
  }

  void OnCancel() override { End(grpc::Status::CANCELLED); }
  void OnDone() override { service_.Forget(this); }  // may delete this

 private:
  void End(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finishing_) return;
      finishing_ = true;
      pending_.clear();
    }
    Finish(status);
  }

  BareActionService& service_;
  int64_t next_sequence_;
  absl::Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<grpc::ByteBuffer> pending_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer current_;  // the write in flight; only its writer touches it
};

BareActionService::BareActionService(int notifier_threads)
    : notifier_count_(static_cast<size_t>(std::max(notifier_threads, 1))) {
  for (size_t i = 0; i < notifier_count_; ++i) {
    notifiers_.emplace_back([this, i] { NotifierLoop(i); });
  }
}

BareActionService::~BareActionService() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& notifier : notifiers_) notifier.join();
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* BareActionService::WatchActions(
    grpc::CallbackServerContext* /*context*/, const grpc::ByteBuffer* /*request*/) {
  absl::MutexLock lock(&mu_);
  auto stream = std::make_shared<Stream>(*this, head_ + 1);
  Stream* reactor = stream.get();
  streams_.emplace(reactor, std::move(stream));
  return reactor;
}

int64_t BareActionService::Publish(v1::Event event) {
  absl::MutexLock lock(&mu_);
  event.set_sequence(head_ + 1);
  v1::WatchActionsResponse response;
  *response.mutable_event() = std::move(event);
  const std::string bytes = response.SerializeAsString();
  recent_.emplace_back(head_ + 1, grpc::Slice(bytes));
  if (recent_.size() > kRecentEvents) recent_.pop_front();
  return ++head_;
}

grpc::ServerUnaryReactor* BareActionService::ApproveAction(
    grpc::CallbackServerContext* context, const v1::ApproveActionRequest* request,
    v1::ApproveActionResponse* response) {
  // aird's checks of the request, then its decision (DecideActionsTx's
  // ApplyDecision) on the held copy.
  absl::Status status =
      ValidateDecision(request->id(), request->comment(), request->request_id());
  if (status.ok()) {
    DecisionCommand command;
    command.action_id = request->id();
    command.outcome = v1::Decision::OUTCOME_APPROVED;
    command.source = v1::Decision::SOURCE_API;
    command.decider = "anonymous";
    command.comment = request->comment();
    command.expected_etag = request->etag();
    absl::MutexLock lock(&actions_mu_);
    auto it = actions_.find(request->id());
    if (it == actions_.end()) {
      status = MakeError(absl::StatusCode::kNotFound, "no such action", v1::ACTION_NOT_FOUND);
    } else {
      status = ApplyDecision(command, absl::Now(), it->second);
      if (status.ok()) *response->mutable_action() = it->second;
    }
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

void BareActionService::AddAction(v1::Action action) {
  absl::MutexLock lock(&actions_mu_);
  std::string id = action.id();
  actions_.insert_or_assign(std::move(id), std::move(action));
}

int64_t BareActionService::head() const {
  absl::MutexLock lock(&mu_);
  return head_;
}

void BareActionService::Forget(const Stream* stream) {
  std::shared_ptr<Stream> last;  // destroyed outside the lock
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(stream);
  if (it == streams_.end()) return;
  last = std::move(it->second);
  streams_.erase(it);
}

void BareActionService::NotifierLoop(size_t shard) {
  int64_t seen = 0;
  std::vector<std::shared_ptr<Stream>> targets;
  std::vector<std::pair<int64_t, grpc::Slice>> events;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      struct Args {
        BareActionService* service;
        int64_t seen;
      } args{this, seen};
      mu_.Await(absl::Condition(
          +[](Args* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return a->service->head_ != a->seen || a->service->stopping_;
          },
          &args));
      if (stopping_) return;
      // Every stream of this shard was handed everything up to `seen`, or
      // opened later than that: the events after it are all it may lack.
      for (auto it = recent_.rbegin(); it != recent_.rend() && it->first > seen; ++it) {
        events.push_back(*it);
      }
      std::reverse(events.begin(), events.end());
      seen = head_;
      for (auto& [key, stream] : streams_) {
        if (absl::HashOf(key) % notifier_count_ == shard) targets.push_back(stream);
      }
    }
    for (auto& stream : targets) {
      for (const auto& [sequence, wire] : events) {
        if (sequence < stream->next_sequence()) continue;
        stream->Send(wire);
        stream->next_sequence() = sequence + 1;
      }
    }
    targets.clear();  // drop references outside the lock
    events.clear();
  }
}

}  // namespace air::bench
