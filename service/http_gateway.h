// HttpGateway: aird's web console and its JSON API, over HTTP(S) with
// cpp-httplib.
//
// The JSON API is a thin HTTP -> gRPC gateway. Each request becomes the
// request message of an RPC through protobuf's JSON mapping (query
// parameters for GET, the body for POST), goes to aird's own gRPC services
// over an in-process channel with the caller's Authorization header as the
// `authorization` metadata, and the response or error comes back as JSON.
// No business rule lives here: access control, validation and every state
// change happen in the gRPC handlers, exactly as for any other client.
//
//   GET  /api/whoami                   ConsoleService.GetCaller
//   GET  /api/v1/investigations        InvestigationService.ListInvestigations
//   GET  /api/v1/investigations/{id}   InvestigationService.GetInvestigation
//   GET  /api/v1/actions               ActionService.ListActions
//   GET  /api/v1/actions/{id}          ActionService.GetAction
//   POST /api/v1/actions/{id}:approve  ActionService.ApproveAction
//   POST /api/v1/actions/{id}:reject   ActionService.RejectAction
//   POST /api/v1/actions:batchDecide   ActionService.BatchDecideActions
//   GET  /api/v1/actions:watch         ActionService.WatchActions, as
//                                      Server-Sent Events (see below)
//   GET  /, /app.js, ...               the console (console/, embedded)
//
// Query parameters name request fields (`page_size` or `pageSize`); a
// repeated parameter fills a repeated field. POST bodies are the request
// message as JSON (`Content-Type: application/json`); the {id} in the path
// fills `id`. Responses are the response message as JSON, lowerCamelCase,
// enums by name, defaults included.
//
// Errors: the gRPC code picks the HTTP status (HttpStatusFor) and the body is
//   {"code": "PERMISSION_DENIED", "message": "...", "reason": "ROLE_REQUIRED",
//    "field": "", "metadata": {"required_role": "approver"}}
// with the ErrorInfo reason and metadata and the first BadRequest field. The
// gateway's own refusals use the same shape (reasons INVALID_JSON,
// UNKNOWN_PARAMETER, NOT_FOUND, UNSUPPORTED_MEDIA_TYPE, ORIGIN_NOT_ALLOWED,
// HOST_NOT_ALLOWED, TOO_MANY_STREAMS).
//
// Watch: query parameters as for WatchActionsRequest. `Last-Event-ID` (the
// last `id:` received) resumes after that sequence. Without a cursor the
// stream starts with the initial snapshot, so a client can list, then apply
// live events after `snapshot_complete`. Each message is one SSE event named
// after the payload (`event`, `snapshot_action`, `snapshot_complete`,
// `bookmark`) with the WatchActionsResponse as JSON in `data:` and, except
// for snapshot actions, the sequence in `id:`. A stream that ends with an
// error sends a last `error` event with the error body above (for example
// CURSOR_EXPIRED: list again and watch without a cursor). Errors found
// before the first message (bad filter, no credentials) are plain HTTP
// errors instead. Bookmarks arrive every 15 s unless `heartbeat_interval`
// says otherwise; they also tell the gateway that a browser has gone.
//
// Browser safety: POST needs `Content-Type: application/json` and, when the
// browser sends an Origin, the same origin (no CORS is ever granted), so
// another site cannot submit a decision. On a loopback address the Host
// header must be a loopback name too (DNS rebinding). Every response carries
// a strict Content-Security-Policy. Tokens are never logged.
//
// Thread-safe. Requests run on a pool of threads; each open watch holds one
// of them, so watches are capped (HttpGatewayOptions::max_streams).
#ifndef AIR_SERVICE_HTTP_GATEWAY_H_
#define AIR_SERVICE_HTTP_GATEWAY_H_

#include <grpcpp/channel.h>
#include <grpcpp/support/status.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace air {

struct HttpGatewayOptions {
  // HOST:PORT to listen on; port 0 picks a free port (see HttpGateway::port()).
  std::string listen_address;
  // Serve HTTPS with this certificate chain and key (PEM files); empty
  // means plain HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
  // With HTTPS: require client certificates signed by this CA (PEM);
  // empty means none are asked for.
  std::string tls_client_ca_file;
  // Threads serving requests, and the most watches open at once (each holds
  // a thread; further ones get 503 TOO_MANY_STREAMS).
  int threads = 24;
  int max_streams = 16;
  // Deadline of each unary call into the gRPC services.
  absl::Duration call_timeout = absl::Seconds(30);
  // Bookmark interval of a watch when the request does not set one.
  absl::Duration default_heartbeat = absl::Seconds(15);
  // Largest request body, in bytes.
  size_t max_body_bytes = 1 << 20;
};

// The HTTP status for a gRPC code: Google's mapping (google/rpc/code.proto)
// except FAILED_PRECONDITION -> 409 Conflict (the resource is in a state
// that conflicts with the request, e.g. ACTION_NOT_PENDING) and ABORTED ->
// 412 Precondition Failed (a stale etag: the If-Match of this API).
int HttpStatusFor(grpc::StatusCode code);

class HttpGateway {
 public:
  // Binds the address and starts serving in the background. `channel` leads
  // to aird's gRPC services (normally grpc::Server::InProcessChannel).
  // UNAVAILABLE if the address cannot be bound, FAILED_PRECONDITION if the
  // TLS files cannot be loaded.
  static absl::StatusOr<std::unique_ptr<HttpGateway>> Start(
      const HttpGatewayOptions& options, std::shared_ptr<grpc::Channel> channel);
  ~HttpGateway();

  // The bound port.
  int port() const;
  // Ends open watches, stops accepting and waits for requests in flight.
  // Call before the gRPC server shuts down. Idempotent.
  void Stop();

  class Impl;

 private:
  explicit HttpGateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace air

#endif  // AIR_SERVICE_HTTP_GATEWAY_H_
