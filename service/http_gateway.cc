#include "service/http_gateway.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "air/console/v1/console_service.grpc.pb.h"
#include "air/v1/action_service.grpc.pb.h"
#include "air/v1/error_reason.pb.h"
#include "air/v1/investigation_service.grpc.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "service/console_assets.h"
#include "spdlog/spdlog.h"

namespace air {

namespace protobuf = google::protobuf;

int HttpStatusFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return 200;
    case grpc::StatusCode::CANCELLED: return 499;
    case grpc::StatusCode::INVALID_ARGUMENT: return 400;
    case grpc::StatusCode::DEADLINE_EXCEEDED: return 504;
    case grpc::StatusCode::NOT_FOUND: return 404;
    case grpc::StatusCode::ALREADY_EXISTS: return 409;
    case grpc::StatusCode::PERMISSION_DENIED: return 403;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return 429;
    case grpc::StatusCode::FAILED_PRECONDITION: return 409;
    case grpc::StatusCode::ABORTED: return 412;
    case grpc::StatusCode::OUT_OF_RANGE: return 400;
    case grpc::StatusCode::UNIMPLEMENTED: return 501;
    case grpc::StatusCode::UNAVAILABLE: return 503;
    case grpc::StatusCode::UNAUTHENTICATED: return 401;
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::DATA_LOSS:
    default: return 500;
  }
}

namespace {

constexpr char kJson[] = "application/json; charset=utf-8";

// An error as the JSON API reports it.
struct HttpError {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  std::string message;
  std::string reason;
  std::string field;
  std::map<std::string, std::string> metadata;
};

HttpError GatewayError(grpc::StatusCode code, std::string message, v1::ErrorReason reason,
                       std::string field = "") {
  return HttpError{code, std::move(message), v1::ErrorReason_Name(reason), std::move(field),
                   {}};
}

// An error with no more specific reason than its code: as in FromGrpcStatus,
// the code's name stands in as the reason.
HttpError CodeOnlyError(grpc::StatusCode code, std::string message, std::string field = "") {
  return HttpError{code, std::move(message),
                   absl::StatusCodeToString(static_cast<absl::StatusCode>(code)),
                   std::move(field), {}};
}

// Reads the ErrorInfo and the first BadRequest violation out of a gRPC status.
HttpError FromGrpcStatus(const grpc::Status& status) {
  HttpError error{status.error_code(), status.error_message(), "", "", {}};
  google::rpc::Status details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const protobuf::Any& any : details.details()) {
      google::rpc::ErrorInfo info;
      google::rpc::BadRequest bad_request;
      if (any.UnpackTo(&info)) {
        error.reason = info.reason();
        for (const auto& [key, value] : info.metadata()) error.metadata[key] = value;
      } else if (any.UnpackTo(&bad_request) && error.field.empty() &&
                 bad_request.field_violations_size() > 0) {
        error.field = bad_request.field_violations(0).field();
      }
    }
  }
  if (error.reason.empty()) {
    error.reason = absl::StatusCodeToString(static_cast<absl::StatusCode>(error.code));
  }
  return error;
}

std::string ErrorJson(const HttpError& error) {
  protobuf::Struct body;
  auto& fields = *body.mutable_fields();
  fields["code"].set_string_value(
      absl::StatusCodeToString(static_cast<absl::StatusCode>(error.code)));
  fields["message"].set_string_value(error.message);
  fields["reason"].set_string_value(error.reason);
  fields["field"].set_string_value(error.field);
  auto& metadata = *fields["metadata"].mutable_struct_value()->mutable_fields();
  for (const auto& [key, value] : error.metadata) metadata[key].set_string_value(value);
  std::string json;
  (void)protobuf::util::MessageToJsonString(body, &json);
  return json;
}

void SendError(httplib::Response& res, const HttpError& error) {
  res.status = HttpStatusFor(error.code);
  res.set_content(ErrorJson(error), kJson);
}

protobuf::util::JsonPrintOptions PrintOptions() {
  protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  return options;
}

std::string ToJson(const protobuf::Message& message) {
  std::string json;
  (void)protobuf::util::MessageToJsonString(message, &json, PrintOptions());
  return json;
}

// The JSON parser's complaint, without protobuf's internal type names.
std::string JsonProblem(const protobuf::util::Status& status) {
  std::string text = status.message().ToString();
  return text.empty() ? "malformed JSON" : text;
}

