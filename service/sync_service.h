// gRPC handler for air.v1.SyncService: the read-only sync status that
// `airctl status` shows. Thin: the caller needs the read permission, then a
// SyncMonitor snapshot plus the outbox backlog read from the repository.
#ifndef AIR_SERVICE_SYNC_SERVICE_H_
#define AIR_SERVICE_SYNC_SERVICE_H_

#include "air/v1/sync_service.grpc.pb.h"
#include "service/auth.h"
#include "service/sync_monitor.h"
#include "storage/storage.h"

namespace air {

class SyncServiceImpl final : public v1::SyncService::CallbackService {
 public:
  // None is owned. A null `access` lets every caller read (tests).
  SyncServiceImpl(Storage& repository, const SyncMonitor& monitor,
                  const AccessControl* access)
      : repository_(repository), monitor_(monitor), access_(access) {}

  grpc::ServerUnaryReactor* GetSyncStatus(grpc::CallbackServerContext* context,
                                          const v1::GetSyncStatusRequest* request,
                                          v1::GetSyncStatusResponse* response) override;

 private:
  Storage& repository_;
  const SyncMonitor& monitor_;
  const AccessControl* const access_;
};

}  // namespace air

#endif  // AIR_SERVICE_SYNC_SERVICE_H_
