// libFuzzer target: page-token decoding (domain/page_token.h). Garbled or
// forged tokens fail with INVALID_ARGUMENT; a token that decodes re-encodes
// to a token that decodes to the same cursor.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "domain/page_token.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view token(reinterpret_cast<const char*>(data), size);
  const uint64_t fingerprint = air::QueryFingerprint("actions", "", "");
  for (uint64_t fp : {fingerprint, uint64_t{0}}) {
    auto cursor = air::DecodePageToken(token, fp);
    if (!cursor.ok()) {
      if (cursor.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
      continue;
    }
    auto again = air::DecodePageToken(air::EncodePageToken(*cursor, fp), fp);
    if (!again.ok() || !(*again == *cursor)) std::abort();
  }
  return 0;
}
