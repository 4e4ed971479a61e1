// Unit tests of the client library: status conversion, the retry policy, and
// retry/resume behaviour against an in-process fake ActionService.
#include "clients/cpp/air_client.h"

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/synchronization/mutex.h"
#include "air/v1/error_reason.pb.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace air::client {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

absl::Status ErrorWithDetails(absl::StatusCode code, absl::string_view message,
                              absl::string_view reason,
                              std::map<std::string, std::string> metadata = {},
                              absl::string_view field = "") {
  absl::Status status(code, message);
  google::rpc::ErrorInfo info;
  info.set_reason(std::string(reason));
  info.set_domain("air.dev");
  for (const auto& [k, v] : metadata) (*info.mutable_metadata())[k] = v;
  status.SetPayload(kErrorInfoTypeUrl, absl::Cord(info.SerializeAsString()));
  if (!field.empty()) {
    google::rpc::BadRequest bad_request;
    auto* violation = bad_request.add_field_violations();
    violation->set_field(std::string(field));
    violation->set_description("is malformed");
    status.SetPayload(kBadRequestTypeUrl, absl::Cord(bad_request.SerializeAsString()));
  }
  return status;
}

TEST(RpcStatusTest, FromGrpcStatusKeepsCodeMessageAndDetails) {
  google::rpc::Status rpc_status;
  rpc_status.set_code(grpc::StatusCode::INVALID_ARGUMENT);
  rpc_status.set_message("id: must match [A-Za-z0-9._-]+");
  google::rpc::ErrorInfo info;
  info.set_reason(v1::ErrorReason_Name(v1::INVALID_ID));
  info.set_domain("air.dev");
  (*info.mutable_metadata())["id"] = "bad/id";
  rpc_status.add_details()->PackFrom(info);
  google::rpc::BadRequest bad_request;
  bad_request.add_field_violations()->set_field("id");
  rpc_status.add_details()->PackFrom(bad_request);
  grpc::Status grpc_status(grpc::StatusCode::INVALID_ARGUMENT, rpc_status.message(),
                           rpc_status.SerializeAsString());

  absl::Status status = FromGrpcStatus(grpc_status);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "id: must match [A-Za-z0-9._-]+");
  ErrorDetails details = GetErrorDetails(status);
  EXPECT_EQ(details.reason, v1::ErrorReason_Name(v1::INVALID_ID));
  EXPECT_EQ(details.domain, "air.dev");
  EXPECT_THAT(details.metadata, ElementsAre(Pair("id", "bad/id")));
  ASSERT_EQ(details.field_violations.size(), 1u);
  EXPECT_EQ(details.field_violations[0].first, "id");
  EXPECT_EQ(GetErrorDetails(grpc_status).reason, v1::ErrorReason_Name(v1::INVALID_ID));
  EXPECT_EQ(FormatError(status),
            "INVALID_ARGUMENT: id: must match [A-Za-z0-9._-]+ "
            "(reason: INVALID_ID, field: id, id: bad/id)");
}

TEST(RpcStatusTest, RoundTripsThroughGrpcStatus) {
  absl::Status original = ErrorWithDetails(absl::StatusCode::kFailedPrecondition,
                                           "action act-1 is not pending",
                                           v1::ErrorReason_Name(v1::ACTION_NOT_PENDING),
                                           {{"state", "STATE_REJECTED"}});
  absl::Status back = FromGrpcStatus(ToGrpcStatus(original));
  EXPECT_EQ(back, original);
  EXPECT_EQ(FormatError(back),
            "FAILED_PRECONDITION: action act-1 is not pending "
            "(reason: ACTION_NOT_PENDING, state: STATE_REJECTED)");
}

