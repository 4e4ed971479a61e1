// UpstreamSimulator: an automated investigation and response engine that
// speaks air.upstream.v1, for the quick start, tests and benchmarks.
//
// It plays realistic playbooks (a user-reported phish, a compromised
// mailbox, malware on a device, clean cases), lets approved actions run
// after a delay (some fail, with a reason), expires undecided actions, and
// records every change in a change log that ListChanges pages through.
// Fault injection covers what a real upstream does to its clients: errors,
// lost replies, outages, crash-restarts, duplicate, reordered and replayed
// (stale) deliveries, and malformed records. Latency is added by the gRPC
// wrapper (sim_server.h), which sleeps.
//
// The simulator is the upstream's source of truth: tests compare aird's
// repository with Investigations()/Actions() and count decisions by
// request_id here.
//
// Thread-safe. Time comes from the injected clock; Advance() (also run at
// the start of every call) performs whatever was due by now.
#ifndef AIR_SIM_UPSTREAM_SIMULATOR_H_
#define AIR_SIM_UPSTREAM_SIMULATOR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "air/upstream/v1/upstream_service.pb.h"
#include "air/v1/investigation.pb.h"
#include "domain/clock.h"

namespace air::sim {

// Faults, changeable while the simulator runs. Rates are probabilities in
// [0, 1]; zero durations disable.
struct SimulatorFaults {
  // Each call fails with UNAVAILABLE before doing anything.
  double error_rate = 0;
  // Each call takes effect but answers UNAVAILABLE (the reply was lost):
  // the client must retry, and the retry must not act twice.
  double lost_reply_rate = 0;
  // Added to every call by the gRPC wrapper, plus up to `latency_jitter`.
  absl::Duration latency = absl::ZeroDuration();
  absl::Duration latency_jitter = absl::ZeroDuration();
  // Periodic outages on the simulator's clock: every `outage_every`, the
  // first `outage_duration` of the period answers UNAVAILABLE.
  absl::Duration outage_every = absl::ZeroDuration();
  absl::Duration outage_duration = absl::ZeroDuration();
  // Each change in a page is sent twice with this probability; with the
  // same probability a page's cursor is rewound to its middle, so the next
  // page delivers part of it again.
  double duplicate_rate = 0;
  // Shuffle the changes within each page.
  bool reorder = false;
  // With this probability per change, an older version of some record
  // (a stale replay) is mixed into the page.
  double replay_rate = 0;
  // With this probability per page, a malformed record is added (missing
  // id, unknown enum value, over-long field, in turn).
  double malformed_rate = 0;
};

struct SimulatorOptions {
  // Random seed; the same seed and call sequence give the same story.
  uint64_t seed = 1;
  // Prefix of every id, so two simulator instances never reuse ids: empty
  // means a random one.
  std::string instance;
  // New investigations per second of simulator time; 0 = only on demand.
  double arrival_rate = 0.5;
  // Share of investigations that find nothing ("no threats found").
  double clean_fraction = 0.25;
  // From STARTING to RUNNING with its actions proposed.
  absl::Duration analysis_delay = absl::Seconds(2);
  // From approval to RUNNING, and from RUNNING to COMPLETED or FAILED.
  absl::Duration execution_delay = absl::Seconds(3);
  absl::Duration run_duration = absl::Seconds(5);
  // Share of executions that fail.
  double failure_rate = 0.1;
  // Undecided actions expire upstream after this long.
  absl::Duration action_ttl = absl::Hours(24 * 7);
  // Distinct targets per kind: a small pool makes repeated targets, and so
  // exercises the duplicate rule.
  int target_pool = 40;
  // ListChanges page size for page_size 0, and the cap.
  int default_page_size = 500;
  int max_page_size = 5000;
  SimulatorFaults faults;
};

// The stories the simulator plays.
enum class Playbook { kPhish, kCompromisedMailbox, kMalware, kClean };

struct SimulatorStats {
  int64_t list_calls = 0;
  int64_t submit_calls = 0;
  // Calls answered with an injected error, outage or lost reply.
  int64_t injected_failures = 0;
  // Distinct decisions applied (each request_id at most once).
  int64_t decisions_applied = 0;
  // Repeated request_ids answered from the first response.
  int64_t duplicate_requests = 0;
  // Remediations actually carried out (RUNNING entered).
  int64_t executions = 0;
  // Executions of a target that had already been executed within the
  // previous hour: what the duplicate rule exists to prevent.
  int64_t repeated_executions = 0;
  int64_t malformed_sent = 0;
  int64_t investigations = 0;
  int64_t actions = 0;
  // Entries in the change log (after compaction).
  int64_t log_entries = 0;
};

class UpstreamSimulator {
 public:
  // `clock` is not owned; null means the system clock.
  UpstreamSimulator(SimulatorOptions options, const Clock* clock);
  ~UpstreamSimulator();

