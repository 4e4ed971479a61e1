#include "domain/validation.h"

#include "absl/strings/str_cat.h"
#include "domain/errors.h"
#include "domain/lifecycle.h"
#include "domain/status_macros.h"

namespace air {
namespace {

bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

bool IsIdLike(absl::string_view text, size_t max_length) {
  if (text.empty() || text.size() > max_length) return false;
  for (char c : text) {
    if (!IsIdChar(c)) return false;
  }
  return true;
}

// Counts code points; returns -1 on invalid UTF-8.
int64_t Utf8Length(absl::string_view text) {
  int64_t count = 0;
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    size_t extra;
    uint32_t code_point;
    if (c < 0x80) {
      extra = 0;
      code_point = c;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      code_point = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      code_point = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      code_point = c & 0x07;
    } else {
      return -1;
    }
    if (i + extra >= text.size()) return -1;  // truncated sequence
    for (size_t k = 1; k <= extra; ++k) {
      const unsigned char cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return -1;
      code_point = (code_point << 6) | (cc & 0x3F);
    }
    // Reject overlong forms, surrogates and values beyond U+10FFFF.
    if ((extra == 1 && code_point < 0x80) ||
        (extra == 2 && code_point < 0x800) ||
        (extra == 3 && code_point < 0x10000) || code_point > 0x10FFFF ||
        (code_point >= 0xD800 && code_point <= 0xDFFF)) {
      return -1;
    }
    i += extra + 1;
    ++count;
  }
  return count;
}

}  // namespace

bool IsValidUtf8(absl::string_view text) { return Utf8Length(text) >= 0; }

absl::Status ValidateId(absl::string_view field, absl::string_view id) {
  if (id.empty()) return InvalidField(field, "is required", v1::INVALID_ID);
  if (!IsIdLike(id, kMaxIdLength)) {
    return InvalidField(field,
                        absl::StrCat("must be 1 to ", kMaxIdLength,
                                     " characters of [A-Za-z0-9._-]"),
                        v1::INVALID_ID);
  }
  return absl::OkStatus();
}

absl::Status ValidateComment(absl::string_view field, absl::string_view comment) {
  const int64_t length = Utf8Length(comment);
  if (length < 0) return InvalidField(field, "is not valid UTF-8", v1::INVALID_UTF8);
  if (length > kMaxCommentLength) {
    return InvalidField(
        field,
        absl::StrCat("is ", length, " characters; the limit is ",
                     kMaxCommentLength),
        v1::COMMENT_TOO_LONG);
  }
  return absl::OkStatus();
}

absl::Status ValidateRequestId(absl::string_view field,
                               absl::string_view request_id) {
  if (request_id.empty()) return absl::OkStatus();
  if (!IsIdLike(request_id, kMaxRequestIdLength)) {
    return InvalidField(field,
                        absl::StrCat("must be 1 to ", kMaxRequestIdLength,
                                     " characters of [A-Za-z0-9._-]"),
                        v1::INVALID_REQUEST_ID);
  }
  return absl::OkStatus();
}

absl::Status ValidateDecision(absl::string_view id, absl::string_view comment,
                              absl::string_view request_id) {
  AIR_RETURN_IF_ERROR(ValidateId("id", id));
  AIR_RETURN_IF_ERROR(ValidateComment("comment", comment));
  return ValidateRequestId("request_id", request_id);
}

absl::StatusOr<int> EffectivePageSize(int page_size) {
  if (page_size < 0) {
    return InvalidField("page_size", "must not be negative",
                        v1::INVALID_PAGE_SIZE);
  }
  if (page_size == 0) return kDefaultPageSize;
  return page_size > kMaxPageSize ? kMaxPageSize : page_size;
}

}  // namespace air
