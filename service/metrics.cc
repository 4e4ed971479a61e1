#include "service/metrics.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/server_context.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <exception>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "air/v1/action.pb.h"
#include "air/v1/sync_service.pb.h"
#include "domain/lifecycle.h"
#include "service/event_hub.h"
#include "service/logging.h"
#include "service/sync_monitor.h"
#include "storage/storage.h"

namespace air {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Latency buckets, seconds: a decision commits in about a millisecond; a
// slow disk or a long watch lands in the top buckets.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *buckets;
}

// "OUTCOME_APPROVED" -> "approved".
std::string Short(const std::string& enum_name, absl::string_view prefix) {
  absl::string_view name = enum_name;
  if (absl::StartsWith(name, prefix)) name.remove_prefix(prefix.size());
  return absl::AsciiStrToLower(name);
}

// Services served besides our generated ones (grpc++ implements them with
// its own descriptors).
bool IsKnownBuiltinMethod(absl::string_view service, absl::string_view method) {
  if (service == "grpc.health.v1.Health") return method == "Check" || method == "Watch";
  if (service == "grpc.reflection.v1alpha.ServerReflection" ||
      service == "grpc.reflection.v1.ServerReflection") {
    return method == "ServerReflectionInfo";
  }
  return false;
}

MetricFamily Family(const std::string& name, const std::string& help, MetricType type) {
  MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  return family;
}

void AddGauge(MetricFamily& family, double value,
              std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric metric;
  metric.label = std::move(labels);
  metric.gauge.value = value;
  family.metric.push_back(std::move(metric));
}

// Gauges computed when Prometheus scrapes.
class StateCollector final : public prometheus::Collectable {
 public:
  explicit StateCollector(MetricsSources sources)
      : sources_(sources),
        clock_(sources.clock != nullptr ? sources.clock : SystemClock::Get()) {}

