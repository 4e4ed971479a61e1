// Request validation shared by every entry point (gRPC, HTTP, CLI tests).
// Each function returns INVALID_ARGUMENT with a BadRequest naming `field`.
#ifndef AIR_DOMAIN_VALIDATION_H_
#define AIR_DOMAIN_VALIDATION_H_

#include <string_view>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace air {

// Longest resource id, and the default and maximum page sizes.
inline constexpr int kMaxIdLength = 128;
inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 1000;
inline constexpr int kMaxRequestIdLength = 64;

// 1..128 characters of [A-Za-z0-9._-]. Reason INVALID_ID.
absl::Status ValidateId(absl::string_view field, absl::string_view id);

// At most kMaxCommentLength code points of valid UTF-8. Reasons
// COMMENT_TOO_LONG, INVALID_UTF8.
absl::Status ValidateComment(absl::string_view field, absl::string_view comment);

// Empty, or 1..64 characters of [A-Za-z0-9._-]. Reason INVALID_REQUEST_ID.
absl::Status ValidateRequestId(absl::string_view field,
                               absl::string_view request_id);

// The fields of a single approve or reject request (ApproveAction,
// RejectAction): the id, then the comment, then the request_id, each with
// the errors above and its own field name.
absl::Status ValidateDecision(absl::string_view id, absl::string_view comment,
                              absl::string_view request_id);

// Returns the effective page size: 0 -> default, capped at the maximum.
// Negative is INVALID_PAGE_SIZE.
absl::StatusOr<int> EffectivePageSize(int page_size);

// True if `text` is valid UTF-8.
bool IsValidUtf8(absl::string_view text);

}  // namespace air

#endif  // AIR_DOMAIN_VALIDATION_H_
