#include "bench/report.h"

#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

#ifndef AIR_BENCH_BUILD_TYPE
#define AIR_BENCH_BUILD_TYPE "unknown"
#endif

namespace air::bench {

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kPass:
      return "PASS";
    case Verdict::kMiss:
      return "MISS";
    case Verdict::kSkip:
      return "SKIP";
  }
  return "?";
}

MachineInfo DescribeMachine(const std::string& data_dir) {
  MachineInfo m;
  m.nproc = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      m.cpu_model = line.substr(line.find(':') + 2);
      break;
    }
  }
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    if (line.rfind("MemTotal:", 0) == 0) {
      std::istringstream in(line.substr(9));
      int64_t kb = 0;
      in >> kb;
      m.mem_total_mb = kb / 1024;
    }
  }
  struct utsname u;
  if (uname(&u) == 0) m.kernel = absl::StrCat(u.sysname, " ", u.release);
  m.data_dir = data_dir;
  struct statfs fs;
  if (statfs(data_dir.c_str(), &fs) == 0) {
    switch (static_cast<uint64_t>(fs.f_type)) {
      case 0xEF53: m.data_fs = "ext4"; break;
      case 0x01021994: m.data_fs = "tmpfs (fsync is free: full-fsync figures mean little)"; break;
      case 0x58465342: m.data_fs = "xfs"; break;
      case 0x9123683E: m.data_fs = "btrfs"; break;
      case 0x794c7630: m.data_fs = "overlayfs"; break;
      default: m.data_fs = absl::StrFormat("0x%x", static_cast<uint64_t>(fs.f_type));
    }
  }
  m.build_type = AIR_BENCH_BUILD_TYPE;
  m.date_utc = absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::Now(), absl::UTCTimeZone());
  return m;
}

namespace {

std::string Fixed(std::optional<double> v, int digits) {
  if (!v) return "-";
  return absl::StrFormat("%.*f", digits, *v);
}

std::string Thousands(double v) {
  std::string digits = absl::StrFormat("%.0f", v);
  std::string out;
  const int n = static_cast<int>(digits.size());
  for (int i = 0; i < n; ++i) {
    out.push_back(digits[i]);
    const int left = n - 1 - i;
    if (left > 0 && left % 3 == 0 && digits[i] != '-') out.push_back(',');
  }
  return out;
}

std::string Pad(const std::string& s, size_t width, bool right = false) {
  if (s.size() >= width) return s;
  return right ? std::string(width - s.size(), ' ') + s : s + std::string(width - s.size(), ' ');
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out.push_back(c);
        }
    }
  }
  return out + "\"";
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.6g", v);
}

std::string JsonArray(const std::vector<double>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ", ";
    out += JsonNumber(values[i]);
  }
  return out + "]";
}

}  // namespace

void PrintTable(std::ostream& out, const MachineInfo& machine, const RunConfig& config,
                const std::vector<ResultRow>& rows,
                const std::vector<TargetResult>& targets) {
  out << "\nair-bench " << machine.date_utc << " | " << machine.nproc << " cores ("
      << machine.cpu_model << "), " << machine.mem_total_mb << " MB RAM, "
      << machine.kernel << " | build " << machine.build_type << " | data "
      << machine.data_dir << " (" << machine.data_fs << ")\n"
      << "medians of " << config.repetitions << " repetitions of "
      << config.run_seconds << " s" << (config.quick ? " (--quick: tiny sizes)" : "")
      << "; latencies in ms; 'x ceiling' = figure / no-op figure (see basis)\n"
      << "subscribers: BDP probe " << (config.subscriber_bdp_probe ? "on" : "off")
      << "; load generator: deadlock detection "
      << (config.client_deadlock_detection ? "on" : "off") << "\n\n";
  const std::vector<std::pair<std::string, size_t>> columns = {
      {"scenario", 10}, {"case", 44},     {"rate", 14}, {"p50 ms", 8},
      {"p99 ms", 8},    {"x ceiling", 10}, {"basis", 22}, {"peak RSS MB", 12}};
  std::string header;
  for (const auto& [name, width] : columns) header += Pad(name, width) + " ";
  out << header << "\n" << std::string(header.size(), '-') << "\n";
  for (const ResultRow& r : rows) {
    std::string rate = r.rate ? absl::StrCat(Thousands(*r.rate), " ", r.rate_unit == "calls/s" ? "/s" : r.rate_unit) : "-";
    out << Pad(r.scenario, 10) << " " << Pad(r.name, 44) << " " << Pad(rate, 14) << " "
        << Pad(Fixed(r.p50_ms, 3), 8, true) << " " << Pad(Fixed(r.p99_ms, 3), 8, true) << " "
        << Pad(r.ratio ? absl::StrFormat("%.2fx", *r.ratio) : "-", 10, true) << " "
        << Pad(r.ratio_basis, 22) << " " << Pad(Fixed(r.peak_rss_mb, 1), 12, true);
    if (!r.note.empty()) out << "  " << r.note;
    out << "\n";
  }
  out << "\nTargets (issue 7 / issue 3):\n";
  for (const TargetResult& t : targets) {
    out << "  " << Pad(VerdictName(t.verdict), 5) << " " << Pad(t.name, 52) << " "
        << t.measured << "\n";
  }
  out.flush();
}

