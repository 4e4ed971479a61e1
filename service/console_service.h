// gRPC handler for air.console.v1.ConsoleService: tells the web console who
// the caller is. The answer is computed by AccessControl, the same gate every
// air.v1 handler passes, so the console can never disagree with the server
// about a role; it only uses the answer to disable controls.
#ifndef AIR_SERVICE_CONSOLE_SERVICE_H_
#define AIR_SERVICE_CONSOLE_SERVICE_H_

#include "air/console/v1/console_service.grpc.pb.h"
#include "service/auth.h"

namespace air {

class ConsoleServiceImpl final : public console::v1::ConsoleService::CallbackService {
 public:
  // `access` is not owned. `authentication_enabled` is false when aird runs
  // without a tokens file.
  ConsoleServiceImpl(const AccessControl& access, bool authentication_enabled)
      : access_(access), authentication_enabled_(authentication_enabled) {}

  grpc::ServerUnaryReactor* GetCaller(grpc::CallbackServerContext* context,
                                      const console::v1::GetCallerRequest* request,
                                      console::v1::GetCallerResponse* response) override;

 private:
  const AccessControl& access_;
  const bool authentication_enabled_;
};

}  // namespace air

#endif  // AIR_SERVICE_CONSOLE_SERVICE_H_
