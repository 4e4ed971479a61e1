// Authentication and authorization, checked in one place for every RPC.
//
// Callers authenticate with a bearer token (`authorization: Bearer <token>`
// metadata) or, with mutual TLS, a client certificate whose common name is
// listed. The tokens file holds only SHA-256 hashes of tokens:
//
//   # kind   credential                    principal   role
//   token    sha256:<64 hex digits>        soar-bot    approver
//   cert     soar-gw.corp.example          soar-gw     approver
//
// Roles nest: viewer (get, list, watch) < approver (+ approve, reject) <
// admin (+ operations). Tokens never appear in logs, errors or the audit.
// Thread-safe; Reload() swaps the table atomically (SIGHUP).
#ifndef AIR_SERVICE_AUTH_H_
#define AIR_SERVICE_AUTH_H_

#include <grpcpp/server_context.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace air {

class CallDrain;

enum class Role { kViewer = 1, kApprover = 2, kAdmin = 3 };

// "viewer", "approver", "admin".
const char* RoleName(Role role);

struct Principal {
  std::string name;
  Role role = Role::kViewer;
};

// What an RPC needs.
enum class Permission { kRead, kDecide, kOperate };

// The role a permission requires.
Role RequiredRole(Permission permission);

// SHA-256 of `token` as lowercase hex.
std::string Sha256Hex(absl::string_view token);

class Authenticator {
 public:
  // Reads the tokens file. INVALID_ARGUMENT naming the line for syntax
  // errors, NOT_FOUND if the file is missing.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Load(const std::string& path);

  // Re-reads the file. On error the previous table stays in force.
  absl::Status Reload();

  // Who presents these credentials. UNAUTHENTICATED if neither the bearer
  // token nor the certificate name is known (the message never echoes the
  // token).
  absl::StatusOr<Principal> Authenticate(absl::string_view authorization,
                                         absl::string_view certificate_name) const;

  size_t size() const;

 private:
  struct Table {
    absl::flat_hash_map<std::string, Principal> by_token_hash;
    absl::flat_hash_map<std::string, Principal> by_certificate;
  };
  static absl::StatusOr<Table> Parse(const std::string& path);
  explicit Authenticator(std::string path) : path_(std::move(path)) {}

  const std::string path_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Table> table_ ABSL_GUARDED_BY(mu_);
};

// The single gate every handler passes first. With no authenticator (auth
// disabled: loopback only) every caller is the admin "anonymous".
class AccessControl {
 public:
  // `drain` (optional, not owned): while it drains, every call is refused
  // with UNAVAILABLE (reason SHUTTING_DOWN), before credentials are looked at.
  explicit AccessControl(const Authenticator* authenticator,
                         const CallDrain* drain = nullptr)
      : authenticator_(authenticator), drain_(drain) {}

  // UNAVAILABLE while the server shuts down; CANCELLED or DEADLINE_EXCEEDED
  // when the caller has gone (CheckCallerWaiting); UNAUTHENTICATED without
  // valid credentials; PERMISSION_DENIED (reason
  // ROLE_REQUIRED, metadata required_role) if the caller's role is too low.
  // Checked before the request is looked at, so the answer never reveals
  // whether the target exists.
  absl::StatusOr<Principal> Check(const grpc::ServerContextBase& context,
                                  Permission permission) const;

  // The part of Check that looks at whether anyone still waits for the
  // answer, from the facts Check reads off the call (tests pass their own):
  // CANCELLED (reason CALL_CANCELLED) if the caller cancelled,
  // DEADLINE_EXCEEDED (reason DEADLINE_PASSED) if `now` is past `deadline`,
  // OK otherwise. Cancellation is reported first.
  static absl::Status CheckCallerWaiting(bool cancelled,
                                         std::chrono::system_clock::time_point deadline,
                                         std::chrono::system_clock::time_point now);

 private:
  const Authenticator* authenticator_;
  const CallDrain* drain_;
};

}  // namespace air

#endif  // AIR_SERVICE_AUTH_H_
