#include "service/upstream_link.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "domain/status_macros.h"
#include "service/server.h"
#include "service/sync_service.h"
#include "spdlog/spdlog.h"

namespace air {
namespace {

// TLS (and a bearer token) when configured; plaintext only to loopback,
// unless allow_insecure: decisions and remediation results cross this link.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> UpstreamCredentials(
    const UpstreamOptions& options) {
  if (options.ca_file.empty()) {
    if (!options.cert_file.empty() || !options.key_file.empty() ||
        !options.token_file.empty()) {
      return absl::InvalidArgumentError(
          "--upstream_cert, --upstream_key and --upstream_token_file need TLS: set "
          "--upstream_ca");
    }
    if (!IsLoopbackAddress(options.target) && !options.allow_insecure) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the upstream ", options.target,
          " is not on loopback: set --upstream_ca for TLS, or pass --allow_insecure to accept "
          "the risk"));
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  AIR_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPemFile(options.ca_file, "upstream CA"));
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError("--upstream_cert and --upstream_key go together");
  }
  if (!options.cert_file.empty()) {
    AIR_ASSIGN_OR_RETURN(ssl.pem_cert_chain,
                         ReadPemFile(options.cert_file, "upstream client certificate"));
    AIR_ASSIGN_OR_RETURN(ssl.pem_private_key,
                         ReadPemFile(options.key_file, "upstream client key"));
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::SslCredentials(ssl);
  if (!options.token_file.empty()) {
    AIR_ASSIGN_OR_RETURN(std::string token,
                         ReadPemFile(options.token_file, "upstream token file"));
    token = std::string(absl::StripAsciiWhitespace(token));
    if (token.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the upstream token file ", options.token_file, " is empty"));
    }
    // Sent only on a channel with privacy and integrity, i.e. this TLS one.
    credentials = grpc::CompositeChannelCredentials(
        credentials, grpc::AccessTokenCredentials(token));
  }
  return credentials;
}

}  // namespace

absl::StatusOr<std::unique_ptr<UpstreamLink>> UpstreamLink::Create(
    const UpstreamOptions& options, Storage& repository, const Clock* clock,
    const AccessControl* access) {
  std::unique_ptr<UpstreamLink> link(new UpstreamLink(repository, options));
  UpstreamLink* self = link.get();
  link->monitor_ = std::make_unique<SyncMonitor>(
      options.target, options.outage_threshold, clock, [self](bool serving) {
        if (self->set_health_) self->set_health_(serving);
      });
  link->service_ = std::make_unique<SyncServiceImpl>(repository, *link->monitor_, access);
  if (options.target.empty()) return link;

  if (options.target.find(':') == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--upstream must be HOST:PORT, not \"", options.target, "\""));
  }
  grpc::ChannelArguments args;
  // Reconnect quickly once an upstream comes back; our own backoff paces
  // the calls.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  args.SetMaxReceiveMessageSize(64 << 20);  // large pages
  AIR_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                       UpstreamCredentials(options));
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(options.target, credentials, args);
  link->client_ = NewGrpcUpstreamClient(std::move(channel));
  absl::MutexLock lock(&link->workers_mu_);
  link->MakeWorkers();
  return link;
}

void UpstreamLink::MakeWorkers() {
  sync_ = std::make_unique<UpstreamSyncWorker>(repository_, *client_, *monitor_, options_.sync);
  delivery_ = std::make_unique<DecisionDeliveryWorker>(repository_, *client_, *monitor_,
                                                       options_.delivery);
}

UpstreamLink::UpstreamLink(Storage& repository, const UpstreamOptions& options)
    : repository_(repository), options_(options) {}

UpstreamLink::~UpstreamLink() { Stop(); }

grpc::Service* UpstreamLink::sync_service() { return service_.get(); }

void UpstreamLink::Start(std::function<void(bool)> set_health, bool run_workers) {
  set_health_ = std::move(set_health);
  if (set_health_) set_health_(monitor_->serving());
  if (run_workers) {
    SetLeader(true);
  } else if (!options_.target.empty()) {
    monitor_->SetStandby(true);
  }
}

void UpstreamLink::SetLeader(bool leader) {
  absl::MutexLock lock(&workers_mu_);
  if (sync_ == nullptr || stopped_ || leader == running_) return;
  if (leader) {
    // Fresh workers: a cursor or outbox position cached while another
    // replica was syncing would be stale.
    if (sync_->started()) MakeWorkers();
    monitor_->SetStandby(false);
    spdlog::info("upstream sync: starting with {}", monitor_->Snapshot({}).upstream());
    sync_->Start();
    delivery_->Start();
    absl::MutexLock wake_lock(&wake_mu_);
    wake_target_ = delivery_.get();
  } else {
    spdlog::info("upstream sync: stopping (another replica leads)");
    {
      absl::MutexLock wake_lock(&wake_mu_);
      wake_target_ = nullptr;
    }
    sync_->Stop();
    delivery_->Stop();
    monitor_->SetStandby(true);
  }
  running_ = leader;
}

void UpstreamLink::Stop() {
  {
    absl::MutexLock lock(&workers_mu_);
    stopped_ = true;
    running_ = false;
    {
      absl::MutexLock wake_lock(&wake_mu_);
      wake_target_ = nullptr;
    }
    if (sync_ != nullptr) sync_->Stop();
    if (delivery_ != nullptr) delivery_->Stop();
  }
  // Nothing may report health once the server is going away.
  set_health_ = nullptr;
}

void UpstreamLink::OnCommit(const std::vector<v1::Event>& events) {
  absl::MutexLock lock(&wake_mu_);
  if (wake_target_ == nullptr) return;
  for (const v1::Event& event : events) {
    if (event.type() == v1::Event::TYPE_ACTION_APPROVED ||
        event.type() == v1::Event::TYPE_ACTION_REJECTED) {
      wake_target_->Wake();
      return;
    }
  }
}

}  // namespace air
