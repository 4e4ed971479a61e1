// Prometheus metrics (prometheus-cpp, Debian's prometheus-cpp-dev), served
// as text on their own HTTP port (GET /metrics).
//
// Three kinds of source, none of which queries anything on a request path:
//  * a gRPC server interceptor — the one place that sees every RPC — counts
//    RPCs and times them by service, method and code
//    (grpc_server_handled_total, grpc_server_handling_seconds);
//  * the commit observer counts committed decisions and expiries from the
//    events of each commit (aird_decisions_total, aird_actions_expired_total);
//  * watch streams report each event they start sending, timed from the
//    event's commit (aird_watch_send_lag_seconds);
//  * gauges that need a query or a look at shared state are computed when
//    Prometheus scrapes: pending actions by type, the oldest pending
//    action's age, watch subscribers, sync lag and the decision-outbox
//    backlog, the event log head, database and WAL size.
// See README "Metrics" for the list.
#ifndef AIR_SERVICE_METRICS_H_
#define AIR_SERVICE_METRICS_H_

#include <grpcpp/support/server_interceptor.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "air/v1/event.pb.h"
#include "domain/clock.h"

namespace prometheus {
class Collectable;
class Exposer;
class Registry;
template <typename T>
class Family;
class Counter;
class Histogram;
}  // namespace prometheus

namespace air {

class Storage;
class EventHub;
class SyncMonitor;

// What the scrape-time gauges read. Not owned; must outlive the endpoint.
struct MetricsSources {
  Storage* storage = nullptr;
  EventHub* hub = nullptr;
  const SyncMonitor* sync = nullptr;
  const Clock* clock = nullptr;  // null: the system clock
};

class ServerMetrics {
 public:
  explicit ServerMetrics(MetricsSources sources);
  ~ServerMetrics();

  // A factory for grpc::ServerBuilder::experimental().SetInterceptorCreators.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
  NewInterceptorFactory();

  // One finished RPC. `full_method` is "/package.Service/Method"; methods
  // that no registered service defines are counted as "unknown", so callers
  // cannot grow the label set.
  // `type` is "unary", "server_stream", "client_stream" or "bidi_stream".
  void RecordRpc(absl::string_view full_method, absl::string_view type, int code,
                 absl::Duration latency);

  // From the commit observer (writer thread): counts decisions and expiries.
  void OnCommit(const std::vector<v1::Event>& events);

  // From a watch stream: it is handing an event committed at `commit_time`
  // to gRPC. Observes the lag on the sources' clock, which stamps commits.
  void RecordWatchSend(absl::Time commit_time);

  // Everything in Prometheus text format, as the endpoint serves it.
  std::string Render() const;

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  std::shared_ptr<prometheus::Collectable> state_collector() const { return state_; }

 private:
  // One method's series for one status code. Family::Add builds a label map
  // and, for a histogram, a whole new histogram before it finds the existing
  // one, so each RPC looks its series up here instead (once per method and
  // code, then cached; the pointers stay valid for the registry's life).
  struct RpcSeries {
    prometheus::Counter* handled = nullptr;
    prometheus::Histogram* handling_seconds = nullptr;
  };
  static constexpr int kStatusCodes = 17;  // OK .. UNAUTHENTICATED
  static bool HasStatusCodeSlot(int code) { return code >= 0 && code < kStatusCodes; }
  RpcSeries AddRpcSeries(absl::string_view full_method, absl::string_view type,
                         int code);
  prometheus::Counter& DecisionCounter(int outcome, int source);

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> state_;
  prometheus::Family<prometheus::Counter>* handled_;
  prometheus::Family<prometheus::Histogram>* handling_seconds_;
  prometheus::Family<prometheus::Counter>* decisions_;
  prometheus::Counter* expired_;
  const Clock* const clock_;
  prometheus::Histogram* watch_send_lag_;
  absl::Mutex series_mu_;
  // Keyed by full method name; only methods a registered service defines,
  // so callers cannot grow it.
  absl::flat_hash_map<std::string, std::array<RpcSeries, kStatusCodes>> rpc_series_
      ABSL_GUARDED_BY(series_mu_);
  absl::flat_hash_map<std::pair<int, int>, prometheus::Counter*> decision_counters_
      ABSL_GUARDED_BY(series_mu_);
};

// The HTTP endpoint. Stops serving when destroyed.
class MetricsEndpoint {
 public:
  // Binds `address` (HOST:PORT; port 0 picks one). UNAVAILABLE if it cannot.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(const std::string& address,
                                                                const ServerMetrics& metrics);
  ~MetricsEndpoint();
  int port() const { return port_; }

 private:
  MetricsEndpoint() = default;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace air

#endif  // AIR_SERVICE_METRICS_H_
