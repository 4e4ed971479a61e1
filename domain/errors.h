// Structured errors. Every error the service returns carries a stable
// reason (google.rpc.ErrorInfo; the name of a value of air.v1.ErrorReason,
// proto/air/v1/error_reason.proto) and, for bad fields, a
// google.rpc.BadRequest. They travel inside absl::Status as payloads so the
// layers below the RPC boundary stay free of gRPC; service/grpc_status.h
// turns them into grpc::Status details in one place.
#ifndef AIR_DOMAIN_ERRORS_H_
#define AIR_DOMAIN_ERRORS_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"
#include "air/upstream/v1/error_reason.pb.h"
#include "air/v1/error_reason.pb.h"

namespace air {

// ErrorInfo.domain of every error we raise.
inline constexpr absl::string_view kErrorDomain = "air.dev";

// Payload type URLs, as google.rpc.Status.details expects them.
inline constexpr absl::string_view kErrorInfoTypeUrl =
    "type.googleapis.com/google.rpc.ErrorInfo";
inline constexpr absl::string_view kBadRequestTypeUrl =
    "type.googleapis.com/google.rpc.BadRequest";

// Builds a status of `code` with an ErrorInfo{reason, domain, metadata}; the
// reason on the wire is the enum value's name.
absl::Status MakeError(absl::StatusCode code, absl::string_view message,
                       v1::ErrorReason reason,
                       const std::map<std::string, std::string>& metadata = {});
// The same for the upstream simulator, which speaks the upstream contract.
absl::Status MakeError(absl::StatusCode code, absl::string_view message,
                       upstream::v1::ErrorReason reason,
                       const std::map<std::string, std::string>& metadata = {});

// INVALID_ARGUMENT naming one bad field: ErrorInfo{reason, metadata "field"}
// plus a BadRequest with one field violation.
absl::Status InvalidField(absl::string_view field, absl::string_view description,
                          v1::ErrorReason reason);
absl::Status InvalidField(absl::string_view field, absl::string_view description,
                          upstream::v1::ErrorReason reason);

// The ErrorInfo reason carried by `status` as the air.v1 enum;
// ERROR_REASON_UNSPECIFIED if there is none or it is not an air.v1 reason.
v1::ErrorReason ErrorReasonOf(const absl::Status& status);

// The ErrorInfo reason string carried by `status`, or "" if there is none.
std::string ErrorReasonNameOf(const absl::Status& status);

// The ErrorInfo metadata value for `key`, if any.
std::optional<std::string> ErrorMetadata(const absl::Status& status,
                                         absl::string_view key);

// The first BadRequest field violation's field name, or "".
std::string BadRequestField(const absl::Status& status);

}  // namespace air

#endif  // AIR_DOMAIN_ERRORS_H_
