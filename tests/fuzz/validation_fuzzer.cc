// libFuzzer target: request validation (domain/validation.h) on decision
// requests decoded from the input as the wire would carry them, and on the
// raw input as a string field (invalid UTF-8, over-long, control bytes).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "air/v1/action_service.pb.h"
#include "domain/validation.h"

namespace {
void CheckCode(const absl::Status& s) {
  if (!s.ok() && s.code() != absl::StatusCode::kInvalidArgument) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  CheckCode(air::ValidateId("id", text));
  CheckCode(air::ValidateComment("comment", text));
  CheckCode(air::ValidateRequestId("request_id", text));
  (void)air::IsValidUtf8(text);
  if (size >= 4) {
    int32_t page_size;
    __builtin_memcpy(&page_size, data, 4);
    auto effective = air::EffectivePageSize(page_size);
    if (effective.ok() && (*effective < 1 || *effective > 1000)) std::abort();
  }
  air::v1::BatchDecideActionsRequest batch;
  if (batch.ParseFromArray(data, static_cast<int>(size))) {
    for (const std::string& id : batch.ids()) CheckCode(air::ValidateId("ids", id));
    CheckCode(air::ValidateComment("comment", batch.comment()));
    CheckCode(air::ValidateRequestId("request_id", batch.request_id()));
  }
  air::v1::ApproveActionRequest approve;
  if (approve.ParseFromArray(data, static_cast<int>(size))) {
    CheckCode(air::ValidateId("id", approve.id()));
    CheckCode(air::ValidateComment("comment", approve.comment()));
    CheckCode(air::ValidateRequestId("request_id", approve.request_id()));
  }
  return 0;
}
