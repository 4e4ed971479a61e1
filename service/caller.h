// Who is calling. The principal recorded on a decision always comes from
// here (the authenticated transport), never from a request body. Until
// authentication is configured, every caller is "anonymous".
#ifndef AIR_SERVICE_CALLER_H_
#define AIR_SERVICE_CALLER_H_

#include <string>

#include <grpcpp/server_context.h>

namespace air {

inline std::string CallerPrincipal(const grpc::CallbackServerContext* /*context*/) {
  return "anonymous";
}

}  // namespace air

#endif  // AIR_SERVICE_CALLER_H_
