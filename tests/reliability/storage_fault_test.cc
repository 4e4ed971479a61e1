// Storage faults (issue 8) against a real aird:
//   - truncated and corrupt database files: non-zero exit with a clear
//     message, the file left byte-for-byte as it was;
//   - a database locked by another process (sqlite3 BEGIN EXCLUSIVE), at
//     start and while running: UNAVAILABLE (or a clear non-zero exit), and
//     service resumes once the lock is released;
//   - a full filesystem (a small tmpfs mounted here), at start and while
//     running: UNAVAILABLE, nothing acknowledged lost, and service resumes
//     once space is freed;
//   - a read-only file (chattr +i) at start and a read-only filesystem
//     (tmpfs remounted ro) while running.
// Every database passes PRAGMA integrity_check afterwards. Cases that need
// mount/chattr are skipped with a message when not permitted.
// Usage: air_storage_fault_test --aird=PATH [--long]
#include <grpcpp/grpcpp.h>
#include <sqlite3.h>
#include <sys/mount.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "air/v1/action_service.grpc.pb.h"
#include "tests/reliability/aird_process.h"

namespace air::reliability {
namespace {

namespace fs = std::filesystem;
using v1::ActionService;

int failures = 0;
int skipped = 0;
#define EXPECT_OR_FAIL(cond, ...)                  \
  do {                                             \
    if (!(cond)) {                                 \
      ++failures;                                  \
      std::fprintf(stderr, "FAIL: " __VA_ARGS__);  \
    }                                              \
  } while (0)

std::string aird_binary;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string LastLine(const std::string& path) {
  std::istringstream in(ReadFile(path));
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

int Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

std::unique_ptr<ActionService::Stub> Stub(int port) {
  return ActionService::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                                    grpc::InsecureChannelCredentials()));
}

std::vector<std::string> PendingIds(ActionService::Stub& stub) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::ListActionsRequest req;
  req.set_filter("state = STATE_PENDING");
  req.set_page_size(1000);
  v1::ListActionsResponse resp;
  std::vector<std::string> ids;
  if (stub.ListActions(&ctx, req, &resp).ok()) {
    for (const auto& a : resp.actions()) ids.push_back(a.id());
  }
  return ids;
}

grpc::Status Reject(ActionService::Stub& stub, const std::string& id, const std::string& request_id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::RejectActionRequest req;
  req.set_id(id);
  req.set_request_id(request_id);
  v1::RejectActionResponse resp;
  return stub.RejectAction(&ctx, req, &resp);
}

bool IsRejected(ActionService::Stub& stub, const std::string& id) {
  grpc::ClientContext ctx;
  v1::GetActionRequest req;
  req.set_id(id);
  v1::GetActionResponse resp;
  return stub.GetAction(&ctx, req, &resp).ok() &&
         resp.action().state() == v1::Action::STATE_REJECTED;
}

std::string IntegrityCheck(const std::string& db_path) {
  sqlite3* db = nullptr;
  std::string result = "cannot open";
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      result = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    } else {
      result = sqlite3_errmsg(db);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return result;
}

// A database with the demo data, closed cleanly.
void MakeSeed(const std::string& dir, const std::string& db) {
  AirdProcess p(aird_binary, dir);
  if (p.Start("127.0.0.1:0", db, {"--demo"}) <= 0) {
    std::fprintf(stderr, "cannot make the seed database; log %s\n", p.log_file().c_str());
    std::exit(2);
  }
  p.Kill(SIGTERM);
  p.Wait();
}

// Starting on `db` must fail with a non-zero exit and a message containing
// one of `words`, leaving the file unchanged.
void ExpectRefusedAtStart(const std::string& name, const std::string& dir, const std::string& db,
                          const std::vector<std::string>& words) {
  const std::string before = ReadFile(db);
  AirdProcess p(aird_binary, dir);
  const int port = p.Start("127.0.0.1:0", db, {}, 60);
  if (port > 0) {
    EXPECT_OR_FAIL(false, "%s: aird started on the faulty database\n", name.c_str());
    p.Kill(SIGKILL);
    p.Wait();
    return;
  }
  const int status = p.exit_status();
  const std::string message = LastLine(p.log_file());
  bool clear = false;
  for (const auto& w : words) clear = clear || message.find(w) != std::string::npos;
  EXPECT_OR_FAIL(WIFEXITED(status) && WEXITSTATUS(status) != 0,
                 "%s: want a non-zero exit, got status %d\n", name.c_str(), status);
  EXPECT_OR_FAIL(clear, "%s: unclear error: %s\n", name.c_str(), message.c_str());
  EXPECT_OR_FAIL(ReadFile(db) == before, "%s: aird modified the faulty file\n", name.c_str());
  std::printf("  %-28s exit %d: %s\n", name.c_str(), WEXITSTATUS(status), message.c_str());
}

