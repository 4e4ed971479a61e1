// InvestigationService and ActionService through a real gRPC channel.
#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "air/v1/error_reason.pb.h"
#include "service/housekeeping.h"
#include <grpcpp/generic/generic_stub.h>
#include "tests/support/server_fixture.h"

namespace air {
namespace {

using testing::DetailsOf;
using testing::GrpcStatusIs;
using v1::Action;
using v1::Investigation;

class ApiTest : public testing::ServerFixture {
 protected:
  grpc::Status Approve(const std::string& id, v1::ApproveActionResponse* response,
                       const std::string& etag = "", const std::string& comment = "",
                       const std::string& request_id = "") {
    v1::ApproveActionRequest request;
    request.set_id(id);
    request.set_etag(etag);
    request.set_comment(comment);
    request.set_request_id(request_id);
    return actions_->ApproveAction(Context().get(), request, response);
  }
  grpc::Status Reject(const std::string& id, v1::RejectActionResponse* response) {
    v1::RejectActionRequest request;
    request.set_id(id);
    request.set_comment("false positive: internal newsletter");
    return actions_->RejectAction(Context().get(), request, response);
  }
  Investigation GetInvestigation(const std::string& id) {
    v1::GetInvestigationRequest request;
    request.set_id(id);
    v1::GetInvestigationResponse response;
    EXPECT_TRUE(investigations_->GetInvestigation(Context().get(), request, &response).ok());
    return response.investigation();
  }
  std::vector<Action> ListActions(const std::string& filter) {
    v1::ListActionsRequest request;
    request.set_filter(filter);
    request.set_page_size(1000);
    v1::ListActionsResponse response;
    grpc::Status status = actions_->ListActions(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.actions().begin(), response.actions().end()};
  }
  // Asserts code, reason and (optionally) the BadRequest field, and that the
  // message leaks no SQL or path.
  static void ExpectError(const grpc::Status& status, grpc::StatusCode code,
                          v1::ErrorReason reason, const std::string& field = "") {
    EXPECT_THAT(status, GrpcStatusIs(code));
    const auto details = DetailsOf(status);
    EXPECT_EQ(details.reason, v1::ErrorReason_Name(reason)) << status.error_message();
    if (!field.empty()) {
      EXPECT_EQ(details.bad_field, field);
    }
    for (const char* leak : {"SELECT", "INSERT", "sqlite", "/tmp", ".db"}) {
      EXPECT_FALSE(absl::StrContains(status.error_message(), leak)) << status.error_message();
    }
  }
};

TEST_F(ApiTest, TheAnalystFlowMovesTheInvestigation) {
  v1::ListInvestigationsRequest list;
  v1::ListInvestigationsResponse investigations;
  ASSERT_TRUE(investigations_->ListInvestigations(Context().get(), list, &investigations).ok());
  EXPECT_GE(investigations.investigations_size(), 5);

  Investigation inv = GetInvestigation("inv-1001");
  EXPECT_EQ(inv.state(), Investigation::STATE_PENDING_ACTION);
  EXPECT_EQ(inv.action_counts().pending(), 2);

  auto pending = ListActions("investigation_id = \"inv-1001\" AND state = STATE_PENDING");
  ASSERT_EQ(pending.size(), 2u);

  v1::ApproveActionResponse approved;
  ASSERT_TRUE(Approve(pending[0].id(), &approved, pending[0].etag(), "confirmed phish").ok());
  EXPECT_EQ(approved.action().state(), Action::STATE_APPROVED);
  EXPECT_EQ(approved.action().decision().decider(), "anonymous");  // from the transport
  EXPECT_EQ(approved.action().decision().source(), v1::Decision::SOURCE_API);
  // Approved but not yet carried out, with another still pending.
  EXPECT_EQ(GetInvestigation("inv-1001").state(), Investigation::STATE_PENDING_ACTION);

  v1::RejectActionResponse rejected;
  ASSERT_TRUE(Reject(pending[1].id(), &rejected).ok());
  EXPECT_EQ(rejected.action().state(), Action::STATE_REJECTED);
  inv = GetInvestigation("inv-1001");
  EXPECT_EQ(inv.state(), Investigation::STATE_RUNNING);
  EXPECT_EQ(inv.action_counts().pending(), 0);
  EXPECT_EQ(inv.action_counts().approved(), 1);
  EXPECT_EQ(inv.action_counts().rejected(), 1);
}

TEST_F(ApiTest, BadInputIsInvalidArgumentNamingTheField) {
  v1::GetActionResponse get;
  v1::GetActionRequest get_request;
  ExpectError(actions_->GetAction(Context().get(), get_request, &get),
              grpc::StatusCode::INVALID_ARGUMENT, v1::INVALID_ID, "id");
  get_request.set_id("act/../../etc");
  ExpectError(actions_->GetAction(Context().get(), get_request, &get),
              grpc::StatusCode::INVALID_ARGUMENT, v1::INVALID_ID, "id");

  v1::ListActionsRequest list;
  v1::ListActionsResponse list_response;
  list.set_page_size(-1);
  ExpectError(actions_->ListActions(Context().get(), list, &list_response),
              grpc::StatusCode::INVALID_ARGUMENT, v1::INVALID_PAGE_SIZE, "page_size");
  list.set_page_size(0);
  list.set_page_token("garbled-token");
  ExpectError(actions_->ListActions(Context().get(), list, &list_response),
              grpc::StatusCode::INVALID_ARGUMENT, v1::INVALID_PAGE_TOKEN, "page_token");
  list.clear_page_token();
  list.set_filter("colour = STATE_PENDING");
  ExpectError(actions_->ListActions(Context().get(), list, &list_response),
              grpc::StatusCode::INVALID_ARGUMENT, v1::INVALID_FILTER, "filter");
  list.set_filter("state = STATE_SLEEPING");
  ExpectError(actions_->ListActions(Context().get(), list, &list_response),
              grpc::StatusCode::INVALID_ARGUMENT, v1::INVALID_FILTER, "filter");
  list.set_filter("");
  list.set_order_by("colour");
  ExpectError(actions_->ListActions(Context().get(), list, &list_response),
              grpc::StatusCode::INVALID_ARGUMENT, v1::INVALID_ORDER_BY, "order_by");

  v1::ListInvestigationsRequest inv_list;
  v1::ListInvestigationsResponse inv_response;
  inv_list.set_filter("create_time >= \"last tuesday\"");
  ExpectError(investigations_->ListInvestigations(Context().get(), inv_list, &inv_response),
              grpc::StatusCode::INVALID_ARGUMENT, v1::INVALID_FILTER, "filter");

  v1::ApproveActionResponse approved;
  ExpectError(Approve("act-1001-1", &approved, "", std::string(1025, 'x')),
              grpc::StatusCode::INVALID_ARGUMENT, v1::COMMENT_TOO_LONG, "comment");
  ExpectError(Approve("act-1001-1", &approved, "", "", "not a valid request id!"),
              grpc::StatusCode::INVALID_ARGUMENT, v1::INVALID_REQUEST_ID, "request_id");
  // Nothing was decided by any of that.
  v1::GetActionRequest check;
  check.set_id("act-1001-1");
  ASSERT_TRUE(actions_->GetAction(Context().get(), check, &get).ok());
  EXPECT_EQ(get.action().state(), Action::STATE_PENDING);
}

TEST_F(ApiTest, UnknownIdsAreNotFound) {
  v1::GetActionRequest request;
  request.set_id("act-does-not-exist");
  v1::GetActionResponse response;
  ExpectError(actions_->GetAction(Context().get(), request, &response),
              grpc::StatusCode::NOT_FOUND, v1::ACTION_NOT_FOUND);
  v1::GetInvestigationRequest inv;
  inv.set_id("inv-does-not-exist");
  v1::GetInvestigationResponse inv_response;
  ExpectError(investigations_->GetInvestigation(Context().get(), inv, &inv_response),
              grpc::StatusCode::NOT_FOUND, v1::INVESTIGATION_NOT_FOUND);
  v1::ApproveActionResponse approved;
  ExpectError(Approve("act-does-not-exist", &approved), grpc::StatusCode::NOT_FOUND,
              v1::ACTION_NOT_FOUND);
}

TEST_F(ApiTest, DecidingTwiceIsFailedPreconditionNamingTheState) {
  v1::RejectActionResponse rejected;
  ASSERT_TRUE(Reject("act-1002-1", &rejected).ok());
  v1::ApproveActionResponse approved;
  grpc::Status status = Approve("act-1002-1", &approved);
  ExpectError(status, grpc::StatusCode::FAILED_PRECONDITION, v1::ACTION_NOT_PENDING);
  EXPECT_EQ(DetailsOf(status).metadata["state"], "STATE_REJECTED");
  EXPECT_TRUE(absl::StrContains(status.error_message(), "STATE_REJECTED"));
}

TEST_F(ApiTest, StaleEtagIsAborted) {
  v1::GetActionRequest request;
  request.set_id("act-1002-2");
  v1::GetActionResponse current;
  ASSERT_TRUE(actions_->GetAction(Context().get(), request, &current).ok());
  v1::ApproveActionResponse approved;
  ExpectError(Approve("act-1002-2", &approved, "v999"), grpc::StatusCode::ABORTED,
              v1::ETAG_MISMATCH);
  ASSERT_TRUE(Approve("act-1002-2", &approved, current.action().etag()).ok());
  EXPECT_NE(approved.action().etag(), current.action().etag());
}

TEST_F(ApiTest, ReplayedRequestIdReturnsTheFirstResult) {
  v1::ApproveActionResponse first, second;
  ASSERT_TRUE(Approve("act-1003-1", &first, "", "go", "3f2b6c1e-7d1a-4c55").ok());
  clock_.Advance(absl::Minutes(3));
  ASSERT_TRUE(Approve("act-1003-1", &second, "", "go", "3f2b6c1e-7d1a-4c55").ok());
  EXPECT_EQ(first.SerializeAsString(), second.SerializeAsString());
  // The same key for another request is refused.
  ExpectError(Approve("act-1003-2", &second, "", "go", "3f2b6c1e-7d1a-4c55"),
              grpc::StatusCode::INVALID_ARGUMENT, v1::REQUEST_ID_REUSED, "request_id");
}

TEST_F(ApiTest, BatchDecidesAllOfOneTypeOrNone) {
  v1::BatchDecideActionsRequest request;
  request.add_ids("act-1004-2");  // BLOCK_URL
  request.add_ids("act-1001-2");  // BLOCK_URL
  request.set_decision(v1::BATCH_DECISION_APPROVE);
  request.set_comment("campaign URLs");
  v1::BatchDecideActionsResponse response;
  ASSERT_TRUE(actions_->BatchDecideActions(Context().get(), request, &response).ok());
  ASSERT_EQ(response.actions_size(), 2);
  EXPECT_EQ(response.actions(0).state(), Action::STATE_APPROVED);
  EXPECT_EQ(response.actions(1).id(), "act-1001-2");

  v1::BatchDecideActionsRequest mixed;
  mixed.add_ids("act-1001-1");  // SOFT_DELETE_EMAIL
  mixed.add_ids("act-1003-2");  // ISOLATE_DEVICE
  mixed.set_decision(v1::BATCH_DECISION_REJECT);
  grpc::Status status = actions_->BatchDecideActions(Context().get(), mixed, &response);
  ExpectError(status, grpc::StatusCode::INVALID_ARGUMENT, v1::MIXED_ACTION_TYPES, "ids");

  v1::BatchDecideActionsRequest partly_decided;
  partly_decided.add_ids("act-1004-3");  // pending SOFT_DELETE_EMAIL
  partly_decided.add_ids("act-1004-1");  // already approved and completed
  partly_decided.set_decision(v1::BATCH_DECISION_APPROVE);
  status = actions_->BatchDecideActions(Context().get(), partly_decided, &response);
  ExpectError(status, grpc::StatusCode::FAILED_PRECONDITION, v1::ACTION_NOT_PENDING);
  EXPECT_EQ(DetailsOf(status).metadata["action_id"], "act-1004-1");
  EXPECT_EQ(ListActions("investigation_id = \"inv-1004\" AND state = STATE_PENDING").size(), 1u);

  v1::BatchDecideActionsRequest empty;
  empty.set_decision(v1::BATCH_DECISION_APPROVE);
  ExpectError(actions_->BatchDecideActions(Context().get(), empty, &response),
              grpc::StatusCode::INVALID_ARGUMENT, v1::INVALID_ID, "ids");
  v1::BatchDecideActionsRequest no_decision;
  no_decision.add_ids("act-1004-3");
  ExpectError(actions_->BatchDecideActions(Context().get(), no_decision, &response),
              grpc::StatusCode::INVALID_ARGUMENT, v1::INVALID_DECISION, "decision");
}

TEST_F(ApiTest, PagingWalksEveryRowOnceWithOpaqueTokens) {
  std::set<std::string> seen;
  v1::ListActionsRequest request;
  request.set_page_size(3);
  int pages = 0;
  do {
    v1::ListActionsResponse response;
    ASSERT_TRUE(actions_->ListActions(Context().get(), request, &response).ok());
    for (const auto& a : response.actions()) EXPECT_TRUE(seen.insert(a.id()).second);
    request.set_page_token(response.next_page_token());
    ++pages;
  } while (!request.page_token().empty());
  EXPECT_EQ(seen.size(), 15u);  // the demo set's actions
  EXPECT_EQ(pages, 5);
  // A token is bound to its query.
  v1::ListActionsRequest first;
  first.set_page_size(3);
  v1::ListActionsResponse page1;
  ASSERT_TRUE(actions_->ListActions(Context().get(), first, &page1).ok());
  v1::ListActionsRequest other = first;
  other.set_page_token(page1.next_page_token());
  other.set_filter("state = STATE_PENDING");
  ExpectError(actions_->ListActions(Context().get(), other, &page1),
              grpc::StatusCode::INVALID_ARGUMENT, v1::INVALID_PAGE_TOKEN, "page_token");
}

TEST_F(ApiTest, InvestigationsFilterAndSort) {
  v1::ListInvestigationsRequest request;
  request.set_filter("state = STATE_PENDING_ACTION");
  request.set_order_by("update_time desc");
  v1::ListInvestigationsResponse response;
  ASSERT_TRUE(investigations_->ListInvestigations(Context().get(), request, &response).ok());
  EXPECT_EQ(response.investigations_size(), 4);
  for (const auto& inv : response.investigations()) {
    EXPECT_EQ(inv.state(), Investigation::STATE_PENDING_ACTION);
    EXPECT_GT(inv.action_counts().pending(), 0);
  }
  request.set_filter("create_time >= \"2099-01-01T00:00:00Z\"");
  ASSERT_TRUE(investigations_->ListInvestigations(Context().get(), request, &response).ok());
  EXPECT_EQ(response.investigations_size(), 0);
}

TEST_F(ApiTest, ExpiryAfterTheTtlTerminatesBySystem) {
  clock_.Advance(kDefaultActionTtl + absl::Seconds(1));
  v1::ApproveActionResponse approved;
  grpc::Status late = Approve("act-1005-1", &approved);
  ExpectError(late, grpc::StatusCode::FAILED_PRECONDITION, v1::ACTION_NOT_PENDING);
  EXPECT_EQ(DetailsOf(late).metadata["state"], "STATE_EXPIRED");
  auto expired = server_->expiry_sweeper().RunOnce();
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(*expired, 12);  // every pending demo action
  Investigation inv = GetInvestigation("inv-1005");
  EXPECT_EQ(inv.state(), Investigation::STATE_TERMINATED_BY_SYSTEM);
  EXPECT_EQ(inv.action_counts().expired(), 2);
}

TEST_F(ApiTest, ServesHealthAndSurvivesRestart) {
  // grpc.health.v1.Health/Check with an empty request, over the wire. Debian
  // ships no health.proto, so the call is made generically: the response
  // HealthCheckResponse{status: SERVING} encodes as the bytes 08 01.
  grpc::GenericStub generic(channel_);
  grpc::ByteBuffer empty_request(nullptr, 0), reply;
  grpc::Status call_status;
  absl::Notification done;
  auto context = Context();
  generic.UnaryCall(context.get(), "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                    &empty_request, &reply, [&](grpc::Status s) {
                      call_status = s;
                      done.Notify();
                    });
  done.WaitForNotification();
  ASSERT_TRUE(call_status.ok()) << call_status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(reply.Dump(&slices).ok());
  std::string bytes;
  for (const auto& slice : slices) bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));

  v1::ApproveActionResponse approved;
  ASSERT_TRUE(Approve("act-1002-3", &approved).ok());
  StartServer(/*demo=*/true);  // demo data is not loaded twice
  v1::GetActionRequest get;
  get.set_id("act-1002-3");
  v1::GetActionResponse got;
  ASSERT_TRUE(actions_->GetAction(Context().get(), get, &got).ok());
  EXPECT_EQ(got.action().state(), Action::STATE_APPROVED);
  EXPECT_EQ(ListActions("").size(), 15u);
}

}  // namespace
}  // namespace air
