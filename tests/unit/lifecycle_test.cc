#include "domain/lifecycle.h"

#include "domain/errors.h"
#include "tests/support/test_support.h"

namespace air {
namespace {

using testing::StatusIs;
using v1::Action;
using v1::Investigation;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

Action PendingAction() {
  Action action;
  action.set_id("act-1");
  action.set_investigation_id("inv-1");
  InitializeNewAction(kNow, kDefaultActionTtl, action);
  return action;
}

DecisionCommand Approve() {
  DecisionCommand command;
  command.outcome = v1::Decision::OUTCOME_APPROVED;
  command.decider = "alice";
  command.comment = "confirmed phish";
  return command;
}

TEST(ActionStateMachine, LegalTransitions) {
  const struct {
    ActionState from, to;
  } legal[] = {
      {Action::STATE_PENDING, Action::STATE_APPROVED},
      {Action::STATE_PENDING, Action::STATE_REJECTED},
      {Action::STATE_PENDING, Action::STATE_EXPIRED},
      {Action::STATE_PENDING, Action::STATE_CANCELLED},
      {Action::STATE_APPROVED, Action::STATE_RUNNING},
      {Action::STATE_APPROVED, Action::STATE_COMPLETED},
      {Action::STATE_APPROVED, Action::STATE_FAILED},
      {Action::STATE_RUNNING, Action::STATE_COMPLETED},
      {Action::STATE_RUNNING, Action::STATE_FAILED},
  };
  for (const auto& t : legal) {
    EXPECT_TRUE(CheckActionTransition(t.from, t.to).ok())
        << Action::State_Name(t.from) << " -> " << Action::State_Name(t.to);
  }
}

TEST(ActionStateMachine, EveryOtherTransitionIsFailedPrecondition) {
  int illegal = 0;
  for (int from = 1; from <= Action::State_MAX; ++from) {
    for (int to = 1; to <= Action::State_MAX; ++to) {
      const auto f = static_cast<ActionState>(from);
      const auto t = static_cast<ActionState>(to);
      absl::Status status = CheckActionTransition(f, t);
      if (status.ok()) continue;
      ++illegal;
      EXPECT_THAT(status, StatusIs(absl::StatusCode::kFailedPrecondition));
      EXPECT_EQ(ErrorMetadata(status, "state"), Action::State_Name(f));
    }
  }
  EXPECT_EQ(illegal, 8 * 8 - 9 - 1);  // all but the 9 legal ones and APPROVED->CANCELLED
  for (ActionState terminal : {Action::STATE_REJECTED, Action::STATE_COMPLETED,
                               Action::STATE_FAILED, Action::STATE_EXPIRED,
                               Action::STATE_CANCELLED}) {
    EXPECT_TRUE(IsTerminal(terminal));
  }
}

TEST(ApplyDecision, ApprovesAndRecordsWhoWhenWhy) {
  Action action = PendingAction();
  const std::string etag = action.etag();
  AIR_ASSERT_OK(ApplyDecision(Approve(), kNow + absl::Minutes(5), action));
  EXPECT_EQ(action.state(), Action::STATE_APPROVED);
  EXPECT_EQ(action.decision().decider(), "alice");
  EXPECT_EQ(action.decision().comment(), "confirmed phish");
  EXPECT_EQ(action.decision().source(), v1::Decision::SOURCE_API);
  EXPECT_EQ(ToAbslTime(action.decision().decide_time()), kNow + absl::Minutes(5));
  EXPECT_NE(action.etag(), etag);
}

TEST(ApplyDecision, SecondDecisionIsFailedPreconditionNamingState) {
  Action action = PendingAction();
  AIR_ASSERT_OK(ApplyDecision(Approve(), kNow, action));
  DecisionCommand reject = Approve();
  reject.outcome = v1::Decision::OUTCOME_REJECTED;
  absl::Status status = ApplyDecision(reject, kNow, action);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(ErrorReasonOf(status), v1::ACTION_NOT_PENDING);
  EXPECT_EQ(ErrorMetadata(status, "state"), "STATE_APPROVED");
  EXPECT_EQ(action.state(), Action::STATE_APPROVED);
}

TEST(ApplyDecision, StaleEtagIsAbortedAndChangesNothing) {
  Action action = PendingAction();
  DecisionCommand command = Approve();
  command.expected_etag = "v999";
  const Action before = action;
  EXPECT_THAT(ApplyDecision(command, kNow, action), StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(action.SerializeAsString(), before.SerializeAsString());
  command.expected_etag = action.etag();
  AIR_ASSERT_OK(ApplyDecision(command, kNow, action));
}

TEST(ApplyDecision, PastTheDeadlineCountsAsExpired) {
  Action action = PendingAction();
  absl::Status status = ApplyDecision(Approve(), kNow + kDefaultActionTtl, action);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(ErrorMetadata(status, "state"), "STATE_EXPIRED");
}

TEST(ApplyExpiry, OnlyAfterTheDeadline) {
  Action action = PendingAction();
  EXPECT_THAT(ApplyExpiry(kNow + kDefaultActionTtl - absl::Seconds(1), action),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  AIR_ASSERT_OK(ApplyExpiry(kNow + kDefaultActionTtl, action));
  EXPECT_EQ(action.state(), Action::STATE_EXPIRED);
  EXPECT_EQ(action.decision().outcome(), v1::Decision::OUTCOME_EXPIRED);
  EXPECT_EQ(action.decision().source(), v1::Decision::SOURCE_EXPIRY);
}

TEST(ApplyExecutionState, ReplayedReportIsHarmless) {
  Action action = PendingAction();
  EXPECT_THAT(ApplyExecutionState(Action::STATE_RUNNING, "", kNow, action),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  AIR_ASSERT_OK(ApplyDecision(Approve(), kNow, action));
  AIR_ASSERT_OK(ApplyExecutionState(Action::STATE_RUNNING, "", kNow, action));
  const std::string etag = action.etag();
  AIR_ASSERT_OK(ApplyExecutionState(Action::STATE_RUNNING, "", kNow, action));
  EXPECT_EQ(action.etag(), etag);
  AIR_ASSERT_OK(ApplyExecutionState(Action::STATE_FAILED, "device offline", kNow, action));
  EXPECT_EQ(action.failure_reason(), "device offline");
}

// Investigation state follows from its actions.
class InvestigationDerivation : public ::testing::Test {
 protected:
  void SetUp() override {
    inv_.set_id("inv-1");
    inv_.set_state(Investigation::STATE_RUNNING);
    InitializeNewInvestigation(kNow, inv_);
  }
  bool Move(ActionState from, ActionState to) {
    return ApplyActionChange(from, to, kNow, inv_);
  }
  Investigation inv_;
};

TEST_F(InvestigationDerivation, PendingThenDecidedThenRemediated) {
  EXPECT_TRUE(Move(Action::STATE_UNSPECIFIED, Action::STATE_PENDING));
  EXPECT_EQ(inv_.state(), Investigation::STATE_PENDING_ACTION);
  EXPECT_FALSE(Move(Action::STATE_UNSPECIFIED, Action::STATE_PENDING));
  EXPECT_EQ(inv_.action_counts().pending(), 2);
  EXPECT_EQ(inv_.action_counts().total(), 2);

  // Approved but not yet carried out: still waiting on the other action.
  EXPECT_FALSE(Move(Action::STATE_PENDING, Action::STATE_APPROVED));
  EXPECT_EQ(inv_.state(), Investigation::STATE_PENDING_ACTION);
  // Carried out while another still waits: partially remediated.
  EXPECT_TRUE(Move(Action::STATE_APPROVED, Action::STATE_COMPLETED));
  EXPECT_EQ(inv_.state(), Investigation::STATE_PARTIALLY_REMEDIATED);
  // Deciding the last pending action moves it out of "pending action".
  EXPECT_TRUE(Move(Action::STATE_PENDING, Action::STATE_REJECTED));
  EXPECT_EQ(inv_.state(), Investigation::STATE_REMEDIATED);
  EXPECT_EQ(inv_.action_counts().approved(), 1);
  EXPECT_EQ(inv_.action_counts().completed(), 1);
  EXPECT_EQ(inv_.action_counts().rejected(), 1);
  EXPECT_EQ(inv_.action_counts().pending(), 0);
}

TEST_F(InvestigationDerivation, ExpiryTerminatesBySystem) {
  Move(Action::STATE_UNSPECIFIED, Action::STATE_PENDING);
  Move(Action::STATE_UNSPECIFIED, Action::STATE_PENDING);
  Move(Action::STATE_PENDING, Action::STATE_EXPIRED);
  EXPECT_EQ(inv_.state(), Investigation::STATE_PENDING_ACTION);
  Move(Action::STATE_PENDING, Action::STATE_EXPIRED);
  EXPECT_EQ(inv_.state(), Investigation::STATE_TERMINATED_BY_SYSTEM);
  // Terminal: nothing moves it again.
  Move(Action::STATE_UNSPECIFIED, Action::STATE_PENDING);
  EXPECT_EQ(inv_.state(), Investigation::STATE_TERMINATED_BY_SYSTEM);
}

TEST(InvestigationStateMachine, TerminalStatesAreFinal) {
  EXPECT_TRUE(CheckInvestigationTransition(Investigation::STATE_STARTING,
                                           Investigation::STATE_RUNNING).ok());
  EXPECT_TRUE(CheckInvestigationTransition(Investigation::STATE_QUEUED_BY_THROTTLING,
                                           Investigation::STATE_STARTING).ok());
  EXPECT_THAT(CheckInvestigationTransition(Investigation::STATE_NO_THREATS_FOUND,
                                           Investigation::STATE_RUNNING),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(CheckInvestigationTransition(Investigation::STATE_RUNNING,
                                           Investigation::STATE_STARTING),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(Etag, ChangesOnEveryUpdate) {
  EXPECT_EQ(NextEtag(""), "v1");
  EXPECT_EQ(NextEtag("v1"), "v2");
  EXPECT_EQ(NextEtag("garbage"), "v1");
}

}  // namespace
}  // namespace air