  std::vector<MetricFamily> Collect() const override {
    std::vector<MetricFamily> out;
    const absl::Time now = clock_->Now();
    if (sources_.storage != nullptr) {
      absl::StatusOr<PendingStats> stats = sources_.storage->actions().GetPendingStats();
      if (stats.ok()) {
        MetricFamily pending = Family("aird_pending_actions",
                                      "Actions waiting for a decision, by action type.",
                                      MetricType::Gauge);
        const auto* types = v1::ActionType_descriptor();
        for (int i = 0; i < types->value_count(); ++i) {
          const auto type = static_cast<v1::ActionType>(types->value(i)->number());
          if (type == v1::ACTION_TYPE_UNSPECIFIED) continue;
          auto it = stats->by_type.find(type);
          AddGauge(pending, it == stats->by_type.end() ? 0 : it->second,
                   {{"type", Short(types->value(i)->name(), "ACTION_TYPE_")}});
        }
        out.push_back(std::move(pending));
        MetricFamily oldest = Family(
            "aird_oldest_pending_action_age_seconds",
            "Age of the oldest pending action (0 when none is pending).", MetricType::Gauge);
        AddGauge(oldest, stats->oldest_create_time
                             ? std::max(0.0, absl::ToDoubleSeconds(
                                                 now - *stats->oldest_create_time))
                             : 0.0);
        out.push_back(std::move(oldest));
      } else {
        spdlog::warn("metrics: store gauges unavailable: {}",
                     std::string(stats.status().message()));
      }
      for (const StorageGauge& gauge : sources_.storage->ReadGauges()) {
        MetricFamily family = Family(gauge.name, gauge.help, MetricType::Gauge);
        AddGauge(family, gauge.value);
        out.push_back(std::move(family));
      }
      absl::StatusOr<EventLogBounds> bounds = sources_.storage->events().GetEventLogBounds();
      if (bounds.ok()) {
        MetricFamily head = Family("aird_event_log_head_sequence",
                                   "Sequence of the last committed event.", MetricType::Gauge);
        AddGauge(head, static_cast<double>(bounds->head));
        out.push_back(std::move(head));
        MetricFamily retained =
            Family("aird_event_log_retained_events",
                   "Events kept for resuming watches.", MetricType::Gauge);
        AddGauge(retained,
                 static_cast<double>(std::max<int64_t>(0, bounds->head - bounds->first_retained + 1)));
        out.push_back(std::move(retained));
      }
      absl::StatusOr<DecisionOutboxStats> outbox = sources_.storage->outbox().GetDecisionOutboxStats();
      if (outbox.ok()) {
        MetricFamily backlog = Family(
            "aird_decision_outbox_backlog",
            "Decisions committed locally and not yet acknowledged by the upstream.",
            MetricType::Gauge);
        AddGauge(backlog, static_cast<double>(outbox->backlog));
        out.push_back(std::move(backlog));
        MetricFamily age = Family(
            "aird_decision_outbox_oldest_age_seconds",
            "Age of the oldest undelivered decision (0 when none).", MetricType::Gauge);
        AddGauge(age, outbox->oldest_undelivered
                          ? std::max(0.0, absl::ToDoubleSeconds(now - *outbox->oldest_undelivered))
                          : 0.0);
        out.push_back(std::move(age));
        if (sources_.sync != nullptr) {
          const v1::SyncStatus status = sources_.sync->Snapshot(*outbox);
          MetricFamily lag = Family(
              "aird_sync_lag_seconds",
              "How far behind the upstream aird may be (0 when caught up or disabled).",
              MetricType::Gauge);
          AddGauge(lag, static_cast<double>(status.lag().seconds()) +
                            status.lag().nanos() / 1e9);
          out.push_back(std::move(lag));
          MetricFamily state = Family(
              "aird_sync_state", "Upstream sync state: 1 for the current state, 0 otherwise.",
              MetricType::Gauge);
          const auto* states = v1::SyncStatus::State_descriptor();
          for (int i = 0; i < states->value_count(); ++i) {
            if (states->value(i)->number() == 0) continue;
            AddGauge(state, states->value(i)->number() == status.state() ? 1 : 0,
                     {{"state", Short(states->value(i)->name(), "STATE_")}});
          }
          out.push_back(std::move(state));
          MetricFamily failures = Family(
              "aird_sync_consecutive_failures",
              "Failed upstream attempts since the last success, by kind.", MetricType::Gauge);
          AddGauge(failures, status.consecutive_sync_failures(), {{"kind", "sync"}});
          AddGauge(failures, status.consecutive_delivery_failures(), {{"kind", "delivery"}});
          out.push_back(std::move(failures));
        }
      }
    }
    if (sources_.hub != nullptr) {
      MetricFamily subscribers = Family("aird_watch_subscribers",
                                        "WatchActions streams connected.", MetricType::Gauge);
      AddGauge(subscribers, static_cast<double>(sources_.hub->subscriber_count()));
      out.push_back(std::move(subscribers));
    }
    return out;
  }

 private:
  const MetricsSources sources_;
  const Clock* const clock_;
};

std::string TypeName(grpc::experimental::ServerRpcInfo::Type type) {
  using Type = grpc::experimental::ServerRpcInfo::Type;
  switch (type) {
    case Type::UNARY: return "unary";
    case Type::CLIENT_STREAMING: return "client_stream";
    case Type::SERVER_STREAMING: return "server_stream";
    case Type::BIDI_STREAMING: return "bidi_stream";
  }
  return "unknown";
}

