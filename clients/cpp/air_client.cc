#include "clients/cpp/air_client.h"

#include <openssl/evp.h>

#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "google/protobuf/unknown_field_set.h"

namespace air::client {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", what, " file ", path));
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeCredentials(
    const TlsOptions& tls) {
  if (!tls.enabled) return grpc::InsecureChannelCredentials();
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "a client certificate needs both a certificate file and a key file");
  }
  grpc::SslCredentialsOptions ssl;
  if (!tls.ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadFile(tls.ca_file, "CA");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
  }
  if (!tls.cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadFile(tls.cert_file, "certificate");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFile(tls.key_file, "key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

double UniformDouble() {
  // Only reached on a retry; a fresh generator keeps calls free of shared state.
  absl::BitGen gen;
  return absl::Uniform(gen, 0.0, 1.0);
}

// A copy of `status` whose message ends with `note`, payloads kept.
absl::Status Annotate(const absl::Status& status, absl::string_view note) {
  absl::Status annotated(status.code(), absl::StrCat(status.message(), note));
  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
    annotated.SetPayload(type_url, payload);
  });
  return annotated;
}

}  // namespace

WatchOptions::WatchOptions() {
  reconnect.max_attempts = 0;
  reconnect.initial_backoff = absl::Milliseconds(200);
  reconnect.max_backoff = absl::Seconds(10);
}

absl::string_view HealthStatusName(HealthStatus status) {
  switch (status) {
    case HealthStatus::kServing:
      return "SERVING";
    case HealthStatus::kNotServing:
      return "NOT_SERVING";
    case HealthStatus::kServiceUnknown:
      return "SERVICE_UNKNOWN";
    case HealthStatus::kUnknown:
      break;
  }
  return "UNKNOWN";
}

absl::StatusOr<std::unique_ptr<AirClient>> AirClient::Create(const ClientOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();
  grpc::ChannelArguments args;
  if (!options.user_agent.empty()) args.SetUserAgentPrefix(options.user_agent);
  // gRPC's own reconnect backoff starts at 1 s and grows to 2 min; follow our
  // retry policy instead so a restarted server is found again promptly.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.retry.initial_backoff)));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.retry.max_backoff)));
  // Notice a silently dead server on long watches. The server accepts pings
  // every 10 s or slower.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(options.target, *credentials, args);
  return std::make_unique<AirClient>(std::move(channel), options);
}

AirClient::AirClient(std::shared_ptr<grpc::ChannelInterface> channel, ClientOptions options)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      investigations_(v1::InvestigationService::NewStub(channel_)),
      actions_(v1::ActionService::NewStub(channel_)) {}

void AirClient::PrepareContext(grpc::ClientContext& context, absl::Time deadline) const {
  if (deadline != absl::InfiniteFuture()) context.set_deadline(absl::ToChronoTime(deadline));
  if (!options_.bearer_token.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", options_.bearer_token));
  }
}

template <typename Response, typename Call>
absl::StatusOr<Response> AirClient::Unary(bool idempotent, const Call& call) const {
  const absl::Time deadline = absl::Now() + options_.deadline;
  for (int attempt = 1;; ++attempt) {
    grpc::ClientContext context;
    PrepareContext(context, deadline);
    Response response;
    absl::Status status = FromGrpcStatus(call(&context, &response));
    if (status.ok()) return response;
    if (!ShouldRetry(options_.retry, status.code(), idempotent, attempt)) return status;
    const absl::Duration wait = BackoffDelay(options_.retry, attempt, UniformDouble());
    if (absl::Now() + wait >= deadline) return status;  // no time left for another try
    absl::SleepFor(wait);
  }
}

absl::StatusOr<v1::GetInvestigationResponse> AirClient::GetInvestigation(
    const v1::GetInvestigationRequest& request) const {
  return Unary<v1::GetInvestigationResponse>(
      IsIdempotent(request), [&](grpc::ClientContext* c, v1::GetInvestigationResponse* r) {
        return investigations_->GetInvestigation(c, request, r);
      });
}

absl::StatusOr<v1::ListInvestigationsResponse> AirClient::ListInvestigations(
    const v1::ListInvestigationsRequest& request) const {
  return Unary<v1::ListInvestigationsResponse>(
      IsIdempotent(request), [&](grpc::ClientContext* c, v1::ListInvestigationsResponse* r) {
        return investigations_->ListInvestigations(c, request, r);
      });
}

