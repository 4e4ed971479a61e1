#include "domain/page_token.h"

#include "absl/base/internal/endian.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "domain/errors.h"

namespace air {
namespace {

constexpr char kTokenVersion = 1;
// Mixed into the checksum so a client cannot mint tokens by recomputing a
// plain hash. Not a secret against a determined forger; it only has to make
// accidental or casual edits fail loudly, and the cursor is re-validated
// anyway (it only selects rows the caller may already list).
constexpr uint64_t kChecksumSalt = 0x6169722d70616765ULL;  // "air-page"

uint64_t Fnv1a(absl::string_view data, uint64_t seed) {
  uint64_t hash = 0xcbf29ce484222325ULL ^ seed;
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

void AppendU64(std::string& out, uint64_t v) {
  char buf[8];
  absl::little_endian::Store64(buf, v);
  out.append(buf, 8);
}

absl::Status BadToken() {
  return InvalidField("page_token",
                      "is not a token returned by this list with the same "
                      "filter and order_by",
                      v1::INVALID_PAGE_TOKEN);
}

}  // namespace

uint64_t QueryFingerprint(absl::string_view kind, absl::string_view filter,
                          absl::string_view order_by) {
  return Fnv1a(absl::StrCat(kind, absl::string_view("\0", 1), filter, absl::string_view("\0", 1), order_by), 0);
}

std::string EncodePageToken(const PageCursor& cursor, uint64_t fingerprint) {
  std::string raw;
  raw.push_back(kTokenVersion);
  AppendU64(raw, fingerprint);
  AppendU64(raw, static_cast<uint64_t>(cursor.sort_key));
  raw.append(cursor.id);
  AppendU64(raw, Fnv1a(raw, kChecksumSalt));
  return absl::WebSafeBase64Escape(raw);
}

absl::StatusOr<PageCursor> DecodePageToken(absl::string_view token,
                                           uint64_t fingerprint) {
  std::string raw;
  if (token.size() > 1024 || !absl::WebSafeBase64Unescape(token, &raw)) {
    return BadToken();
  }
  constexpr size_t kFixed = 1 + 8 + 8 + 8;
  if (raw.size() < kFixed + 1 || raw[0] != kTokenVersion) return BadToken();
  const absl::string_view body(raw.data(), raw.size() - 8);
  if (absl::little_endian::Load64(raw.data() + raw.size() - 8) !=
      Fnv1a(body, kChecksumSalt)) {
    return BadToken();
  }
  if (absl::little_endian::Load64(raw.data() + 1) != fingerprint) {
    return BadToken();
  }
  PageCursor cursor;
  cursor.sort_key = static_cast<int64_t>(absl::little_endian::Load64(raw.data() + 9));
  cursor.id.assign(raw.data() + 17, raw.size() - kFixed);
  return cursor;
}

}  // namespace air