// Times one RPC from its start to the status it sends, and logs it.
class RpcInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcInterceptor(ServerMetrics* metrics, grpc::experimental::ServerRpcInfo* info)
      : metrics_(metrics),
        info_(info),
        method_(info->method() != nullptr ? info->method() : ""),
        start_(absl::Now()) {}

  ~RpcInterceptor() override {
    // No status was sent (the call was cancelled first).
    if (!recorded_) Record(grpc::StatusCode::CANCELLED);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      Record(methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  void Record(grpc::StatusCode code) {
    recorded_ = true;
    const absl::Duration latency = absl::Now() - start_;
    metrics_->RecordRpc(method_, TypeName(info_->type()), code, latency);
    spdlog::level::level_enum level = spdlog::level::debug;
    switch (code) {
      case grpc::StatusCode::UNAUTHENTICATED:
      case grpc::StatusCode::PERMISSION_DENIED:
        level = spdlog::level::warn;  // security-relevant: who tried what
        break;
      case grpc::StatusCode::INTERNAL:
      case grpc::StatusCode::UNKNOWN:
      case grpc::StatusCode::DATA_LOSS:
        level = spdlog::level::err;
        break;
      default:
        break;
    }
    if (!spdlog::default_logger_raw()->should_log(level)) return;
    const std::string code_name =
        absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
    LogFields fields = {
        {"method", method_},
        {"code", code_name},
        {"duration_ms", absl::StrCat(absl::ToDoubleMilliseconds(latency))},
    };
    if (info_->server_context() != nullptr) {
      fields.push_back({"peer", info_->server_context()->peer()});
    }
    LogEvent(level, "rpc", absl::StrCat(method_, " ", code_name), fields);
  }

  ServerMetrics* const metrics_;
  grpc::experimental::ServerRpcInfo* const info_;
  const std::string method_;
  const absl::Time start_;
  bool recorded_ = false;
};

class RpcInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcInterceptorFactory(ServerMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RpcInterceptor(metrics_, info);
  }

 private:
  ServerMetrics* const metrics_;
};

}  // namespace

ServerMetrics::ServerMetrics(MetricsSources sources)
    : registry_(std::make_shared<prometheus::Registry>()),
      state_(std::make_shared<StateCollector>(sources)),
      clock_(sources.clock != nullptr ? sources.clock : SystemClock::Get()) {
  handled_ = &prometheus::BuildCounter()
                  .Name("grpc_server_handled_total")
                  .Help("RPCs completed on the server, by service, method, type and code.")
                  .Register(*registry_);
  handling_seconds_ =
      &prometheus::BuildHistogram()
           .Name("grpc_server_handling_seconds")
           .Help("Time from the start of an RPC to its status, by service, method and code.")
           .Register(*registry_);
  decisions_ = &prometheus::BuildCounter()
                    .Name("aird_decisions_total")
                    .Help("Committed decisions by outcome and source (api, policy, expiry, "
                          "upstream); partial two-person approvals are not counted.")
                    .Register(*registry_);
  expired_ = &prometheus::BuildCounter()
                  .Name("aird_actions_expired_total")
                  .Help("Pending actions that expired undecided.")
                  .Register(*registry_)
                  .Add({});
  // From an event's commit until a stream hands it to gRPC: a millisecond or
  // so for a caught-up subscriber, tens of milliseconds when one commit fans
  // out to a thousand streams (finer buckets around the 50 ms target of
  // docs/benchmarks.md), minutes for a stream catching up after a stall or a
  // resume. Transport time after the hand-off is not in it.
  watch_send_lag_ =
      &prometheus::BuildHistogram()
           .Name("aird_watch_send_lag_seconds")
           .Help("Time from an event's commit until a WatchActions stream starts "
                 "sending it, per stream (catch-up included).")
           .Register(*registry_)
           .Add({}, prometheus::Histogram::BucketBoundaries{
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075,
                        0.1, 0.25, 0.5, 1, 5, 30, 60, 300});
}

ServerMetrics::~ServerMetrics() = default;

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
ServerMetrics::NewInterceptorFactory() {
  return std::make_unique<RpcInterceptorFactory>(this);
}

void ServerMetrics::RecordRpc(absl::string_view full_method, absl::string_view type, int code,
                              absl::Duration latency) {
  const double seconds = absl::ToDoubleSeconds(latency);
  if (HasStatusCodeSlot(code)) {
    absl::MutexLock lock(&series_mu_);
    auto it = rpc_series_.find(full_method);
    if (it != rpc_series_.end() && it->second[code].handled != nullptr) {
      it->second[code].handled->Increment();
      it->second[code].handling_seconds->Observe(seconds);
      return;
    }
  }
  const RpcSeries series = AddRpcSeries(full_method, type, code);
  series.handled->Increment();
  series.handling_seconds->Observe(seconds);
}