TEST(RpcStatusTest, GarbledOrMissingDetailsKeepCodeAndMessage) {
  absl::Status status =
      FromGrpcStatus(grpc::Status(grpc::StatusCode::NOT_FOUND, "no such action", "\xff\xff"));
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "no such action");
  EXPECT_EQ(GetErrorDetails(status).reason, "");
  EXPECT_EQ(FormatError(status), "NOT_FOUND: no such action");
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(RetryPolicyTest, BackoffGrowsExponentiallyUpToTheCap) {
  RetryPolicy policy;
  policy.initial_backoff = absl::Milliseconds(100);
  policy.max_backoff = absl::Seconds(1);
  policy.multiplier = 2;
  policy.jitter = 0.2;
  EXPECT_EQ(BackoffDelay(policy, 1, 0.5), absl::Milliseconds(100));
  EXPECT_EQ(BackoffDelay(policy, 2, 0.5), absl::Milliseconds(200));
  EXPECT_EQ(BackoffDelay(policy, 3, 0.5), absl::Milliseconds(400));
  EXPECT_EQ(BackoffDelay(policy, 5, 0.5), absl::Seconds(1));
  EXPECT_EQ(BackoffDelay(policy, 1000, 0.5), absl::Seconds(1));
  // Jitter spreads +-20% around the nominal delay.
  EXPECT_EQ(BackoffDelay(policy, 1, 0.0), absl::Milliseconds(80));
  EXPECT_EQ(BackoffDelay(policy, 1, 1.0), absl::Milliseconds(120));
}

TEST(RetryPolicyTest, RetriesOnlyIdempotentCallsOnUnavailable) {
  RetryPolicy policy;
  policy.max_attempts = 3;
  EXPECT_TRUE(ShouldRetry(policy, absl::StatusCode::kUnavailable, true, 1));
  EXPECT_TRUE(ShouldRetry(policy, absl::StatusCode::kUnavailable, true, 2));
  EXPECT_FALSE(ShouldRetry(policy, absl::StatusCode::kUnavailable, true, 3));
  EXPECT_FALSE(ShouldRetry(policy, absl::StatusCode::kUnavailable, false, 1));
  for (absl::StatusCode code :
       {absl::StatusCode::kDeadlineExceeded, absl::StatusCode::kAborted,
        absl::StatusCode::kInternal, absl::StatusCode::kNotFound,
        absl::StatusCode::kResourceExhausted}) {
    EXPECT_FALSE(ShouldRetry(policy, code, true, 1)) << absl::StatusCodeToString(code);
  }
  policy.max_attempts = 0;
  EXPECT_TRUE(ShouldRetry(policy, absl::StatusCode::kUnavailable, true, 1000));
}

TEST(RetryPolicyTest, DecisionsAreIdempotentOnlyWithARequestId) {
  EXPECT_TRUE(IsIdempotent(v1::GetActionRequest()));
  EXPECT_TRUE(IsIdempotent(v1::ListInvestigationsRequest()));
  v1::ApproveActionRequest approve;
  EXPECT_FALSE(IsIdempotent(approve));
  approve.set_request_id("r-1");
  EXPECT_TRUE(IsIdempotent(approve));
  v1::RejectActionRequest reject;
  EXPECT_FALSE(IsIdempotent(reject));
  reject.set_request_id("r-2");
  EXPECT_TRUE(IsIdempotent(reject));
  v1::BatchDecideActionsRequest batch;
  EXPECT_FALSE(IsIdempotent(batch));
  batch.set_request_id("r-3");
  EXPECT_TRUE(IsIdempotent(batch));
}

// A scripted ActionService: each call pops the next scripted status.
class FakeActionService final : public v1::ActionService::Service {
 public:
  // One scripted stream: messages to send, then the status to end with.
  struct Stream {
    std::vector<v1::WatchActionsResponse> messages;
    grpc::Status status;
    bool hold_open = false;  // after the messages, wait for the client to go
  };

  void ScriptUnary(std::vector<grpc::Status> statuses) {
    absl::MutexLock lock(&mu_);
    unary_script_.assign(statuses.begin(), statuses.end());
  }
  void ScriptStreams(std::vector<Stream> streams) {
    absl::MutexLock lock(&mu_);
    stream_script_.assign(streams.begin(), streams.end());
  }
  int unary_calls() {
    absl::MutexLock lock(&mu_);
    return unary_calls_;
  }
  std::vector<v1::WatchActionsRequest> watch_requests() {
    absl::MutexLock lock(&mu_);
    return watch_requests_;
  }
  std::string last_authorization() {
    absl::MutexLock lock(&mu_);
    return last_authorization_;
  }
  void set_delay(absl::Duration delay) {
    absl::MutexLock lock(&mu_);
    delay_ = delay;
  }

