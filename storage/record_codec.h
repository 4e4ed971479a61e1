// Backend-independent pieces of the SQLite and PostgreSQL repositories: how
// a record's timestamp becomes a *_us column value, how a stored body
// becomes a message again, and the NOT_FOUND both raise for a missing
// action or investigation. Storage-internal: included only by storage/*.cc.
#ifndef AIR_STORAGE_RECORD_CODEC_H_
#define AIR_STORAGE_RECORD_CODEC_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/timestamp.pb.h"

namespace air::storage_internal {

// `ts` as microseconds since the Unix epoch (the *_us columns).
int64_t Micros(const google::protobuf::Timestamp& ts);

// DATA_LOSS (reason STORAGE_CORRUPT): a stored record body does not parse.
absl::Status UnreadableRecord();

// The message serialized in `body`; UnreadableRecord() if it does not parse.
template <typename Message>
absl::StatusOr<Message> ParseBody(absl::string_view body) {
  Message message;
  if (!message.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return UnreadableRecord();
  }
  return message;
}

// NOT_FOUND "<kind> <id> not found" with reason ACTION_NOT_FOUND (kind
// "action") or INVESTIGATION_NOT_FOUND (any other kind), metadata {id}.
absl::Status NotFound(absl::string_view kind, absl::string_view id);

}  // namespace air::storage_internal

#endif  // AIR_STORAGE_RECORD_CODEC_H_
