#include "storage/sqlite_process_config.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <new>

#include "spdlog/spdlog.h"

namespace air::sqlite {
namespace {

// Why a page-cache wrapper (SQLite 3.40, as in Debian 12): at the end of
// every write transaction the pager asks the page cache to drop pages past
// the end of the database (xTruncate(db_pages + 1)). pcache1 decides how
// much to scan from the largest key it has held since the last truncation,
// and balance_nonroot, when it sorts the pages of a split, renumbers one
// through a temporary key: the unused lock page at 1 GiB. That key then
// counts as the largest, so the next commit scans every hash slot and page
// header of the writer's cache, a visible share of the writer's CPU under
// concurrent approvals (see docs/benchmarks.md). The wrapper keeps its own
// largest key, ignoring the temporary one, and passes a truncation on only
// when a page could be at or above the limit (after a rollback that grew the
// file).
//
// Installed only for the 3.40 series, the one it was measured on. SQLite's
// current source still renumbers through the lock page, so a newer SQLite
// may want it too: widen kAffected* after measuring on that version.
constexpr int kAffectedFrom = 3040000;   // 3.40.0
constexpr int kAffectedUntil = 3041000;  // 3.41.0, exclusive

constexpr unsigned kPendingByte = 0x40000000;  // SQLite's default PENDING_BYTE

struct WrappedCache {
  sqlite3_pcache* inner;
  unsigned lock_page;    // the temporary key balance_nonroot uses
  unsigned max_key = 0;  // no page has a larger key
};

sqlite3_pcache_methods2 g_inner;  // SQLite's own cache, wrapped
std::atomic<int64_t> g_skipped{0};
std::atomic<int64_t> g_passed{0};
std::atomic<int64_t> g_lock_page_renumbers{0};

WrappedCache* Unwrap(sqlite3_pcache* cache) {
  return reinterpret_cast<WrappedCache*>(cache);
}

int Init(void*) { return g_inner.xInit(g_inner.pArg); }
void Shutdown(void*) {
  if (g_inner.xShutdown != nullptr) g_inner.xShutdown(g_inner.pArg);
}

sqlite3_pcache* Create(int page_size, int extra_size, int purgeable) {
  sqlite3_pcache* inner = g_inner.xCreate(page_size, extra_size, purgeable);
  if (inner == nullptr) return nullptr;
  auto* cache = new (std::nothrow) WrappedCache{
      inner, kPendingByte / static_cast<unsigned>(page_size) + 1};
  if (cache == nullptr) g_inner.xDestroy(inner);
  return reinterpret_cast<sqlite3_pcache*>(cache);
}

void Cachesize(sqlite3_pcache* cache, int pages) {
  g_inner.xCachesize(Unwrap(cache)->inner, pages);
}

int Pagecount(sqlite3_pcache* cache) { return g_inner.xPagecount(Unwrap(cache)->inner); }

sqlite3_pcache_page* Fetch(sqlite3_pcache* cache, unsigned key, int create) {
  WrappedCache* c = Unwrap(cache);
  sqlite3_pcache_page* page = g_inner.xFetch(c->inner, key, create);
  if (page != nullptr) c->max_key = std::max(c->max_key, key);
  return page;
}

void Unpin(sqlite3_pcache* cache, sqlite3_pcache_page* page, int discard) {
  g_inner.xUnpin(Unwrap(cache)->inner, page, discard);
}

void Rekey(sqlite3_pcache* cache, sqlite3_pcache_page* page, unsigned old_key,
           unsigned new_key) {
  WrappedCache* c = Unwrap(cache);
  g_inner.xRekey(c->inner, page, old_key, new_key);
  // The lock page is never a real page: a page given its number is
  // renumbered again before balance_nonroot returns.
  if (new_key == c->lock_page) {
    g_lock_page_renumbers.fetch_add(1, std::memory_order_relaxed);
  } else {
    c->max_key = std::max(c->max_key, new_key);
  }
}

void Truncate(sqlite3_pcache* cache, unsigned limit) {
  WrappedCache* c = Unwrap(cache);
  if (limit > c->max_key) {
    g_skipped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  g_passed.fetch_add(1, std::memory_order_relaxed);
  g_inner.xTruncate(c->inner, limit);
  c->max_key = limit == 0 ? 0 : limit - 1;
}

void Destroy(sqlite3_pcache* cache) {
  WrappedCache* c = Unwrap(cache);
  g_inner.xDestroy(c->inner);
  delete c;
}

void Shrink(sqlite3_pcache* cache) { g_inner.xShrink(Unwrap(cache)->inner); }

bool InstallWrapper() {
  // pcache1 reports iVersion 1, which already has every method below.
  if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &g_inner) != SQLITE_OK ||
      g_inner.xCreate == nullptr || g_inner.xShrink == nullptr) {
    return false;
  }
  static const sqlite3_pcache_methods2 kWrapper = {
      1,      nullptr, Init,     Shutdown, Create,  Cachesize, Pagecount,
      Fetch,  Unpin,   Rekey,    Truncate, Destroy, Shrink};
  return sqlite3_config(SQLITE_CONFIG_PCACHE2, &kWrapper) == SQLITE_OK;
}

bool Configure() {
  if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK) {
    spdlog::warn("storage: SQLite was initialized before aird configured it; "
                 "using its default memory statistics and page cache");
    return false;
  }
  if (!PageCacheWorkaroundApplies()) {
    spdlog::info("storage: SQLite {}: page-cache workaround not in force "
                 "(written for the 3.40 series)",
                 sqlite3_libversion());
    return true;
  }
  if (!InstallWrapper()) {
    spdlog::warn("storage: SQLite {}: could not install the page-cache "
                 "workaround; using SQLite's own page cache",
                 sqlite3_libversion());
    return false;
  }
  spdlog::info("storage: SQLite {}: page-cache workaround in force "
               "(commit-time truncations with nothing to drop are skipped)",
               sqlite3_libversion());
  return true;
}

}  // namespace

bool PageCacheWorkaroundApplies() {
  const int version = sqlite3_libversion_number();
  return version >= kAffectedFrom && version < kAffectedUntil;
}

bool ConfigureProcessOnce() {
  static const bool configured = Configure();
  return configured;
}

PageCacheCounts PageCacheCountsSoFar() {
  return PageCacheCounts{g_skipped.load(std::memory_order_relaxed),
                         g_passed.load(std::memory_order_relaxed),
                         g_lock_page_renumbers.load(std::memory_order_relaxed)};
}

}  // namespace air::sqlite
