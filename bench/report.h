// What air-bench found: result rows, targets with their verdicts, and the
// machine; printed as a table and written as JSON.
#ifndef AIR_BENCH_REPORT_H_
#define AIR_BENCH_REPORT_H_

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace air::bench {

struct ResultRow {
  std::string scenario;  // ceiling, decisions, fanout, lag, ingest, lists, memory
  std::string name;      // e.g. "approve c=16 (synchronous=NORMAL)"
  std::optional<double> rate;  // median per second over the repetitions
  std::string rate_unit;       // "calls/s", "actions/s", "events/s"
  std::optional<double> p50_ms;
  std::optional<double> p99_ms;
  std::optional<double> max_ms;
  // The figure divided by the ceiling's (see ratio_basis for which one).
  std::optional<double> ratio;
  std::string ratio_basis;
  std::optional<double> peak_rss_mb;  // server VmHWM during this measurement
  std::optional<double> rss_mb;       // server VmRSS when measured
  int64_t samples = 0;
  int repetitions = 0;
  std::vector<double> rep_rates;    // each repetition's rate
  std::vector<double> rep_p99_ms;   // each repetition's p99
  std::vector<double> rep_ratios;   // each repetition's paired ratio
  std::map<std::string, double> extra;  // other named numbers
  std::string note;
};

enum class Verdict { kPass, kMiss, kSkip };

struct TargetResult {
  std::string name;         // "approve c=64 >= 0.6x ceiling"
  std::string measured;     // human text, e.g. "0.52x (9,812 vs 18,870 calls/s)"
  std::optional<double> value;
  std::optional<double> limit;
  Verdict verdict = Verdict::kSkip;
};

struct MachineInfo {
  int nproc = 0;
  std::string cpu_model;
  int64_t mem_total_mb = 0;
  std::string kernel;
  std::string data_dir;
  std::string data_fs;
  std::string build_type;
  std::string date_utc;
};

MachineInfo DescribeMachine(const std::string& data_dir);

struct RunConfig {
  bool quick = false;
  int repetitions = 3;
  double run_seconds = 3;
  std::string scenarios;
  int channels = 4;
  bool subscriber_bdp_probe = false;       // --subscriber_bdp_probe
  bool client_deadlock_detection = false;  // --client_deadlock_detection
};

void PrintTable(std::ostream& out, const MachineInfo& machine, const RunConfig& config,
                const std::vector<ResultRow>& rows,
                const std::vector<TargetResult>& targets);

std::string ToJson(const MachineInfo& machine, const RunConfig& config,
                   const std::vector<ResultRow>& rows,
                   const std::vector<TargetResult>& targets,
                   const std::vector<std::string>& errors);

const char* VerdictName(Verdict verdict);

}  // namespace air::bench

#endif  // AIR_BENCH_REPORT_H_
