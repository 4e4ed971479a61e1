// ReadWholeFile: the file reader under ReadPemFile (service) and the
// upstream simulator's TLS files.
#include "domain/file_io.h"

#include <fstream>
#include <string>

#include "tests/support/test_support.h"

namespace air {
namespace {

TEST(ReadWholeFile, ReturnsEveryByteUnchanged) {
  testing::TempDir dir;
  constexpr char kBytes[] = "line one\r\nline two\n\0binary\xff";
  const std::string bytes(kBytes, sizeof(kBytes) - 1);
  std::ofstream(dir.File("f"), std::ios::binary) << bytes;
  EXPECT_EQ(ReadWholeFile(dir.File("f")), bytes);
}

TEST(ReadWholeFile, AnEmptyFileIsReadAsEmpty) {
  testing::TempDir dir;
  std::ofstream(dir.File("empty")).close();
  EXPECT_EQ(ReadWholeFile(dir.File("empty")), std::string());
}

TEST(ReadWholeFile, AMissingFileIsNullopt) {
  testing::TempDir dir;
  EXPECT_FALSE(ReadWholeFile(dir.File("missing")).has_value());
}

}  // namespace
}  // namespace air
