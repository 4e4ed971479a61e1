// air.v1.OperationsService: administrator operations on a running aird.
// BackupDatabase takes a consistent snapshot with SQLite's backup API (the
// same code as `aird --backup`) on a worker thread — never on a gRPC
// thread — into a temporary file beside the database, then streams it in
// 256 KiB messages, one write outstanding at a time, and deletes it.
#ifndef AIR_SERVICE_OPERATIONS_SERVICE_H_
#define AIR_SERVICE_OPERATIONS_SERVICE_H_

#include <atomic>
#include <string>

#include "air/v1/operations_service.grpc.pb.h"
#include "service/auth.h"
#include "storage/storage.h"

namespace air {

class OperationsServiceImpl final : public v1::OperationsService::CallbackService {
 public:
  // `backup`: the storage's online backup, or null when it has none. Not
  // owned.
  OperationsServiceImpl(OnlineBackup* backup, const AccessControl& access)
      : backup_(backup), access_(access) {}

  grpc::ServerWriteReactor<v1::BackupDatabaseResponse>* BackupDatabase(
      grpc::CallbackServerContext* context, const v1::BackupDatabaseRequest* request) override;

 private:
  OnlineBackup* const backup_;
  const AccessControl& access_;
  // One backup at a time: each needs disk space for a whole copy.
  std::atomic<bool> backup_running_{false};
};

}  // namespace air

#endif  // AIR_SERVICE_OPERATIONS_SERVICE_H_
