// AirClient: a C++ client for the AIR decision service (package air.v1).
//
// Contract:
// - Thread safety: an AirClient is safe to use from many threads at once; it
//   holds only the channel and immutable options. Watch blocks its calling
//   thread and runs the callback on that thread.
// - Ownership: the client owns (a reference to) its channel. Requests are
//   borrowed for the call; responses are returned by value.
// - Deadlines: every unary call has a deadline of Options::deadline from its
//   start, shared by all its attempts (retries never extend it). Watch
//   streams have no deadline: they run until the callback returns false or
//   an error that reconnecting cannot fix.
// - Retries: only idempotent calls, only on UNAVAILABLE, with exponential
//   backoff and jitter (see retry_policy.h). Approve, Reject and
//   BatchDecide are retried only when they carry a request_id.
// - Errors: methods return the server's error as an absl::Status with the
//   same code and message, and the google.rpc details (ErrorInfo,
//   BadRequest) as payloads; read them with GetErrorDetails() or print them
//   with FormatError() (rpc_status.h). Nothing throws.
#ifndef AIR_CLIENTS_CPP_AIR_CLIENT_H_
#define AIR_CLIENTS_CPP_AIR_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "air/v1/action_service.grpc.pb.h"
#include "air/v1/investigation_service.grpc.pb.h"
#include "air/v1/operations_service.grpc.pb.h"
#include "air/v1/sync_service.grpc.pb.h"
#include "clients/cpp/retry_policy.h"
#include "clients/cpp/rpc_status.h"

namespace air::client {

// Transport security. Without TLS the channel is plaintext.
struct TlsOptions {
  // Use TLS. Default false.
  bool enabled = false;
  // PEM file of the CA certificates that sign the server's certificate.
  // Empty: the system's roots.
  std::string ca_file;
  // PEM files of the client certificate chain and its private key, for mutual
  // TLS. Both or neither. Empty: no client certificate.
  std::string cert_file;
  std::string key_file;
};

struct ClientOptions {
  // Server address, in gRPC target syntax ("host:port", "dns:///host:port").
  // Default "127.0.0.1:50051".
  std::string target = "127.0.0.1:50051";
  // Deadline of each unary call, across all its attempts. Default 10 s.
  absl::Duration deadline = absl::Seconds(10);
  // Sent as "authorization: Bearer <token>" on every call when non-empty.
  // Default empty (no authorization header).
  std::string bearer_token;
  // Default: plaintext.
  TlsOptions tls;
  // Retries of idempotent unary calls on UNAVAILABLE. Default: 5 attempts,
  // 100 ms doubling to at most 5 s, 20% jitter.
  RetryPolicy retry;
  // Prepended to gRPC's user agent. Default "air-client-cpp".
  std::string user_agent = "air-client-cpp";
};

// Receives each message of a watch, in order. Return false to end the watch;
// Watch then returns OK.
using WatchCallback = std::function<bool(const v1::WatchActionsResponse&)>;

struct WatchOptions {
  WatchOptions();
  // Reconnects after UNAVAILABLE. max_attempts is the most consecutive failed
  // attempts (0, the default: keep trying); any message received resets the
  // count. Default backoff: 200 ms doubling to at most 10 s, 20% jitter.
  RetryPolicy reconnect;
  // Called before each reconnect with the error that ended the stream, the
  // wait before reconnecting and the sequence the next stream resumes after.
  // Default: none.
  std::function<void(const absl::Status& error, absl::Duration wait,
                     int64_t after_sequence)>
      on_reconnect;
};

// grpc.health.v1.HealthCheckResponse.ServingStatus.
enum class HealthStatus { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };

// "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN" or "UNKNOWN".
absl::string_view HealthStatusName(HealthStatus status);

class AirClient {
 public:
  // Builds the channel described by `options`. INVALID_ARGUMENT when a TLS
  // file cannot be read or only one of cert_file/key_file is set. Does not
  // connect: an unreachable server shows up as UNAVAILABLE on the first call.
  static absl::StatusOr<std::unique_ptr<AirClient>> Create(const ClientOptions& options);

