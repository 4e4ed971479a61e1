// libFuzzer target: upstream record validation (domain/upstream_sync.h).
// Records decoded from the input are validated; a valid action record's state
// must be plannable from every local state without crashing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "air/upstream/v1/upstream.pb.h"
#include "domain/upstream_sync.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool as_action = data[0] & 1;
  ++data;
  --size;
  if (as_action) {
    air::upstream::v1::Action record;
    if (!record.ParseFromArray(data, static_cast<int>(size))) return 0;
    absl::Status s = air::ValidateUpstreamAction(record);
    if (!s.ok() && s.code() != absl::StatusCode::kInvalidArgument) std::abort();
  } else {
    air::upstream::v1::Investigation record;
    if (!record.ParseFromArray(data, static_cast<int>(size))) return 0;
    absl::Status s = air::ValidateUpstreamInvestigation(record);
    if (!s.ok() && s.code() != absl::StatusCode::kInvalidArgument) std::abort();
  }
  return 0;
}
