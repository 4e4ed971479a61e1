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
//  - Only with the SQLite series the workaround was written and measured
//    for (PageCacheWorkaroundApplies): a page cache that wraps SQLite's own
//    (pcache1) and skips truncations with nothing to drop (see the .cc).
//    Logs once whether it is in force.
// Returns false if SQLite had already been initialized (someone opened a
// connection without Connection::Open), or if the wrapper applies but could
// not be installed; SQLite's defaults then stay.
bool ConfigureProcessOnce();

// Whether the linked SQLite (sqlite3_libversion_number) is in the range the
// page-cache wrapper works around: the 3.40 series.
bool PageCacheWorkaroundApplies();

// Counts of the page cache's work since the process started, for tests and
// for measuring; all zero when the wrapper is not installed.
struct PageCacheCounts {
  int64_t truncations_skipped = 0;  // no page was at or above the limit
  int64_t truncations_passed = 0;   // went on to SQLite's cache
  int64_t lock_page_renumbers = 0;  // B-tree page sorts (see the .cc)
};
PageCacheCounts PageCacheCountsSoFar();

}  // namespace air::sqlite

#endif  // AIR_STORAGE_SQLITE_PROCESS_CONFIG_H_
