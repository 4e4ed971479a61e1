// Crash under load (issue 8): a real aird synced with an upstream simulator
// (in this process, so it survives every kill) while deciders approve and
// reject at full speed with request_ids and subscribers watch, resuming from
// their last sequence. aird is killed with SIGKILL at random moments and
// restarted on the same database. Then:
//   - every decision acknowledged to a client is stored (GetAction), with the
//     decider the acknowledgement named; retrying an ambiguous call with the
//     same request_id never decides twice;
//   - no action exists twice (ListActions ids, ACTION_CREATED events);
//   - the event log has no gap (full WatchActions replay);
//   - every resumed subscriber saw every event exactly once after dedup;
//   - the upstream received each decision exactly once by request_id.
// Usage: air_crash_test --aird=PATH [--long]   (or AIR_RELIABILITY_LONG=1)
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "air/v1/action_service.grpc.pb.h"
#include "air/v1/sync_service.grpc.pb.h"
#include "sim/upstream_simulator.h"
#include "tests/reliability/aird_process.h"
#include "tests/reliability/decision_load.h"

namespace air::reliability {
namespace {

using v1::Action;
using v1::ActionService;

struct Ack {
  std::string action_id;
  std::string request_id;
  bool approve;
  std::string decider;
  Action::State state;  // as acknowledged
};

struct Shared {
  int port = 0;
  int deciders = 4;
  std::atomic<bool> stop_deciding{false};
  std::atomic<bool> stop_watching{false};
  std::atomic<int64_t> watch_target{0};  // set at the end: the log's head
  std::mutex mu;
  std::vector<Ack> acks;
  int64_t retried = 0;          // ambiguous calls retried with the same request_id
  int64_t retried_refused = 0;  // ... that ended in a definitive refusal
  int64_t calls = 0;
};

void Decider(Shared& shared, int index) {
  auto stub = ActionService::NewStub(Channel(shared.port));
  std::mt19937_64 rng(1000 + index);
  int64_t n = 0;
  while (!shared.stop_deciding) {
    v1::ListActionsResponse page;
    if (!ListPending(*stub, &page).ok()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    int mine = 0;
    for (const Action& a : page.actions()) {
      if (shared.stop_deciding) break;
      if (std::hash<std::string>()(a.id()) % shared.deciders != static_cast<size_t>(index)) continue;
      ++mine;
      const bool approve = rng() % 10 < 6;
      const std::string request_id = absl::StrCat("d", index, "-", n++);
      bool retry = false;
      for (int attempt = 0; attempt < 200; ++attempt) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        Action result;
        const grpc::Status status = Decide(*stub, ctx, a.id(), request_id, approve, &result);
        std::lock_guard<std::mutex> lock(shared.mu);
        ++shared.calls;
        if (status.ok()) {
          shared.acks.push_back(
              Ack{a.id(), request_id, approve, result.decision().decider(), result.state()});
          break;
        }
        if (!Ambiguous(status.error_code())) {
          if (retry) ++shared.retried_refused;
          break;
        }
        if (!retry) ++shared.retried;
        retry = true;
        // The server is probably down: retry the same request_id (the answer
        // must be the first one if it was committed).
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    if (mine == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

struct WatchResult {
  int64_t first = 0;   // first sequence seen
  int64_t last = 0;    // last sequence seen
  std::set<int64_t> seen;
  int64_t received = 0;     // events received, duplicates included
  int64_t resumes = 0;
  int64_t out_of_order = 0; // a sequence not above the previous one in a stream
};

void Watcher(Shared& shared, WatchResult& out, const std::string& filter) {
  auto stub = ActionService::NewStub(Channel(shared.port));
  while (true) {
    if (shared.stop_watching) break;
    const int64_t target = shared.watch_target.load();
    if (target > 0 && out.last >= target) break;
    grpc::ClientContext ctx;
    v1::WatchActionsRequest req;
    req.set_after_sequence(out.last);
    req.set_filter(filter);
    req.mutable_heartbeat_interval()->set_nanos(200'000'000);
    auto reader = stub->WatchActions(&ctx, req);
    v1::WatchActionsResponse msg;
    int64_t prev = out.last;
    while (reader->Read(&msg)) {
      if (msg.has_event()) {
        const int64_t seq = msg.event().sequence();
        ++out.received;
        if (seq <= prev) ++out.out_of_order;
        prev = seq;
        if (out.first == 0) out.first = seq;
        out.seen.insert(seq);
        if (seq > out.last) out.last = seq;
      }
      const int64_t t = shared.watch_target.load();
      if (shared.stop_watching || (t > 0 && out.last >= t)) {
        ctx.TryCancel();
      }
    }
    reader->Finish();
    ++out.resumes;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Every event from after_sequence=1 up to the head (a bookmark at or below
// the last event received means caught up).
std::vector<v1::Event> Replay(ActionService::Stub& stub) {
  std::vector<v1::Event> events;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::WatchActionsRequest req;
  req.set_after_sequence(1);
  req.mutable_heartbeat_interval()->set_nanos(100'000'000);
  auto reader = stub.WatchActions(&ctx, req);
  v1::WatchActionsResponse msg;
  int64_t last = 1;
  while (reader->Read(&msg)) {
    if (msg.has_event()) {
      events.push_back(msg.event());
      last = msg.event().sequence();
    } else if (msg.has_bookmark() && msg.bookmark().sequence() <= last) {
      ctx.TryCancel();
    }
  }
  reader->Finish();
  return events;
}

int Run(int argc, char** argv) {
  const bool long_form = LongForm(argc, argv);
  const std::string aird = Flag(argc, argv, "aird", "");
  if (aird.empty()) {
    std::fprintf(stderr, "usage: air_crash_test --aird=PATH [--long]\n");
    return 2;
  }
  const int kills = std::stoi(Flag(argc, argv, "kills", long_form ? "40" : "6"));
  const std::string dir = MakeTempDir();
  const std::string db = dir + "/air.db";

  std::unique_ptr<FedUpstream> upstream =
      FedUpstream::Start(/*seed=*/42, "crash", std::chrono::milliseconds(20));
  if (upstream == nullptr) return 2;
  sim::UpstreamSimulator& simulator = upstream->simulator();
  const std::vector<std::string> aird_flags = upstream->AirdFlags();

  AirdProcess process(aird, dir);
  Shared shared;
  shared.port = process.Start("127.0.0.1:0", db, aird_flags);
  if (shared.port <= 0) {
    std::fprintf(stderr, "aird did not start (status %d); log %s\n", process.exit_status(),
                 process.log_file().c_str());
    return 2;
  }
  const std::string listen = absl::StrCat("127.0.0.1:", shared.port);

  std::vector<std::thread> threads;
  for (int i = 0; i < shared.deciders; ++i) threads.emplace_back(Decider, std::ref(shared), i);
  WatchResult all_events, pending_events;
  std::thread w1(Watcher, std::ref(shared), std::ref(all_events), "");
  std::thread w2(Watcher, std::ref(shared), std::ref(pending_events), "");

  std::mt19937_64 rng(7);
  int survived = 0;
  for (int k = 0; k < kills; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng() % 1300));
    process.Kill(SIGKILL);
    process.Wait();
    if (process.Start(listen, db, aird_flags) <= 0) {
      std::fprintf(stderr, "FAIL: aird did not restart after kill %d (status %d); log %s\n", k + 1,
                   process.exit_status(), process.log_file().c_str());
      return 1;
    }
    ++survived;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  shared.stop_deciding = true;
  for (auto& t : threads) t.join();
  upstream->StopFeeding();

  auto stub = ActionService::NewStub(Channel(shared.port));
  auto sync_stub = v1::SyncService::NewStub(Channel(shared.port));
  // Wait until every decision has been delivered upstream.
  int64_t backlog = -1;
  for (int i = 0; i < 600; ++i) {
    grpc::ClientContext ctx;
    v1::GetSyncStatusResponse status;
    if (sync_stub->GetSyncStatus(&ctx, v1::GetSyncStatusRequest(), &status).ok()) {
      backlog = status.status().decision_backlog();
      if (backlog == 0) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK_OR_FAIL(backlog == 0, "decision backlog %lld never drained\n", (long long)backlog);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let the sync settle

  // --- every acknowledged decision is stored
  int64_t decisions_checked = 0;
  std::set<std::string> acked_actions;
  for (const Ack& ack : shared.acks) {
    ++decisions_checked;
    CHECK_OR_FAIL(acked_actions.insert(ack.action_id).second,
                  "action %s acknowledged as decided twice\n", ack.action_id.c_str());
    Action a;
    grpc::Status s = GetAction(*stub, ack.action_id, &a);
    CHECK_OR_FAIL(s.ok(), "acknowledged action %s: GetAction %s\n", ack.action_id.c_str(),
                  s.error_message().c_str());
    if (!s.ok()) continue;
    const auto outcome = ack.approve ? v1::Decision::OUTCOME_APPROVED : v1::Decision::OUTCOME_REJECTED;
    CHECK_OR_FAIL(a.decision().outcome() == outcome,
                  "LOST: action %s acknowledged %s (request %s) but stored outcome %d state %d\n",
                  ack.action_id.c_str(), ack.approve ? "approved" : "rejected",
                  ack.request_id.c_str(), a.decision().outcome(), a.state());
    CHECK_OR_FAIL(a.decision().decider() == ack.decider, "action %s decider %s, acknowledged %s\n",
                  ack.action_id.c_str(), a.decision().decider().c_str(), ack.decider.c_str());
    if (!ack.approve) {
      CHECK_OR_FAIL(a.state() == Action::STATE_REJECTED, "action %s rejected but state %d\n",
                    ack.action_id.c_str(), a.state());
    }
    // Replaying the same request_id answers the first response.
    grpc::ClientContext rctx;
    Action replayed;
    const grpc::Status rs =
        Decide(*stub, rctx, ack.action_id, ack.request_id, ack.approve, &replayed);
    CHECK_OR_FAIL(rs.ok() && replayed.decision().outcome() == outcome,
                  "replay of request %s on %s: %s\n", ack.request_id.c_str(),
                  ack.action_id.c_str(), rs.error_message().c_str());
  }

  // --- no action exists twice
  std::set<std::string> ids;
  int64_t listed = 0;
  std::string token;
  do {
    grpc::ClientContext ctx;
    v1::ListActionsRequest req;
    req.set_page_size(1000);
    req.set_page_token(token);
    v1::ListActionsResponse resp;
    grpc::Status s = stub->ListActions(&ctx, req, &resp);
    CHECK_OR_FAIL(s.ok(), "ListActions: %s\n", s.error_message().c_str());
    if (!s.ok()) break;
    for (const Action& a : resp.actions()) {
      ++listed;
      CHECK_OR_FAIL(ids.insert(a.id()).second, "DUPLICATE action %s listed twice\n", a.id().c_str());
    }
    token = resp.next_page_token();
  } while (!token.empty());

  // --- the event log has no gap, and each action was created once
  std::vector<v1::Event> events = Replay(*stub);
  int64_t gaps = 0;
  int64_t expect = 2;
  std::map<std::string, int> created;
  for (const v1::Event& e : events) {
    if (e.sequence() != expect) {
      ++gaps;
      CHECK_OR_FAIL(false, "event log gap/duplicate: expected %lld got %lld\n", (long long)expect,
                    (long long)e.sequence());
    }
    expect = e.sequence() + 1;
    if (e.type() == v1::Event::TYPE_ACTION_CREATED) ++created[e.action().id()];
  }
  const int64_t head = events.empty() ? 1 : events.back().sequence();
  for (const auto& [id, n] : created) {
    CHECK_OR_FAIL(n == 1, "DUPLICATE: action %s created %d times\n", id.c_str(), n);
  }

  // --- the subscribers saw everything exactly once after dedup
  shared.watch_target = head;
  w1.join();
  w2.join();
  int64_t redelivered = 0;
  for (WatchResult* w : {&all_events, &pending_events}) {
    redelivered += w->received - static_cast<int64_t>(w->seen.size());
    CHECK_OR_FAIL(w->out_of_order == 0, "watcher: %lld events out of order within a stream\n",
                  (long long)w->out_of_order);
    if (w->first == 0) {
      CHECK_OR_FAIL(false, "watcher saw no events\n");
      continue;
    }
    const int64_t want = head - w->first + 1;
    CHECK_OR_FAIL(static_cast<int64_t>(w->seen.size()) == want && *w->seen.rbegin() == head,
                  "watcher from %lld: saw %zu distinct events, want %lld (missed %lld)\n",
                  (long long)w->first, w->seen.size(), (long long)want,
                  (long long)(want - static_cast<int64_t>(w->seen.size())));
  }

  // --- the upstream received each decision exactly once by request_id
  const UpstreamDeliveries upstream_got = CheckUpstreamExactlyOnce(simulator);
  const int64_t submissions = upstream_got.requests;
  const int64_t dup_submissions = upstream_got.duplicate_requests + upstream_got.duplicate_actions;
  int64_t not_delivered = 0;
  for (const std::string& id : acked_actions) {
    if (upstream_got.per_action.count(id) == 0) {
      ++not_delivered;
      CHECK_OR_FAIL(false, "LOST upstream: acknowledged decision on %s never delivered\n", id.c_str());
    }
  }
  const sim::SimulatorStats stats = simulator.stats();

  upstream->server().Shutdown();
  process.Kill(SIGTERM);
  process.Wait();

  int64_t lost = 0;
  std::printf(
      "crash test (%s): kills survived=%d decision calls=%lld acknowledged decisions checked=%lld "
      "(ambiguous retried=%lld, of which refused=%lld) actions listed=%lld events checked=%lld "
      "(log head %lld, gaps=%lld) watchers: all=%zu events/%lld resumes, second=%zu/%lld, "
      "redelivered(dedup)=%lld upstream submissions checked=%lld (applied=%lld, duplicate "
      "requests answered from cache=%lld, undelivered=%lld) lost=%lld duplicated=%lld "
      "failures=%d\n",
      long_form ? "long" : "short", survived, (long long)shared.calls, (long long)decisions_checked,
      (long long)shared.retried, (long long)shared.retried_refused, (long long)listed,
      (long long)events.size(), (long long)head, (long long)gaps, all_events.seen.size(),
      (long long)all_events.resumes, pending_events.seen.size(), (long long)pending_events.resumes,
      (long long)redelivered, (long long)submissions, (long long)stats.decisions_applied,
      (long long)stats.duplicate_requests, (long long)not_delivered,
      (long long)(lost + not_delivered + gaps), (long long)dup_submissions, failures);
  if (decisions_checked == 0) {
    std::fprintf(stderr, "FAIL: no decision was acknowledged\n");
    return 1;
  }
  if (failures == 0) std::filesystem::remove_all(dir);
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace air::reliability

int main(int argc, char** argv) { return air::reliability::Run(argc, argv); }
