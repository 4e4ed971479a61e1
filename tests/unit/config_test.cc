#include "service/config.h"

#include <fstream>

#include "domain/errors.h"
#include "tests/support/test_support.h"

namespace air {
namespace {

using testing::StatusIs;
using testing::TempDir;

absl::Status Apply(const TempDir& dir, const std::string& name, const std::string& text,
                   ServerOptions* options) {
  std::ofstream(dir.File(name)) << text;
  auto config = LoadConfigFile(dir.File(name));
  if (!config.ok()) return config.status();
  return ApplyConfig(*config, *options);
}

TEST(Config, TheExampleFileIsValid) {
  ServerOptions options;
  auto config = LoadConfigFile(std::string(AIR_SOURCE_DIR) + "/deploy/aird.example.textproto");
  AIR_ASSERT_OK(config);
  AIR_ASSERT_OK(ApplyConfig(*config, options));
  EXPECT_EQ(options.db_path, "/var/lib/aird/air.db");
  EXPECT_EQ(options.policy.RequiredApprovals(v1::ACTION_TYPE_RESET_PASSWORD), 2);
  EXPECT_EQ(options.action_ttl, absl::Hours(24 * 7));
}

TEST(Config, TextAndJsonBothWork) {
  TempDir dir;
  ServerOptions text;
  AIR_ASSERT_OK(Apply(dir, "a.textproto", "listen: \"127.0.0.1:7000\" max_events: 5", &text));
  EXPECT_EQ(text.listen_address, "127.0.0.1:7000");
  EXPECT_EQ(text.max_events, 5);
  ServerOptions json;
  AIR_ASSERT_OK(Apply(dir, "a.json", R"({"db": "x.db", "actionTtl": "3600s"})", &json));
  EXPECT_EQ(json.db_path, "x.db");
  EXPECT_EQ(json.action_ttl, absl::Hours(1));
}

TEST(Config, ErrorsNameTheLineOrField) {
  TempDir dir;
  ServerOptions options;
  absl::Status unknown = Apply(dir, "b.textproto", "listen: \"x\"\nlisten_adress: \"y\"\n", &options);
  EXPECT_THAT(unknown, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(unknown.message().find("line 2"), absl::string_view::npos) << unknown;
  EXPECT_NE(unknown.message().find("listen_adress"), absl::string_view::npos) << unknown;

  absl::Status tls = Apply(dir, "c.textproto", "tls { cert_file: \"a.pem\" }", &options);
  EXPECT_EQ(BadRequestField(tls), "tls.key_file");

  absl::Status ttl = Apply(dir, "d.textproto", "action_ttl { seconds: -5 }", &options);
  EXPECT_EQ(BadRequestField(ttl), "action_ttl");

  absl::Status policy = Apply(
      dir, "e.textproto",
      "policy { automation_rules { name: \"\" } }", &options);
  EXPECT_EQ(BadRequestField(policy), "policy.automation_rules[0].name");

  EXPECT_THAT(LoadConfigFile(dir.File("missing.textproto")),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace air
