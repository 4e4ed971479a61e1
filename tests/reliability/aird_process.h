// Starts, kills and restarts real aird processes for the reliability tests.
#ifndef AIR_TESTS_RELIABILITY_AIRD_PROCESS_H_
#define AIR_TESTS_RELIABILITY_AIRD_PROCESS_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace air::reliability {

// True if the long form was asked for (--long or AIR_RELIABILITY_LONG=1).
inline bool LongForm(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--long") return true;
  }
  const char* env = std::getenv("AIR_RELIABILITY_LONG");
  return env != nullptr && std::string(env) == "1";
}

// The value of --name=VALUE, or `fallback`.
inline std::string Flag(int argc, char** argv, const std::string& name,
                        const std::string& fallback) {
  const std::string prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind(prefix, 0) == 0) return arg.substr(prefix.size());
  }
  return fallback;
}

inline std::string MakeTempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base ? base : "/tmp") + "/air-rel-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    std::perror("mkdtemp");
    std::exit(2);
  }
  return pattern;
}

// Forks and execs `args` (args[0] is the binary) with stdout and stderr
// appended to `log_file`. Returns the child's pid, or -1 if fork failed.
inline pid_t SpawnLogged(std::vector<std::string> args, const std::string& log_file) {
  const pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// Polls `port_file` (written by the child once it serves) for a port. Returns
// the port, or -1 on timeout or if the child exits first (then *pid becomes
// -1 and *exit_status holds its wait status).
inline int WaitForPortFile(const std::string& port_file, double timeout_s, pid_t* pid,
                           int* exit_status) {
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(static_cast<int>(timeout_s * 1000));
  while (std::chrono::steady_clock::now() < until) {
    std::ifstream in(port_file);
    int port = 0;
    if (in >> port && port > 0) return port;
    int status = 0;
    if (waitpid(*pid, &status, WNOHANG) == *pid) {
      *pid = -1;
      *exit_status = status;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -1;
}

// One aird child process. Start() waits for --port_file (written once the
// server serves), or for the child to exit.
class AirdProcess {
 public:
  AirdProcess(std::string binary, std::string dir) : binary_(std::move(binary)), dir_(std::move(dir)) {}
  ~AirdProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // Returns the port, or -1 if the process exited first (exit status in
  // exit_status()). `listen` is HOST:PORT.
  int Start(const std::string& listen, const std::string& db,
            const std::vector<std::string>& extra, double timeout_s = 30) {
    const std::string port_file = dir_ + "/port";
    const std::string log_file = dir_ + "/aird.log";
    unlink(port_file.c_str());
    std::vector<std::string> args = {binary_, "--listen=" + listen, "--db=" + db,
                                     "--port_file=" + port_file};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = SpawnLogged(std::move(args), log_file);
    const int port = WaitForPortFile(port_file, timeout_s, &pid_, &exit_status_);
    if (port > 0) port_ = port;
    return port;
  }

  void Kill(int sig = SIGKILL) {
    if (pid_ > 0) kill(pid_, sig);
  }
  // Waits for the child; returns its wait status, or -1 on timeout.
  int Wait(double timeout_s = 60) {
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(static_cast<int>(timeout_s * 1000));
    while (pid_ > 0 && std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_status_ = status;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return pid_ > 0 ? -1 : exit_status_;
  }
  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  int exit_status() const { return exit_status_; }
  std::string log_file() const { return dir_ + "/aird.log"; }

 private:
  std::string binary_;
  std::string dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_status_ = 0;
};

// An air-upstream-sim child process on a loopback port it picks: the
// upstream that keeps feeding aird new investigations. Killed (SIGKILL) with
// this object.
class UpstreamSimProcess {
 public:
  UpstreamSimProcess(std::string binary, std::string dir)
      : binary_(std::move(binary)), dir_(std::move(dir)) {}
  ~UpstreamSimProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // `story` holds the simulator's own flags (--arrival_rate=..., faults).
  // Returns the port, or -1 if it did not come up.
  int Start(const std::vector<std::string>& story, double timeout_s = 30) {
    const std::string port_file = dir_ + "/upstream-sim.port";
    unlink(port_file.c_str());
    std::vector<std::string> args = {binary_, "--listen=127.0.0.1:0",
                                     "--port_file=" + port_file};
    args.insert(args.end(), story.begin(), story.end());
    pid_ = SpawnLogged(std::move(args), log_file());
    int exit_status = 0;
    port_ = WaitForPortFile(port_file, timeout_s, &pid_, &exit_status);
    return port_;
  }
  // aird's --upstream value.
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string log_file() const { return dir_ + "/air-upstream-sim.log"; }

 private:
  std::string binary_;
  std::string dir_;
  pid_t pid_ = -1;
  int port_ = -1;
};

// Resident set size of `pid` in KiB (VmRSS in /proc/<pid>/status), or -1.
inline long RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

}  // namespace air::reliability

#endif  // AIR_TESTS_RELIABILITY_AIRD_PROCESS_H_
