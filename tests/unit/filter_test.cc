#include "domain/filter.h"

#include "domain/errors.h"
#include "tests/support/test_support.h"

namespace air {
namespace {

using testing::StatusIs;

TEST(ActionFilter, ParsesConjunctions) {
  auto filter = ParseActionFilter(
      "state = STATE_PENDING AND type = ACTION_TYPE_SOFT_DELETE_EMAIL AND "
      "investigation_id = \"inv-1\"");
  AIR_ASSERT_OK(filter);
  EXPECT_EQ(filter->state, v1::Action::STATE_PENDING);
  EXPECT_EQ(filter->type, v1::ACTION_TYPE_SOFT_DELETE_EMAIL);
  EXPECT_EQ(filter->investigation_id, "inv-1");

  v1::Action action;
  action.set_state(v1::Action::STATE_PENDING);
  action.set_type(v1::ACTION_TYPE_SOFT_DELETE_EMAIL);
  action.set_investigation_id("inv-1");
  EXPECT_TRUE(filter->Matches(action));
  action.set_investigation_id("inv-2");
  EXPECT_FALSE(filter->Matches(action));
}

TEST(ActionFilter, EmptyMatchesEverything) {
  auto filter = ParseActionFilter("   ");
  AIR_ASSERT_OK(filter);
  EXPECT_TRUE(filter->Matches(v1::Action()));
}

TEST(ActionFilter, RejectsBadInputWithFieldAndReason) {
  for (const char* bad : {
           "colour = red",                     // unknown field
           "state = STATE_BOGUS",              // unknown value
           "state = STATE_UNSPECIFIED",        // the zero value is not a state
           "state = STATE_PENDING OR type = ACTION_TYPE_BLOCK_URL",  // no OR
           "state STATE_PENDING",              // missing operator
           "state = ",                         // missing value
           "state = STATE_PENDING AND",        // dangling AND
           "state = STATE_PENDING AND state = STATE_APPROVED",  // twice
           "type > ACTION_TYPE_BLOCK_URL",     // enums only support =
           "investigation_id = \"unterminated",
           "investigation_id = \"bad id!\"",
           "state = \xff\xfe",                 // invalid UTF-8
           "'; DROP TABLE actions; --",
       }) {
    auto filter = ParseActionFilter(bad);
    EXPECT_THAT(filter, StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
    EXPECT_EQ(ErrorReasonOf(filter.status()), v1::INVALID_FILTER) << bad;
    EXPECT_EQ(BadRequestField(filter.status()), "filter") << bad;
  }
  EXPECT_THAT(ParseActionFilter(std::string(2000, 'a')),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(InvestigationFilter, TimeBoundsAreHalfOpen) {
  auto filter = ParseInvestigationFilter(
      "state = STATE_PENDING_ACTION AND create_time >= \"2026-01-01T00:00:00Z\" "
      "AND create_time < \"2026-02-01T00:00:00Z\" AND source = SOURCE_USER_REPORTED");
  AIR_ASSERT_OK(filter);
  EXPECT_EQ(filter->state, v1::Investigation::STATE_PENDING_ACTION);
  EXPECT_EQ(filter->source, v1::Investigation::SOURCE_USER_REPORTED);
  EXPECT_EQ(*filter->create_after, absl::FromCivil(absl::CivilSecond(2026, 1, 1),
                                                  absl::UTCTimeZone()));
  EXPECT_EQ(*filter->create_before, absl::FromCivil(absl::CivilSecond(2026, 2, 1),
                                                   absl::UTCTimeZone()));
  EXPECT_THAT(ParseInvestigationFilter("create_time >= \"yesterday\""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseInvestigationFilter("type = ACTION_TYPE_BLOCK_URL"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace air
