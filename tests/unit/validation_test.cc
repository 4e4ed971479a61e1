#include "domain/validation.h"

#include "domain/errors.h"
#include "domain/lifecycle.h"
#include "tests/support/test_support.h"

namespace air {
namespace {

using testing::StatusIs;

TEST(ValidateId, AcceptsTheDocumentedAlphabet) {
  AIR_ASSERT_OK(ValidateId("id", "act-1001-1"));
  AIR_ASSERT_OK(ValidateId("id", "A.b_c-9"));
  AIR_ASSERT_OK(ValidateId("id", std::string(kMaxIdLength, 'x')));
}

TEST(ValidateId, RejectsEmptyMalformedAndLong) {
  for (const std::string bad : {std::string(""), std::string("a b"), std::string("a/b"),
                                std::string("ä"), std::string(kMaxIdLength + 1, 'x'),
                                std::string("id\0x", 4)}) {
    absl::Status s = ValidateId("id", bad);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
    EXPECT_EQ(ErrorReasonOf(s), v1::INVALID_ID);
    EXPECT_EQ(BadRequestField(s), "id");
  }
}

TEST(ValidateComment, CountsCodePointsAndRejectsInvalidUtf8) {
  AIR_ASSERT_OK(ValidateComment("comment", ""));
  // 1024 three-byte characters are within the limit.
  std::string long_ok;
  for (int i = 0; i < kMaxCommentLength; ++i) long_ok += "\xe2\x82\xac";  // €
  AIR_ASSERT_OK(ValidateComment("comment", long_ok));
  absl::Status too_long = ValidateComment("comment", long_ok + "x");
  EXPECT_THAT(too_long, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(ErrorReasonOf(too_long), v1::COMMENT_TOO_LONG);
  for (const char* bad : {"\xff", "\xc3", "\xe2\x82", "\xc0\xaf", "\xed\xa0\x80"}) {
    absl::Status s = ValidateComment("comment", bad);
    EXPECT_EQ(ErrorReasonOf(s), v1::INVALID_UTF8) << s;
  }
}

TEST(ValidateRequestId, OptionalButBounded) {
  AIR_ASSERT_OK(ValidateRequestId("request_id", ""));
  AIR_ASSERT_OK(ValidateRequestId("request_id", "3f2b6c1e-7d1a-4c55-9a0e-0d6f0f1e2a3b"));
  EXPECT_THAT(ValidateRequestId("request_id", std::string(65, 'a')),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateRequestId("request_id", "has space"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ValidateDecision, ChecksIdThenCommentThenRequestId) {
  AIR_ASSERT_OK(ValidateDecision("act-1", "confirmed phish", ""));
  AIR_ASSERT_OK(ValidateDecision("act-1", "", "req-1"));
  const struct {
    const char* id;
    const char* comment;
    const char* request_id;
    const char* field;
    v1::ErrorReason reason;
  } kCases[] = {
      {"", "ok", "", "id", v1::INVALID_ID},
      {"bad id", "\xff", "bad request", "id", v1::INVALID_ID},  // the first bad field
      {"act-1", "\xff", "bad request", "comment", v1::INVALID_UTF8},
      {"act-1", "ok", "bad request", "request_id", v1::INVALID_REQUEST_ID},
  };
  for (const auto& c : kCases) {
    absl::Status s = ValidateDecision(c.id, c.comment, c.request_id);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument)) << c.field;
    EXPECT_EQ(BadRequestField(s), c.field);
    EXPECT_EQ(ErrorReasonOf(s), c.reason);
  }
}

TEST(EffectivePageSize, DefaultsCapsAndRejectsNegative) {
  EXPECT_EQ(*EffectivePageSize(0), kDefaultPageSize);
  EXPECT_EQ(*EffectivePageSize(7), 7);
  EXPECT_EQ(*EffectivePageSize(1'000'000), kMaxPageSize);
  auto negative = EffectivePageSize(-1);
  EXPECT_THAT(negative, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(BadRequestField(negative.status()), "page_size");
}

}  // namespace
}  // namespace air
