// CallDrain: the gate that lets calls in flight finish while new calls are
// refused with UNAVAILABLE during shutdown (service/call_drain.h).
#include "service/call_drain.h"

#include <grpcpp/server_context.h>
#include <gtest/gtest.h>

#include <thread>

#include "domain/errors.h"
#include "service/auth.h"

namespace air {
namespace {

TEST(CallDrain, CountsCallsUntilDrainingThenAdmitsNone) {
  CallDrain drain;
  EXPECT_TRUE(drain.Enter());
  EXPECT_TRUE(drain.Enter());
  EXPECT_EQ(drain.in_flight(), 2);
  drain.Exit();
  drain.BeginDraining();
  EXPECT_TRUE(drain.draining());
  EXPECT_FALSE(drain.Enter()) << "no call is admitted once draining";
  EXPECT_EQ(drain.in_flight(), 1);
}

TEST(CallDrain, AwaitIdleReturnsAtOnceWithNothingInFlight) {
  CallDrain drain;
  drain.BeginDraining();
  // A deadline in the past: answered without waiting.
  EXPECT_TRUE(drain.AwaitIdle(absl::InfinitePast()));
}

TEST(CallDrain, AwaitIdleGivesUpAtTheDeadline) {
  CallDrain drain;
  ASSERT_TRUE(drain.Enter());
  drain.BeginDraining();
  EXPECT_FALSE(drain.AwaitIdle(absl::InfinitePast()));
  EXPECT_EQ(drain.in_flight(), 1);
}

TEST(CallDrain, TheLastCallOutWakesTheWaiter) {
  CallDrain drain;
  ASSERT_TRUE(drain.Enter());
  ASSERT_TRUE(drain.Enter());
  drain.BeginDraining();
  std::thread calls([&drain] {
    drain.Exit();
    drain.Exit();
  });
  // No deadline: returns only because the last Exit() signalled.
  EXPECT_TRUE(drain.AwaitIdle(absl::InfiniteFuture()));
  calls.join();
  EXPECT_EQ(drain.in_flight(), 0);
}

TEST(CallDrain, AccessControlRefusesEveryCallWhileDraining) {
  CallDrain drain;
  AccessControl access(/*authenticator=*/nullptr, &drain);
  grpc::ServerContext context;
  ASSERT_TRUE(access.Check(context, Permission::kDecide).ok());
  drain.BeginDraining();
  absl::StatusOr<Principal> refused = access.Check(context, Permission::kRead);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReasonOf(refused.status()), v1::SHUTTING_DOWN);
}

}  // namespace
}  // namespace air
