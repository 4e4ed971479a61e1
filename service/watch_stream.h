// The server side of ActionService.WatchActions: one reactor per stream.
//
// Each stream owns a cursor into the event log. When woken (by the hub after
// a commit, or by the completion of its previous write) it reads the next
// events after its cursor — from the hub's in-memory ring when it is caught
// up, else from the repository — filters them, and writes them one message
// at a time (gRPC's one-write-outstanding rule). The stream is raw: it writes
// WatchActionsResponse messages already in wire form, and a live event's
// bytes are the hub's, shared by every stream (serialized once per event, not
// once per subscriber). A stream that stops reading
// simply stops advancing; it buffers at most one batch, and catches up from
// the stored log later.
#ifndef AIR_SERVICE_WATCH_STREAM_H_
#define AIR_SERVICE_WATCH_STREAM_H_

#include <functional>

#include <grpcpp/server_context.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/server_callback.h>

#include "absl/time/time.h"
#include "air/v1/action_service.pb.h"
#include "service/event_hub.h"
#include "storage/storage.h"

namespace air {

struct WatchLimits {
  // Events read per batch (from the ring or the repository).
  int batch_size = 256;
  // Most pending actions sent in an initial snapshot.
  int max_snapshot_actions = 100000;
  // Heartbeat bounds and default.
  absl::Duration default_heartbeat = absl::Seconds(30);
  absl::Duration min_heartbeat = absl::Milliseconds(100);
  absl::Duration max_heartbeat = absl::Minutes(10);
};

// Told each time a stream starts writing an event (hands it to gRPC), with
// the event's commit time: the send-lag metric. Called on the hub's
// notifier threads and gRPC's; must not block.
using WatchSendObserver = std::function<void(absl::Time commit_time)>;

// Starts a watch. The returned reactor deletes itself when the RPC is done.
// Writes serialized WatchActionsResponse messages. `on_send` may be empty.
grpc::ServerWriteReactor<grpc::ByteBuffer>* StartWatch(
    grpc::CallbackServerContext* context, const v1::WatchActionsRequest& request,
    Storage& repository, EventHub& hub, const WatchLimits& limits,
    const WatchSendObserver& on_send);

// A watch that ends at once with `status` (e.g. refused access).
grpc::ServerWriteReactor<grpc::ByteBuffer>* FinishedWatch(
    const absl::Status& status);

}  // namespace air

#endif  // AIR_SERVICE_WATCH_STREAM_H_
