#include "service/auth.h"

#include <chrono>

#include "service/call_drain.h"

#include <openssl/evp.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "domain/errors.h"

namespace air {
namespace {

absl::StatusOr<Role> ParseRole(absl::string_view name) {
  if (name == "viewer") return Role::kViewer;
  if (name == "approver") return Role::kApprover;
  if (name == "admin") return Role::kAdmin;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown role '", name, "' (viewer, approver or admin)"));
}

bool IsLowerHex(absl::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::Status Unauthenticated(absl::string_view message, v1::ErrorReason reason) {
  return MakeError(absl::StatusCode::kUnauthenticated, message, reason);
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kViewer: return "viewer";
    case Role::kApprover: return "approver";
    case Role::kAdmin: return "admin";
  }
  return "unknown";
}

Role RequiredRole(Permission permission) {
  switch (permission) {
    case Permission::kRead: return Role::kViewer;
    case Permission::kDecide: return Role::kApprover;
    case Permission::kOperate: return Role::kAdmin;
  }
  return Role::kAdmin;
}

std::string Sha256Hex(absl::string_view token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(token.data(), token.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

absl::StatusOr<Authenticator::Table> Authenticator::Parse(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read tokens file ", path));
  Table table;
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text[0] == '#') continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number, ": ", why));
    };
    if (fields.size() != 4) {
      return bad("expected: token|cert <credential> <principal> <role>");
    }
    absl::StatusOr<Role> role = ParseRole(fields[3]);
    if (!role.ok()) return bad(role.status().message());
    Principal principal{std::string(fields[2]), *role};
    if (fields[0] == "token") {
      absl::string_view hash = fields[1];
      if (!absl::ConsumePrefix(&hash, "sha256:") || hash.size() != 64 ||
          !IsLowerHex(hash)) {
        // Never echo the credential: it may be a raw token pasted by mistake.
        return bad("token credentials must be sha256:<64 lowercase hex digits> "
                   "(the hash, never the token itself)");
      }
      table.by_token_hash[std::string(hash)] = std::move(principal);
    } else if (fields[0] == "cert") {
      table.by_certificate[std::string(fields[1])] = std::move(principal);
    } else {
      return bad("the first field must be 'token' or 'cert'");
    }
  }
  return table;
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Load(
    const std::string& path) {
  std::unique_ptr<Authenticator> auth(new Authenticator(path));
  absl::Status status = auth->Reload();
  if (!status.ok()) return status;
  return auth;
}

absl::Status Authenticator::Reload() {
  absl::StatusOr<Table> table = Parse(path_);
  if (!table.ok()) return table.status();
  auto shared = std::make_shared<const Table>(*std::move(table));
  absl::MutexLock lock(&mu_);
  table_ = std::move(shared);
  return absl::OkStatus();
}

size_t Authenticator::size() const {
  absl::MutexLock lock(&mu_);
  return table_->by_token_hash.size() + table_->by_certificate.size();
}

absl::StatusOr<Principal> Authenticator::Authenticate(
    absl::string_view authorization, absl::string_view certificate_name) const {
  std::shared_ptr<const Table> table;
  {
    absl::MutexLock lock(&mu_);
    table = table_;
  }
  if (!authorization.empty()) {
    absl::string_view token = authorization;
    if (!absl::ConsumePrefix(&token, "Bearer ") && !absl::ConsumePrefix(&token, "bearer ")) {
      return Unauthenticated("the authorization metadata must be 'Bearer <token>'",
                             v1::TOKEN_MALFORMED);
    }
    auto it = table->by_token_hash.find(Sha256Hex(absl::StripAsciiWhitespace(token)));
    if (it == table->by_token_hash.end()) {
      return Unauthenticated("the bearer token is not valid", v1::TOKEN_INVALID);
    }
    return it->second;
  }
  if (!certificate_name.empty()) {
    auto it = table->by_certificate.find(std::string(certificate_name));
    if (it != table->by_certificate.end()) return it->second;
    return Unauthenticated("the client certificate is not mapped to a principal",
                           v1::CERTIFICATE_UNKNOWN);
  }
  return Unauthenticated("credentials are required: send 'authorization: Bearer <token>'",
                         v1::CREDENTIALS_MISSING);
}

absl::Status AccessControl::CheckCallerWaiting(bool cancelled,
                                               std::chrono::system_clock::time_point deadline,
                                               std::chrono::system_clock::time_point now) {
  if (cancelled) {
    return MakeError(absl::StatusCode::kCancelled, "the caller cancelled the call",
                     v1::CALL_CANCELLED);
  }
  if (now > deadline) {
    return MakeError(absl::StatusCode::kDeadlineExceeded,
                     "the call's deadline passed before aird could serve it",
                     v1::DEADLINE_PASSED);
  }
  return absl::OkStatus();
}

absl::StatusOr<Principal> AccessControl::Check(const grpc::ServerContextBase& context,
                                               Permission permission) const {
  if (drain_ != nullptr && drain_->draining()) {
    return MakeError(absl::StatusCode::kUnavailable,
                     "aird is shutting down; retry (another replica, or this one after "
                     "its restart)",
                     v1::SHUTTING_DOWN);
  }
  // A caller that has gone (cancelled, or its deadline passed while the call
  // waited for a thread) gets no work done for it: under overload, queued
  // calls would otherwise each build a response nobody reads.
  if (absl::Status waiting = CheckCallerWaiting(context.IsCancelled(), context.deadline(),
                                                std::chrono::system_clock::now());
      !waiting.ok()) {
    return waiting;
  }
  Principal principal{"anonymous", Role::kAdmin};
  if (authenticator_ != nullptr) {
    absl::string_view authorization;
    const auto& metadata = context.client_metadata();
    if (auto it = metadata.find("authorization"); it != metadata.end()) {
      authorization = absl::string_view(it->second.data(), it->second.size());
    }
    std::string certificate_name;
    if (auto auth_context = context.auth_context();
        auth_context != nullptr && auth_context->IsPeerAuthenticated()) {
      for (const auto& value : auth_context->FindPropertyValues("x509_common_name")) {
        certificate_name.assign(value.data(), value.size());
      }
    }
    absl::StatusOr<Principal> authenticated =
        authenticator_->Authenticate(authorization, certificate_name);
    if (!authenticated.ok()) return authenticated.status();
    principal = *std::move(authenticated);
  }
  const Role required = RequiredRole(permission);
  if (static_cast<int>(principal.role) < static_cast<int>(required)) {
    return MakeError(absl::StatusCode::kPermissionDenied,
                     absl::StrCat("this call needs the ", RoleName(required),
                                  " role; ", principal.name, " has ",
                                  RoleName(principal.role)),
                     v1::ROLE_REQUIRED, {{"required_role", RoleName(required)}});
  }
  return principal;
}

}  // namespace air
