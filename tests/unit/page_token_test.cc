#include "domain/page_token.h"

#include "absl/strings/escaping.h"
#include "domain/errors.h"
#include "tests/support/test_support.h"

namespace air {
namespace {

using testing::StatusIs;

TEST(PageToken, RoundTrips) {
  const uint64_t fp = QueryFingerprint("actions", "state = STATE_PENDING", "create_time");
  const PageCursor cursor{1'700'000'000'123'456, "act-42"};
  auto decoded = DecodePageToken(EncodePageToken(cursor, fp), fp);
  AIR_ASSERT_OK(decoded);
  EXPECT_EQ(*decoded, cursor);
}

TEST(PageToken, RejectsTokensOfAnotherQuery) {
  const uint64_t fp = QueryFingerprint("actions", "", "create_time");
  const uint64_t other = QueryFingerprint("actions", "state = STATE_PENDING", "create_time");
  const std::string token = EncodePageToken({5, "a"}, fp);
  auto decoded = DecodePageToken(token, other);
  EXPECT_THAT(decoded, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(ErrorReasonOf(decoded.status()), v1::INVALID_PAGE_TOKEN);
  EXPECT_EQ(BadRequestField(decoded.status()), "page_token");
}

TEST(PageToken, RejectsGarbledAndForgedTokens) {
  const uint64_t fp = QueryFingerprint("actions", "", "");
  std::string token = EncodePageToken({5, "act-1"}, fp);
  for (size_t i = 0; i < token.size(); ++i) {
    std::string garbled = token;
    garbled[i] = garbled[i] == 'A' ? 'B' : 'A';
    auto decoded = DecodePageToken(garbled, fp);
    if (decoded.ok()) {
      // Only base64 padding-insensitive positions may survive; they must
      // still decode to the same cursor.
      EXPECT_EQ(decoded->id, "act-1");
    }
  }
  for (const char* bad : {"", "!!!", "AAAA", "bm90IGEgdG9rZW4", "%%%%%%%%"}) {
    if (std::string(bad).empty()) continue;
    EXPECT_THAT(DecodePageToken(bad, fp), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
  // A token with a recomputed plain payload but no valid checksum.
  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(token, &raw));
  raw[10] ^= 1;
  EXPECT_THAT(DecodePageToken(absl::WebSafeBase64Escape(raw), fp),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace air
