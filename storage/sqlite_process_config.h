// Process-wide SQLite settings. sqlite3_config() works only before SQLite
// initializes, so Connection::Open applies them once, before the first
// connection of the process opens. Internal to storage/.
#ifndef AIR_STORAGE_SQLITE_PROCESS_CONFIG_H_
#define AIR_STORAGE_SQLITE_PROCESS_CONFIG_H_

#include <cstdint>

namespace air::sqlite {

// Applies, once per process (thread-safe, idempotent):
//  - SQLITE_CONFIG_MEMSTATUS off: SQLite otherwise takes one global mutex
//    around every allocation to keep statistics nobody here reads.
//  - A page cache that wraps SQLite's own (pcache1) and skips truncations
//    with nothing to drop (see sqlite_process_config.cc for the why).
// Returns false if SQLite had already been initialized (someone opened a
// connection without Connection::Open); SQLite's defaults then stay.
bool ConfigureProcessOnce();

// Counts of the page cache's work since the process started, for tests and
// for measuring.
struct PageCacheCounts {
  int64_t truncations_skipped = 0;  // no page was at or above the limit
  int64_t truncations_passed = 0;   // went on to SQLite's cache
  int64_t lock_page_renumbers = 0;  // B-tree page sorts (see the .cc)
};
PageCacheCounts PageCacheCountsSoFar();

}  // namespace air::sqlite

#endif  // AIR_STORAGE_SQLITE_PROCESS_CONFIG_H_
