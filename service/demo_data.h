// A realistic demo set for `aird --demo`: investigations across several
// states with pending actions of several types, written through the same
// commands as real traffic (so they also appear in the event log).
#ifndef AIR_SERVICE_DEMO_DATA_H_
#define AIR_SERVICE_DEMO_DATA_H_

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "storage/stores.h"

namespace air {

// Loads the demo set if `actions` holds no investigations. Returns the
// number of investigations created (0 if it already had data).
absl::StatusOr<int> LoadDemoData(ActionStore& actions, Writer& writer, absl::Duration action_ttl);

}  // namespace air

#endif  // AIR_SERVICE_DEMO_DATA_H_
