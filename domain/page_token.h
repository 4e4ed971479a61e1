// Opaque, checked page tokens for keyset pagination. A token holds the sort
// key and id of the last row returned, plus a fingerprint of the query it
// belongs to, so a token reused with another filter, or garbled in transit,
// is rejected instead of silently returning the wrong page.
#ifndef AIR_DOMAIN_PAGE_TOKEN_H_
#define AIR_DOMAIN_PAGE_TOKEN_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"

namespace air {

// The keyset position after which the next page starts.
struct PageCursor {
  int64_t sort_key = 0;  // e.g. create_time in Unix microseconds
  std::string id;        // tie-breaker

  bool operator==(const PageCursor& other) const {
    return sort_key == other.sort_key && id == other.id;
  }
};

// Identifies a query: its resource kind, filter and order. Tokens are only
// valid for the query that produced them.
uint64_t QueryFingerprint(absl::string_view kind, absl::string_view filter,
                          absl::string_view order_by);

// Encodes `cursor` for the query `fingerprint` as a URL-safe string.
std::string EncodePageToken(const PageCursor& cursor, uint64_t fingerprint);

// Decodes a token made by EncodePageToken for the same query. INVALID_ARGUMENT
// (field "page_token", reason INVALID_PAGE_TOKEN) if it is garbled, forged,
// or belongs to another query.
absl::StatusOr<PageCursor> DecodePageToken(absl::string_view token,
                                           uint64_t fingerprint);

}  // namespace air

#endif  // AIR_DOMAIN_PAGE_TOKEN_H_
