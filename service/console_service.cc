#include "service/console_service.h"

#include "service/grpc_status.h"

namespace air {
namespace {

console::v1::Role ToProtoRole(Role role) {
  switch (role) {
    case Role::kViewer: return console::v1::ROLE_VIEWER;
    case Role::kApprover: return console::v1::ROLE_APPROVER;
    case Role::kAdmin: return console::v1::ROLE_ADMIN;
  }
  return console::v1::ROLE_UNSPECIFIED;
}

}  // namespace

grpc::ServerUnaryReactor* ConsoleServiceImpl::GetCaller(
    grpc::CallbackServerContext* context, const console::v1::GetCallerRequest* /*request*/,
    console::v1::GetCallerResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Reading needs the lowest role, so this succeeds for every known caller.
  absl::StatusOr<Principal> caller = access_.Check(*context, Permission::kRead);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  response->set_principal(caller->name);
  response->set_role(ToProtoRole(caller->role));
  response->set_can_decide(static_cast<int>(caller->role) >=
                           static_cast<int>(RequiredRole(Permission::kDecide)));
  response->set_authentication_enabled(authentication_enabled_);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace air
