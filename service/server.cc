#include "service/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <atomic>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "domain/errors.h"
#include "domain/file_io.h"
#include "domain/status_macros.h"
#include "service/api_services.h"
#include "service/auth.h"
#include "service/call_drain.h"
#include "service/decision_log.h"
#include "service/demo_data.h"
#include "service/event_hub.h"
#include "service/housekeeping.h"
#include "service/metrics.h"
#include "service/operations_service.h"
#include "service/console_service.h"
#include "service/http_gateway.h"
#include "service/upstream_link.h"
#include "spdlog/spdlog.h"
#include "storage/storage.h"

namespace air {

absl::StatusOr<std::string> ReadPemFile(const std::string& path, absl::string_view what) {
  std::optional<std::string> text = ReadWholeFile(path);
  if (!text) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read the ", what, " ", path));
  }
  return *std::move(text);
}

namespace {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeTlsCredentials(
    const TlsOptions& tls) {
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  AIR_ASSIGN_OR_RETURN(pair.cert_chain, ReadPemFile(tls.cert_file, "TLS certificate"));
  AIR_ASSIGN_OR_RETURN(pair.private_key, ReadPemFile(tls.key_file, "TLS private key"));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!tls.client_ca_file.empty()) {
    AIR_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPemFile(tls.client_ca_file, "client CA"));
    ssl.client_certificate_request =
        tls.require_client_cert
            ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
            : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
  } else if (tls.require_client_cert) {
    return absl::FailedPreconditionError(
        "requiring client certificates needs a client CA (--tls_client_ca)");
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

bool IsLoopbackAddress(const std::string& listen_address) {
  absl::string_view host = listen_address;
  if (absl::ConsumePrefix(&host, "[")) {
    host = host.substr(0, host.find(']'));
  } else if (size_t colon = host.rfind(':'); colon != absl::string_view::npos) {
    host = host.substr(0, colon);
  }
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

struct AirServer::Parts {
  explicit Parts(const ServerOptions& server_options) : options(server_options) {}

  // Each step builds one part; Start runs them in order and, if one fails,
  // tears down what was built through the same path as Shutdown.
  absl::Status CheckExposure() const;
  absl::Status OpenStorage();
  void ConnectCommitStream();
  absl::Status StartServices();
  absl::Status StartGrpc();
  absl::Status StartSideListeners();
  void StartBackgroundWork();
  void Teardown(absl::Duration grace);

  ServerOptions options;
  // The hub is declared before the storage so that it outlives the storage's
  // writer, which publishes to it until it stops.
  std::unique_ptr<EventHub> hub;
  std::unique_ptr<Storage> storage;
  std::atomic<bool> leader{false};
  std::unique_ptr<Authenticator> authenticator;  // null: auth disabled
  // Declared before everything that handles calls: refuses new calls during
  // shutdown and counts the ones in flight.
  CallDrain drain;
  std::unique_ptr<AccessControl> access;
  std::unique_ptr<InvestigationServiceImpl> investigation_service;
  std::unique_ptr<ActionServiceImpl> action_service;
  std::unique_ptr<OperationsServiceImpl> operations_service;
  std::unique_ptr<ConsoleServiceImpl> console_service;
  std::unique_ptr<ExpirySweeper> sweeper;
  std::unique_ptr<EventRetention> retention;
  // Declared after the storage: its workers stop before the storage.
  std::unique_ptr<UpstreamLink> upstream;
  std::unique_ptr<PeriodicTask> housekeeping;
  std::unique_ptr<ServerMetrics> metrics;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  // The plaintext health-only listener (null without health_listen).
  std::unique_ptr<grpc::Server> health_server;
  int health_port = 0;
  // Declared last: stops serving scrapes before anything they read goes.
  std::unique_ptr<MetricsEndpoint> metrics_endpoint;
  // The web console; reaches the services through `server`'s in-process
  // channel, so it is stopped before `server`.
  std::unique_ptr<HttpGateway> http;
  // Which process runs sync, delivery and the expiry sweeper.
  std::unique_ptr<LeaderElection> election;

  absl::Mutex mu;
  bool shut_down ABSL_GUARDED_BY(mu) = false;
};

absl::StatusOr<std::unique_ptr<AirServer>> AirServer::Start(const ServerOptions& options) {
  auto parts = std::make_unique<Parts>(options);
  absl::Status started = parts->CheckExposure();
  if (started.ok()) started = parts->OpenStorage();
  if (started.ok()) started = parts->StartServices();
  if (started.ok()) started = parts->StartGrpc();
  if (started.ok()) started = parts->StartSideListeners();
  if (!started.ok()) {
    parts->Teardown(absl::ZeroDuration());
    return started;
  }
  parts->StartBackgroundWork();
  return std::unique_ptr<AirServer>(new AirServer(std::move(parts)));
}

// A non-loopback listener needs TLS and authentication, unless the operator
// accepted the risk.
absl::Status AirServer::Parts::CheckExposure() const {
  const bool secured = options.tls.enabled() && !options.tokens_file.empty();
  for (const auto& [address, what] :
       {std::pair<std::string, std::string>{options.listen_address, ""},
        {options.http_listen_address, "the web console on "}}) {
    if (address.empty() || IsLoopbackAddress(address) || secured) continue;
    if (!options.allow_insecure) {
      return absl::FailedPreconditionError(absl::StrCat(
          "refusing to serve ", what, address,
          " without TLS and authentication; configure --tls_cert/--tls_key and "
          "--tokens_file, or pass --allow_insecure to accept the risk"));
    }
    spdlog::critical(
        "INSECURE: serving {}{} without {}; anyone who reaches this port can read and "
        "decide remediation actions",
        what, address,
        !options.tls.enabled() && options.tokens_file.empty() ? "TLS or authentication"
        : !options.tls.enabled()                              ? "TLS"
                                                              : "authentication");
  }
  return absl::OkStatus();
}

absl::Status AirServer::Parts::OpenStorage() {
  StorageOptions db;
  db.database = options.db_path;
  db.full_fsync = options.full_fsync;
  db.clock = options.clock;
  AIR_ASSIGN_OR_RETURN(storage, Storage::Open(db));
  AIR_ASSIGN_OR_RETURN(EventLogBounds bounds, storage->events().GetEventLogBounds());
  hub = std::make_unique<EventHub>(bounds.head);
  return absl::OkStatus();
}

// Every commit's events reach the hub and the upstream link (the leader
// delivers every process's decisions); counting and logging a decision
// happens once, in the process that committed it. Streams served from this
// process's memory cannot go on while its database is gone: they end, so
// that clients resume on another replica.
void AirServer::Parts::ConnectCommitStream() {
  ServerMetrics* counter = metrics.get();
  storage->SetLocalCommitObserver([counter](const std::vector<v1::Event>& events) {
    counter->OnCommit(events);
    LogCommittedDecisions(events);
  });
  EventHub* to_hub = hub.get();
  UpstreamLink* link = upstream.get();
  storage->SetCommitObserver([to_hub, link](std::vector<v1::Event>& events) {
    link->OnCommit(events);
    to_hub->Publish(std::move(events));  // last: it takes the events
  });
  storage->SetConnectionObserver([to_hub](const absl::Status& status) {
    if (status.ok()) {
      to_hub->Resume();
      return;
    }
    to_hub->Suspend(MakeError(
        absl::StatusCode::kUnavailable,
        "this server lost its database; resume from your last sequence on another server",
        v1::STORAGE_UNAVAILABLE));
  });
}

absl::Status AirServer::Parts::StartServices() {
  if (!options.tokens_file.empty()) {
    AIR_ASSIGN_OR_RETURN(authenticator, Authenticator::Load(options.tokens_file));
    spdlog::info("authentication on: {} credentials loaded", authenticator->size());
  }
  access = std::make_unique<AccessControl>(authenticator.get(), &drain);
  // Synced actions are where the decision policy bites: two-person rules
  // and automatic approvals apply to them as they arrive.
  UpstreamOptions upstream_options = options.upstream;
  upstream_options.sync.policy = &options.policy;
  upstream_options.allow_insecure = options.allow_insecure;
  AIR_ASSIGN_OR_RETURN(upstream, UpstreamLink::Create(upstream_options, *storage, options.clock,
                                                      access.get()));
  metrics = std::make_unique<ServerMetrics>(
      MetricsSources{storage.get(), hub.get(), &upstream->monitor(), options.clock});
  ConnectCommitStream();
  if (options.demo) {
    AIR_ASSIGN_OR_RETURN(int created, LoadDemoData(storage->actions(), storage->writer(), options.action_ttl));
    spdlog::info("demo data: {} investigations created", created);
  }
  sweeper = std::make_unique<ExpirySweeper>(storage->writer());
  retention = std::make_unique<EventRetention>(storage->writer(), options.event_retention,
                                               options.max_events);
  investigation_service = std::make_unique<InvestigationServiceImpl>(*storage, *access);
  ServerMetrics* counter = metrics.get();
  action_service = std::make_unique<ActionServiceImpl>(
      *storage, *hub, *access, options.watch_limits,
      [counter](absl::Time commit_time) { counter->RecordWatchSend(commit_time); });
  operations_service = std::make_unique<OperationsServiceImpl>(storage->backup(), *access);
  console_service = std::make_unique<ConsoleServiceImpl>(*access, authenticator != nullptr);
  return absl::OkStatus();
}

absl::Status AirServer::Parts::StartGrpc() {
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (options.tls.enabled()) {
    AIR_ASSIGN_OR_RETURN(credentials, MakeTlsCredentials(options.tls));
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen_address, credentials, &port);
  builder.RegisterService(investigation_service.get());
  builder.RegisterService(action_service.get());
  builder.RegisterService(console_service.get());
  builder.RegisterService(upstream->sync_service());
  builder.RegisterService(operations_service.get());
  {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(drain.NewInterceptorFactory());
    interceptors.push_back(metrics->NewInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
  }
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_time)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  if (options.max_connection_age > absl::ZeroDuration()) {
    builder.AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_AGE_MS,
        static_cast<int>(absl::ToInt64Milliseconds(options.max_connection_age)));
  }
  server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address,
                     " (address in use or not local?)"));
  }

  return absl::OkStatus();
}

