// The PostgreSQL backend (storage/postgres_storage.cc): several aird
// replicas share one database. Its settings, for the storage factory and for
// tests that tune them. Storage-internal: outside storage/, open a database
// with Storage::Open.
#ifndef AIR_STORAGE_POSTGRES_STORAGE_H_
#define AIR_STORAGE_POSTGRES_STORAGE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "domain/clock.h"
#include "storage/storage.h"

namespace air {

struct PostgresOptions {
  // libpq connection string, e.g. "postgresql://aird@db:5432/aird" (or the
  // key=value form). Required.
  std::string conninfo;
  // Number of read connections.
  int reader_connections = 4;
  // Largest number of write functions committed together.
  int max_batch = 256;
  // How often the listener reads the event log without a notification
  // (a safety net; notifications normally wake it at once).
  absl::Duration fallback_poll = absl::Seconds(2);
  // The clock for commit times. Not owned; defaults to the system clock.
  const Clock* clock = nullptr;
  // Tests: run every write batch twice (see GroupCommitOptions).
  bool rerun_every_batch_for_testing = false;
};

// Connects and migrates. UNAVAILABLE when the server cannot be reached;
// FAILED_PRECONDITION for a schema newer than this binary knows. The message
// never contains the password.
absl::StatusOr<std::unique_ptr<Storage>> OpenPostgresStorage(const PostgresOptions& options);

// True when `db` names a PostgreSQL database (postgresql:// or postgres://)
// rather than a SQLite file.
bool IsPostgresDatabase(absl::string_view db);

// `conninfo` without its password, for logs.
std::string RedactPostgresConninfo(absl::string_view conninfo);

// The schema version this binary writes.
int PostgresSchemaVersion();

}  // namespace air

#endif  // AIR_STORAGE_POSTGRES_STORAGE_H_
