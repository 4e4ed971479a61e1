// gRPC handlers for air.v1.InvestigationService and air.v1.ActionService.
// Thin by design: pass the access check, validate the request, call the
// domain and storage layers, map the status. Reads answer inline; decisions complete asynchronously
// when their group commit is durable, so no thread waits on the disk.
#ifndef AIR_SERVICE_API_SERVICES_H_
#define AIR_SERVICE_API_SERVICES_H_

#include "air/v1/action_service.grpc.pb.h"
#include "air/v1/investigation_service.grpc.pb.h"
#include "service/auth.h"
#include "service/event_hub.h"
#include "service/watch_stream.h"
#include "storage/storage.h"

namespace air {

class InvestigationServiceImpl final
    : public v1::InvestigationService::CallbackService {
 public:
  InvestigationServiceImpl(Storage& repository, const AccessControl& access)
      : repository_(repository), access_(access) {}

  grpc::ServerUnaryReactor* GetInvestigation(
      grpc::CallbackServerContext* context, const v1::GetInvestigationRequest* request,
      v1::GetInvestigationResponse* response) override;
  grpc::ServerUnaryReactor* ListInvestigations(
      grpc::CallbackServerContext* context, const v1::ListInvestigationsRequest* request,
      v1::ListInvestigationsResponse* response) override;

 private:
  Storage& repository_;
  const AccessControl& access_;
};

// WatchActions is served raw (ByteBuffer) so that every stream writes the
// hub's pre-serialized events instead of serializing each one again.
class ActionServiceImpl final
    : public v1::ActionService::WithRawCallbackMethod_WatchActions<
          v1::ActionService::CallbackService> {
 public:
  // `on_watch_send` (may be empty) hears of every event a watch stream
  // starts writing (see WatchSendObserver).
  ActionServiceImpl(Storage& repository, EventHub& hub, const AccessControl& access,
                    WatchLimits watch_limits, WatchSendObserver on_watch_send = {})
      : repository_(repository),
        hub_(hub),
        access_(access),
        watch_limits_(watch_limits),
        on_watch_send_(std::move(on_watch_send)) {}

  grpc::ServerUnaryReactor* GetAction(grpc::CallbackServerContext* context,
                                      const v1::GetActionRequest* request,
                                      v1::GetActionResponse* response) override;
  grpc::ServerUnaryReactor* ListActions(grpc::CallbackServerContext* context,
                                        const v1::ListActionsRequest* request,
                                        v1::ListActionsResponse* response) override;
  grpc::ServerUnaryReactor* ApproveAction(grpc::CallbackServerContext* context,
                                          const v1::ApproveActionRequest* request,
                                          v1::ApproveActionResponse* response) override;
  grpc::ServerUnaryReactor* RejectAction(grpc::CallbackServerContext* context,
                                         const v1::RejectActionRequest* request,
                                         v1::RejectActionResponse* response) override;
  grpc::ServerUnaryReactor* BatchDecideActions(
      grpc::CallbackServerContext* context, const v1::BatchDecideActionsRequest* request,
      v1::BatchDecideActionsResponse* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchActions(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) override;

 private:
  Storage& repository_;
  EventHub& hub_;
  const AccessControl& access_;
  const WatchLimits watch_limits_;
  const WatchSendObserver on_watch_send_;
};

}  // namespace air

#endif  // AIR_SERVICE_API_SERVICES_H_