absl::Status AirServer::Parts::StartSideListeners() {
  if (!options.health_listen.empty()) {
    grpc::ServerBuilder health_builder;
    health_builder.AddListeningPort(options.health_listen, grpc::InsecureServerCredentials(),
                                    &health_port);
    health_server = health_builder.BuildAndStart();
    if (health_server == nullptr || health_port == 0) {
      return absl::UnavailableError(absl::StrCat(
          "cannot listen on ", options.health_listen, " (health_listen: address in use?)"));
    }
  }
  if (!options.metrics_listen.empty()) {
    AIR_ASSIGN_OR_RETURN(metrics_endpoint, MetricsEndpoint::Start(options.metrics_listen, *metrics));
    spdlog::info("metrics on http://{}/metrics (port {})", options.metrics_listen,
                 metrics_endpoint->port());
  }
  if (!options.http_listen_address.empty()) {
    HttpGatewayOptions http_options;
    http_options.listen_address = options.http_listen_address;
    http_options.tls_cert_file = options.tls.cert_file;
    http_options.tls_key_file = options.tls.key_file;
    // Browsers sign in with tokens; client certificates are asked for only
    // when gRPC requires them too, so HTTP is never the weaker door.
    if (options.tls.require_client_cert) {
      http_options.tls_client_ca_file = options.tls.client_ca_file;
    }
    grpc::ChannelArguments channel_args;
    channel_args.SetMaxReceiveMessageSize(64 << 20);
    AIR_ASSIGN_OR_RETURN(http,
                         HttpGateway::Start(http_options, server->InProcessChannel(channel_args)));
    spdlog::info("web console and JSON API on {} port {}",
                 options.tls.enabled() ? "HTTPS" : "HTTP", http->port());
  }
  return absl::OkStatus();
}