// Fills `message` from query parameters named after its fields (proto or
// JSON names), through the JSON mapping so that every field is parsed the
// way a JSON body would be. Bools take true/false; a repeated parameter
// fills a repeated field.
std::optional<HttpError> QueryToMessage(const httplib::Params& params,
                                        protobuf::Message* message) {
  const protobuf::Descriptor* descriptor = message->GetDescriptor();
  protobuf::Struct object;
  auto& fields = *object.mutable_fields();
  for (const auto& [name, value] : params) {
    const protobuf::FieldDescriptor* field = descriptor->FindFieldByName(name);
    if (field == nullptr) field = descriptor->FindFieldByCamelcaseName(name);
    if (field == nullptr) {
      return GatewayError(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("unknown query parameter '", name, "'"),
                          v1::UNKNOWN_PARAMETER, name);
    }
    protobuf::Value item;
    if (field->type() == protobuf::FieldDescriptor::TYPE_BOOL) {
      if (value != "true" && value != "false") {
        return CodeOnlyError(grpc::StatusCode::INVALID_ARGUMENT,
                             absl::StrCat("query parameter '", name, "' must be true or false"),
                             field->name());
      }
      item.set_bool_value(value == "true");
    } else {
      // Numbers, enums, durations and timestamps all accept their JSON
      // string forms.
      item.set_string_value(value);
    }
    protobuf::Value& slot = fields[field->name()];
    if (field->is_repeated()) {
      *slot.mutable_list_value()->add_values() = std::move(item);
    } else {
      slot = std::move(item);
    }
  }
  std::string json;
  (void)protobuf::util::MessageToJsonString(object, &json);
  protobuf::util::Status parsed = protobuf::util::JsonStringToMessage(json, message);
  if (!parsed.ok()) {
    return CodeOnlyError(grpc::StatusCode::INVALID_ARGUMENT,
                         absl::StrCat("bad query parameters: ", JsonProblem(parsed)));
  }
  return std::nullopt;
}

// Sets the string field `id` (the {id} of the path).
void SetId(protobuf::Message* message, const std::string& id) {
  const protobuf::FieldDescriptor* field = message->GetDescriptor()->FindFieldByName("id");
  message->GetReflection()->SetString(message, field, id);
}

// A unary RPC of one of the typed stubs, erased to protobuf::Message.
struct UnaryMethod {
  const protobuf::Message* request_prototype = nullptr;
  const protobuf::Message* response_prototype = nullptr;
  std::function<grpc::Status(grpc::ClientContext*, const protobuf::Message&,
                             protobuf::Message*)>
      call;
};

template <typename Stub, typename Request, typename Response>
UnaryMethod Unary(Stub* stub, grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                           const Request&, Response*)) {
  UnaryMethod m;
  m.request_prototype = &Request::default_instance();
  m.response_prototype = &Response::default_instance();
  m.call = [stub, method](grpc::ClientContext* context, const protobuf::Message& request,
                          protobuf::Message* response) {
    return (stub->*method)(context, static_cast<const Request&>(request),
                           static_cast<Response*>(response));
  };
  return m;
}

// True for names that can only mean this machine: "localhost", "::1" and
// dotted IPv4 addresses in 127/8. ("127.x.example.com" is not one.)
bool IsLoopbackHostName(absl::string_view host) {
  if (host == "localhost" || host == "::1") return true;
  std::vector<absl::string_view> octets = absl::StrSplit(host, '.');
  if (octets.size() != 4 || octets[0] != "127") return false;
  for (absl::string_view octet : octets) {
    int value = 0;
    if (octet.empty() || octet.size() > 3 || !absl::SimpleAtoi(octet, &value) ||
        value > 255) {
      return false;
    }
  }
  return true;
}

// The host part of a Host header or HOST:PORT address.
std::string HostPart(absl::string_view host_port) {
  if (absl::ConsumePrefix(&host_port, "[")) {
    return std::string(host_port.substr(0, host_port.find(']')));
  }
  size_t colon = host_port.rfind(':');
  if (colon != absl::string_view::npos &&
      host_port.find(':') == colon) {  // one colon: HOST:PORT
    host_port = host_port.substr(0, colon);
  }
  return std::string(host_port);
}

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(absl::string_view address) {
  size_t colon = address.rfind(':');
  int port = -1;
  if (colon == absl::string_view::npos ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("HTTP listen address '", address, "' must be HOST:PORT"));
  }
  std::string host = HostPart(address);
  if (host.empty()) host = "0.0.0.0";
  return std::make_pair(host, port);
}

