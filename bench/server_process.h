// The server under test runs in a child process, so that its memory (VmRSS,
// VmHWM from /proc/<pid>/status) is its own and not mixed with the load
// generator's. The child is air-bench itself, re-executed with
// --internal_server=air|noop:
//  * "air" runs air::AirServer::Start — exactly what aird's main() runs —
//    with aird's defaults, on the given database;
//  * "noop" runs a server with the same ServerBuilder settings as
//    service/server.cc serving only the ceilings: bench NoopService and a
//    bare ActionService.WatchActions (bench/bare_action_service.h).
// The parent drives the child over a pipe, one command line and one reply
// line at a time; the child creates actions through the repository
// (Repository::Write + ProposeActionTx), which the public API cannot do.
//
// Commands (the reply is "ok ..." or "error <message>"):
//   propose PREFIX COUNT BATCH
//       COUNT pending actions PREFIX-<i>, BATCH per transaction, each batch
//       under a new investigation. Reply: ok SECONDS EVENTS
//   stamp PREFIX COUNT BATCH INTERVAL_US
//       COUNT pending actions, BATCH per transaction, one transaction every
//       INTERVAL_US (0: back to back), each action's target.display_name set
//       to "t=<CLOCK_REALTIME ns>" inside the write function, just before the
//       commit, under investigation PREFIX-inv (made first if missing, with
//       three events of its own). Reply: ok SECONDS EVENTS FIRST_SEQUENCE
//       LAST_SEQUENCE
//   stamp_setup PREFIX
//       Makes stamp PREFIX's investigation now, so that its events can be
//       delivered before the measurement starts. Reply: ok HEAD
//   mixed START COUNT BATCH
//       COUNT actions m-<START+i> of mixed states and types, stored directly
//       with WriteTransaction::PutAction. Reply: ok SECONDS
//   sync ACTIONS PAGE_SIZE RUN
//       Upstream sync ingest (issue 4): an upstream simulator with a backlog
//       of at least ACTIONS actions, served on a loopback port inside the
//       child, drained by an UpstreamSyncWorker into the server's repository,
//       PAGE_SIZE changes per page (one transaction each).
//       Reply: ok SECONDS ACTIONS INVESTIGATIONS EVENTS PAGES
//   head            Reply: ok HEAD (last committed event sequence)
// The noop child answers "stamp", "stamp_setup" and "head" too, for its bare
// WatchActions (stamp_setup has nothing to make there):
// "stamp" publishes the same actions as events straight to the open streams
// (nothing stored), each stamped just before its publish.
//   quit            Shuts the server down; the child exits.
#ifndef AIR_BENCH_SERVER_PROCESS_H_
#define AIR_BENCH_SERVER_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace air::bench {

enum class ServerKind { kAir, kNoop };

struct ServerProcessOptions {
  ServerKind kind = ServerKind::kAir;
  // Database file (kAir only).
  std::string db_path;
  bool full_fsync = false;
  // abseil Mutex deadlock detection in the child; off as in aird.
  bool deadlock_detection = false;
  // The child's stdout and stderr go here.
  std::string log_path;
};

struct ProcessMemory {
  int64_t rss_kb = 0;  // VmRSS
  int64_t hwm_kb = 0;  // VmHWM: peak since start or the last ResetPeak()
};

// Parent side. Not thread-safe: one thread issues commands at a time.
class ServerProcess {
 public:
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Spawn(
      const ServerProcessOptions& options);
  // Asks the child to quit, and kills it if it has not within 20 s.
  ~ServerProcess();

  int port() const { return port_; }
  pid_t pid() const { return pid_; }

  // Sends one command line; returns the reply after "ok ", or the error.
  absl::StatusOr<std::string> Command(const std::string& line);

  ProcessMemory Memory() const;
  // CPU time (user + system) the child has used so far, in seconds.
  double CpuSeconds() const;
  // Resets VmHWM to the current RSS (writes 5 to /proc/<pid>/clear_refs).
  void ResetPeak() const;

 private:
  ServerProcess() = default;
  absl::StatusOr<std::string> ReadLine();

  pid_t pid_ = -1;
  int port_ = 0;
  int command_fd_ = -1;
  int reply_fd_ = -1;
  std::string buffer_;
};

// Child side: serves until "quit" or until the command pipe closes.
// Returns the process exit code.
int RunServerChild(ServerKind kind, const std::string& db_path, bool full_fsync,
                   int reply_fd);

}  // namespace air::bench

#endif  // AIR_BENCH_SERVER_PROCESS_H_