absl::StatusOr<v1::GetActionResponse> AirClient::GetAction(
    const v1::GetActionRequest& request) const {
  return Unary<v1::GetActionResponse>(
      IsIdempotent(request), [&](grpc::ClientContext* c, v1::GetActionResponse* r) {
        return actions_->GetAction(c, request, r);
      });
}

absl::StatusOr<v1::ListActionsResponse> AirClient::ListActions(
    const v1::ListActionsRequest& request) const {
  return Unary<v1::ListActionsResponse>(
      IsIdempotent(request), [&](grpc::ClientContext* c, v1::ListActionsResponse* r) {
        return actions_->ListActions(c, request, r);
      });
}

absl::StatusOr<v1::ApproveActionResponse> AirClient::ApproveAction(
    const v1::ApproveActionRequest& request) const {
  return Unary<v1::ApproveActionResponse>(
      IsIdempotent(request), [&](grpc::ClientContext* c, v1::ApproveActionResponse* r) {
        return actions_->ApproveAction(c, request, r);
      });
}

absl::StatusOr<v1::RejectActionResponse> AirClient::RejectAction(
    const v1::RejectActionRequest& request) const {
  return Unary<v1::RejectActionResponse>(
      IsIdempotent(request), [&](grpc::ClientContext* c, v1::RejectActionResponse* r) {
        return actions_->RejectAction(c, request, r);
      });
}

absl::StatusOr<v1::BatchDecideActionsResponse> AirClient::BatchDecideActions(
    const v1::BatchDecideActionsRequest& request) const {
  return Unary<v1::BatchDecideActionsResponse>(
      IsIdempotent(request), [&](grpc::ClientContext* c, v1::BatchDecideActionsResponse* r) {
        return actions_->BatchDecideActions(c, request, r);
      });
}

absl::Status AirClient::Watch(const v1::WatchActionsRequest& request,
                              const WatchCallback& callback,
                              const WatchOptions& options) const {
  v1::WatchActionsRequest next = request;
  bool snapshot_pending = request.initial_snapshot() && request.after_sequence() == 0;
  int snapshot_messages = 0;
  int64_t cursor = request.after_sequence();
  int failures = 0;
  while (true) {
    grpc::ClientContext context;
    PrepareContext(context, absl::InfiniteFuture());
    std::unique_ptr<grpc::ClientReader<v1::WatchActionsResponse>> reader =
        actions_->WatchActions(&context, next);
    v1::WatchActionsResponse message;
    bool stopped = false;
    while (reader->Read(&message)) {
      failures = 0;
      switch (message.payload_case()) {
        case v1::WatchActionsResponse::kEvent:
          cursor = message.event().sequence();
          break;
        case v1::WatchActionsResponse::kSnapshotAction:
          ++snapshot_messages;
          break;
        case v1::WatchActionsResponse::kSnapshotComplete:
          cursor = message.snapshot_complete().sequence();
          snapshot_pending = false;
          break;
        case v1::WatchActionsResponse::kBookmark:
          cursor = message.bookmark().sequence();
          break;
        case v1::WatchActionsResponse::PAYLOAD_NOT_SET:
          break;
      }
      if (!callback(message)) {
        context.TryCancel();
        stopped = true;
        break;
      }
    }
    const absl::Status status = FromGrpcStatus(reader->Finish());
    if (stopped || status.ok()) return absl::OkStatus();
    // UNAVAILABLE is how the server ends streams when it stops. A CANCELLED
    // we did not ask for (the stream has no deadline) comes from the same
    // shutdown: gRPC cancels calls that arrive while the server drains.
    if (status.code() != absl::StatusCode::kUnavailable &&
        status.code() != absl::StatusCode::kCancelled) {
      return status;
    }
    if (snapshot_pending && snapshot_messages > 0) {
      return Annotate(status, " (the stream broke during the initial snapshot; watch again)");
    }
    ++failures;
    if (!ShouldRetry(options.reconnect, absl::StatusCode::kUnavailable, /*idempotent=*/true,
                     failures)) {
      return status;
    }
    if (!snapshot_pending) {
      next.set_initial_snapshot(false);
      next.set_after_sequence(cursor);
    }
    const absl::Duration wait = BackoffDelay(options.reconnect, failures, UniformDouble());
    if (options.on_reconnect) options.on_reconnect(status, wait, next.after_sequence());
    absl::SleepFor(wait);
  }
}