const char* ContentTypeFor(absl::string_view path) {
  if (absl::EndsWith(path, ".html")) return "text/html; charset=utf-8";
  if (absl::EndsWith(path, ".js")) return "text/javascript; charset=utf-8";
  if (absl::EndsWith(path, ".css")) return "text/css; charset=utf-8";
  if (absl::EndsWith(path, ".svg")) return "image/svg+xml";
  if (absl::EndsWith(path, ".png")) return "image/png";
  if (absl::EndsWith(path, ".ico")) return "image/x-icon";
  if (absl::EndsWith(path, ".json")) return "application/json; charset=utf-8";
  return "application/octet-stream";
}

// True when `value` may travel as gRPC metadata (printable ASCII).
bool IsPrintableAscii(absl::string_view value) {
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// One WatchActions call relayed to one SSE response. gRPC delivers messages
// through the reactor callbacks; the HTTP thread takes them with Next(). Only
// one read is outstanding and the next starts when the HTTP thread took the
// previous message, so a slow browser slows only its own stream.
//
// A hold keeps the call open while the HTTP thread may still start a read
// from outside a reaction. It is removed, exactly once and never under mu_,
// when no read is pending and none will start again: after a read failed or
// after Cancel(). Every decision about it is made under mu_, because a read
// can complete with a message even after the call was cancelled.
class WatchRelay final : public grpc::ClientReadReactor<v1::WatchActionsResponse> {
 public:
  enum class Wait { kMessage, kDone, kTimeout };

  void Start(v1::ActionService::Stub* stub, const v1::WatchActionsRequest& request,
             const std::string& authorization) {
    request_ = request;
    if (!authorization.empty()) context_.AddMetadata("authorization", authorization);
    stub->async()->WatchActions(&context_, &request_, this);
    AddHold();
    {
      absl::MutexLock lock(&mu_);
      read_pending_ = true;
    }
    StartRead(&incoming_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    bool release = false;
    {
      absl::MutexLock lock(&mu_);
      read_pending_ = false;
      if (ok && !cancelled_) {
        ready_ = std::move(incoming_);
        has_ready_ = true;
      } else {
        reads_over_ = true;  // the call is over (OnDone follows) or abandoned
      }
      release = ShouldReleaseHoldLocked();
    }
    if (release) RemoveHold();
  }

  void OnDone(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    status_ = status;
    done_ = true;
  }

  // Waits up to `timeout` for the next message (moved into `out`) or the end
  // of the call.
  Wait Next(absl::Duration timeout, v1::WatchActionsResponse* out) {
    bool start_read = false;
    bool release = false;
    Wait result = Wait::kTimeout;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return has_ready_ || done_;
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
      if (has_ready_) {
        *out = std::move(ready_);
        has_ready_ = false;
        if (!cancelled_ && !reads_over_) {
          read_pending_ = true;
          start_read = true;
        } else {
          release = ShouldReleaseHoldLocked();
        }
        result = Wait::kMessage;
      } else if (done_) {
        result = Wait::kDone;
      }
    }
    if (start_read) StartRead(&incoming_);
    if (release) RemoveHold();
    return result;
  }

  grpc::Status status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }

  // Ends the call; Next() then reports what is left and kDone.
  void Cancel() {
    bool release = false;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      release = ShouldReleaseHoldLocked();
    }
    context_.TryCancel();
    if (release) RemoveHold();
  }

  // Cancels the call and waits until gRPC has let go of the reactor.
  void CancelAndWait() {
    Cancel();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
  }

 private:
  // True (once) when the hold may go: no read pending, none to come.
  bool ShouldReleaseHoldLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (hold_released_ || read_pending_ || !(cancelled_ || reads_over_)) return false;
    hold_released_ = true;
    return true;
  }

  grpc::ClientContext context_;
  v1::WatchActionsRequest request_;
  v1::WatchActionsResponse incoming_;  // gRPC's while a read is pending

  absl::Mutex mu_;
  v1::WatchActionsResponse ready_ ABSL_GUARDED_BY(mu_);
  bool has_ready_ ABSL_GUARDED_BY(mu_) = false;
  bool read_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_over_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_released_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

