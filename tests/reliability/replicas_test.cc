// Three aird replicas on one PostgreSQL database (issue 11). A real
// PostgreSQL server runs in a temporary directory; an upstream simulator runs
// in this process. Deciders approve and reject through all three replicas
// (two deciders, on different replicas, race for each action) while a
// subscriber watches each replica. Then the replica holding the sync lock is
// killed with SIGKILL; deciders and the subscriber that used it move to
// another replica (same request_id, last sequence). Checks:
//   - no event was skipped or reordered on any stream;
//   - no decision was lost or applied twice (every acknowledged decision is
//     stored; no action is acknowledged twice);
//   - the upstream received each decision exactly once;
//   - sync resumed on another replica (it logs the takeover, and every action
//     the upstream created, before and after the kill, reaches aird).
// Usage: air_replicas_test --aird=PATH
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "air/v1/action_service.grpc.pb.h"
#include "air/v1/sync_service.grpc.pb.h"
#include "sim/upstream_simulator.h"
#include "tests/reliability/aird_process.h"
#include "tests/reliability/decision_load.h"
#include "tests/support/postgres_server.h"

namespace air::reliability {
namespace {

using v1::Action;
using v1::ActionService;

constexpr int kReplicas = 3;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Ack {
  std::string action_id;
  std::string request_id;
  bool approve;
  int replica;
};

struct Shared {
  std::vector<int> ports;
  std::atomic<bool> stop_deciding{false};
  std::atomic<int64_t> watch_target{0};
  std::mutex mu;
  std::vector<Ack> acks;
  int64_t calls = 0, refused = 0, moved = 0;
};

// Decider `index` works on the actions of partition index / 2 through
// replica index % kReplicas: two deciders on different replicas per action.
void Decider(Shared& shared, int index, int deciders) {
  int replica = index % kReplicas;
  std::vector<std::unique_ptr<ActionService::Stub>> stubs;
  for (int port : shared.ports) stubs.push_back(ActionService::NewStub(Channel(port)));
  std::mt19937_64 rng(1000 + index);
  int64_t n = 0;
  const size_t partitions = static_cast<size_t>(deciders / 2);
  while (!shared.stop_deciding) {
    v1::ListActionsResponse page;
    if (!ListPending(*stubs[replica], &page).ok()) {
      replica = (replica + 1) % kReplicas;
      continue;
    }
    int mine = 0;
    for (const Action& a : page.actions()) {
      if (shared.stop_deciding) break;
      if (std::hash<std::string>()(a.id()) % partitions != static_cast<size_t>(index / 2)) continue;
      ++mine;
      const bool approve = rng() % 10 < 6;
      const std::string request_id = absl::StrCat("d", index, "-", n++);
      for (int attempt = 0; attempt < 100; ++attempt) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        const grpc::Status status = Decide(*stubs[replica], ctx, a.id(), request_id, approve);
        std::lock_guard<std::mutex> lock(shared.mu);
        ++shared.calls;
        if (status.ok()) {
          shared.acks.push_back(Ack{a.id(), request_id, approve, replica});
          break;
        }
        if (!Ambiguous(status.error_code())) {
          ++shared.refused;  // the other decider of this action won
          break;
        }
        // The replica is probably gone: the same request_id on the next one.
        ++shared.moved;
        replica = (replica + 1) % kReplicas;
      }
    }
    if (mine == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

struct WatchResult {
  int64_t first = 0;
  int64_t last = 0;
  std::set<int64_t> seen;
  int64_t received = 0;
  int64_t resumes = 0;
  int64_t out_of_order = 0;  // a sequence not exactly previous + 1
};

// Watches replica `replica` from the head; if the stream ends, resumes from
// the last sequence on the next replica.
void Watcher(Shared& shared, WatchResult& out, int replica) {
  while (true) {
    const int64_t target = shared.watch_target.load();
    if (target > 0 && out.last >= target) break;
    auto stub = ActionService::NewStub(Channel(shared.ports[replica]));
    grpc::ClientContext ctx;
    v1::WatchActionsRequest req;
    req.set_after_sequence(out.last);
    req.mutable_heartbeat_interval()->set_nanos(200'000'000);
    auto reader = stub->WatchActions(&ctx, req);
    v1::WatchActionsResponse msg;
    while (reader->Read(&msg)) {
      if (msg.has_event()) {
        const int64_t seq = msg.event().sequence();
        ++out.received;
        if (out.last != 0 && seq != out.last + 1) ++out.out_of_order;
        if (out.first == 0) out.first = seq;
        out.seen.insert(seq);
        out.last = std::max(out.last, seq);
      }
      const int64_t t = shared.watch_target.load();
      if (t > 0 && out.last >= t) ctx.TryCancel();
    }
    grpc::Status status = reader->Finish();
    if (!(shared.watch_target.load() > 0 && out.last >= shared.watch_target.load())) {
      ++out.resumes;
      replica = (replica + 1) % kReplicas;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

int64_t CountActions(ActionService::Stub& stub) {
  int64_t n = 0;
  std::string token;
  do {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ListActionsRequest req;
    req.set_page_size(1000);
    req.set_page_token(token);
    v1::ListActionsResponse resp;
    if (!stub.ListActions(&ctx, req, &resp).ok()) return -1;
    n += resp.actions_size();
    token = resp.next_page_token();
  } while (!token.empty());
  return n;
}

int Run(int argc, char** argv) {
  const std::string aird = Flag(argc, argv, "aird", "");
  if (aird.empty()) {
    std::fprintf(stderr, "usage: air_replicas_test --aird=PATH\n");
    return 2;
  }
  auto postgres = testing::PostgresServer::Start();
  if (!postgres.ok()) {
    std::fprintf(stderr, "PostgreSQL: %s\n", postgres.status().ToString().c_str());
    return 2;
  }
  auto db = (*postgres)->CreateDatabase();
  if (!db.ok()) {
    std::fprintf(stderr, "create database: %s\n", db.status().ToString().c_str());
    return 2;
  }

  std::unique_ptr<FedUpstream> upstream =
      FedUpstream::Start(/*seed=*/11, "replicas", std::chrono::milliseconds(25));
  if (upstream == nullptr) return 2;
  sim::UpstreamSimulator& simulator = upstream->simulator();
  const std::vector<std::string> flags = upstream->AirdFlags();

  std::vector<std::string> dirs;
  std::vector<std::unique_ptr<AirdProcess>> replicas;
  Shared shared;
  for (int i = 0; i < kReplicas; ++i) {
    dirs.push_back(MakeTempDir());
    replicas.push_back(std::make_unique<AirdProcess>(aird, dirs.back()));
    const int port = replicas.back()->Start("127.0.0.1:0", *db, flags);
    if (port <= 0) {
      std::fprintf(stderr, "aird %d did not start (status %d); log %s\n", i,
                   replicas.back()->exit_status(), replicas.back()->log_file().c_str());
      return 2;
    }
    shared.ports.push_back(port);
  }
  auto leaders = [&](std::vector<int>* who) {
    for (int i = 0; i < kReplicas; ++i) {
      if (absl::StrContains(ReadFile(replicas[i]->log_file()), "is now the leader")) {
        who->push_back(i);
      }
    }
  };
  // Exactly one replica takes the sync lock (poll its log, with a deadline).
  std::vector<int> first_leaders;
  for (int i = 0; i < 500 && first_leaders.empty(); ++i) {
    leaders(&first_leaders);
    if (first_leaders.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (first_leaders.size() != 1) {
    std::fprintf(stderr, "FAIL: %zu replicas lead at start, want 1\n", first_leaders.size());
    return 1;
  }
  const int leader = first_leaders[0];
  auto sync_state = [&](int replica) {
    auto sync = v1::SyncService::NewStub(Channel(shared.ports[replica]));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::GetSyncStatusResponse status;
    return sync->GetSyncStatus(&ctx, v1::GetSyncStatusRequest(), &status).ok()
               ? status.status().state()
               : v1::SyncStatus::STATE_UNSPECIFIED;
  };
  for (int i = 0; i < kReplicas; ++i) {
    if (i == leader) continue;
    CHECK_OR_FAIL(sync_state(i) == v1::SyncStatus::STATE_STANDBY,
                  "replica %d does not lead but reports sync state %d, not STANDBY\n", i,
                  sync_state(i));
  }

  constexpr int kDeciders = 6;
  std::vector<std::thread> threads;
  for (int i = 0; i < kDeciders; ++i) threads.emplace_back(Decider, std::ref(shared), i, kDeciders);
  std::vector<WatchResult> watches(kReplicas);
  std::vector<std::thread> watchers;
  for (int i = 0; i < kReplicas; ++i) {
    watchers.emplace_back(Watcher, std::ref(shared), std::ref(watches[i]), i);
  }

  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  const int64_t synced_before_kill = simulator.stats().actions;
  replicas[leader]->Kill(SIGKILL);
  replicas[leader]->Wait();
  const absl::Time killed = absl::Now();
  // Another replica takes the lock.
  int new_leader = -1;
  absl::Duration takeover = absl::InfiniteDuration();
  for (int i = 0; i < 1000 && new_leader < 0; ++i) {
    std::vector<int> now;
    leaders(&now);
    for (int r : now) {
      if (r != leader) new_leader = r;
    }
    if (new_leader < 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  takeover = absl::Now() - killed;
  CHECK_OR_FAIL(new_leader >= 0, "no replica took over the sync lock\n");
  CHECK_OR_FAIL(takeover < absl::Seconds(5), "takeover took %lld ms\n",
                (long long)absl::ToInt64Milliseconds(takeover));
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  shared.stop_deciding = true;
  for (auto& t : threads) t.join();
  upstream->StopFeeding();
  const int64_t upstream_actions = simulator.stats().actions;

  const int survivor = new_leader >= 0 ? new_leader : (leader + 1) % kReplicas;
  auto stub = ActionService::NewStub(Channel(shared.ports[survivor]));
  auto sync_stub = v1::SyncService::NewStub(Channel(shared.ports[survivor]));
  // Sync resumed: every upstream action arrives; delivery drains.
  int64_t listed = -1, backlog = -1;
  for (int i = 0; i < 600; ++i) {
    listed = CountActions(*stub);
    grpc::ClientContext ctx;
    v1::GetSyncStatusResponse status;
    if (sync_stub->GetSyncStatus(&ctx, v1::GetSyncStatusRequest(), &status).ok()) {
      backlog = status.status().decision_backlog();
    }
    if (listed == upstream_actions && backlog == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK_OR_FAIL(listed == upstream_actions,
                "sync did not resume: %lld of %lld upstream actions in aird\n", (long long)listed,
                (long long)upstream_actions);
  CHECK_OR_FAIL(upstream_actions > synced_before_kill,
                "the upstream created no action after the kill\n");
  CHECK_OR_FAIL(backlog == 0, "decision backlog %lld never drained\n", (long long)backlog);
  CHECK_OR_FAIL(sync_state(survivor) == v1::SyncStatus::STATE_HEALTHY,
                "the new leader reports sync state %d, not HEALTHY\n", sync_state(survivor));

  // --- no decision lost or applied twice
  std::set<std::string> acked;
  for (const Ack& ack : shared.acks) {
    CHECK_OR_FAIL(acked.insert(ack.action_id).second, "action %s acknowledged as decided twice\n",
                  ack.action_id.c_str());
    Action stored;
    grpc::Status s = GetAction(*stub, ack.action_id, &stored);
    CHECK_OR_FAIL(s.ok(), "GetAction %s: %s\n", ack.action_id.c_str(), s.error_message().c_str());
    const auto outcome =
        ack.approve ? v1::Decision::OUTCOME_APPROVED : v1::Decision::OUTCOME_REJECTED;
    CHECK_OR_FAIL(s.ok() && stored.decision().outcome() == outcome,
                  "LOST: action %s acknowledged %s (request %s) but stored outcome %d\n",
                  ack.action_id.c_str(), ack.approve ? "approved" : "rejected",
                  ack.request_id.c_str(), stored.decision().outcome());
  }

  // --- the upstream received each decision exactly once
  const UpstreamDeliveries upstream_got = CheckUpstreamExactlyOnce(simulator);
  int64_t undelivered = 0;
  for (const std::string& id : acked) {
    if (upstream_got.per_action.count(id) == 0) ++undelivered;
  }
  CHECK_OR_FAIL(undelivered == 0, "LOST upstream: %lld acknowledged decisions never delivered\n",
                (long long)undelivered);

  // --- every stream saw every event once, in order, with no gap
  grpc::ClientContext hctx;
  v1::WatchActionsRequest hreq;  // after 0: the head, in the first bookmark
  hreq.mutable_heartbeat_interval()->set_nanos(100'000'000);
  auto hreader = stub->WatchActions(&hctx, hreq);
  v1::WatchActionsResponse hmsg;
  int64_t head = 0;
  while (hreader->Read(&hmsg)) {
    if (hmsg.has_bookmark()) {
      head = hmsg.bookmark().sequence();
      hctx.TryCancel();
    }
  }
  hreader->Finish();
  shared.watch_target = head;
  for (auto& w : watchers) w.join();
  for (int i = 0; i < kReplicas; ++i) {
    const WatchResult& w = watches[i];
    CHECK_OR_FAIL(w.out_of_order == 0, "stream %d: %lld events skipped or out of order\n", i,
                  (long long)w.out_of_order);
    CHECK_OR_FAIL(w.first > 0, "stream %d saw no events\n", i);
    const int64_t want = head - w.first + 1;
    CHECK_OR_FAIL(static_cast<int64_t>(w.seen.size()) == want &&
                      static_cast<int64_t>(w.received) == want,
                  "stream %d from %lld: %zu distinct of %lld received %lld\n", i,
                  (long long)w.first, w.seen.size(), (long long)want, (long long)w.received);
  }

  std::printf(
      "replicas test: %d replicas, killed leader %d, replica %d took over in %lld ms; "
      "decision calls=%lld acknowledged=%zu refused(lost race)=%lld moved to another "
      "replica=%lld; upstream actions=%lld (before kill %lld) all synced; upstream decisions "
      "applied=%lld duplicates answered from cache=%lld; log head %lld; stream resumes "
      "%lld/%lld/%lld; failures=%d\n",
      kReplicas, leader, new_leader, (long long)absl::ToInt64Milliseconds(takeover),
      (long long)shared.calls, shared.acks.size(), (long long)shared.refused,
      (long long)shared.moved, (long long)upstream_actions, (long long)synced_before_kill,
      (long long)simulator.stats().decisions_applied,
      (long long)simulator.stats().duplicate_requests, (long long)head,
      (long long)watches[0].resumes, (long long)watches[1].resumes,
      (long long)watches[2].resumes, failures);
  if (shared.acks.empty()) {
    std::fprintf(stderr, "FAIL: no decision was acknowledged\n");
    ++failures;
  }
  upstream->server().Shutdown();
  for (auto& r : replicas) {
    r->Kill(SIGTERM);
    r->Wait();
  }
  if (failures == 0) {
    for (const std::string& d : dirs) std::filesystem::remove_all(d);
  } else {
    for (int i = 0; i < kReplicas; ++i) {
      std::fprintf(stderr, "replica %d log: %s\n", i, replicas[i]->log_file().c_str());
    }
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace air::reliability

int main(int argc, char** argv) { return air::reliability::Run(argc, argv); }