std::string ToJson(const MachineInfo& machine, const RunConfig& config,
                   const std::vector<ResultRow>& rows,
                   const std::vector<TargetResult>& targets,
                   const std::vector<std::string>& errors) {
  std::string j = "{\n";
  absl::StrAppend(&j, "  \"tool\": \"air-bench\",\n");
  absl::StrAppend(&j, "  \"date_utc\": ", JsonString(machine.date_utc), ",\n");
  absl::StrAppend(&j, "  \"machine\": {\"nproc\": ", machine.nproc,
                  ", \"cpu_model\": ", JsonString(machine.cpu_model),
                  ", \"mem_total_mb\": ", machine.mem_total_mb,
                  ", \"kernel\": ", JsonString(machine.kernel),
                  ", \"data_dir\": ", JsonString(machine.data_dir),
                  ", \"data_fs\": ", JsonString(machine.data_fs),
                  ", \"build_type\": ", JsonString(machine.build_type), "},\n");
  absl::StrAppend(&j, "  \"config\": {\"quick\": ", config.quick ? "true" : "false",
                  ", \"repetitions\": ", config.repetitions,
                  ", \"run_seconds\": ", JsonNumber(config.run_seconds),
                  ", \"channels\": ", config.channels,
                  ", \"subscriber_bdp_probe\": ", config.subscriber_bdp_probe ? "true" : "false",
                  ", \"client_deadlock_detection\": ",
                  config.client_deadlock_detection ? "true" : "false",
                  ", \"scenarios\": ", JsonString(config.scenarios), "},\n");
  absl::StrAppend(&j, "  \"results\": [\n");
  for (size_t i = 0; i < rows.size(); ++i) {
    const ResultRow& r = rows[i];
    std::string o = absl::StrCat("    {\"scenario\": ", JsonString(r.scenario),
                                 ", \"case\": ", JsonString(r.name));
    auto num = [&](const char* key, std::optional<double> v) {
      if (v) absl::StrAppend(&o, ", \"", key, "\": ", JsonNumber(*v));
    };
    num("rate", r.rate);
    if (r.rate) absl::StrAppend(&o, ", \"rate_unit\": ", JsonString(r.rate_unit));
    num("p50_ms", r.p50_ms);
    num("p99_ms", r.p99_ms);
    num("max_ms", r.max_ms);
    num("ratio_to_ceiling", r.ratio);
    if (r.ratio) absl::StrAppend(&o, ", \"ratio_basis\": ", JsonString(r.ratio_basis));
    num("peak_rss_mb", r.peak_rss_mb);
    num("rss_mb", r.rss_mb);
    absl::StrAppend(&o, ", \"samples\": ", r.samples, ", \"repetitions\": ", r.repetitions);
    if (!r.rep_rates.empty()) absl::StrAppend(&o, ", \"rep_rates\": ", JsonArray(r.rep_rates));
    if (!r.rep_p99_ms.empty()) absl::StrAppend(&o, ", \"rep_p99_ms\": ", JsonArray(r.rep_p99_ms));
    if (!r.rep_ratios.empty()) absl::StrAppend(&o, ", \"rep_ratios\": ", JsonArray(r.rep_ratios));
    for (const auto& [key, value] : r.extra) {
      absl::StrAppend(&o, ", ", JsonString(key), ": ", JsonNumber(value));
    }
    if (!r.note.empty()) absl::StrAppend(&o, ", \"note\": ", JsonString(r.note));
    absl::StrAppend(&j, o, "}", i + 1 < rows.size() ? "," : "", "\n");
  }
  absl::StrAppend(&j, "  ],\n  \"targets\": [\n");
  for (size_t i = 0; i < targets.size(); ++i) {
    const TargetResult& t = targets[i];
    std::string o = absl::StrCat("    {\"target\": ", JsonString(t.name),
                                 ", \"verdict\": ", JsonString(VerdictName(t.verdict)),
                                 ", \"measured\": ", JsonString(t.measured));
    if (t.value) absl::StrAppend(&o, ", \"value\": ", JsonNumber(*t.value));
    if (t.limit) absl::StrAppend(&o, ", \"limit\": ", JsonNumber(*t.limit));
    absl::StrAppend(&j, o, "}", i + 1 < targets.size() ? "," : "", "\n");
  }
  absl::StrAppend(&j, "  ],\n  \"errors\": [");
  for (size_t i = 0; i < errors.size(); ++i) {
    absl::StrAppend(&j, i > 0 ? ", " : "", JsonString(errors[i]));
  }
  absl::StrAppend(&j, "]\n}\n");
  return j;
}

}  // namespace air::bench