// One SSE frame for a watch message.
std::string SseFrame(const v1::WatchActionsResponse& message) {
  std::string name;
  std::optional<int64_t> id;
  switch (message.payload_case()) {
    case v1::WatchActionsResponse::kEvent:
      name = "event";
      id = message.event().sequence();
      break;
    case v1::WatchActionsResponse::kSnapshotAction:
      name = "snapshot_action";
      break;
    case v1::WatchActionsResponse::kSnapshotComplete:
      name = "snapshot_complete";
      id = message.snapshot_complete().sequence();
      break;
    case v1::WatchActionsResponse::kBookmark:
      name = "bookmark";
      id = message.bookmark().sequence();
      break;
    default:
      name = "unknown";
  }
  std::string frame = absl::StrCat("event: ", name, "\n");
  if (id) absl::StrAppend(&frame, "id: ", *id, "\n");
  absl::StrAppend(&frame, "data: ", ToJson(message), "\n\n");
  return frame;
}

std::string SseErrorFrame(const HttpError& error) {
  return absl::StrCat("event: error\ndata: ", ErrorJson(error), "\n\n");
}

}  // namespace

class HttpGateway::Impl {
 public:
  Impl(const HttpGatewayOptions& options, std::shared_ptr<grpc::Channel> channel)
      : options_(options),
        https_(!options.tls_cert_file.empty()),
        channel_(std::move(channel)),
        investigations_(v1::InvestigationService::NewStub(channel_)),
        actions_(v1::ActionService::NewStub(channel_)),
        console_(console::v1::ConsoleService::NewStub(channel_)) {}

  ~Impl() { Stop(); }

  absl::Status Listen() {
    auto parsed = SplitHostPort(options_.listen_address);
    if (!parsed.ok()) return parsed.status();
    const auto& [host, port] = *parsed;
    loopback_ = IsLoopbackHostName(host);
    if (https_) {
      server_ = std::make_unique<httplib::SSLServer>(
          options_.tls_cert_file.c_str(), options_.tls_key_file.c_str(),
          options_.tls_client_ca_file.empty() ? nullptr
                                              : options_.tls_client_ca_file.c_str());
    } else {
      server_ = std::make_unique<httplib::Server>();
    }
    if (!server_->is_valid()) {
      return absl::FailedPreconditionError(
          "cannot load the TLS certificate, key or client CA for the HTTP listener");
    }
    Configure();
    // SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, which would
    // let a second aird silently share the port.
    server_->set_socket_options([](int sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    if (port == 0) {
      port_ = server_->bind_to_any_port(host);
    } else if (server_->bind_to_port(host, port)) {
      port_ = port;
    }
    if (port_ <= 0) {
      return absl::UnavailableError(absl::StrCat(
          "cannot listen on ", options_.listen_address, " for HTTP (address in use?)"));
    }
    listener_ = std::thread([this] { server_->listen_after_bind(); });
    return absl::OkStatus();
  }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      if (stopped_) return;
      stopped_ = true;
      for (WatchRelay* relay : relays_) relay->Cancel();
    }
    if (server_) server_->stop();
    if (listener_.joinable()) listener_.join();
  }

  int port() const { return port_; }

