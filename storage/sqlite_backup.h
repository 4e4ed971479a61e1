// Consistent online backups of an aird SQLite database, with SQLite's
// backup API. Used by `aird --backup=PATH` (a separate process, while
// another aird serves the same file) and by OperationsService.BackupDatabase.
//
// The copy runs in one sqlite3_backup_step(-1): one read transaction, so
// the result is a snapshot of a single commit — never half a group commit —
// while the serving aird keeps writing (WAL readers do not block the
// writer). The copy is written beside the destination, synced, checked
// (PRAGMA quick_check) and then renamed into place, so the destination is
// either the previous file or a complete, verified backup.
//
// Restore: stop aird, delete the old air.db-wal and air.db-shm, copy the
// backup to air.db, start aird (see README "Backup and restore").
#ifndef AIR_STORAGE_SQLITE_BACKUP_H_
#define AIR_STORAGE_SQLITE_BACKUP_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace air {

struct BackupResult {
  // Size of the backup file.
  int64_t size_bytes = 0;
  // Schema version (PRAGMA user_version) of the copy.
  int64_t schema_version = 0;
  // The last event sequence in the copy: a watch resumed after a restore
  // continues from here.
  int64_t event_head = 0;
  // Actions in the copy.
  int64_t actions = 0;
  // How long the snapshot took (copy, sync and check).
  absl::Duration duration;
};

// Copies the database at `source_path` to `dest_path` (replacing it
// atomically if it exists). FAILED_PRECONDITION if the source is missing or
// not an aird database, or the copy fails its check; UNAVAILABLE for I/O
// errors (disk full) and locks held longer than `busy_timeout`.
absl::StatusOr<BackupResult> BackupSqliteDatabase(const std::string& source_path,
                                                  const std::string& dest_path,
                                                  absl::Duration busy_timeout = absl::Seconds(30));

}  // namespace air

#endif  // AIR_STORAGE_SQLITE_BACKUP_H_
