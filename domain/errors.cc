#include "domain/errors.h"

#include "absl/strings/cord.h"
#include "google/rpc/error_details.pb.h"

namespace air {

namespace {

absl::Status MakeErrorNamed(absl::StatusCode code, absl::string_view message,
                            absl::string_view reason,
                            const std::map<std::string, std::string>& metadata) {
  absl::Status status(code, message);
  google::rpc::ErrorInfo info;
  info.set_reason(std::string(reason));
  info.set_domain(std::string(kErrorDomain));
  for (const auto& [key, value] : metadata) {
    (*info.mutable_metadata())[key] = value;
  }
  status.SetPayload(kErrorInfoTypeUrl, absl::Cord(info.SerializeAsString()));
  return status;
}

absl::Status InvalidFieldNamed(absl::string_view field, absl::string_view description,
                               absl::string_view reason) {
  absl::Status status = MakeErrorNamed(
      absl::StatusCode::kInvalidArgument,
      std::string(field) + ": " + std::string(description), reason,
      {{"field", std::string(field)}});
  google::rpc::BadRequest bad_request;
  auto* violation = bad_request.add_field_violations();
  violation->set_field(std::string(field));
  violation->set_description(std::string(description));
  status.SetPayload(kBadRequestTypeUrl,
                    absl::Cord(bad_request.SerializeAsString()));
  return status;
}

}  // namespace

absl::Status MakeError(absl::StatusCode code, absl::string_view message,
                       v1::ErrorReason reason,
                       const std::map<std::string, std::string>& metadata) {
  return MakeErrorNamed(code, message, v1::ErrorReason_Name(reason), metadata);
}

absl::Status MakeError(absl::StatusCode code, absl::string_view message,
                       upstream::v1::ErrorReason reason,
                       const std::map<std::string, std::string>& metadata) {
  return MakeErrorNamed(code, message, upstream::v1::ErrorReason_Name(reason), metadata);
}

absl::Status InvalidField(absl::string_view field, absl::string_view description,
                          v1::ErrorReason reason) {
  return InvalidFieldNamed(field, description, v1::ErrorReason_Name(reason));
}

absl::Status InvalidField(absl::string_view field, absl::string_view description,
                          upstream::v1::ErrorReason reason) {
  return InvalidFieldNamed(field, description, upstream::v1::ErrorReason_Name(reason));
}

namespace {
std::optional<google::rpc::ErrorInfo> GetErrorInfo(const absl::Status& status) {
  auto payload = status.GetPayload(kErrorInfoTypeUrl);
  if (!payload) return std::nullopt;
  google::rpc::ErrorInfo info;
  if (!info.ParseFromString(std::string(*payload))) return std::nullopt;
  return info;
}
}  // namespace

v1::ErrorReason ErrorReasonOf(const absl::Status& status) {
  v1::ErrorReason reason = v1::ERROR_REASON_UNSPECIFIED;
  if (!v1::ErrorReason_Parse(ErrorReasonNameOf(status), &reason)) {
    return v1::ERROR_REASON_UNSPECIFIED;
  }
  return reason;
}

std::string ErrorReasonNameOf(const absl::Status& status) {
  auto info = GetErrorInfo(status);
  return info ? info->reason() : "";
}

std::optional<std::string> ErrorMetadata(const absl::Status& status,
                                         absl::string_view key) {
  auto info = GetErrorInfo(status);
  if (!info) return std::nullopt;
  auto it = info->metadata().find(std::string(key));
  if (it == info->metadata().end()) return std::nullopt;
  return it->second;
}

std::string BadRequestField(const absl::Status& status) {
  auto payload = status.GetPayload(kBadRequestTypeUrl);
  if (!payload) return "";
  google::rpc::BadRequest bad_request;
  if (!bad_request.ParseFromString(std::string(*payload)) ||
      bad_request.field_violations().empty()) {
    return "";
  }
  return bad_request.field_violations(0).field();
}

}  // namespace air
