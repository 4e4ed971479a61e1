// Errors as the AIR client returns them.
//
// The server sends a google.rpc.Status in grpc::Status::error_details(): an
// ErrorInfo with a stable UPPER_SNAKE reason (domain "air.dev") and, for bad
// fields, a BadRequest. FromGrpcStatus keeps the code and message and stores
// each detail as an absl::Status payload keyed by its type URL
// ("type.googleapis.com/google.rpc.ErrorInfo"), so nothing is lost when the
// error crosses into absl. Details that do not parse are dropped; the code and
// message always survive. All functions are pure and thread-safe.
#ifndef AIR_CLIENTS_CPP_RPC_STATUS_H_
#define AIR_CLIENTS_CPP_RPC_STATUS_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "air/v1/error_reason.pb.h"

namespace air::client {

inline constexpr absl::string_view kErrorInfoTypeUrl =
    "type.googleapis.com/google.rpc.ErrorInfo";
inline constexpr absl::string_view kBadRequestTypeUrl =
    "type.googleapis.com/google.rpc.BadRequest";

// grpc::Status -> absl::Status with the same code, message and details.
absl::Status FromGrpcStatus(const grpc::Status& status);

// The reverse, for fakes and proxies: details become a google.rpc.Status in
// error_details().
grpc::Status ToGrpcStatus(const absl::Status& status);

// What an error says beyond its code and message. Empty fields when the error
// carries no such detail.
struct ErrorDetails {
  // ErrorInfo.reason, e.g. "ACTION_NOT_PENDING": the name of an
  // air.v1.ErrorReason value, or of the canonical code when the error has no
  // more specific reason. Test it with HasReason.
  std::string reason;
  // ErrorInfo.domain, e.g. "air.dev".
  std::string domain;
  // ErrorInfo.metadata, e.g. {"state": "STATE_REJECTED"}.
  std::map<std::string, std::string> metadata;
  // BadRequest field violations as (field, description), in order.
  std::vector<std::pair<std::string, std::string>> field_violations;

  // True when the error's reason is `expected` (air/v1/error_reason.pb.h).
  bool HasReason(v1::ErrorReason expected) const {
    return reason == v1::ErrorReason_Name(expected);
  }
};

ErrorDetails GetErrorDetails(const absl::Status& status);
ErrorDetails GetErrorDetails(const grpc::Status& status);

// One line for people:
//   "NOT_FOUND: no action act-x (reason: ACTION_NOT_FOUND)"
//   "INVALID_ARGUMENT: ... (reason: INVALID_ID, field: id)"
// Metadata follows as ", key: value" in key order. "OK" for an OK status.
std::string FormatError(const absl::Status& status);

}  // namespace air::client

#endif  // AIR_CLIENTS_CPP_RPC_STATUS_H_
