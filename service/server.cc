#include "service/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "domain/status_macros.h"
#include "service/api_services.h"
#include "service/demo_data.h"
#include "service/event_hub.h"
#include "service/housekeeping.h"
#include "spdlog/spdlog.h"
#include "storage/sqlite_repository.h"

namespace air {

struct AirServer::Parts {
  ServerOptions options;
  // The hub is declared before the repository so that it outlives the
  // repository's writer thread, which publishes to it until it stops.
  std::unique_ptr<EventHub> hub;
  std::unique_ptr<SqliteRepository> repository;
  std::unique_ptr<InvestigationServiceImpl> investigation_service;
  std::unique_ptr<ActionServiceImpl> action_service;
  std::unique_ptr<ExpirySweeper> sweeper;
  std::unique_ptr<EventRetention> retention;
  std::unique_ptr<PeriodicTask> housekeeping;
  std::unique_ptr<grpc::Server> server;
  int port = 0;

  absl::Mutex mu;
  bool shut_down ABSL_GUARDED_BY(mu) = false;
};

absl::StatusOr<std::unique_ptr<AirServer>> AirServer::Start(const ServerOptions& options) {
  auto parts = std::make_unique<Parts>();
  parts->options = options;

  SqliteOptions db;
  db.path = options.db_path;
  db.full_fsync = options.full_fsync;
  db.clock = options.clock;
  AIR_ASSIGN_OR_RETURN(parts->repository, SqliteRepository::Open(db));

  AIR_ASSIGN_OR_RETURN(EventLogBounds bounds, parts->repository->GetEventLogBounds());
  parts->hub = std::make_unique<EventHub>(bounds.head);
  EventHub* hub = parts->hub.get();
  parts->repository->SetCommitObserver(
      [hub](const std::vector<v1::Event>& events) { hub->Publish(events); });

  if (options.demo) {
    AIR_ASSIGN_OR_RETURN(int created, LoadDemoData(*parts->repository, options.action_ttl));
    spdlog::info("demo data: {} investigations created", created);
  }

  parts->sweeper = std::make_unique<ExpirySweeper>(*parts->repository);
  parts->retention = std::make_unique<EventRetention>(
      *parts->repository, options.event_retention, options.max_events);

  parts->investigation_service =
      std::make_unique<InvestigationServiceImpl>(*parts->repository);
  parts->action_service = std::make_unique<ActionServiceImpl>(
      *parts->repository, *parts->hub, options.watch_limits);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen_address, grpc::InsecureServerCredentials(),
                           &parts->port);
  builder.RegisterService(parts->investigation_service.get());
  builder.RegisterService(parts->action_service.get());
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

  if (options.housekeeping_interval > absl::ZeroDuration()) {
    ExpirySweeper* sweeper = parts->sweeper.get();
    EventRetention* retention = parts->retention.get();
    parts->housekeeping = std::make_unique<PeriodicTask>(
        options.housekeeping_interval, [sweeper, retention] {
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
  return std::unique_ptr<AirServer>(new AirServer(std::move(parts)));
}

AirServer::AirServer(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

AirServer::~AirServer() { Shutdown(absl::Seconds(1)); }

int AirServer::port() const { return parts_->port; }

void AirServer::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&parts_->mu);
    if (parts_->shut_down) return;
    parts_->shut_down = true;
  }
  parts_->housekeeping.reset();
  parts_->server->GetHealthCheckService()->Shutdown();
  // Streams end with UNAVAILABLE first, so clients resume elsewhere; unary
  // calls in flight get `grace` to finish.
  parts_->hub->Shutdown();
  parts_->server->Shutdown(std::chrono::system_clock::now() +
                           absl::ToChronoMilliseconds(grace));
  parts_->server->Wait();
}

void AirServer::Wait() { parts_->server->Wait(); }

Repository& AirServer::repository() { return *parts_->repository; }
EventHub& AirServer::hub() { return *parts_->hub; }
ExpirySweeper& AirServer::expiry_sweeper() { return *parts_->sweeper; }
EventRetention& AirServer::event_retention() { return *parts_->retention; }

}  // namespace air