  grpc::Status GetAction(grpc::ServerContext* context, const v1::GetActionRequest* request,
                         v1::GetActionResponse* response) override {
    response->mutable_action()->set_id(request->id());
    return NextUnary(context);
  }
  grpc::Status ApproveAction(grpc::ServerContext* context,
                             const v1::ApproveActionRequest* request,
                             v1::ApproveActionResponse* response) override {
    response->mutable_action()->set_id(request->id());
    response->mutable_action()->set_state(v1::Action::STATE_APPROVED);
    return NextUnary(context);
  }
  grpc::Status WatchActions(grpc::ServerContext* context,
                            const v1::WatchActionsRequest* request,
                            grpc::ServerWriter<v1::WatchActionsResponse>* writer) override {
    Stream stream;
    {
      absl::MutexLock lock(&mu_);
      watch_requests_.push_back(*request);
      if (stream_script_.empty()) return grpc::Status(grpc::StatusCode::INTERNAL, "unscripted");
      stream = stream_script_.front();
      stream_script_.pop_front();
    }
    for (const auto& message : stream.messages) {
      if (!writer->Write(message)) return grpc::Status::CANCELLED;
    }
    if (stream.hold_open) {
      while (!context->IsCancelled()) absl::SleepFor(absl::Milliseconds(5));
    }
    return stream.status;
  }

 private:
  grpc::Status NextUnary(grpc::ServerContext* context) {
    absl::Duration delay;
    grpc::Status status = grpc::Status::OK;
    {
      absl::MutexLock lock(&mu_);
      ++unary_calls_;
      auto it = context->client_metadata().find("authorization");
      last_authorization_ = it == context->client_metadata().end()
                                ? ""
                                : std::string(it->second.data(), it->second.size());
      if (!unary_script_.empty()) {
        status = unary_script_.front();
        unary_script_.pop_front();
      }
      delay = delay_;
    }
    absl::SleepFor(delay);
    return status;
  }

  absl::Mutex mu_;
  std::deque<grpc::Status> unary_script_ ABSL_GUARDED_BY(mu_);
  std::deque<Stream> stream_script_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::WatchActionsRequest> watch_requests_ ABSL_GUARDED_BY(mu_);
  std::string last_authorization_ ABSL_GUARDED_BY(mu_);
  int unary_calls_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration delay_ ABSL_GUARDED_BY(mu_);
};

grpc::Status Unavailable() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down");
}

v1::WatchActionsResponse EventMessage(int64_t sequence) {
  v1::WatchActionsResponse m;
  m.mutable_event()->set_sequence(sequence);
  m.mutable_event()->set_type(v1::Event::TYPE_ACTION_APPROVED);
  return m;
}
v1::WatchActionsResponse SnapshotAction(const std::string& id) {
  v1::WatchActionsResponse m;
  m.mutable_snapshot_action()->set_id(id);
  return m;
}
v1::WatchActionsResponse SnapshotComplete(int64_t sequence) {
  v1::WatchActionsResponse m;
  m.mutable_snapshot_complete()->set_sequence(sequence);
  return m;
}
v1::WatchActionsResponse Bookmark(int64_t sequence) {
  v1::WatchActionsResponse m;
  m.mutable_bookmark()->set_sequence(sequence);
  return m;
}

class AirClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    options_.target = "127.0.0.1:" + std::to_string(port_);
    options_.retry.initial_backoff = absl::Milliseconds(1);
    options_.retry.max_backoff = absl::Milliseconds(5);
    options_.bearer_token = "t0ken";
    watch_options_.reconnect.initial_backoff = absl::Milliseconds(1);
    watch_options_.reconnect.max_backoff = absl::Milliseconds(5);
  }
  void TearDown() override { server_->Shutdown(std::chrono::system_clock::now()); }

  std::unique_ptr<AirClient> NewClient() {
    absl::StatusOr<std::unique_ptr<AirClient>> client = AirClient::Create(options_);
    EXPECT_TRUE(client.ok()) << client.status();
    return *std::move(client);
  }

  FakeActionService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  ClientOptions options_;
  WatchOptions watch_options_;
};

TEST_F(AirClientTest, RetriesReadsOnUnavailableAndSendsTheToken) {
  service_.ScriptUnary({Unavailable(), Unavailable(), grpc::Status::OK});
  auto client = NewClient();
  v1::GetActionRequest request;
  request.set_id("act-1");
  absl::StatusOr<v1::GetActionResponse> response = client->GetAction(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->action().id(), "act-1");
  EXPECT_EQ(service_.unary_calls(), 3);
  EXPECT_EQ(service_.last_authorization(), "Bearer t0ken");
}