 private:
  void Configure() {
    httplib::Server& s = *server_;
    const int threads = options_.threads;
    s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    s.set_payload_max_length(options_.max_body_bytes);
    s.set_read_timeout(10, 0);
    s.set_write_timeout(10, 0);
    s.set_default_headers({
        {"Content-Security-Policy",
         "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
         "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
        {"X-Content-Type-Options", "nosniff"},
        {"X-Frame-Options", "DENY"},
        {"Referrer-Policy", "no-referrer"},
    });
    s.set_logger([](const httplib::Request& req, const httplib::Response& res) {
      // Never the headers: they carry tokens.
      if (res.status >= 500) {
        spdlog::warn("http {} {} -> {}", req.method, req.path, res.status);
      } else {
        spdlog::debug("http {} {} -> {}", req.method, req.path, res.status);
      }
    });
    s.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
          SendError(res, CodeOnlyError(grpc::StatusCode::INTERNAL, "internal error"));
        });
    s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;  // a handler already explained
      const int status = res.status;
      if (status == 413) {
        SendError(res, GatewayError(grpc::StatusCode::INVALID_ARGUMENT,
                                    "the request body is too large", v1::BODY_TOO_LARGE));
      } else if (status == 404) {
        SendError(res, CodeOnlyError(grpc::StatusCode::NOT_FOUND,
                                     absl::StrCat("no such page or endpoint: ", req.method,
                                                  " ", req.path)));
      } else {
        SendError(res, GatewayError(grpc::StatusCode::INVALID_ARGUMENT,
                                    "the request could not be understood", v1::BAD_REQUEST));
      }
      res.status = status;
    });
    s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      return Screen(req, res) ? httplib::Server::HandlerResponse::Handled
                              : httplib::Server::HandlerResponse::Unhandled;
    });

    s.Get("/api/whoami", [this](const httplib::Request& req, httplib::Response& res) {
      HandleUnary(Unary(console_.get(), &console::v1::ConsoleService::Stub::GetCaller), req,
                  res, std::nullopt, /*from_body=*/false);
    });
    s.Get("/api/v1/investigations", [this](const httplib::Request& req,
                                           httplib::Response& res) {
      HandleUnary(Unary(investigations_.get(),
                        &v1::InvestigationService::Stub::ListInvestigations),
                  req, res, std::nullopt, false);
    });
    s.Get(R"(/api/v1/investigations/([^/]+))",
          [this](const httplib::Request& req, httplib::Response& res) {
            HandleUnary(Unary(investigations_.get(),
                              &v1::InvestigationService::Stub::GetInvestigation),
                        req, res, req.matches[1].str(), false);
          });
    s.Get("/api/v1/actions:watch", [this](const httplib::Request& req,
                                          httplib::Response& res) { HandleWatch(req, res); });
    s.Get("/api/v1/actions", [this](const httplib::Request& req, httplib::Response& res) {
      HandleUnary(Unary(actions_.get(), &v1::ActionService::Stub::ListActions), req, res,
                  std::nullopt, false);
    });
    s.Get(R"(/api/v1/actions/([^/]+))",
          [this](const httplib::Request& req, httplib::Response& res) {
            HandleUnary(Unary(actions_.get(), &v1::ActionService::Stub::GetAction), req, res,
                        req.matches[1].str(), false);
          });
    s.Post("/api/v1/actions:batchDecide",
           [this](const httplib::Request& req, httplib::Response& res) {
             HandleUnary(Unary(actions_.get(), &v1::ActionService::Stub::BatchDecideActions),
                         req, res, std::nullopt, true);
           });
    s.Post(R"(/api/v1/actions/([^/]+):approve)",
           [this](const httplib::Request& req, httplib::Response& res) {
             HandleUnary(Unary(actions_.get(), &v1::ActionService::Stub::ApproveAction), req,
                         res, req.matches[1].str(), true);
           });
    s.Post(R"(/api/v1/actions/([^/]+):reject)",
           [this](const httplib::Request& req, httplib::Response& res) {
             HandleUnary(Unary(actions_.get(), &v1::ActionService::Stub::RejectAction), req,
                         res, req.matches[1].str(), true);
           });
    s.Get(R"(/(.*))", [](const httplib::Request& req, httplib::Response& res) {
      ServeAsset(req, res);
    });
  }

  // Checks every request before routing; true means "answered, stop".
  bool Screen(const httplib::Request& req, httplib::Response& res) {
    const std::string host = req.get_header_value("Host");
    if (loopback_ && !host.empty() && !IsLoopbackHostName(HostPart(host))) {
      SendError(res, GatewayError(grpc::StatusCode::PERMISSION_DENIED,
                                  "this console answers only to a loopback host name "
                                  "(localhost or 127.0.0.1)",
                                  v1::HOST_NOT_ALLOWED));
      return true;
    }
    if (req.method != "GET" && req.method != "HEAD") {
      const std::string origin = req.get_header_value("Origin");
      if (!origin.empty() && origin != absl::StrCat(https_ ? "https://" : "http://", host)) {
        SendError(res, GatewayError(grpc::StatusCode::PERMISSION_DENIED,
                                    "requests from another site are not accepted",
                                    v1::ORIGIN_NOT_ALLOWED));
        return true;
      }
      const std::string type =
          absl::AsciiStrToLower(req.get_header_value("Content-Type"));
      if (!absl::StartsWith(type, "application/json")) {
        SendError(res, GatewayError(grpc::StatusCode::INVALID_ARGUMENT,
                                    "send the request body as JSON "
                                    "(Content-Type: application/json)",
                                    v1::UNSUPPORTED_MEDIA_TYPE));
        res.status = 415;
        return true;
      }
    }
    if (absl::StartsWith(req.path, "/api/")) res.set_header("Cache-Control", "no-store");
    return false;
  }

  // The caller's credentials as `authorization` metadata, or an error.
  static std::optional<HttpError> Authorization(const httplib::Request& req,
                                                std::string* out) {
    *out = req.get_header_value("Authorization");
    if (!IsPrintableAscii(*out)) {
      return GatewayError(grpc::StatusCode::UNAUTHENTICATED,
                          "the Authorization header must be 'Bearer <token>'",
                          v1::TOKEN_MALFORMED);
    }
    return std::nullopt;
  }

  void HandleUnary(const UnaryMethod& method, const httplib::Request& req,
                   httplib::Response& res, const std::optional<std::string>& path_id,
                   bool from_body) {
    std::string authorization;
    if (auto error = Authorization(req, &authorization)) return SendError(res, *error);
    std::unique_ptr<protobuf::Message> request(method.request_prototype->New());
    if (from_body) {
      if (!req.params.empty()) {
        return SendError(res, GatewayError(grpc::StatusCode::INVALID_ARGUMENT,
                                           "send the fields in the JSON body, not the URL",
                                           v1::UNKNOWN_PARAMETER, req.params.begin()->first));
      }
      const std::string body = absl::StripAsciiWhitespace(req.body).empty() ? "{}" : req.body;
      protobuf::util::Status parsed = protobuf::util::JsonStringToMessage(body, request.get());
      if (!parsed.ok()) {
        return SendError(
            res, GatewayError(grpc::StatusCode::INVALID_ARGUMENT,
                              absl::StrCat("the request body is not a valid ",
                                           request->GetDescriptor()->name(), ": ",
                                           JsonProblem(parsed)),
                              v1::INVALID_JSON));
      }
    } else if (auto error = QueryToMessage(req.params, request.get())) {
      return SendError(res, *error);
    }
    if (path_id) SetId(request.get(), *path_id);

    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         absl::ToChronoMilliseconds(options_.call_timeout));
    if (!authorization.empty()) context.AddMetadata("authorization", authorization);
    std::unique_ptr<protobuf::Message> response(method.response_prototype->New());
    grpc::Status status = method.call(&context, *request, response.get());
    if (!status.ok()) return SendError(res, FromGrpcStatus(status));
    res.status = 200;
    res.set_content(ToJson(*response), kJson);
  }

  void HandleWatch(const httplib::Request& req, httplib::Response& res) {
    std::string authorization;
    if (auto error = Authorization(req, &authorization)) return SendError(res, *error);
    v1::WatchActionsRequest request;
    if (auto error = QueryToMessage(req.params, &request)) return SendError(res, *error);
    if (const std::string last = req.get_header_value("Last-Event-ID"); !last.empty()) {
      int64_t sequence = 0;
      if (!absl::SimpleAtoi(last, &sequence) || sequence < 0) {
        return SendError(res, GatewayError(grpc::StatusCode::INVALID_ARGUMENT,
                                           "Last-Event-ID must be an event sequence",
                                           v1::INVALID_CURSOR, "after_sequence"));
      }
      request.set_after_sequence(sequence);
      request.set_initial_snapshot(false);
    } else if (request.after_sequence() == 0 && !req.has_param("initial_snapshot") &&
               !req.has_param("initialSnapshot")) {
      request.set_initial_snapshot(true);
    }
    if (!request.has_heartbeat_interval()) {
      const int64_t ms = absl::ToInt64Milliseconds(options_.default_heartbeat);
      request.mutable_heartbeat_interval()->set_seconds(ms / 1000);
      request.mutable_heartbeat_interval()->set_nanos(static_cast<int32_t>(ms % 1000) * 1000000);
    }

    auto relay = std::make_shared<WatchRelay>();
    {
      absl::MutexLock lock(&mu_);
      if (stopped_) {
        return SendError(res, GatewayError(grpc::StatusCode::UNAVAILABLE,
                                           "aird is shutting down", v1::SHUTTING_DOWN));
      }
      if (static_cast<int>(relays_.size()) >= options_.max_streams) {
        return SendError(res, GatewayError(grpc::StatusCode::UNAVAILABLE,
                                           "too many live views are open; close some tabs "
                                           "and try again",
                                           v1::TOO_MANY_STREAMS));
      }
      relays_.insert(relay.get());
    }
    relay->Start(actions_.get(), request, authorization);

    // Errors the server finds at once (credentials, filter, cursor) become
    // plain HTTP errors; a stream that is merely quiet starts anyway.
    auto first = std::make_shared<v1::WatchActionsResponse>();
    WatchRelay::Wait wait = relay->Next(absl::Seconds(2), first.get());
    if (wait == WatchRelay::Wait::kDone) {
      grpc::Status status = relay->status();
      Release(relay);
      if (status.ok()) {
        status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "the stream ended");
      }
      return SendError(res, FromGrpcStatus(status));
    }
    const bool have_first = wait == WatchRelay::Wait::kMessage;

    res.status = 200;
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Accel-Buffering", "no");
    auto started = std::make_shared<bool>(false);
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, relay, first, have_first, started](size_t, httplib::DataSink& sink) {
          if (!*started) {
            *started = true;
            std::string opening = "retry: 2000\n\n";
            if (have_first) opening += SseFrame(*first);
            return sink.write(opening.data(), opening.size());
          }
          v1::WatchActionsResponse message;
          while (true) {
            switch (relay->Next(absl::Seconds(1), &message)) {
              case WatchRelay::Wait::kMessage: {
                const std::string frame = SseFrame(message);
                return sink.write(frame.data(), frame.size());
              }
              case WatchRelay::Wait::kDone: {
                grpc::Status status = relay->status();
                if (IsStopped()) {
                  status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                        "aird is shutting down; reconnect shortly");
                }
                if (!status.ok()) {
                  const std::string frame = SseErrorFrame(FromGrpcStatus(status));
                  sink.write(frame.data(), frame.size());
                }
                sink.done();
                return true;
              }
              case WatchRelay::Wait::kTimeout:
                if (!sink.is_writable()) return false;  // the browser has gone
                break;
            }
          }
        },
        [this, relay](bool /*success*/) { Release(relay); });
  }

  void Release(const std::shared_ptr<WatchRelay>& relay) {
    relay->CancelAndWait();
    absl::MutexLock lock(&mu_);
    relays_.erase(relay.get());
  }

  bool IsStopped() {
    absl::MutexLock lock(&mu_);
    return stopped_;
  }

  static void ServeAsset(const httplib::Request& req, httplib::Response& res) {
    std::string path = req.matches[1].str();
    if (absl::StartsWith(path, "api/")) {
      return SendError(res, CodeOnlyError(grpc::StatusCode::NOT_FOUND,
                                          absl::StrCat("no such endpoint: GET ", req.path)));
    }
    if (path.empty()) path = "index.html";
    const ConsoleAsset* asset = FindConsoleAsset(path);
    if (asset == nullptr) {
      res.status = 404;
      res.set_content("Not found. The console is at /.\n", "text/plain; charset=utf-8");
      return;
    }
    res.status = 200;
    // Revalidate each time: the files change with the binary.
    res.set_header("Cache-Control", "no-cache");
    res.set_content(std::string(asset->content), ContentTypeFor(asset->path));
  }

  const HttpGatewayOptions options_;
  const bool https_;
  bool loopback_ = false;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::InvestigationService::Stub> investigations_;
  std::unique_ptr<v1::ActionService::Stub> actions_;
  std::unique_ptr<console::v1::ConsoleService::Stub> console_;
  std::unique_ptr<httplib::Server> server_;
  std::thread listener_;
  int port_ = 0;

  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<WatchRelay*> relays_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<HttpGateway>> HttpGateway::Start(
    const HttpGatewayOptions& options, std::shared_ptr<grpc::Channel> channel) {
  auto impl = std::make_unique<Impl>(options, std::move(channel));
  absl::Status status = impl->Listen();
  if (!status.ok()) return status;
  return std::unique_ptr<HttpGateway>(new HttpGateway(std::move(impl)));
}

HttpGateway::HttpGateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpGateway::~HttpGateway() { Stop(); }

int HttpGateway::port() const { return impl_->port(); }

void HttpGateway::Stop() { impl_->Stop(); }

}  // namespace air
