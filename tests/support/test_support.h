// Shared test helpers: exact-code status matchers, temporary directories,
// and a fixture that builds a real SqliteRepository on a temp file.
#ifndef AIR_TESTS_SUPPORT_TEST_SUPPORT_H_
#define AIR_TESTS_SUPPORT_TEST_SUPPORT_H_

#include <grpcpp/support/status.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace air::testing {

// Matches an absl::Status or StatusOr with exactly this code.
MATCHER_P(StatusIs, code,
          absl::StrCat("has status code ", absl::StatusCodeToString(code))) {
  absl::Status status;
  if constexpr (std::is_same_v<std::decay_t<arg_type>, absl::Status>) {
    status = arg;
  } else {
    status = arg.status();
  }
  *result_listener << "status is " << status.ToString();
  return status.code() == code;
}

// Matches a grpc::Status with exactly this code.
MATCHER_P(GrpcStatusIs, code, "") {
  *result_listener << "grpc status " << arg.error_code() << ": " << arg.error_message();
  return arg.error_code() == code;
}

inline const absl::Status& ToStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& ToStatus(const absl::StatusOr<T>& s) { return s.status(); }

#define AIR_ASSERT_OK(expr)                                      \
  do {                                                           \
    const auto& air_s_ = (expr);                                 \
    ASSERT_TRUE(air_s_.ok()) << ::air::testing::ToStatus(air_s_); \
  } while (0)

// A fresh directory under $TMPDIR, removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "air-test-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace air::testing

#endif  // AIR_TESTS_SUPPORT_TEST_SUPPORT_H_
