// The process-wide SQLite configuration (storage/sqlite_process_config.h):
// the page cache that skips truncations with nothing to drop must still drop
// pages when there are some, and must keep skipping after B-tree page sorts.
// The wrapper is installed only for the SQLite series it works around; with
// any other SQLite these tests are skipped.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "domain/status_macros.h"
#include "gtest/gtest.h"
#include "storage/sqlite_connection.h"
#include "storage/sqlite_process_config.h"
#include "tests/support/test_support.h"

namespace air::sqlite {
namespace {

using ::air::testing::TempDir;

class SqlitePageCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // First thing in this binary, so SQLite is not initialized yet.
    ASSERT_TRUE(ConfigureProcessOnce());
    if (!PageCacheWorkaroundApplies()) {
      GTEST_SKIP() << "SQLite " << sqlite3_libversion()
                   << " is outside the 3.40 series the page-cache wrapper "
                      "works around, so it is not installed";
    }
    absl::StatusOr<std::unique_ptr<Connection>> conn = Connection::Open(
        dir_.File("cache.db"), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
        absl::Seconds(5));
    AIR_ASSERT_OK(conn);
    writer_ = *std::move(conn);
    AIR_ASSERT_OK(writer_->QueryText("PRAGMA journal_mode = WAL"));
    AIR_ASSERT_OK(writer_->Exec(
        "CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID"));
  }

  // Inserts rows [first, first + count) with keys in scattered order, so
  // that leaf pages split all over the tree.
  absl::Status Insert(int first, int count) {
    for (int i = first; i < first + count; ++i) {
      const int scattered = (i * 7919) % 100003;
      AIR_RETURN_IF_ERROR(writer_->Exec(
          absl::StrCat("INSERT INTO t VALUES ('k", scattered, "-", i,
                       "', zeroblob(300))")
              .c_str()));
    }
    return absl::OkStatus();
  }

  int64_t Rows(Connection& conn) { return *conn.QueryInt("SELECT COUNT(*) FROM t"); }

  TempDir dir_;
  std::unique_ptr<Connection> writer_;
};

TEST_F(SqlitePageCacheTest, CommitsSkipTheTruncationEvenAfterPageSorts) {
  const PageCacheCounts before = PageCacheCountsSoFar();
  for (int tx = 0; tx < 200; ++tx) {
    AIR_ASSERT_OK(writer_->Exec("BEGIN IMMEDIATE"));
    AIR_ASSERT_OK(Insert(tx * 50, 50));
    AIR_ASSERT_OK(writer_->Exec("COMMIT"));
  }
  const PageCacheCounts after = PageCacheCountsSoFar();
  // The workload did sort pages through the lock page, which made SQLite's
  // own cache scan everything at the next commit...
  EXPECT_GT(after.lock_page_renumbers, before.lock_page_renumbers);
  // ...and no commit had to pass its truncation on.
  EXPECT_GE(after.truncations_skipped - before.truncations_skipped, 200);
  EXPECT_EQ(after.truncations_passed, before.truncations_passed);
  EXPECT_EQ(Rows(*writer_), 200 * 50);
  EXPECT_EQ(*writer_->QueryText("PRAGMA integrity_check"), "ok");
}

TEST_F(SqlitePageCacheTest, RollbackThatGrewTheFileDropsItsPages) {
  AIR_ASSERT_OK(writer_->Exec("BEGIN IMMEDIATE"));
  AIR_ASSERT_OK(Insert(0, 500));
  AIR_ASSERT_OK(writer_->Exec("COMMIT"));
  const int64_t committed_pages = *writer_->QueryInt("PRAGMA page_count");

  const PageCacheCounts before = PageCacheCountsSoFar();
  AIR_ASSERT_OK(writer_->Exec("BEGIN IMMEDIATE"));
  AIR_ASSERT_OK(Insert(500, 3000));  // grows the file well past its size
  ASSERT_GT(*writer_->QueryInt("PRAGMA page_count"), committed_pages);
  AIR_ASSERT_OK(writer_->Exec("ROLLBACK"));
  // The pages past the end were in the cache, so the truncation went on.
  EXPECT_GT(PageCacheCountsSoFar().truncations_passed, before.truncations_passed);
  EXPECT_EQ(*writer_->QueryInt("PRAGMA page_count"), committed_pages);

  // The same page numbers are used again for other content; nothing of the
  // rolled-back transaction may come back from the cache.
  AIR_ASSERT_OK(writer_->Exec("BEGIN IMMEDIATE"));
  AIR_ASSERT_OK(Insert(10000, 1000));
  AIR_ASSERT_OK(writer_->Exec("COMMIT"));
  EXPECT_EQ(Rows(*writer_), 1500);
  EXPECT_EQ(*writer_->QueryInt("SELECT COUNT(*) FROM t WHERE k GLOB '*-[5-9]??'"
                               " OR k GLOB '*-[1-3]???'"),
            0);
  EXPECT_EQ(*writer_->QueryText("PRAGMA integrity_check"), "ok");

  absl::StatusOr<std::unique_ptr<Connection>> reader = Connection::Open(
      dir_.File("cache.db"), SQLITE_OPEN_READONLY, absl::Seconds(5));
  AIR_ASSERT_OK(reader);
  EXPECT_EQ(Rows(**reader), 1500);
}

}  // namespace
}  // namespace air::sqlite
