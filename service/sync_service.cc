#include "service/sync_service.h"

#include "service/grpc_status.h"

namespace air {

grpc::ServerUnaryReactor* SyncServiceImpl::GetSyncStatus(
    grpc::CallbackServerContext* context, const v1::GetSyncStatusRequest* /*request*/,
    v1::GetSyncStatusResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (access_ != nullptr) {
    if (absl::StatusOr<Principal> caller = access_->Check(*context, Permission::kRead);
        !caller.ok()) {
      reactor->Finish(ToGrpcStatus(caller.status()));
      return reactor;
    }
  }
  absl::StatusOr<DecisionOutboxStats> outbox = repository_.outbox().GetDecisionOutboxStats();
  if (!outbox.ok()) {
    reactor->Finish(ToGrpcStatus(outbox.status()));
    return reactor;
  }
  *response->mutable_status() = monitor_.Snapshot(*outbox);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace air
