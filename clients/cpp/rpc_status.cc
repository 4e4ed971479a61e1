#include "clients/cpp/rpc_status.h"

#include <algorithm>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace air::client {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status result(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
  google::rpc::Status rpc_status;
  if (!status.error_details().empty() && rpc_status.ParseFromString(status.error_details())) {
    for (const google::protobuf::Any& detail : rpc_status.details()) {
      result.SetPayload(detail.type_url(), absl::Cord(detail.value()));
    }
  }
  return result;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  google::rpc::Status rpc_status;
  rpc_status.set_code(static_cast<int>(status.code()));
  rpc_status.set_message(std::string(status.message()));
  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
    google::protobuf::Any* detail = rpc_status.add_details();
    detail->set_type_url(std::string(type_url));
    detail->set_value(std::string(payload));
  });
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()), rpc_status.SerializeAsString());
}

ErrorDetails GetErrorDetails(const absl::Status& status) {
  ErrorDetails details;
  if (auto payload = status.GetPayload(kErrorInfoTypeUrl)) {
    google::rpc::ErrorInfo info;
    if (info.ParseFromString(std::string(*payload))) {
      details.reason = info.reason();
      details.domain = info.domain();
      details.metadata.insert(info.metadata().begin(), info.metadata().end());
    }
  }
  if (auto payload = status.GetPayload(kBadRequestTypeUrl)) {
    google::rpc::BadRequest bad_request;
    if (bad_request.ParseFromString(std::string(*payload))) {
      for (const auto& violation : bad_request.field_violations()) {
        details.field_violations.emplace_back(violation.field(), violation.description());
      }
    }
  }
  return details;
}

ErrorDetails GetErrorDetails(const grpc::Status& status) {
  return GetErrorDetails(FromGrpcStatus(status));
}

std::string FormatError(const absl::Status& status) {
  std::string line = absl::StrCat(absl::StatusCodeToString(status.code()));
  if (status.ok()) return line;
  absl::StrAppend(&line, ": ", status.message());
  const ErrorDetails details = GetErrorDetails(status);
  std::vector<std::string> notes;
  if (!details.reason.empty()) notes.push_back(absl::StrCat("reason: ", details.reason));
  for (const auto& [field, description] : details.field_violations) {
    notes.push_back(absl::StrCat("field: ", field));
  }
  for (const auto& [key, value] : details.metadata) {
    // Servers often repeat the bad field in the metadata; say it once.
    std::string note = absl::StrCat(key, ": ", value);
    if (std::find(notes.begin(), notes.end(), note) == notes.end()) notes.push_back(note);
  }
  if (!notes.empty()) absl::StrAppend(&line, " (", absl::StrJoin(notes, ", "), ")");
  return line;
}

}  // namespace air::client
