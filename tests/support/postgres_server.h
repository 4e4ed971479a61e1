// A real, throwaway PostgreSQL 15 server for tests: initdb into a temporary
// directory, started with pg_ctl on a free loopback port (its unix socket in
// the same directory), stopped and deleted at the end. PostgreSQL refuses
// to run as root, so under root (CI containers) the server runs as `nobody`
// via runuser.
//
// Usage:
//   auto server = PostgresServer::Start();   // StatusOr; ~1-2 s
//   auto url = server->CreateDatabase();     // a fresh empty database
//
// Not thread-safe; one instance per test binary is the intended use.
#ifndef AIR_TESTS_SUPPORT_POSTGRES_SERVER_H_
#define AIR_TESTS_SUPPORT_POSTGRES_SERVER_H_

#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "storage/postgres_connection.h"

namespace air::testing {

class PostgresServer {
 public:
  // Where Debian's postgresql-15 puts initdb, pg_ctl and postgres.
  static std::string BinDir() {
    const char* env = std::getenv("AIR_PG_BINDIR");
    return env != nullptr ? env : "/usr/lib/postgresql/15/bin";
  }
  static bool Available() { return std::filesystem::exists(BinDir() + "/initdb"); }

  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start() {
    if (!Available()) {
      return absl::FailedPreconditionError(
          absl::StrCat("PostgreSQL 15 is not installed (no ", BinDir(),
                       "/initdb); run deploy/local/install-deps.sh"));
    }
    auto server = std::unique_ptr<PostgresServer>(new PostgresServer());
    std::string pattern =
        (std::filesystem::temp_directory_path() / "air-pg-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) return absl::InternalError("mkdtemp failed");
    server->dir_ = pattern;
    if (geteuid() == 0) {
      server->run_as_ = "cd / && runuser -u nobody -- ";
      passwd* pw = getpwnam("nobody");
      if (pw == nullptr) return absl::FailedPreconditionError("no user nobody");
      if (chown(server->dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        return absl::InternalError("chown of the PostgreSQL directory failed");
      }
    }
    const std::string initdb = absl::StrCat(
        server->run_as_, BinDir(), "/initdb -D ", server->data_dir(),
        " -A trust -U postgres --no-sync -E UTF8 --locale=C > ", server->dir_,
        "/initdb.log 2>&1");
    if (std::system(initdb.c_str()) != 0) {
      return absl::InternalError(
          absl::StrCat("initdb failed: ", ReadFile(server->dir_ + "/initdb.log")));
    }
    // A free port can be taken by someone else before the server binds it:
    // try a few.
    absl::Status started;
    for (int attempt = 0; attempt < 5; ++attempt) {
      server->port_ = FreePort();
      started = server->StartServer();
      if (started.ok()) return server;
    }
    return started;
  }

  ~PostgresServer() {
    Stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  int port() const { return port_; }
  // A libpq URI for database `db` over TCP on loopback.
  std::string Url(const std::string& db = "postgres") const {
    return absl::StrCat("postgresql://postgres@127.0.0.1:", port_, "/", db,
                        "?connect_timeout=5");
  }

  // Creates a new empty database and returns its URI.
  absl::StatusOr<std::string> CreateDatabase() {
    const std::string name = absl::StrCat("air_test_", ++databases_);
    absl::StatusOr<std::unique_ptr<pg::Connection>> conn = pg::Connection::Open(Url());
    if (!conn.ok()) return conn.status();
    absl::Status s = (*conn)->Run(absl::StrCat("CREATE DATABASE ", name));
    if (!s.ok()) return s;
    return Url(name);
  }

  // Runs one statement on database URI `url` (for tests that poke the
  // schema directly).
  static absl::Status Exec(const std::string& url, const std::string& sql) {
    absl::StatusOr<std::unique_ptr<pg::Connection>> conn = pg::Connection::Open(url);
    if (!conn.ok()) return conn.status();
    return (*conn)->RunScript(sql);
  }

  // Stops the server at once (like a crash); Restart() brings it back on
  // the same port with the same data.
  void Stop() {
    if (!running_) return;
    running_ = false;
    const std::string cmd = absl::StrCat(run_as_, BinDir(), "/pg_ctl -D ", data_dir(),
                                         " -m immediate -w stop > /dev/null 2>&1");
    (void)std::system(cmd.c_str());
  }
  absl::Status Restart() { return StartServer(); }

 private:
  PostgresServer() = default;

  std::string data_dir() const { return dir_ + "/data"; }

  absl::Status StartServer() {
    // fsync=off: the tests crash the server process, never the machine, so
    // the page cache keeps what was written. synchronous_commit stays on:
    // a commit acknowledged to aird must survive a server crash.
    const std::string options = absl::StrCat(
        "-p ", port_, " -k ", dir_,
        " -c listen_addresses=127.0.0.1 -c fsync=off"
        " -c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB");
    const std::string cmd = absl::StrCat(run_as_, BinDir(), "/pg_ctl -D ", data_dir(), " -l ",
                                         dir_, "/server.log -o '", options,
                                         "' -w -t 30 start > /dev/null 2>&1");
    if (std::system(cmd.c_str()) != 0) {
      return absl::UnavailableError(absl::StrCat("pg_ctl start failed: ",
                                                 ReadFile(dir_ + "/server.log")));
    }
    running_ = true;
    // pg_ctl -w already waited; prove it with a connection, with a deadline.
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (true) {
      if (pg::Connection::Open(Url()).ok()) return absl::OkStatus();
      if (absl::Now() > deadline) return absl::UnavailableError("PostgreSQL did not come up");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  static int FreePort() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    int port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    close(fd);
    return port;
  }

  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string dir_;
  std::string run_as_;
  int port_ = 0;
  int databases_ = 0;
  bool running_ = false;
};

// For gtest binaries: one server per binary, started on first use and
// stopped after the last test (register SharedPostgresEnvironment once).
inline std::unique_ptr<PostgresServer>& SharedPostgresSlot() {
  static auto* slot = new std::unique_ptr<PostgresServer>();
  return *slot;
}

// The shared server, or null (with a test failure) if it cannot start.
inline PostgresServer* SharedPostgres() {
  std::unique_ptr<PostgresServer>& slot = SharedPostgresSlot();
  if (slot == nullptr) {
    auto started = PostgresServer::Start();
    if (!started.ok()) {
      ADD_FAILURE() << "cannot start PostgreSQL: " << started.status();
      return nullptr;
    }
    slot = std::move(*started);
  }
  return slot.get();
}

class SharedPostgresEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { SharedPostgresSlot().reset(); }
};

}  // namespace air::testing

#endif  // AIR_TESTS_SUPPORT_POSTGRES_SERVER_H_
