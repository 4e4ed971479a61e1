// The storage factory: the one place that tells the backends apart.
#include "storage/storage.h"

#include "storage/postgres_storage.h"
#include "storage/sqlite_storage.h"

namespace air {

absl::StatusOr<std::unique_ptr<Storage>> Storage::Open(const StorageOptions& options) {
  if (IsPostgresDatabase(options.database)) {
    PostgresOptions postgres;
    postgres.conninfo = options.database;
    postgres.max_batch = options.max_batch;
    postgres.clock = options.clock;
    postgres.rerun_every_batch_for_testing = options.rerun_every_batch_for_testing;
    return OpenPostgresStorage(postgres);
  }
  SqliteOptions sqlite;
  sqlite.path = options.database;
  sqlite.full_fsync = options.full_fsync;
  sqlite.max_batch = options.max_batch;
  sqlite.clock = options.clock;
  sqlite.rerun_every_batch_for_testing = options.rerun_every_batch_for_testing;
  return OpenSqliteStorage(sqlite);
}

std::string DescribeDatabase(const std::string& database) {
  return IsPostgresDatabase(database) ? RedactPostgresConninfo(database) : database;
}

absl::StatusOr<BackupResult> BackupDatabase(const std::string& database,
                                            const std::string& dest) {
  if (IsPostgresDatabase(database)) {
    return absl::FailedPreconditionError(
        "online backups copy a SQLite database; back PostgreSQL up with pg_dump");
  }
  return BackupSqliteDatabase(database, dest);
}

}  // namespace air
