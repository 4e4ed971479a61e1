// Who may decide: tokens, roles on every RPC (the stream included), token
// reload, two-person approval, automation policy, TLS, and the refusal to
// serve a public address insecurely.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "domain/errors.h"
#include "domain/status_macros.h"
#include "service/action_commands.h"
#include "service/auth.h"
#include "service/grpc_status.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "storage/storage.h"
#include "tests/support/server_fixture.h"

namespace air {
namespace {

using testing::DetailsOf;
using testing::GrpcStatusIs;
using testing::StatusIs;
using v1::Action;

constexpr char kViewerToken[] = "viewer-token-6f1c9a";
constexpr char kApproverToken[] = "approver-token-2b7e41";
constexpr char kSecondApproverToken[] = "approver2-token-99d0c3";
constexpr char kAdminToken[] = "admin-token-c4e8f0";

class AuthTest : public testing::ServerFixture {
 protected:
  void SetUp() override {
    WriteTokens({{kViewerToken, "victor", "viewer"},
                 {kApproverToken, "alice", "approver"},
                 {kSecondApproverToken, "bob", "approver"},
                 {kAdminToken, "root", "admin"}});
    // Capture every log line the server writes, to prove tokens never appear.
    log_sink_ = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_);
    previous_logger_ = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", log_sink_));
    spdlog::set_level(spdlog::level::trace);
    ServerFixture::SetUp();
  }
  void TearDown() override {
    ServerFixture::TearDown();
    spdlog::set_default_logger(previous_logger_);
    for (const char* token : {kViewerToken, kApproverToken, kSecondApproverToken,
                              kAdminToken, "not-a-real-token-123"}) {
      EXPECT_FALSE(absl::StrContains(log_.str(), token)) << "token leaked into the log";
    }
  }

  ServerOptions Options() override {
    ServerOptions options = ServerFixture::Options();
    options.tokens_file = dir_.File("tokens");
    config::v1::PolicyConfig policy;
    policy.add_two_person_action_types(v1::ACTION_TYPE_RESET_PASSWORD);
    policy.set_automation_level(config::v1::AUTOMATION_LEVEL_SEMI);
    auto* rule = policy.add_automation_rules();
    rule->set_name("auto-soft-delete-reported-phish");
    rule->add_action_types(v1::ACTION_TYPE_SOFT_DELETE_EMAIL);
    rule->add_investigation_sources(v1::Investigation::SOURCE_USER_REPORTED);
    auto built = DecisionPolicy::FromConfig(policy);
    EXPECT_TRUE(built.ok());
    options.policy = *built;
    return options;
  }

  struct TokenLine {
    std::string token, principal, role;
  };
  void WriteTokens(const std::vector<TokenLine>& lines) {
    std::ofstream out(dir_.File("tokens"));
    out << "# kind credential principal role\n";
    for (const auto& l : lines) {
      out << "token sha256:" << Sha256Hex(l.token) << " " << l.principal << " " << l.role
          << "\n";
    }
  }

  static std::unique_ptr<grpc::ClientContext> As(const std::string& token) {
    auto context = Context();
    if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
    return context;
  }

