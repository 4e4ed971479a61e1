// What the crash and replicas tests share: failure counting, channels that
// reconnect fast, the deciders' calls, an upstream simulator fed with
// investigations, and the check that the upstream received each decision
// exactly once.
#ifndef AIR_TESTS_RELIABILITY_DECISION_LOAD_H_
#define AIR_TESTS_RELIABILITY_DECISION_LOAD_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "air/v1/action_service.grpc.pb.h"
#include "sim/sim_server.h"
#include "sim/upstream_simulator.h"

namespace air::reliability {

// Failed checks of this run; CHECK_OR_FAIL prints the first 20.
inline int failures = 0;
#define CHECK_OR_FAIL(cond, ...)                                      \
  do {                                                                \
    if (!(cond)) {                                                    \
      ++::air::reliability::failures;                                 \
      if (::air::reliability::failures <= 20) {                       \
        std::fprintf(stderr, "FAIL: " __VA_ARGS__);                   \
      }                                                               \
    }                                                                 \
  } while (0)

// A channel to 127.0.0.1:`port` that reconnects within 200 ms of a restart,
// with a connection of its own (not shared with other channels).
inline std::shared_ptr<grpc::Channel> Channel(int port) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  args.SetInt("grpc.use_local_subchannel_pool", 1);  // one connection per channel
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials(), args);
}

// A failure after which the decision may or may not have been committed:
// retry it with the same request_id.
inline bool Ambiguous(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::CANCELLED || code == grpc::StatusCode::UNKNOWN ||
         code == grpc::StatusCode::INTERNAL;
}

// The first page (200) of pending actions, within 5 s.
inline grpc::Status ListPending(v1::ActionService::Stub& stub, v1::ListActionsResponse* page) {
  v1::ListActionsRequest list;
  list.set_filter("state = STATE_PENDING");
  list.set_page_size(200);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return stub.ListActions(&context, list, page);
}

// Approves (or rejects) action `id` with `request_id`; the action as
// answered goes to *result when given.
inline grpc::Status Decide(v1::ActionService::Stub& stub, grpc::ClientContext& context,
                           const std::string& id, const std::string& request_id, bool approve,
                           v1::Action* result = nullptr) {
  auto call = [&](auto req, auto resp, auto method) {
    req.set_id(id);
    req.set_request_id(request_id);
    grpc::Status status = (stub.*method)(&context, req, &resp);
    if (result != nullptr) *result = resp.action();
    return status;
  };
  return approve ? call(v1::ApproveActionRequest(), v1::ApproveActionResponse(),
                        &v1::ActionService::Stub::ApproveAction)
                 : call(v1::RejectActionRequest(), v1::RejectActionResponse(),
                        &v1::ActionService::Stub::RejectAction);
}

// The stored action `id` (no deadline).
inline grpc::Status GetAction(v1::ActionService::Stub& stub, const std::string& id,
                              v1::Action* action) {
  grpc::ClientContext context;
  v1::GetActionRequest req;
  req.set_id(id);
  v1::GetActionResponse resp;
  grpc::Status status = stub.GetAction(&context, req, &resp);
  *action = resp.action();
  return status;
}

// An upstream simulator in this process (so it survives every aird kill),
// served on 127.0.0.1:0, with a feeder thread that starts two
// investigations and advances it every `feed_interval` until StopFeeding().
class FedUpstream {
 public:
  // nullptr, after printing why, if the simulator cannot be served.
  static std::unique_ptr<FedUpstream> Start(uint64_t seed, const std::string& instance,
                                            std::chrono::milliseconds feed_interval) {
    sim::SimulatorOptions options;
    options.seed = seed;
    options.instance = instance;
    options.arrival_rate = 0;  // the feeder starts investigations
    options.analysis_delay = absl::ZeroDuration();
    options.execution_delay = absl::Milliseconds(200);
    options.run_duration = absl::Milliseconds(300);
    options.failure_rate = 0.2;
    options.target_pool = 1000000;  // no accidental repeated targets
    std::unique_ptr<FedUpstream> upstream(new FedUpstream(options));
    auto server = sim::SimServer::Start(upstream->simulator_, "127.0.0.1:0");
    if (!server.ok()) {
      std::fprintf(stderr, "simulator: %s\n", std::string(server.status().message()).c_str());
      return nullptr;
    }
    upstream->server_ = *std::move(server);
    upstream->feeder_ = std::thread([raw = upstream.get(), feed_interval] {
      while (!raw->stop_feeding_) {
        raw->simulator_.CreateInvestigations(2);
        raw->simulator_.Advance();
        std::this_thread::sleep_for(feed_interval);
      }
    });
    return upstream;
  }

  ~FedUpstream() { StopFeeding(); }

  // aird's flags to sync with this upstream.
  std::vector<std::string> AirdFlags() const {
    return {absl::StrCat("--upstream=127.0.0.1:", server_->port()),
            "--upstream_poll_interval=20ms", "--upstream_page_size=200",
            "--shutdown_grace=2s"};
  }

  void StopFeeding() {
    stop_feeding_ = true;
    if (feeder_.joinable()) feeder_.join();
  }

  sim::UpstreamSimulator& simulator() { return simulator_; }
  sim::SimServer& server() { return *server_; }

 private:
  explicit FedUpstream(const sim::SimulatorOptions& options) : simulator_(options, nullptr) {}

  sim::UpstreamSimulator simulator_;
  std::unique_ptr<sim::SimServer> server_;
  std::atomic<bool> stop_feeding_{false};
  std::thread feeder_;
};

// What the upstream received, checked (CHECK_OR_FAIL) to be each request_id
// applied once and one decision per action.
struct UpstreamDeliveries {
  int64_t requests = 0;            // distinct request_ids applied
  int64_t duplicate_requests = 0;  // request_ids applied more than once
  int64_t duplicate_actions = 0;   // actions that received more than one decision
  std::map<std::string, int> per_action;  // decisions received, by action id
};

inline UpstreamDeliveries CheckUpstreamExactlyOnce(const sim::UpstreamSimulator& simulator) {
  UpstreamDeliveries out;
  for (const auto& [request_id, n] : simulator.AppliedRequests()) {
    ++out.requests;
    if (n != 1) ++out.duplicate_requests;
    CHECK_OR_FAIL(n == 1, "DUPLICATE upstream request %s applied %d times\n", request_id.c_str(),
                  n);
  }
  out.per_action = simulator.DecisionsPerAction();
  for (const auto& [id, n] : out.per_action) {
    CHECK_OR_FAIL(n == 1, "DUPLICATE: upstream action %s received %d decisions\n", id.c_str(), n);
    if (n != 1) ++out.duplicate_actions;
  }
  return out;
}

}  // namespace air::reliability

#endif  // AIR_TESTS_RELIABILITY_DECISION_LOAD_H_