// Housekeeping, the upstream link and leadership: exactly one process
// syncs, delivers decisions and expires actions. With several replicas, if
// the leader dies another takes over at its next attempt; a decision
// delivered but not yet marked is delivered again, and the upstream
// deduplicates it by request_id.
void AirServer::Parts::StartBackgroundWork() {
  if (options.housekeeping_interval > absl::ZeroDuration()) {
    ExpirySweeper* sweep = sweeper.get();
    EventRetention* prune = retention.get();
    std::atomic<bool>* leads = &leader;
    housekeeping = std::make_unique<PeriodicTask>(
        options.housekeeping_interval, [sweep, prune, leads] {
          if (!leads->load()) return;  // another replica sweeps
          if (auto expired = sweep->RunOnce(); !expired.ok()) {
            spdlog::warn("expiry sweep failed: {}", std::string(expired.status().message()));
          } else if (*expired > 0) {
            spdlog::info("expired {} pending actions", *expired);
          }
          if (auto pruned = prune->RunOnce(); !pruned.ok()) {
            spdlog::warn("event retention failed: {}", std::string(pruned.status().message()));
          }
        });
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  grpc::HealthCheckServiceInterface* probe_health =
      health_server ? health_server->GetHealthCheckService() : nullptr;
  upstream->Start(
      [health, probe_health](bool serving) {
        health->SetServingStatus(kSyncHealthService, serving);
        if (probe_health != nullptr) probe_health->SetServingStatus(kSyncHealthService, serving);
      },
      /*run_workers=*/false);
  election = storage->StartLeaderElection(options.leader_retry_interval, [this](bool leads) {
    leader = leads;
    upstream->SetLeader(leads);
  });
}

// Stops what was started, in this order, whether Start failed halfway or
// the server is shutting down: the console's live views (they need the
// gRPC server), background work and leadership (so another replica can take
// over at once), health, then new calls are refused and streams end with
// UNAVAILABLE so clients resume elsewhere; unary calls in flight get
// `grace` to finish before the gRPC server stops.
void AirServer::Parts::Teardown(absl::Duration grace) {
  if (http) http->Stop();
  housekeeping.reset();
  if (election) election->Stop();
  if (upstream) upstream->Stop();
  if (server) server->GetHealthCheckService()->Shutdown();
  if (health_server) health_server->GetHealthCheckService()->Shutdown();
  const absl::Time deadline = absl::Now() + grace;
  drain.BeginDraining();
  if (hub) hub->Shutdown();
  if (!drain.AwaitIdle(deadline)) {
    spdlog::warn("shutdown: {} calls still running after the grace period", drain.in_flight());
  }
  if (server) {
    server->Shutdown(absl::ToChronoTime(deadline));
    server->Wait();
  }
  if (health_server) {
    health_server->Shutdown(std::chrono::system_clock::now());
    health_server->Wait();
  }
  metrics_endpoint.reset();
  // Writes still queued commit as the storage closes; nothing that the
  // observers reach is needed for them any more.
  if (storage) {
    storage->SetCommitObserver(nullptr);
    storage->SetLocalCommitObserver(nullptr);
    storage->SetConnectionObserver(nullptr);
  }
}

AirServer::AirServer(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

AirServer::~AirServer() { Shutdown(absl::Seconds(1)); }

int AirServer::port() const { return parts_->port; }
int AirServer::health_port() const { return parts_->health_port; }
int AirServer::metrics_port() const {
  return parts_->metrics_endpoint ? parts_->metrics_endpoint->port() : 0;
}
ServerMetrics& AirServer::metrics() { return *parts_->metrics; }

int AirServer::http_port() const { return parts_->http ? parts_->http->port() : 0; }

void AirServer::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&parts_->mu);
    if (parts_->shut_down) return;
    parts_->shut_down = true;
  }
  parts_->Teardown(grace);
}

void AirServer::Wait() { parts_->server->Wait(); }

Storage& AirServer::storage() { return *parts_->storage; }
EventHub& AirServer::hub() { return *parts_->hub; }
ExpirySweeper& AirServer::expiry_sweeper() { return *parts_->sweeper; }
EventRetention& AirServer::event_retention() { return *parts_->retention; }
UpstreamLink& AirServer::upstream() { return *parts_->upstream; }
bool AirServer::is_leader() const { return parts_->leader.load(); }

absl::Status AirServer::ReloadTokens() {
  if (parts_->authenticator == nullptr) return absl::OkStatus();
  return parts_->authenticator->Reload();
}

}  // namespace air