  // Calls one RPC as `token`; returns its status.
  grpc::Status Call(const std::string& rpc, const std::string& token,
                    const std::string& action_id = "act-1001-1") {
    if (rpc == "GetInvestigation") {
      v1::GetInvestigationRequest r;
      r.set_id("inv-1001");
      v1::GetInvestigationResponse out;
      return investigations_->GetInvestigation(As(token).get(), r, &out);
    }
    if (rpc == "ListInvestigations") {
      v1::ListInvestigationsResponse out;
      return investigations_->ListInvestigations(As(token).get(), {}, &out);
    }
    if (rpc == "GetAction") {
      v1::GetActionRequest r;
      r.set_id(action_id);
      v1::GetActionResponse out;
      return actions_->GetAction(As(token).get(), r, &out);
    }
    if (rpc == "ListActions") {
      v1::ListActionsResponse out;
      return actions_->ListActions(As(token).get(), {}, &out);
    }
    if (rpc == "ApproveAction") {
      v1::ApproveActionRequest r;
      r.set_id(action_id);
      v1::ApproveActionResponse out;
      return actions_->ApproveAction(As(token).get(), r, &out);
    }
    if (rpc == "RejectAction") {
      v1::RejectActionRequest r;
      r.set_id(action_id);
      v1::RejectActionResponse out;
      return actions_->RejectAction(As(token).get(), r, &out);
    }
    if (rpc == "BatchDecideActions") {
      v1::BatchDecideActionsRequest r;
      r.add_ids(action_id);
      r.set_decision(v1::BATCH_DECISION_REJECT);
      v1::BatchDecideActionsResponse out;
      return actions_->BatchDecideActions(As(token).get(), r, &out);
    }
    if (rpc == "WatchActions") {
      // A watch that is allowed stays open: a bookmark arrives, then cancel.
      auto context = As(token);
      v1::WatchActionsRequest r;
      r.mutable_heartbeat_interval()->set_nanos(100'000'000);
      auto reader = actions_->WatchActions(context.get(), r);
      v1::WatchActionsResponse message;
      if (reader->Read(&message)) {
        context->TryCancel();
        (void)reader->Finish();
        return grpc::Status::OK;
      }
      return reader->Finish();
    }
    ADD_FAILURE() << "unknown rpc " << rpc;
    return grpc::Status::OK;
  }

  std::ostringstream log_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> log_sink_;
  std::shared_ptr<spdlog::logger> previous_logger_;
};

TEST_F(AuthTest, RoleTimesRpcMatrix) {
  const std::vector<std::string> reads = {"GetInvestigation", "ListInvestigations",
                                          "GetAction", "ListActions", "WatchActions"};
  const std::vector<std::string> decisions = {"ApproveAction", "RejectAction",
                                              "BatchDecideActions"};
  for (const auto& rpc : reads) {
    EXPECT_THAT(Call(rpc, ""), GrpcStatusIs(grpc::StatusCode::UNAUTHENTICATED)) << rpc;
    EXPECT_THAT(Call(rpc, "not-a-real-token-123"),
                GrpcStatusIs(grpc::StatusCode::UNAUTHENTICATED)) << rpc;
    for (const char* token : {kViewerToken, kApproverToken, kAdminToken}) {
      EXPECT_TRUE(Call(rpc, token).ok()) << rpc << " as " << token;
    }
  }
  for (const auto& rpc : decisions) {
    EXPECT_THAT(Call(rpc, ""), GrpcStatusIs(grpc::StatusCode::UNAUTHENTICATED)) << rpc;
    EXPECT_THAT(Call(rpc, "not-a-real-token-123"),
                GrpcStatusIs(grpc::StatusCode::UNAUTHENTICATED)) << rpc;
    grpc::Status denied = Call(rpc, kViewerToken);
    EXPECT_THAT(denied, GrpcStatusIs(grpc::StatusCode::PERMISSION_DENIED)) << rpc;
    EXPECT_EQ(DetailsOf(denied).reason, v1::ErrorReason_Name(v1::ROLE_REQUIRED));
    EXPECT_EQ(DetailsOf(denied).metadata["required_role"], "approver");
  }
  // Approvers and admins may decide (each on a fresh pending action).
  EXPECT_TRUE(Call("ApproveAction", kApproverToken, "act-1001-1").ok());
  EXPECT_TRUE(Call("RejectAction", kAdminToken, "act-1001-2").ok());
  EXPECT_TRUE(Call("BatchDecideActions", kApproverToken, "act-1003-1").ok());
}

TEST_F(AuthTest, DenialDoesNotRevealWhetherTheTargetExists) {
  grpc::Status missing = Call("ApproveAction", kViewerToken, "act-does-not-exist");
  grpc::Status present = Call("ApproveAction", kViewerToken, "act-1001-1");
  EXPECT_THAT(missing, GrpcStatusIs(grpc::StatusCode::PERMISSION_DENIED));
  EXPECT_EQ(missing.error_message(), present.error_message());
  EXPECT_THAT(Call("GetAction", "", "act-does-not-exist"),
              GrpcStatusIs(grpc::StatusCode::UNAUTHENTICATED));
}

TEST_F(AuthTest, TheDeciderIsTheAuthenticatedCaller) {
  v1::ApproveActionRequest r;
  r.set_id("act-1003-1");
  v1::ApproveActionResponse out;
  auto context = As(kApproverToken);
  context->AddMetadata("x-decider", "mallory");  // ignored: identity is not data
  ASSERT_TRUE(actions_->ApproveAction(context.get(), r, &out).ok());
  EXPECT_EQ(out.action().decision().decider(), "alice");
  auto audit = server_->storage().audit().ListAudit("act-1003-1");
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].decision.decider(), "alice");
}