  // air.upstream.v1.UpstreamService semantics (see upstream_service.proto).
  absl::StatusOr<upstream::v1::ListChangesResponse> ListChanges(
      const upstream::v1::ListChangesRequest& request);
  absl::StatusOr<upstream::v1::SubmitDecisionResponse> SubmitDecision(
      const upstream::v1::SubmitDecisionRequest& request);

  // Performs arrivals, analyses, executions and expiries due by now.
  void Advance();

  // Starts `count` investigations now (random playbooks), returning their
  // ids. With a zero analysis_delay their actions are proposed at once.
  std::vector<std::string> CreateInvestigations(int count);
  // Starts one investigation of `playbook`; `target_index` picks the
  // targets from the pools (the same index gives the same targets).
  std::string CreateInvestigation(Playbook playbook, int target_index);
  // A decision made in the vendor console, not through SubmitDecision.
  absl::Status DecideInConsole(const std::string& action_id, bool approve,
                               const std::string& decider);
  // Withdraws a pending or approved action (STATE_CANCELLED).
  absl::Status Cancel(const std::string& action_id);
  // Appends one malformed record to the change log.
  void InjectMalformed();
  // Answers UNAVAILABLE to every call until the clock passes now + downtime
  // (a crash and restart that keeps the engine's durable state).
  void Crash(absl::Duration downtime);
  // A manual outage switch (true = every call UNAVAILABLE).
  void SetDown(bool down);

  void SetFaults(const SimulatorFaults& faults);
  SimulatorFaults faults() const;

  // The latest version of every record, sorted by id.
  std::vector<upstream::v1::Investigation> Investigations() const;
  std::vector<upstream::v1::Action> Actions() const;
  SimulatorStats stats() const;
  // How many times each request_id was applied (never more than once) and
  // how many decisions each action received (never more than one).
  std::map<std::string, int> AppliedRequests() const;
  std::map<std::string, int> DecisionsPerAction() const;

 private:
  struct InvestigationRecord;
  struct ActionRecord;
  struct LogEntry {
    int64_t seq;
    upstream::v1::Change change;
  };
  enum class Due { kAnalysis, kRun, kFinish, kExpire };
  struct Scheduled {
    absl::Time at;
    int64_t order;  // ties in insertion order
    Due what;
    std::string id;
    bool operator>(const Scheduled& other) const {
      return at != other.at ? at > other.at : order > other.order;
    }
  };

  absl::Status CheckAvailableLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool RollLocked(double probability) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AdvanceLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleLocked(absl::Time at, Due what, const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string StartInvestigationLocked(Playbook playbook, int target_index, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AnalyseLocked(const std::string& id, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetActionStateLocked(ActionRecord& action, v1::Action::State to, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ApplyDecisionLocked(ActionRecord& action, bool approve,
                                   const std::string& duplicate_of, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LogInvestigationLocked(InvestigationRecord& inv, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LogActionLocked(ActionRecord& action, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AppendLogLocked(upstream::v1::Change change, const std::string& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CompactLogLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  upstream::v1::Change MalformedChangeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string EncodeCursor(int64_t seq) const;
  absl::StatusOr<int64_t> DecodeCursor(absl::string_view cursor) const;

  const SimulatorOptions options_;
  const Clock* const clock_;
  const std::string instance_;

  mutable absl::Mutex mu_;
  SimulatorFaults faults_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 random_ ABSL_GUARDED_BY(mu_);
  absl::Time last_advance_ ABSL_GUARDED_BY(mu_);
  double owed_arrivals_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_investigation_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t next_order_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  int malformed_kind_ ABSL_GUARDED_BY(mu_) = 0;
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time crashed_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();

  absl::flat_hash_map<std::string, std::unique_ptr<InvestigationRecord>> investigations_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<ActionRecord>> actions_
      ABSL_GUARDED_BY(mu_);
  // The change log, ascending by seq; superseded entries are compacted away.
  std::vector<LogEntry> log_ ABSL_GUARDED_BY(mu_);
  // The seq of each record's latest entry, by "i:<id>" / "a:<id>".
  absl::flat_hash_map<std::string, int64_t> latest_seq_ ABSL_GUARDED_BY(mu_);
  size_t compact_at_ ABSL_GUARDED_BY(mu_) = 200000;
  // Recently superseded snapshots, replayed by the replay fault.
  std::vector<upstream::v1::Change> history_ ABSL_GUARDED_BY(mu_);
  size_t history_next_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Scheduled> schedule_ ABSL_GUARDED_BY(mu_);  // a min-heap
  // request_id -> (what it asked, the first response).
  struct StoredDecision {
    std::string fingerprint;
    upstream::v1::SubmitDecisionResponse response;
  };
  absl::flat_hash_map<std::string, StoredDecision> requests_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> applied_requests_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> decisions_per_action_ ABSL_GUARDED_BY(mu_);
  // Last execution time per target, for repeated_executions.
  absl::flat_hash_map<std::string, absl::Time> last_execution_ ABSL_GUARDED_BY(mu_);
  SimulatorStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace air::sim

#endif  // AIR_SIM_UPSTREAM_SIMULATOR_H_
