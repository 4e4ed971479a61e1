#include "storage/record_codec.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "domain/errors.h"
#include "domain/lifecycle.h"

namespace air::storage_internal {

int64_t Micros(const google::protobuf::Timestamp& ts) {
  return absl::ToUnixMicros(ToAbslTime(ts));
}

absl::Status UnreadableRecord() {
  return MakeError(absl::StatusCode::kDataLoss,
                   "storage read failed: a stored record is unreadable",
                   v1::STORAGE_CORRUPT);
}

absl::Status NotFound(absl::string_view kind, absl::string_view id) {
  return MakeError(absl::StatusCode::kNotFound,
                   absl::StrCat(kind, " ", id, " not found"),
                   kind == "action" ? v1::ACTION_NOT_FOUND : v1::INVESTIGATION_NOT_FOUND,
                   {{"id", std::string(id)}});
}

}  // namespace air::storage_internal