TEST_F(AuthTest, TokensReloadWithoutRestart) {
  EXPECT_TRUE(Call("ListActions", kViewerToken).ok());
  WriteTokens({{"rotated-viewer-token", "victor", "viewer"}});
  AIR_ASSERT_OK(server_->ReloadTokens());
  EXPECT_THAT(Call("ListActions", kViewerToken),
              GrpcStatusIs(grpc::StatusCode::UNAUTHENTICATED));
  EXPECT_TRUE(Call("ListActions", "rotated-viewer-token").ok());
  // A broken file is refused and the previous table stays in force.
  std::ofstream(dir_.File("tokens")) << "token raw-token-not-a-hash victor viewer\n";
  EXPECT_THAT(server_->ReloadTokens(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(Call("ListActions", "rotated-viewer-token").ok());
}

class PolicyTest : public AuthTest {
 protected:
  Action Propose(const std::string& id, v1::ActionType type, const std::string& inv) {
    Action out;
    const ServerOptions options = Options();
    absl::Status status = server_->storage().writer().Write([&](WriteTransaction& tx) -> absl::Status {
      Action action;
      action.set_id(id);
      action.set_investigation_id(inv);
      action.set_type(type);
      action.set_verdict(v1::VERDICT_MALICIOUS);
      AIR_ASSIGN_OR_RETURN(out, ProposeActionTx(tx, action, kDefaultActionTtl,
                                                &options.policy));
      return absl::OkStatus();
    });
    EXPECT_TRUE(status.ok()) << status;
    return out;
  }
};

TEST_F(PolicyTest, TwoPersonApprovalNeedsTwoDistinctApprovers) {
  Action action = Propose("act-pw-1", v1::ACTION_TYPE_RESET_PASSWORD, "inv-1002");
  EXPECT_EQ(action.required_approvals(), 2);
  v1::ApproveActionRequest r;
  r.set_id("act-pw-1");
  v1::ApproveActionResponse out;
  ASSERT_TRUE(actions_->ApproveAction(As(kApproverToken).get(), r, &out).ok());
  EXPECT_EQ(out.action().state(), Action::STATE_PENDING);  // a partial approval
  ASSERT_EQ(out.action().approvals_size(), 1);
  EXPECT_EQ(out.action().approvals(0).decider(), "alice");

  grpc::Status again = actions_->ApproveAction(As(kApproverToken).get(), r, &out);
  EXPECT_THAT(again, GrpcStatusIs(grpc::StatusCode::FAILED_PRECONDITION));
  EXPECT_EQ(DetailsOf(again).reason, v1::ErrorReason_Name(v1::SAME_APPROVER));

  ASSERT_TRUE(actions_->ApproveAction(As(kSecondApproverToken).get(), r, &out).ok());
  EXPECT_EQ(out.action().state(), Action::STATE_APPROVED);
  EXPECT_EQ(out.action().decision().decider(), "bob");
  EXPECT_EQ(server_->storage().audit().ListAudit("act-pw-1")->size(), 2u);
}

TEST_F(PolicyTest, OneRejectionRejectsATwoPersonAction) {
  Propose("act-pw-2", v1::ACTION_TYPE_RESET_PASSWORD, "inv-1002");
  v1::ApproveActionRequest approve;
  approve.set_id("act-pw-2");
  v1::ApproveActionResponse approved;
  ASSERT_TRUE(actions_->ApproveAction(As(kApproverToken).get(), approve, &approved).ok());
  v1::RejectActionRequest reject;
  reject.set_id("act-pw-2");
  v1::RejectActionResponse rejected;
  ASSERT_TRUE(actions_->RejectAction(As(kSecondApproverToken).get(), reject, &rejected).ok());
  EXPECT_EQ(rejected.action().state(), Action::STATE_REJECTED);
}

TEST_F(PolicyTest, AutomationRulesApproveMatchingActionsOnTheStream) {
  v1::WatchActionsRequest request;
  request.set_after_sequence(server_->hub().head());
  auto context = As(kViewerToken);
  auto reader = actions_->WatchActions(context.get(), request);
  // inv-1001 is user-reported: the soft delete is approved by the rule...
  Action auto_approved = Propose("act-auto-1", v1::ACTION_TYPE_SOFT_DELETE_EMAIL, "inv-1001");
  EXPECT_EQ(auto_approved.state(), Action::STATE_APPROVED);
  EXPECT_EQ(auto_approved.decision().source(), v1::Decision::SOURCE_POLICY);
  EXPECT_EQ(auto_approved.decision().policy_rule(), "auto-soft-delete-reported-phish");
  // ...but inv-1003 came from an alert, so its soft delete waits for a person.
  Action waits = Propose("act-auto-2", v1::ACTION_TYPE_SOFT_DELETE_EMAIL, "inv-1003");
  EXPECT_EQ(waits.state(), Action::STATE_PENDING);

  std::vector<v1::Event::Type> types;
  v1::WatchActionsResponse message;
  while (types.size() < 3 && reader->Read(&message)) {
    if (message.has_event() && message.event().has_action()) {
      types.push_back(message.event().type());
    }
  }
  context->TryCancel();
  EXPECT_EQ(types, (std::vector<v1::Event::Type>{v1::Event::TYPE_ACTION_CREATED,
                                                 v1::Event::TYPE_ACTION_APPROVED,
                                                 v1::Event::TYPE_ACTION_CREATED}));
}

TEST(PolicyConfig, InvalidPoliciesNameTheField) {
  config::v1::PolicyConfig policy;
  policy.add_automation_rules()->set_name("a");
  policy.add_automation_rules()->set_name("a");
  auto built = DecisionPolicy::FromConfig(policy);
  EXPECT_THAT(built, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(BadRequestField(built.status()), "policy.automation_rules[1].name");
}

TEST(InsecureStart, RefusedOnAPublicAddressUnlessExplicitlyAllowed) {
  testing::TempDir dir;
  ServerOptions options;
  options.listen_address = "0.0.0.0:0";
  options.db_path = dir.File("air.db");
  options.housekeeping_interval = absl::ZeroDuration();
  auto refused = AirServer::Start(options);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kFailedPrecondition));
  options.allow_insecure = true;
  auto allowed = AirServer::Start(options);
  EXPECT_TRUE(allowed.ok()) << allowed.status();
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1:50051"));
  EXPECT_TRUE(IsLoopbackAddress("[::1]:50051"));
  EXPECT_TRUE(IsLoopbackAddress("localhost:1"));
  EXPECT_FALSE(IsLoopbackAddress("0.0.0.0:50051"));
  EXPECT_FALSE(IsLoopbackAddress("[::]:50051"));
}

// Mutual TLS with certificates made by the openssl CLI for this test.
class MutualTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string d = dir_.path();
    const std::string script =
        "cd " + d + " && "
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca "
        "-keyout ca.key -out ca.pem 2>/dev/null && "
        "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key "
        "-out server.csr 2>/dev/null && "
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > san.ext && "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-days 2 -extfile san.ext -out server.pem 2>/dev/null && "
        "openssl req -newkey rsa:2048 -nodes -subj /CN=soar-gw -keyout client.key "
        "-out client.csr 2>/dev/null && "
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-days 2 -out client.pem 2>/dev/null";
    ASSERT_EQ(std::system(script.c_str()), 0);
    std::ofstream(dir_.File("tokens")) << "cert soar-gw soar-gateway approver\n";
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.db_path = dir_.File("air.db");
    options.housekeeping_interval = absl::ZeroDuration();
    options.demo = true;
    options.tokens_file = dir_.File("tokens");
    options.tls.cert_file = dir_.File("server.pem");
    options.tls.key_file = dir_.File("server.key");
    options.tls.client_ca_file = dir_.File("ca.pem");
    options.tls.require_client_cert = true;
    auto server = AirServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  std::string Read(const std::string& name) {
    std::ifstream in(dir_.File(name));
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  grpc::Status Approve(const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    auto channel = grpc::CreateChannel(absl::StrCat("localhost:", server_->port()),
                                       credentials);
    auto stub = v1::ActionService::NewStub(channel);
    v1::ApproveActionRequest r;
    r.set_id("act-1001-1");
    v1::ApproveActionResponse out;
    auto context = testing::ServerFixture::Context(absl::Seconds(5));
    grpc::Status status = stub->ApproveAction(context.get(), r, &out);
    if (status.ok()) decider_ = out.action().decision().decider();
    return status;
  }

  testing::TempDir dir_;
  std::unique_ptr<AirServer> server_;
  std::string decider_;
};

TEST_F(MutualTlsTest, CertificateSubjectMapsToAPrincipal) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = Read("ca.pem");
  ssl.pem_cert_chain = Read("client.pem");
  ssl.pem_private_key = Read("client.key");
  ASSERT_TRUE(Approve(grpc::SslCredentials(ssl)).ok());
  EXPECT_EQ(decider_, "soar-gateway");
}

