#include "storage/sqlite_backup.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "domain/errors.h"
#include "domain/status_macros.h"
#include "spdlog/spdlog.h"
#include "storage/sqlite_connection.h"

namespace air {
namespace {

using sqlite::Connection;

absl::Status Failed(absl::StatusCode code, absl::string_view why) {
  return MakeError(code, absl::StrCat("backup failed: ", why), v1::BACKUP_FAILED);
}

// fsyncs a file or directory.
bool SyncPath(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

void RemoveCopy(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::remove(absl::StrCat(path, suffix).c_str());
  }
}

// Copies in one step and checks the copy; `tmp` is an existing empty file.
absl::StatusOr<BackupResult> CopyInto(const std::string& source_path, const std::string& tmp,
                                      absl::Duration busy_timeout) {
  if (!std::filesystem::exists(source_path)) {
    return Failed(absl::StatusCode::kFailedPrecondition,
                  absl::StrCat("database ", source_path, " does not exist"));
  }
  AIR_ASSIGN_OR_RETURN(std::unique_ptr<Connection> source,
                       Connection::Open(source_path, SQLITE_OPEN_READONLY, busy_timeout));
  BackupResult result;
  {
    AIR_ASSIGN_OR_RETURN(
        std::unique_ptr<Connection> dest,
        Connection::Open(tmp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, busy_timeout));
    sqlite3_backup* backup = sqlite3_backup_init(dest->db(), "main", source->db(), "main");
    if (backup == nullptr) {
      return sqlite::StorageError(sqlite3_errcode(dest->db()), "backup", dest->db());
    }
    // One step: one read transaction on the source, hence one consistent
    // snapshot. (Stepping in pieces would restart whenever the serving
    // aird commits, and never finish under load.)
    const int step = sqlite3_backup_step(backup, -1);
    const int finish = sqlite3_backup_finish(backup);
    if (step != SQLITE_DONE) return sqlite::StorageError(step, "backup", dest->db());
    if (finish != SQLITE_OK) return sqlite::StorageError(finish, "backup", dest->db());

    absl::StatusOr<std::string> check = dest->QueryText("PRAGMA quick_check(1)");
    if (!check.ok() || *check != "ok") {
      return Failed(absl::StatusCode::kFailedPrecondition,
                    "the copy fails PRAGMA quick_check");
    }
    AIR_ASSIGN_OR_RETURN(result.schema_version, dest->QueryInt("PRAGMA user_version"));
    absl::StatusOr<int64_t> head = dest->QueryInt(
        "SELECT MAX(COALESCE((SELECT MAX(sequence) FROM events), 0), "
        "(SELECT value FROM meta WHERE key = 'first_retained_sequence') - 1)");
    absl::StatusOr<int64_t> actions = dest->QueryInt("SELECT COUNT(*) FROM actions");
    if (!head.ok() || !actions.ok()) {
      return Failed(absl::StatusCode::kFailedPrecondition,
                    absl::StrCat(source_path, " is not an aird database"));
    }
    result.event_head = *head;
    result.actions = *actions;
  }  // closes the copy: nothing of it is left in a -wal file
  return result;
}

}  // namespace

absl::StatusOr<BackupResult> BackupSqliteDatabase(const std::string& source_path,
                                                  const std::string& dest_path,
                                                  absl::Duration busy_timeout) {
  const absl::Time start = absl::Now();
  // The copy is made beside the destination, so the final rename is atomic.
  std::string tmp = absl::StrCat(dest_path, ".tmp-XXXXXX");
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) {
    return Failed(absl::StatusCode::kFailedPrecondition,
                  absl::StrCat("cannot create a file beside ", dest_path));
  }
  ::close(fd);
  absl::StatusOr<BackupResult> result = CopyInto(source_path, tmp, busy_timeout);
  if (result.ok() && !SyncPath(tmp, /*directory=*/false)) {
    result = Failed(absl::StatusCode::kUnavailable, "cannot sync the copy to disk");
  }
  if (result.ok() && std::rename(tmp.c_str(), dest_path.c_str()) != 0) {
    result = Failed(absl::StatusCode::kFailedPrecondition,
                    absl::StrCat("cannot rename the copy to ", dest_path));
  }
  if (!result.ok()) {
    RemoveCopy(tmp);
    return result;
  }
  const std::filesystem::path parent = std::filesystem::absolute(dest_path).parent_path();
  SyncPath(parent.string(), /*directory=*/true);
  std::error_code error;
  result->size_bytes = static_cast<int64_t>(std::filesystem::file_size(dest_path, error));
  result->duration = absl::Now() - start;
  return result;
}

}  // namespace air
