// libFuzzer target: the ListActions/ListInvestigations/WatchActions filter
// parser (domain/filter.h). Any input must parse or fail with
// INVALID_ARGUMENT; a parsed action filter must be usable by Matches().
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "air/v1/action.pb.h"
#include "domain/filter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto action = air::ParseActionFilter(text);
  if (action.ok()) {
    air::v1::Action a;
    a.set_state(air::v1::Action::STATE_PENDING);
    a.set_investigation_id("inv-1");
    (void)action->Matches(a);
  } else if (action.status().code() != absl::StatusCode::kInvalidArgument) {
    std::abort();
  }
  auto investigation = air::ParseInvestigationFilter(text);
  if (!investigation.ok() && investigation.status().code() != absl::StatusCode::kInvalidArgument) {
    std::abort();
  }
  return 0;
}