TEST_F(AirClientTest, GivesUpAfterMaxAttempts) {
  options_.retry.max_attempts = 3;
  service_.ScriptUnary({Unavailable(), Unavailable(), Unavailable(), grpc::Status::OK});
  auto client = NewClient();
  absl::StatusOr<v1::GetActionResponse> response = client->GetAction(v1::GetActionRequest());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(service_.unary_calls(), 3);
}

TEST_F(AirClientTest, NeverRetriesADecisionWithoutRequestId) {
  service_.ScriptUnary({Unavailable(), grpc::Status::OK});
  auto client = NewClient();
  v1::ApproveActionRequest request;
  request.set_id("act-1");
  absl::StatusOr<v1::ApproveActionResponse> response = client->ApproveAction(request);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(service_.unary_calls(), 1);
}

TEST_F(AirClientTest, RetriesADecisionWithRequestId) {
  service_.ScriptUnary({Unavailable(), grpc::Status::OK});
  auto client = NewClient();
  v1::ApproveActionRequest request;
  request.set_id("act-1");
  request.set_request_id("req-1");
  absl::StatusOr<v1::ApproveActionResponse> response = client->ApproveAction(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->action().state(), v1::Action::STATE_APPROVED);
  EXPECT_EQ(service_.unary_calls(), 2);
}

TEST_F(AirClientTest, OtherErrorsAreFinalAndKeepTheirDetails) {
  service_.ScriptUnary({ToGrpcStatus(ErrorWithDetails(
                            absl::StatusCode::kNotFound, "no action act-nope",
                            v1::ErrorReason_Name(v1::ACTION_NOT_FOUND))),
                        grpc::Status::OK});
  auto client = NewClient();
  absl::StatusOr<v1::GetActionResponse> response = client->GetAction(v1::GetActionRequest());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(GetErrorDetails(response.status()).HasReason(v1::ACTION_NOT_FOUND));
  EXPECT_EQ(service_.unary_calls(), 1);
}

