#include "sim/sim_server.h"

#include <optional>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "domain/file_io.h"
#include "domain/status_macros.h"
#include "google/rpc/status.pb.h"

namespace air::sim {
namespace {

// The simulator's errors carry ErrorInfo payloads like aird's own; send
// them as google.rpc.Status details so clients see the reason.
grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  google::rpc::Status rpc;
  rpc.set_code(static_cast<int>(status.code()));
  rpc.set_message(std::string(status.message()));
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    auto* detail = rpc.add_details();
    detail->set_type_url(std::string(url));
    detail->set_value(std::string(payload));
  });
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()), rpc.SerializeAsString());
}

// A PEM file for the TLS listener; an empty one is refused too.
absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::optional<std::string> text = ReadWholeFile(path);
  if (!text) return absl::FailedPreconditionError("cannot read " + path);
  if (text->empty()) return absl::FailedPreconditionError("cannot read " + path + " (or it is empty)");
  return *std::move(text);
}

}  // namespace

void UpstreamSimService::AddLatency() {
  const SimulatorFaults faults = simulator_.faults();
  absl::Duration delay = faults.latency;
  if (faults.latency_jitter > absl::ZeroDuration()) {
    thread_local std::mt19937_64 random(std::random_device{}());
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    delay += faults.latency_jitter * unit(random);
  }
  if (delay > absl::ZeroDuration()) absl::SleepFor(delay);
}

grpc::Status UpstreamSimService::CheckToken(const grpc::ServerContext& context) const {
  if (required_token_.empty()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end() ||
      absl::string_view(it->second.data(), it->second.size()) !=
          absl::StrCat("Bearer ", required_token_)) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "a valid bearer token is required");
  }
  return grpc::Status::OK;
}

grpc::Status UpstreamSimService::ListChanges(grpc::ServerContext* context,
                                             const upstream::v1::ListChangesRequest* request,
                                             upstream::v1::ListChangesResponse* response) {
  if (grpc::Status s = CheckToken(*context); !s.ok()) return s;
  AddLatency();
  absl::StatusOr<upstream::v1::ListChangesResponse> result = simulator_.ListChanges(*request);
  if (!result.ok()) return ToGrpc(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status UpstreamSimService::SubmitDecision(
    grpc::ServerContext* context, const upstream::v1::SubmitDecisionRequest* request,
    upstream::v1::SubmitDecisionResponse* response) {
  if (grpc::Status s = CheckToken(*context); !s.ok()) return s;
  AddLatency();
  absl::StatusOr<upstream::v1::SubmitDecisionResponse> result =
      simulator_.SubmitDecision(*request);
  if (!result.ok()) return ToGrpc(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

SimServer::SimServer(UpstreamSimulator& simulator, std::string listen_address,
                     SimServerSecurity security)
    : service_(simulator, security.required_token),
      listen_address_(std::move(listen_address)),
      security_(std::move(security)) {}

absl::StatusOr<std::unique_ptr<SimServer>> SimServer::Start(UpstreamSimulator& simulator,
                                                            const std::string& listen_address,
                                                            SimServerSecurity security) {
  std::unique_ptr<SimServer> server(
      new SimServer(simulator, listen_address, std::move(security)));
  absl::MutexLock lock(&server->mu_);
  if (absl::Status s = server->BuildLocked(); !s.ok()) return s;
  return server;
}

absl::Status SimServer::BuildLocked() {
  grpc::ServerBuilder builder;
  std::string address = listen_address_;
  if (!address.empty() && port_ != 0) {
    // After a restart, serve on the port clients already know.
    std::vector<std::string> host_port = absl::StrSplit(address, absl::MaxSplits(':', 1));
    address = absl::StrCat(host_port[0], ":", port_);
  }
  int bound = 0;
  if (!address.empty()) {
    std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
    if (!security_.cert_file.empty() || !security_.key_file.empty()) {
      grpc::SslServerCredentialsOptions ssl;
      grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
      AIR_ASSIGN_OR_RETURN(pair.cert_chain, ReadTextFile(security_.cert_file));
      AIR_ASSIGN_OR_RETURN(pair.private_key, ReadTextFile(security_.key_file));
      ssl.pem_key_cert_pairs.push_back(std::move(pair));
      credentials = grpc::SslServerCredentials(ssl);
    }
    builder.AddListeningPort(address, credentials, &bound);
  }
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || (!address.empty() && bound == 0)) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("upstream simulator cannot listen on ", address));
  }
  port_ = bound;
  return absl::OkStatus();
}

SimServer::~SimServer() { Shutdown(); }

int SimServer::port() const {
  absl::MutexLock lock(&mu_);
  return port_;
}

std::shared_ptr<grpc::Channel> SimServer::InProcessChannel() {
  absl::MutexLock lock(&mu_);
  grpc::ChannelArguments args;
  return server_->InProcessChannel(args);
}

absl::Status SimServer::Restart(absl::Duration downtime) {
  absl::MutexLock lock(&mu_);
  if (listen_address_.empty()) {
    return absl::FailedPreconditionError("an in-process simulator cannot restart its server");
  }
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now());  // a crash: no grace
    server_->Wait();
    server_.reset();
  }
  absl::SleepFor(downtime);
  // The port may be taken by someone else meanwhile; retry for a while, as
  // a restarting process would.
  absl::Status status;
  for (int attempt = 0; attempt < 50; ++attempt) {
    status = BuildLocked();
    if (status.ok()) return status;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return status;
}

void SimServer::Shutdown() {
  absl::MutexLock lock(&mu_);
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_->Wait();
  server_.reset();
}

}  // namespace air::sim