ServerMetrics::RpcSeries ServerMetrics::AddRpcSeries(absl::string_view full_method,
                                                     absl::string_view type, int code) {
  absl::string_view path = full_method;
  absl::ConsumePrefix(&path, "/");
  const size_t slash = path.find('/');
  std::string service = "unknown";
  std::string method = "unknown";
  if (slash != absl::string_view::npos) {
    const absl::string_view s = path.substr(0, slash);
    const absl::string_view m = path.substr(slash + 1);
    if (IsKnownBuiltinMethod(s, m) ||
        google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
            absl::StrCat(s, ".", m)) != nullptr) {
      service = std::string(s);
      method = std::string(m);
    }
  }
  const std::string code_name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  RpcSeries series;
  series.handled = &handled_->Add({{"grpc_service", service},
                                   {"grpc_method", method},
                                   {"grpc_type", std::string(type)},
                                   {"grpc_code", code_name}});
  series.handling_seconds = &handling_seconds_->Add(
      {{"grpc_service", service}, {"grpc_method", method}, {"grpc_code", code_name}},
      LatencyBuckets());
  if (service != "unknown" && HasStatusCodeSlot(code)) {
    absl::MutexLock lock(&series_mu_);
    rpc_series_[full_method][code] = series;
  }
  return series;
}

prometheus::Counter& ServerMetrics::DecisionCounter(int outcome, int source) {
  absl::MutexLock lock(&series_mu_);
  prometheus::Counter*& counter = decision_counters_[{outcome, source}];
  if (counter == nullptr) {
    counter = &decisions_->Add(
        {{"outcome", Short(v1::Decision::Outcome_Name(
                               static_cast<v1::Decision::Outcome>(outcome)),
                           "OUTCOME_")},
         {"source", Short(v1::Decision::Source_Name(static_cast<v1::Decision::Source>(source)),
                          "SOURCE_")}});
  }
  return *counter;
}

void ServerMetrics::OnCommit(const std::vector<v1::Event>& events) {
  for (const v1::Event& event : events) {
    switch (event.type()) {
      case v1::Event::TYPE_ACTION_EXPIRED:
        expired_->Increment();
        [[fallthrough]];
      case v1::Event::TYPE_ACTION_APPROVED:
      case v1::Event::TYPE_ACTION_REJECTED: {
        const v1::Decision& decision = event.action().decision();
        DecisionCounter(decision.outcome(), decision.source()).Increment();
        break;
      }
      default:
        break;
    }
  }
}

void ServerMetrics::RecordWatchSend(absl::Time commit_time) {
  // Clocks step: a negative lag counts as none.
  const absl::Duration lag = std::max(clock_->Now() - commit_time, absl::ZeroDuration());
  watch_send_lag_->Observe(absl::ToDoubleSeconds(lag));
}

std::string ServerMetrics::Render() const {
  std::vector<MetricFamily> families = registry_->Collect();
  for (MetricFamily& family : state_->Collect()) families.push_back(std::move(family));
  return prometheus::TextSerializer().Serialize(families);
}

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& address, const ServerMetrics& metrics) {
  auto endpoint = std::unique_ptr<MetricsEndpoint>(new MetricsEndpoint());
  try {
    endpoint->exposer_ = std::make_unique<prometheus::Exposer>(address, /*num_threads=*/2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(
        "cannot serve metrics on ", address, " (address in use or not local?)"));
  }
  endpoint->exposer_->RegisterCollectable(metrics.registry());
  endpoint->exposer_->RegisterCollectable(metrics.state_collector());
  const std::vector<int> ports = endpoint->exposer_->GetListeningPorts();
  endpoint->port_ = ports.empty() ? 0 : ports.front();
  return endpoint;
}

MetricsEndpoint::~MetricsEndpoint() = default;

}  // namespace air