void CorruptFiles(const std::string& root, const std::string& seed) {
  const std::string dir = root + "/corrupt";
  fs::create_directories(dir);
  const auto size = fs::file_size(seed);
  // Truncated to half.
  fs::copy_file(seed, dir + "/truncated.db");
  fs::resize_file(dir + "/truncated.db", size / 2);
  ExpectRefusedAtStart("truncated file", dir, dir + "/truncated.db",
                       {"corrupt", "malformed", "not a database", "database disk image"});
  // Truncated inside the header.
  fs::copy_file(seed, dir + "/header.db");
  fs::resize_file(dir + "/header.db", 50);
  ExpectRefusedAtStart("file cut inside its header", dir, dir + "/header.db",
                       {"corrupt", "malformed", "not a database", "aird database"});
  // Garbage over the header.
  fs::copy_file(seed, dir + "/garbage.db");
  {
    std::fstream f(dir + "/garbage.db", std::ios::in | std::ios::out | std::ios::binary);
    f.write("this is not an sqlite file, it is garbage....", 40);
  }
  ExpectRefusedAtStart("garbage header", dir, dir + "/garbage.db",
                       {"corrupt", "not a database", "aird database"});
  // Garbage in the middle (a b-tree page).
  fs::copy_file(seed, dir + "/middle.db");
  {
    std::fstream f(dir + "/middle.db", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2 / 4096 * 4096));
    std::string junk(4096, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  ExpectRefusedAtStart("corrupt page", dir, dir + "/middle.db",
                       {"corrupt", "malformed", "database disk image"});
  // The intact copy still serves.
  fs::copy_file(seed, dir + "/intact.db");
  AirdProcess p(aird_binary, dir);
  const int port = p.Start("127.0.0.1:0", dir + "/intact.db", {});
  EXPECT_OR_FAIL(port > 0 && !PendingIds(*Stub(port)).empty(), "intact copy does not serve\n");
  p.Kill(SIGTERM);
  p.Wait();
}

// A second process (this one) holding sqlite3 BEGIN EXCLUSIVE.
class ExclusiveLock {
 public:
  explicit ExclusiveLock(const std::string& path) {
    sqlite3_open(path.c_str(), &db_);
    char* err = nullptr;
    ok_ = sqlite3_exec(db_, "BEGIN EXCLUSIVE", nullptr, nullptr, &err) == SQLITE_OK;
    if (!ok_) std::fprintf(stderr, "BEGIN EXCLUSIVE: %s\n", err ? err : "?");
    sqlite3_free(err);
  }
  void Release() {
    if (db_ != nullptr) {
      sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
      sqlite3_close(db_);
      db_ = nullptr;
    }
  }
  ~ExclusiveLock() { Release(); }
  bool ok() const { return ok_; }

 private:
  sqlite3* db_ = nullptr;
  bool ok_ = false;
};

// While running: a fault makes writes UNAVAILABLE (never another code, never
// an acknowledgement that is then lost); clearing it restores service.
// `fault` applies the fault, `clear` removes it.
void FaultWhileRunning(const std::string& name, const std::string& dir, const std::string& db,
                       const std::function<bool()>& fault, const std::function<void()>& clear,
                       const std::vector<std::string>& extra = {}) {
  AirdProcess p(aird_binary, dir);
  const int port = p.Start("127.0.0.1:0", db, extra);
  if (port <= 0) {
    EXPECT_OR_FAIL(false, "%s: aird did not start; log %s\n", name.c_str(), p.log_file().c_str());
    return;
  }
  auto stub = Stub(port);
  std::vector<std::string> pending = PendingIds(*stub);
  if (pending.size() < 4) {
    EXPECT_OR_FAIL(false, "%s: too few pending actions (%zu)\n", name.c_str(), pending.size());
    return;
  }
  if (!fault()) {
    ++skipped;
    std::printf("  %-28s SKIPPED (the fault could not be applied)\n", name.c_str());
    return;
  }
  std::vector<std::string> acked;
  int unavailable = 0, other = 0;
  size_t next = 0;
  std::string first_error;
  // Decide until a write is refused (a full disk may have room in the WAL).
  for (; next + 2 < pending.size() && unavailable == 0; ++next) {
    grpc::Status s = Reject(*stub, pending[next], absl::StrCat("f-", next));
    if (s.ok()) {
      acked.push_back(pending[next]);
    } else if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
      ++unavailable;
      first_error = s.error_message();
    } else {
      ++other;
      first_error = absl::StrCat("code ", s.error_code(), ": ", s.error_message());
    }
  }
  // Reads keep working.
  EXPECT_OR_FAIL(!PendingIds(*stub).empty(), "%s: reads fail during the fault\n", name.c_str());
  clear();
  // The refused decision (same request_id) and a new one now succeed.
  bool resumed = false;
  for (int attempt = 0; attempt < 100 && !resumed; ++attempt) {
    grpc::Status s = Reject(*stub, pending[next - 1], absl::StrCat("f-", next - 1));
    resumed = s.ok();
    if (!resumed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  grpc::Status fresh = Reject(*stub, pending[next], "fresh");
  EXPECT_OR_FAIL(unavailable > 0, "%s: no write was refused with UNAVAILABLE (%zu acknowledged)\n",
                 name.c_str(), acked.size());
  EXPECT_OR_FAIL(other == 0, "%s: writes refused with a code other than UNAVAILABLE: %s\n",
                 name.c_str(), first_error.c_str());
  EXPECT_OR_FAIL(resumed && fresh.ok(), "%s: service did not resume after the fault cleared: %s\n",
                 name.c_str(), fresh.error_message().c_str());
  for (const auto& id : acked) {
    EXPECT_OR_FAIL(IsRejected(*stub, id), "%s: acknowledged decision on %s lost\n", name.c_str(),
                   id.c_str());
  }
  p.Kill(SIGTERM);
  p.Wait();
  // ... and after a restart too.
  AirdProcess again(aird_binary, dir);
  const int port2 = again.Start("127.0.0.1:0", db, extra);
  EXPECT_OR_FAIL(port2 > 0, "%s: restart after the fault failed\n", name.c_str());
  if (port2 > 0) {
    auto stub2 = Stub(port2);
    for (const auto& id : acked) {
      EXPECT_OR_FAIL(IsRejected(*stub2, id), "%s: decision on %s lost over restart\n",
                     name.c_str(), id.c_str());
    }
    EXPECT_OR_FAIL(IsRejected(*stub2, pending[next]), "%s: post-fault decision lost\n", name.c_str());
    again.Kill(SIGTERM);
    again.Wait();
  }
  const std::string integrity = IntegrityCheck(db);
  EXPECT_OR_FAIL(integrity == "ok", "%s: integrity_check: %s\n", name.c_str(), integrity.c_str());
  std::printf("  %-28s %zu acknowledged before the refusal, refused with UNAVAILABLE: %s; "
              "resumed=%s integrity=%s\n",
              name.c_str(), acked.size(), first_error.c_str(), resumed ? "yes" : "no",
              integrity.c_str());
}

void LockedDatabase(const std::string& root, const std::string& seed) {
  const std::string dir = root + "/locked";
  fs::create_directories(dir);
  // At start: a clear non-zero exit, or a start whose writes are refused.
  fs::copy_file(seed, dir + "/start.db");
  {
    ExclusiveLock lock(dir + "/start.db");
    EXPECT_OR_FAIL(lock.ok(), "cannot take the exclusive lock\n");
    AirdProcess p(aird_binary, dir);
    const int port = p.Start("127.0.0.1:0", dir + "/start.db", {}, 60);
    if (port > 0) {
      auto stub = Stub(port);
      auto pending = PendingIds(*stub);
      grpc::Status s = pending.empty() ? grpc::Status::OK : Reject(*stub, pending[0], "locked");
      EXPECT_OR_FAIL(!pending.empty() && s.error_code() == grpc::StatusCode::UNAVAILABLE,
                     "locked at start: aird started and a write gave code %d, want UNAVAILABLE\n",
                     s.error_code());
      std::printf("  %-28s started; write refused: %s\n", "locked at start",
                  s.error_message().c_str());
      p.Kill(SIGTERM);
      p.Wait();
    } else {
      const int status = p.exit_status();
      const std::string message = LastLine(p.log_file());
      EXPECT_OR_FAIL(WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
                         (message.find("lock") != std::string::npos ||
                          message.find("busy") != std::string::npos),
                     "locked at start: status %d, message %s\n", status, message.c_str());
      std::printf("  %-28s exit %d: %s\n", "locked at start", WEXITSTATUS(status), message.c_str());
    }
  }
  // After the lock is released it starts.
  {
    AirdProcess p(aird_binary, dir);
    EXPECT_OR_FAIL(p.Start("127.0.0.1:0", dir + "/start.db", {}) > 0,
                   "locked at start: no start after the lock was released\n");
    p.Kill(SIGTERM);
    p.Wait();
  }
  // While running.
  fs::copy_file(seed, dir + "/running.db");
  std::unique_ptr<ExclusiveLock> lock;
  FaultWhileRunning(
      "locked while running", dir, dir + "/running.db",
      [&] {
        lock = std::make_unique<ExclusiveLock>(dir + "/running.db");
        return lock->ok();
      },
      [&] { lock.reset(); });
}

bool MountTmpfs(const std::string& path, const std::string& size) {
  fs::create_directories(path);
  return mount("tmpfs", path.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
}

// Fills the filesystem holding `path` with a file `path`; returns bytes written.
int64_t Fill(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::string block(4096, 'x');
  int64_t written = 0;
  while (std::fwrite(block.data(), 1, block.size(), f) == block.size()) written += 4096;
  std::fclose(f);
  // The last partial block.
  f = std::fopen(path.c_str(), "ab");
  if (f != nullptr) {
    while (std::fwrite("x", 1, 1, f) == 1 && std::fflush(f) == 0) ++written;
    std::fclose(f);
  }
  return written;
}

void FullDisk(const std::string& root, const std::string& seed) {
  const std::string mnt = root + "/full";
  if (!MountTmpfs(mnt, "8m")) {
    ++skipped;
    std::printf("  full filesystem: SKIPPED (cannot mount a tmpfs: %s; needs root)\n",
                std::strerror(errno));
    return;
  }
  const std::string db = mnt + "/air.db";
  // At start: the database does not fit.
  {
    Fill(mnt + "/filler");
    AirdProcess p(aird_binary, root);
    const int port = p.Start("127.0.0.1:0", mnt + "/new.db", {}, 60);
    if (port > 0) {
      EXPECT_OR_FAIL(false, "full at start: aird started on a full filesystem\n");
      p.Kill(SIGKILL);
      p.Wait();
    } else {
      const std::string message = LastLine(p.log_file());
      std::printf("  %-28s exit %d: %s\n", "full filesystem at start",
                  WEXITSTATUS(p.exit_status()), message.c_str());
      EXPECT_OR_FAIL(WIFEXITED(p.exit_status()) && WEXITSTATUS(p.exit_status()) != 0,
                     "full at start: status %d\n", p.exit_status());
      // Regression: a full disk is not reported as "is this an aird database?".
      EXPECT_OR_FAIL(message.find("disk is full") != std::string::npos &&
                         message.find("aird database") == std::string::npos,
                     "full at start: misleading message: %s\n", message.c_str());
    }
    fs::remove(mnt + "/filler");
    fs::remove(mnt + "/new.db");
    fs::remove(mnt + "/new.db-wal");
    fs::remove(mnt + "/new.db-shm");
  }
  fs::copy_file(seed, db);
  FaultWhileRunning(
      "full filesystem while running", root, db,
      [&] { return Fill(mnt + "/filler") > 0; }, [&] { fs::remove(mnt + "/filler"); });
  umount(mnt.c_str());
}

void ReadOnly(const std::string& root, const std::string& seed) {
  // At start: an immutable file (root ignores permissions; chattr +i binds).
  const std::string dir = root + "/readonly";
  fs::create_directories(dir);
  const std::string db = dir + "/air.db";
  fs::copy_file(seed, db);
  if (Sh("chattr +i " + db) != 0) {
    ++skipped;
    std::printf("  read-only file: SKIPPED (chattr +i not supported here)\n");
  } else {
    ExpectRefusedAtStart("read-only file at start", dir, db, {"read-only", "readonly"});
    Sh("chattr -i " + db);
    AirdProcess p(aird_binary, dir);
    EXPECT_OR_FAIL(p.Start("127.0.0.1:0", db, {}) > 0, "read-only: no start once writable\n");
    p.Kill(SIGTERM);
    p.Wait();
  }
  // While running: the filesystem is remounted read-only.
  const std::string mnt = root + "/ro";
  if (!MountTmpfs(mnt, "64m")) {
    ++skipped;
    std::printf("  read-only filesystem: SKIPPED (cannot mount a tmpfs)\n");
    return;
  }
  fs::copy_file(seed, mnt + "/air.db");
  FaultWhileRunning(
      "read-only fs while running", root, mnt + "/air.db",
      [&] { return mount("tmpfs", mnt.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, nullptr) == 0; },
      [&] { mount("tmpfs", mnt.c_str(), "tmpfs", MS_REMOUNT, nullptr); });
  umount2(mnt.c_str(), MNT_DETACH);
}

int Run(int argc, char** argv) {
  aird_binary = Flag(argc, argv, "aird", "");
  if (aird_binary.empty()) {
    std::fprintf(stderr, "usage: air_storage_fault_test --aird=PATH\n");
    return 2;
  }
  const std::string root = MakeTempDir();
  const std::string seed = root + "/seed.db";
  MakeSeed(root, seed);
  std::printf("storage fault test:\n");
  CorruptFiles(root, seed);
  LockedDatabase(root, seed);
  FullDisk(root, seed);
  ReadOnly(root, seed);
  std::printf("storage fault test: failures=%d skipped=%d\n", failures, skipped);
  if (failures == 0) fs::remove_all(root);
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace air::reliability

int main(int argc, char** argv) { return air::reliability::Run(argc, argv); }