TEST_F(AirClientTest, EveryCallHasADeadline) {
  options_.deadline = absl::Milliseconds(50);
  service_.set_delay(absl::Milliseconds(500));
  auto client = NewClient();
  absl::StatusOr<v1::GetActionResponse> response = client->GetAction(v1::GetActionRequest());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(AirClientTest, UnreachableServerIsUnavailable) {
  options_.target = "127.0.0.1:1";
  options_.retry.max_attempts = 2;
  auto client = NewClient();
  absl::StatusOr<v1::GetActionResponse> response = client->GetAction(v1::GetActionRequest());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(AirClientTest, TlsFilesMustBeReadable) {
  options_.tls.enabled = true;
  options_.tls.ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(AirClient::Create(options_).status().code(), absl::StatusCode::kInvalidArgument);
  options_.tls.ca_file = "";
  options_.tls.cert_file = "/nonexistent/cert.pem";
  EXPECT_EQ(AirClient::Create(options_).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(AirClientTest, HealthCheck) {
  auto client = NewClient();
  absl::StatusOr<HealthStatus> health = client->CheckHealth();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, HealthStatus::kServing);
  EXPECT_EQ(HealthStatusName(*health), "SERVING");
  EXPECT_EQ(client->CheckHealth("no.such.Service").status().code(),
            absl::StatusCode::kNotFound);
}

std::vector<std::string> Describe(const std::vector<v1::WatchActionsResponse>& messages) {
  std::vector<std::string> out;
  for (const auto& m : messages) {
    switch (m.payload_case()) {
      case v1::WatchActionsResponse::kEvent:
        out.push_back("event " + std::to_string(m.event().sequence()));
        break;
      case v1::WatchActionsResponse::kSnapshotAction:
        out.push_back("snapshot " + m.snapshot_action().id());
        break;
      case v1::WatchActionsResponse::kSnapshotComplete:
        out.push_back("complete " + std::to_string(m.snapshot_complete().sequence()));
        break;
      case v1::WatchActionsResponse::kBookmark:
        out.push_back("bookmark " + std::to_string(m.bookmark().sequence()));
        break;
      default:
        out.push_back("?");
    }
  }
  return out;
}

TEST_F(AirClientTest, WatchResumesAfterTheLastSequenceWithoutASecondSnapshot) {
  service_.ScriptStreams({
      {{SnapshotAction("act-1"), SnapshotComplete(5), EventMessage(6)}, Unavailable()},
      {{}, grpc::Status::CANCELLED},  // a reconnect that lands in the server's drain
      {{Bookmark(9)}, Unavailable()},
      {{EventMessage(10)},
       ToGrpcStatus(ErrorWithDetails(absl::StatusCode::kOutOfRange, "cursor expired",
                                     v1::ErrorReason_Name(v1::CURSOR_EXPIRED)))},
  });
  auto client = NewClient();
  std::vector<v1::WatchActionsResponse> seen;
  std::vector<int64_t> reconnect_cursors;
  watch_options_.on_reconnect = [&](const absl::Status& error, absl::Duration,
                                    int64_t after) {
    EXPECT_TRUE(error.code() == absl::StatusCode::kUnavailable ||
                error.code() == absl::StatusCode::kCancelled)
        << error;
    reconnect_cursors.push_back(after);
  };
  v1::WatchActionsRequest request;
  request.set_initial_snapshot(true);
  request.set_filter("state = STATE_PENDING");
  absl::Status status = client->Watch(
      request,
      [&](const v1::WatchActionsResponse& m) {
        seen.push_back(m);
        return true;
      },
      watch_options_);
  EXPECT_EQ(status.code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(GetErrorDetails(status).HasReason(v1::CURSOR_EXPIRED));
  EXPECT_THAT(Describe(seen), ElementsAre("snapshot act-1", "complete 5", "event 6",
                                          "bookmark 9", "event 10"));
  EXPECT_THAT(reconnect_cursors, ElementsAre(6, 6, 9));
  std::vector<v1::WatchActionsRequest> requests = service_.watch_requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_TRUE(requests[0].initial_snapshot());
  EXPECT_EQ(requests[0].after_sequence(), 0);
  for (size_t i = 1; i < requests.size(); ++i) {
    EXPECT_FALSE(requests[i].initial_snapshot()) << i;
    EXPECT_EQ(requests[i].filter(), "state = STATE_PENDING") << i;
  }
  EXPECT_EQ(requests[1].after_sequence(), 6);
  EXPECT_EQ(requests[2].after_sequence(), 6);
  EXPECT_EQ(requests[3].after_sequence(), 9);
}

TEST_F(AirClientTest, WatchRetriesASnapshotThatNeverStarted) {
  service_.ScriptStreams({
      {{}, Unavailable()},
      {{SnapshotComplete(3)}, grpc::Status::OK},
  });
  auto client = NewClient();
  std::vector<v1::WatchActionsResponse> seen;
  v1::WatchActionsRequest request;
  request.set_initial_snapshot(true);
  absl::Status status = client->Watch(
      request, [&](const v1::WatchActionsResponse& m) {
        seen.push_back(m);
        return true;
      },
      watch_options_);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_THAT(Describe(seen), ElementsAre("complete 3"));
  std::vector<v1::WatchActionsRequest> requests = service_.watch_requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_TRUE(requests[1].initial_snapshot());
}

TEST_F(AirClientTest, WatchEndsWhenTheSnapshotBreaksHalfway) {
  service_.ScriptStreams({
      {{SnapshotAction("act-1")}, Unavailable()},
      {{SnapshotAction("act-1"), SnapshotComplete(3)}, grpc::Status::OK},
  });
  auto client = NewClient();
  int messages = 0;
  v1::WatchActionsRequest request;
  request.set_initial_snapshot(true);
  absl::Status status = client->Watch(
      request, [&](const v1::WatchActionsResponse&) { return ++messages, true; },
      watch_options_);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(messages, 1);
  EXPECT_EQ(service_.watch_requests().size(), 1u);
}

TEST_F(AirClientTest, WatchStopsWhenTheCallbackSaysSo) {
  service_.ScriptStreams({{{Bookmark(1), Bookmark(2), Bookmark(3)}, grpc::Status::OK,
                           /*hold_open=*/true}});
  auto client = NewClient();
  int messages = 0;
  absl::Status status = client->Watch(
      v1::WatchActionsRequest(),
      [&](const v1::WatchActionsResponse&) { return ++messages < 2; }, watch_options_);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(messages, 2);
}

TEST_F(AirClientTest, WatchGivesUpAfterMaxConsecutiveFailures) {
  watch_options_.reconnect.max_attempts = 2;
  service_.ScriptStreams({{{}, Unavailable()}, {{}, Unavailable()}, {{}, grpc::Status::OK}});
  auto client = NewClient();
  absl::Status status = client->Watch(
      v1::WatchActionsRequest(), [](const v1::WatchActionsResponse&) { return true; },
      watch_options_);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(service_.watch_requests().size(), 2u);
}

}  // namespace
}  // namespace air::client