TEST_F(MutualTlsTest, AClientWithoutACertificateFailsTheHandshake) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = Read("ca.pem");
  EXPECT_THAT(Approve(grpc::SslCredentials(ssl)),
              GrpcStatusIs(grpc::StatusCode::UNAVAILABLE));
  EXPECT_THAT(Approve(grpc::InsecureChannelCredentials()),
              GrpcStatusIs(grpc::StatusCode::UNAVAILABLE));
}

// The gate refuses a caller that has gone before doing any work for it.
// A real call whose handler sees a passed deadline cannot be made
// deterministic, so these pass the facts Check reads off the call
// (IsCancelled(), deadline(), the system clock's now) with a fixed now.
class CallerGoneTest : public ::testing::Test {
 protected:
  using TimePoint = std::chrono::system_clock::time_point;
  static constexpr TimePoint kNow = TimePoint(std::chrono::seconds(1'800'000'000));

  // The refusal as the handler sends it: absl code and reason, then the
  // grpc::Status the client sees.
  static void ExpectRefused(const absl::Status& status, absl::StatusCode code,
                            grpc::StatusCode grpc_code, v1::ErrorReason reason) {
    EXPECT_EQ(status.code(), code) << status;
    EXPECT_EQ(ErrorReasonOf(status), reason);
    const grpc::Status sent = ToGrpcStatus(status);
    EXPECT_THAT(sent, GrpcStatusIs(grpc_code));
    EXPECT_EQ(DetailsOf(sent).reason, v1::ErrorReason_Name(reason));
  }
};

TEST_F(CallerGoneTest, ACancelledCallIsRefusedWithCallCancelled) {
  ExpectRefused(AccessControl::CheckCallerWaiting(/*cancelled=*/true,
                                                  kNow + std::chrono::hours(1), kNow),
                absl::StatusCode::kCancelled, grpc::StatusCode::CANCELLED, v1::CALL_CANCELLED);
}

TEST_F(CallerGoneTest, ACallPastItsDeadlineIsRefusedWithDeadlinePassed) {
  ExpectRefused(AccessControl::CheckCallerWaiting(/*cancelled=*/false,
                                                  kNow - std::chrono::microseconds(1), kNow),
                absl::StatusCode::kDeadlineExceeded, grpc::StatusCode::DEADLINE_EXCEEDED,
                v1::DEADLINE_PASSED);
}

TEST_F(CallerGoneTest, CancellationIsReportedBeforeAPassedDeadline) {
  ExpectRefused(AccessControl::CheckCallerWaiting(/*cancelled=*/true,
                                                  kNow - std::chrono::seconds(1), kNow),
                absl::StatusCode::kCancelled, grpc::StatusCode::CANCELLED, v1::CALL_CANCELLED);
}

TEST_F(CallerGoneTest, ACallWaitingUpToItsDeadlineIsServed) {
  EXPECT_TRUE(AccessControl::CheckCallerWaiting(false, kNow, kNow).ok())
      << "the deadline is passed only once now is after it";
  EXPECT_TRUE(
      AccessControl::CheckCallerWaiting(false, kNow + std::chrono::milliseconds(1), kNow).ok());
  EXPECT_TRUE(AccessControl::CheckCallerWaiting(false, TimePoint::max(), kNow).ok())
      << "no deadline";
}

}  // namespace
}  // namespace air