  // Uses `channel` as is (tests, custom transports); options.target and
  // options.tls are ignored.
  AirClient(std::shared_ptr<grpc::ChannelInterface> channel, ClientOptions options);

  AirClient(const AirClient&) = delete;
  AirClient& operator=(const AirClient&) = delete;

  absl::StatusOr<v1::GetInvestigationResponse> GetInvestigation(
      const v1::GetInvestigationRequest& request) const;
  absl::StatusOr<v1::ListInvestigationsResponse> ListInvestigations(
      const v1::ListInvestigationsRequest& request) const;

  absl::StatusOr<v1::GetActionResponse> GetAction(const v1::GetActionRequest& request) const;
  absl::StatusOr<v1::ListActionsResponse> ListActions(
      const v1::ListActionsRequest& request) const;
  absl::StatusOr<v1::ApproveActionResponse> ApproveAction(
      const v1::ApproveActionRequest& request) const;
  absl::StatusOr<v1::RejectActionResponse> RejectAction(
      const v1::RejectActionRequest& request) const;
  absl::StatusOr<v1::BatchDecideActionsResponse> BatchDecideActions(
      const v1::BatchDecideActionsRequest& request) const;

  // Streams WatchActions to `callback` until it returns false (-> OK) or the
  // stream fails with anything but UNAVAILABLE (-> that error, e.g.
  // OUT_OF_RANGE/CURSOR_EXPIRED or INVALID_ARGUMENT).
  //
  // On UNAVAILABLE (server restart or shutdown) it reconnects with backoff.
  // A CANCELLED the client did not cause counts as UNAVAILABLE: a call that
  // reaches a server while it drains is cancelled by gRPC itself. It
  // and resumes after the last sequence seen (event, bookmark or
  // snapshot_complete), so no committed event is lost or delivered twice.
  // The initial snapshot is never sent twice: a stream that breaks before
  // the first snapshot message is simply retried, but one that breaks in the
  // middle of the snapshot ends the watch with UNAVAILABLE (watch again).
  // With after_sequence 0 and no initial snapshot, a stream that breaks
  // before its first message resumes at the then current head. A server
  // that ends the stream with OK ends the watch with OK.
  absl::Status Watch(const v1::WatchActionsRequest& request, const WatchCallback& callback,
                     const WatchOptions& options = WatchOptions()) const;

  // grpc.health.v1.Health/Check for `service` ("" = the whole server).
  absl::StatusOr<HealthStatus> CheckHealth(const std::string& service = "") const;

  // SyncService.GetSyncStatus: upstream sync and decision delivery.
  absl::StatusOr<v1::SyncStatus> GetSyncStatus() const;

  // OperationsService.BackupDatabase (admin only): writes the streamed
  // database file to `out` and returns its BackupInfo once every byte has
  // arrived and the SHA-256 matches (DATA_LOSS if it does not). `timeout`
  // bounds the whole stream. Not retried.
  absl::StatusOr<v1::BackupInfo> BackupDatabase(std::ostream& out,
                                                absl::Duration timeout) const;

  const ClientOptions& options() const { return options_; }

 private:
  // A context with the call's deadline (if any) and the authorization header.
  void PrepareContext(grpc::ClientContext& context, absl::Time deadline) const;

  template <typename Response, typename Call>
  absl::StatusOr<Response> Unary(bool idempotent, const Call& call) const;

  const ClientOptions options_;
  const std::shared_ptr<grpc::ChannelInterface> channel_;
  const std::unique_ptr<v1::InvestigationService::Stub> investigations_;
  const std::unique_ptr<v1::ActionService::Stub> actions_;
};

}  // namespace air::client

#endif  // AIR_CLIENTS_CPP_AIR_CLIENT_H_
