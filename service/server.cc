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
#include "storage/postgres_repository.h"
#include "storage/sqlite_repository.h"

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
  ServerOptions options;
  // The hub is declared before the repository so that it outlives the
  // repository's writer thread, which publishes to it until it stops.
  std::unique_ptr<EventHub> hub;
  std::unique_ptr<Repository> repository;
  // PostgreSQL only: which replica runs sync, delivery and the expiry
  // sweeper. Null for SQLite (one process: always the leader).
  std::unique_ptr<PostgresLeaderElection> election;
  std::atomic<bool> leader{true};
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
  // Declared after the repository: its workers stop before the repository.
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

  absl::Mutex mu;
  bool shut_down ABSL_GUARDED_BY(mu) = false;
};

absl::StatusOr<std::unique_ptr<AirServer>> AirServer::Start(const ServerOptions& options) {
  auto parts = std::make_unique<Parts>();
  parts->options = options;

  const bool loopback = IsLoopbackAddress(options.listen_address);
  if (!loopback && (!options.tls.enabled() || options.tokens_file.empty())) {
    if (!options.allow_insecure) {
      return absl::FailedPreconditionError(absl::StrCat(
          "refusing to serve ", options.listen_address,
          " without TLS and authentication; configure --tls_cert/--tls_key and "
          "--tokens_file, or pass --allow_insecure to accept the risk"));
    }
    spdlog::critical(
        "INSECURE: serving {} without {}{}; anyone who reaches this port can "
        "read and decide remediation actions",
        options.listen_address, options.tls.enabled() ? "" : "TLS",
        options.tokens_file.empty() ? (options.tls.enabled() ? "authentication"
                                                             : " or authentication")
                                    : "");
  }
  if (!options.http_listen_address.empty() &&
      !IsLoopbackAddress(options.http_listen_address) &&
      (!options.tls.enabled() || options.tokens_file.empty())) {
    if (!options.allow_insecure) {
      return absl::FailedPreconditionError(absl::StrCat(
          "refusing to serve the web console on ", options.http_listen_address,
          " without TLS and authentication; configure --tls_cert/--tls_key and "
          "--tokens_file, or pass --allow_insecure to accept the risk"));
    }
    spdlog::critical(
        "INSECURE: serving the web console on {} without TLS or authentication; "
        "anyone who reaches this port can read and decide remediation actions",
        options.http_listen_address);
  }
  if (!options.tokens_file.empty()) {
    AIR_ASSIGN_OR_RETURN(parts->authenticator, Authenticator::Load(options.tokens_file));
    spdlog::info("authentication on: {} credentials loaded", parts->authenticator->size());
  }
  parts->access = std::make_unique<AccessControl>(parts->authenticator.get(), &parts->drain);
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (options.tls.enabled()) {
    AIR_ASSIGN_OR_RETURN(credentials, MakeTlsCredentials(options.tls));
  }

  const bool postgres = IsPostgresDatabase(options.db_path);
  PostgresRepository* postgres_repository = nullptr;
  if (postgres) {
    PostgresOptions db;
    db.conninfo = options.db_path;
    db.clock = options.clock;
    AIR_ASSIGN_OR_RETURN(std::unique_ptr<PostgresRepository> repository,
                         PostgresRepository::Open(db));
    postgres_repository = repository.get();
    parts->repository = std::move(repository);
    parts->leader = false;  // until the election says otherwise
  } else {
    SqliteOptions db;
    db.path = options.db_path;
    db.full_fsync = options.full_fsync;
    db.clock = options.clock;
    AIR_ASSIGN_OR_RETURN(parts->repository, SqliteRepository::Open(db));
  }

  AIR_ASSIGN_OR_RETURN(EventLogBounds bounds, parts->repository->GetEventLogBounds());
  parts->hub = std::make_unique<EventHub>(bounds.head);
  EventHub* hub = parts->hub.get();
  // Synced actions are where the decision policy bites: two-person rules
  // and automatic approvals apply to them as they arrive.
  UpstreamOptions upstream_options = options.upstream;
  upstream_options.sync.policy = &parts->options.policy;
  upstream_options.allow_insecure = options.allow_insecure;
  AIR_ASSIGN_OR_RETURN(parts->upstream,
                       UpstreamLink::Create(upstream_options, *parts->repository, options.clock,
                                            parts->access.get()));
  UpstreamLink* upstream = parts->upstream.get();
  parts->metrics = std::make_unique<ServerMetrics>(MetricsSources{
      parts->repository.get(), hub, &parts->upstream->monitor(), options.clock});
  ServerMetrics* metrics = parts->metrics.get();
  if (postgres_repository != nullptr) {
    // Every replica's hub gets every replica's events; counting and logging
    // a decision happens once, on the replica that committed it.
    postgres_repository->SetLocalCommitObserver([metrics](std::vector<v1::Event>& events) {
      metrics->OnCommit(events);
      LogCommittedDecisions(events);
    });
    parts->repository->SetCommitObserver([hub, upstream](std::vector<v1::Event>& events) {
      upstream->OnCommit(events);       // the leader delivers other replicas' decisions too
      hub->Publish(std::move(events));  // last: it takes the events
    });
  } else {
    parts->repository->SetCommitObserver(
        [hub, upstream, metrics](std::vector<v1::Event>& events) {
          upstream->OnCommit(events);
          metrics->OnCommit(events);
          LogCommittedDecisions(events);
          hub->Publish(std::move(events));  // last: it takes the events
        });
  }

  if (postgres_repository != nullptr) {
    // Streams served from this replica's memory cannot continue while the
    // database is gone: end them, so clients resume on another replica.
    postgres_repository->SetConnectionObserver([hub](const absl::Status& status) {
      if (status.ok()) {
        hub->Resume();
        return;
      }
      hub->Suspend(MakeError(
          absl::StatusCode::kUnavailable,
          "this server lost its database; resume from your last sequence on another server",
          v1::STORAGE_UNAVAILABLE));
    });
  }

  if (options.demo) {
    AIR_ASSIGN_OR_RETURN(int created, LoadDemoData(*parts->repository, options.action_ttl));
    spdlog::info("demo data: {} investigations created", created);
  }

  parts->sweeper = std::make_unique<ExpirySweeper>(*parts->repository);
  parts->retention = std::make_unique<EventRetention>(
      *parts->repository, options.event_retention, options.max_events);

  parts->investigation_service =
      std::make_unique<InvestigationServiceImpl>(*parts->repository, *parts->access);
  parts->action_service = std::make_unique<ActionServiceImpl>(
      *parts->repository, *parts->hub, *parts->access, options.watch_limits,
      [metrics](absl::Time commit_time) { metrics->RecordWatchSend(commit_time); });
  parts->operations_service =
      std::make_unique<OperationsServiceImpl>(options.db_path, *parts->access);
  parts->console_service =
      std::make_unique<ConsoleServiceImpl>(*parts->access, parts->authenticator != nullptr);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen_address, credentials, &parts->port);
  builder.RegisterService(parts->investigation_service.get());
  builder.RegisterService(parts->action_service.get());
  builder.RegisterService(parts->console_service.get());
  builder.RegisterService(parts->upstream->sync_service());
  builder.RegisterService(parts->operations_service.get());
  {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(parts->drain.NewInterceptorFactory());
    interceptors.push_back(parts->metrics->NewInterceptorFactory());
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
  parts->server = builder.BuildAndStart();
  if (parts->server == nullptr || parts->port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address,
                     " (address in use or not local?)"));
  }

  if (!options.health_listen.empty()) {
    grpc::ServerBuilder health_builder;
    health_builder.AddListeningPort(options.health_listen, grpc::InsecureServerCredentials(),
                                    &parts->health_port);
    parts->health_server = health_builder.BuildAndStart();
    if (parts->health_server == nullptr || parts->health_port == 0) {
      parts->server->Shutdown();
      return absl::UnavailableError(absl::StrCat(
          "cannot listen on ", options.health_listen, " (health_listen: address in use?)"));
    }
  }
  if (!options.metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
        MetricsEndpoint::Start(options.metrics_listen, *parts->metrics);
    if (!endpoint.ok()) {
      parts->server->Shutdown();
      if (parts->health_server) parts->health_server->Shutdown();
      return endpoint.status();
    }
    parts->metrics_endpoint = *std::move(endpoint);
    spdlog::info("metrics on http://{}/metrics (port {})", options.metrics_listen,
                 parts->metrics_endpoint->port());
  }
  if (!options.http_listen_address.empty()) {
    HttpGatewayOptions http;
    http.listen_address = options.http_listen_address;
    http.tls_cert_file = options.tls.cert_file;
    http.tls_key_file = options.tls.key_file;
    // Browsers sign in with tokens; client certificates are asked for only
    // when gRPC requires them too, so HTTP is never the weaker door.
    if (options.tls.require_client_cert) http.tls_client_ca_file = options.tls.client_ca_file;
    grpc::ChannelArguments channel_args;
    channel_args.SetMaxReceiveMessageSize(64 << 20);
    absl::StatusOr<std::unique_ptr<HttpGateway>> gateway =
        HttpGateway::Start(http, parts->server->InProcessChannel(channel_args));
    if (!gateway.ok()) {
      parts->hub->Shutdown();
      parts->server->Shutdown(std::chrono::system_clock::now());
      parts->server->Wait();
      if (parts->health_server) parts->health_server->Shutdown();
      return gateway.status();
    }
    parts->http = *std::move(gateway);
    spdlog::info("web console and JSON API on {} port {}",
                 options.tls.enabled() ? "HTTPS" : "HTTP", parts->http->port());
  }

  if (options.housekeeping_interval > absl::ZeroDuration()) {
    ExpirySweeper* sweeper = parts->sweeper.get();
    EventRetention* retention = parts->retention.get();
    std::atomic<bool>* leader = &parts->leader;
    parts->housekeeping = std::make_unique<PeriodicTask>(
        options.housekeeping_interval, [sweeper, retention, leader] {
          if (!leader->load()) return;  // another replica sweeps
          if (auto expired = sweeper->RunOnce(); !expired.ok()) {
            spdlog::warn("expiry sweep failed: {}", std::string(expired.status().message()));
          } else if (*expired > 0) {
            spdlog::info("expired {} pending actions", *expired);
          }
          if (auto pruned = retention->RunOnce(); !pruned.ok()) {
            spdlog::warn("event retention failed: {}", std::string(pruned.status().message()));
          }
        });
  }
  grpc::HealthCheckServiceInterface* health = parts->server->GetHealthCheckService();
  grpc::HealthCheckServiceInterface* probe_health =
      parts->health_server ? parts->health_server->GetHealthCheckService() : nullptr;
  parts->upstream->Start(
      [health, probe_health](bool serving) {
        health->SetServingStatus(kSyncHealthService, serving);
        if (probe_health != nullptr) probe_health->SetServingStatus(kSyncHealthService, serving);
      },
      /*run_workers=*/!postgres);
  if (postgres) {
    // Exactly one replica syncs, delivers decisions and expires actions: the
    // holder of a session advisory lock. If it dies, PostgreSQL drops the
    // lock with its session and another replica takes over at its next
    // attempt. A decision delivered but not yet marked when the leader died
    // is delivered again by the next one; the upstream deduplicates it by
    // request_id.
    PostgresLeaderElection::Options election;
    election.conninfo = options.db_path;
    election.retry_interval = options.leader_retry_interval;
    Parts* p = parts.get();
    parts->election = PostgresLeaderElection::Start(election, [p](bool leader) {
      p->leader = leader;
      p->upstream->SetLeader(leader);
    });
  }
  return std::unique_ptr<AirServer>(new AirServer(std::move(parts)));
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
  // The console's live views end first; it needs the gRPC server to do so.
  if (parts_->http) parts_->http->Stop();
  parts_->housekeeping.reset();
  // Leadership goes first, so another replica can take over at once.
  if (parts_->election) parts_->election->Stop();
  parts_->upstream->Stop();
  parts_->server->GetHealthCheckService()->Shutdown();
  if (parts_->health_server) parts_->health_server->GetHealthCheckService()->Shutdown();
  // New calls are refused with UNAVAILABLE from here on (service/call_drain.h);
  // streams end with UNAVAILABLE, so clients resume elsewhere; unary calls in
  // flight get `grace` to finish before the gRPC server shuts down.
  const absl::Time deadline = absl::Now() + grace;
  parts_->drain.BeginDraining();
  parts_->hub->Shutdown();
  if (!parts_->drain.AwaitIdle(deadline)) {
    spdlog::warn("shutdown: {} calls still running after the grace period",
                 parts_->drain.in_flight());
  }
  parts_->server->Shutdown(absl::ToChronoTime(deadline));
  parts_->server->Wait();
  if (parts_->health_server) {
    parts_->health_server->Shutdown(std::chrono::system_clock::now());
    parts_->health_server->Wait();
  }
  parts_->metrics_endpoint.reset();
}

void AirServer::Wait() { parts_->server->Wait(); }

Repository& AirServer::repository() { return *parts_->repository; }
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
