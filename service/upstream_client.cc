#include "service/upstream_client.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "air/upstream/v1/upstream_service.grpc.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace air {
namespace {

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  std::string message = status.error_message();
  google::rpc::Status details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const auto& any : details.details()) {
      google::rpc::ErrorInfo info;
      if (any.UnpackTo(&info) && !info.reason().empty()) {
        message = absl::StrCat(message, " [", info.reason(), "]");
      }
    }
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), message);
}

void SetDeadline(grpc::ClientContext& context, absl::Duration timeout) {
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(timeout));
}

class GrpcUpstreamClient final : public UpstreamClient {
 public:
  explicit GrpcUpstreamClient(std::shared_ptr<grpc::Channel> channel)
      : stub_(upstream::v1::UpstreamService::NewStub(std::move(channel))) {}

  absl::StatusOr<upstream::v1::ListChangesResponse> ListChanges(
      const upstream::v1::ListChangesRequest& request, absl::Duration timeout) override {
    grpc::ClientContext context;
    SetDeadline(context, timeout);
    upstream::v1::ListChangesResponse response;
    absl::Status status = FromGrpc(stub_->ListChanges(&context, request, &response));
    if (!status.ok()) return status;
    return response;
  }

  absl::StatusOr<upstream::v1::SubmitDecisionResponse> SubmitDecision(
      const upstream::v1::SubmitDecisionRequest& request, absl::Duration timeout) override {
    grpc::ClientContext context;
    SetDeadline(context, timeout);
    upstream::v1::SubmitDecisionResponse response;
    absl::Status status = FromGrpc(stub_->SubmitDecision(&context, request, &response));
    if (!status.ok()) return status;
    return response;
  }

 private:
  std::unique_ptr<upstream::v1::UpstreamService::Stub> stub_;
};

}  // namespace

std::unique_ptr<UpstreamClient> NewGrpcUpstreamClient(
    std::shared_ptr<grpc::Channel> channel) {
  return std::make_unique<GrpcUpstreamClient>(std::move(channel));
}

bool IsRetryableUpstreamError(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kCancelled:
      return true;
    default:
      return false;
  }
}

}  // namespace air
