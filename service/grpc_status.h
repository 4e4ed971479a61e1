// The one place that turns absl::Status into grpc::Status. The canonical
// codes are the same numbers; payloads (ErrorInfo, BadRequest) become
// google.rpc.Status details in the grpc-status-details-bin trailer.
#ifndef AIR_SERVICE_GRPC_STATUS_H_
#define AIR_SERVICE_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace air {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace air

#endif  // AIR_SERVICE_GRPC_STATUS_H_