absl::StatusOr<HealthStatus> AirClient::CheckHealth(const std::string& service) const {
  // grpc.health.v1 ships no .proto in Debian; its two messages are tiny, so
  // encode HealthCheckRequest{service = 1} and decode
  // HealthCheckResponse{status = 1} with protobuf's wire-format primitives.
  google::protobuf::UnknownFieldSet request_fields;
  if (!service.empty()) request_fields.AddLengthDelimited(1, service);
  std::string request_bytes;
  request_fields.SerializeToString(&request_bytes);

  grpc::GenericStub stub(channel_);
  absl::StatusOr<std::string> response_bytes = Unary<std::string>(
      /*idempotent=*/true, [&](grpc::ClientContext* context, std::string* out) {
        grpc::Slice slice(request_bytes);
        grpc::ByteBuffer request(&slice, 1);
        grpc::ByteBuffer response;
        grpc::Status result;
        absl::Notification done;
        stub.UnaryCall(context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                       &response, [&](grpc::Status s) {
                         result = std::move(s);
                         done.Notify();
                       });
        done.WaitForNotification();
        if (result.ok()) {
          std::vector<grpc::Slice> slices;
          (void)response.Dump(&slices);
          for (const grpc::Slice& s : slices) {
            out->append(reinterpret_cast<const char*>(s.begin()), s.size());
          }
        }
        return result;
      });
  if (!response_bytes.ok()) return response_bytes.status();
  google::protobuf::UnknownFieldSet response_fields;
  if (!response_fields.ParseFromString(*response_bytes)) {
    return absl::InternalError("malformed grpc.health.v1.HealthCheckResponse");
  }
  HealthStatus status = HealthStatus::kUnknown;
  for (int i = 0; i < response_fields.field_count(); ++i) {
    const google::protobuf::UnknownField& field = response_fields.field(i);
    if (field.number() == 1 && field.type() == google::protobuf::UnknownField::TYPE_VARINT &&
        field.varint() <= 3) {
      status = static_cast<HealthStatus>(field.varint());
    }
  }
  return status;
}

absl::StatusOr<v1::SyncStatus> AirClient::GetSyncStatus() const {
  auto stub = v1::SyncService::NewStub(channel_);
  absl::StatusOr<v1::GetSyncStatusResponse> response = Unary<v1::GetSyncStatusResponse>(
      /*idempotent=*/true, [&](grpc::ClientContext* c, v1::GetSyncStatusResponse* r) {
        return stub->GetSyncStatus(c, v1::GetSyncStatusRequest(), r);
      });
  if (!response.ok()) return response.status();
  return response->status();
}

absl::StatusOr<v1::BackupInfo> AirClient::BackupDatabase(std::ostream& out,
                                                         absl::Duration timeout) const {
  auto stub = v1::OperationsService::NewStub(channel_);
  grpc::ClientContext context;
  PrepareContext(context, absl::Now() + timeout);
  std::unique_ptr<grpc::ClientReader<v1::BackupDatabaseResponse>> reader =
      stub->BackupDatabase(&context, v1::BackupDatabaseRequest());
  EVP_MD_CTX* digest = EVP_MD_CTX_new();
  EVP_DigestInit_ex(digest, EVP_sha256(), nullptr);
  v1::BackupInfo info;
  std::string expected_sha256;
  int64_t received = 0;
  v1::BackupDatabaseResponse message;
  while (reader->Read(&message)) {
    if (message.has_info()) info = message.info();
    out.write(message.data().data(), static_cast<std::streamsize>(message.data().size()));
    EVP_DigestUpdate(digest, message.data().data(), message.data().size());
    received += static_cast<int64_t>(message.data().size());
    if (!message.sha256().empty()) expected_sha256 = message.sha256();
  }
  unsigned char bytes[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(digest, bytes, &length);
  EVP_MD_CTX_free(digest);
  absl::Status status = FromGrpcStatus(reader->Finish());
  if (!status.ok()) return status;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string actual_sha256;
  for (unsigned int i = 0; i < length; ++i) {
    actual_sha256.push_back(kHex[bytes[i] >> 4]);
    actual_sha256.push_back(kHex[bytes[i] & 0xf]);
  }
  if (received != info.size_bytes() || actual_sha256 != expected_sha256) {
    return absl::DataLossError(absl::StrCat("backup stream damaged: received ", received,
                                            " of ", info.size_bytes(), " bytes, sha256 ",
                                            actual_sha256, " instead of ", expected_sha256));
  }
  if (!out) return absl::DataLossError("cannot write the backup file");
  return info;
}

}  // namespace air::client
