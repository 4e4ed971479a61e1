// aird's flags through absl's real parser: each sets its ServerConfig field
// over the config file and meets the file's validation.
#include "service/aird_flags.h"

#include <fstream>
#include <vector>

#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "domain/errors.h"
#include "service/config.h"
#include "tests/support/test_support.h"

namespace air {
namespace {

using config::v1::ServerConfig;
using testing::StatusIs;
using testing::TempDir;

// What aird's main() does with `args` (after the program name), up to the
// validated ServerOptions.
absl::StatusOr<ServerOptions> OptionsFromCommandLine(std::vector<std::string> args) {
  args.insert(args.begin(), "aird");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const std::set<std::string> given = ParseAirdCommandLine(static_cast<int>(args.size()),
                                                           argv.data());
  absl::StatusOr<ServerConfig> config = LoadSettings(given);
  if (!config.ok()) return config.status();
  return ToServerOptions(*config);
}

std::string WriteFile(const TempDir& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir.File(name)) << text;
  return dir.File(name);
}

TEST(AirdFlags, AFlagIsRefusedAsTheSameValueInAFile) {
  TempDir dir;
  struct Case {
    const char* flag;
    const char* file;
    const char* field;
  };
  const Case cases[] = {
      {"--action_ttl=0", "action_ttl { seconds: 0 }", "action_ttl"},
      {"--default_heartbeat=1ms", "limits { default_heartbeat { nanos: 1000000 } }",
       "limits.default_heartbeat"},
      {"--upstream_page_size=0", "upstream { page_size: 0 }", "upstream.page_size"},
      {"--max_events=0", "max_events: 0", "max_events"},
      {"--max_snapshot_actions=0", "limits { max_snapshot_actions: 0 }",
       "limits.max_snapshot_actions"},
      {"--log_format=xml", "log { format: \"xml\" }", "log.format"},
      {"--metrics_listen=9464", "metrics_listen: \"9464\"", "metrics_listen"},
      {"--tls_cert=a.pem", "tls { cert_file: \"a.pem\" }", "tls.key_file"},
      {"--shutdown_grace=-1s", "shutdown_grace { seconds: -1 }", "shutdown_grace"},
  };
  for (const Case& c : cases) {
    absl::FlagSaver restore_flags;
    absl::StatusOr<ServerOptions> from_flag = OptionsFromCommandLine({c.flag});
    EXPECT_THAT(from_flag, StatusIs(absl::StatusCode::kInvalidArgument)) << c.flag;
    EXPECT_EQ(BadRequestField(from_flag.status()), c.field) << c.flag;

    const std::string file = WriteFile(dir, "bad.textproto", c.file);
    absl::StatusOr<ServerOptions> from_file = OptionsFromCommandLine({"--config=" + file});
    EXPECT_THAT(from_file, StatusIs(absl::StatusCode::kInvalidArgument)) << c.file;
    EXPECT_EQ(BadRequestField(from_file.status()), c.field) << c.file;
  }
}

TEST(AirdFlags, ParsedValuesSetTheFieldsTheFlagsNameAndMeetValidation) {
  ServerConfig config;
  AIR_ASSERT_OK(ApplySettingFlags({{"action_ttl", "0"}, {"upstream_page_size", "0"}}, config));
  EXPECT_TRUE(config.has_action_ttl());
  EXPECT_TRUE(config.upstream().has_page_size());
  absl::Status status = ValidateConfig(config);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(BadRequestField(status), "action_ttl");

  ServerConfig heartbeat;
  AIR_ASSERT_OK(ApplySettingFlags({{"default_heartbeat", "1ms"}}, heartbeat));
  EXPECT_EQ(heartbeat.limits().default_heartbeat().nanos(), 1000000);
  EXPECT_EQ(BadRequestField(ValidateConfig(heartbeat)), "limits.default_heartbeat");

  // A negative duration keeps one sign in seconds and nanos.
  ServerConfig negative;
  AIR_ASSERT_OK(ApplySettingFlags({{"keepalive_time", "-1.5s"}}, negative));
  EXPECT_EQ(negative.keepalive_time().seconds(), -1);
  EXPECT_EQ(negative.keepalive_time().nanos(), -500000000);
  EXPECT_EQ(BadRequestField(ValidateConfig(negative)), "keepalive_time");

  // A value the field cannot hold, and a name that is no setting.
  ServerConfig other;
  absl::Status infinite = ApplySettingFlags({{"max_connection_age", "inf"}}, other);
  EXPECT_THAT(infinite, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(BadRequestField(infinite), "max_connection_age");
  EXPECT_THAT(ApplySettingFlags({{"backup", "x"}}, other),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(AirdFlags, AFlagOverridesTheFileAndAnUnsetFlagKeepsIt) {
  TempDir dir;
  const std::string file = WriteFile(dir, "aird.textproto", R"pb(
    action_ttl { seconds: 3600 }
    demo: true
    upstream { target: "127.0.0.1:50061" page_size: 250 }
    log { level: "debug" }
    limits { default_heartbeat { seconds: 5 } }
  )pb");
  absl::FlagSaver restore_flags;
  absl::StatusOr<ServerOptions> options = OptionsFromCommandLine(
      {"--config=" + file, "--action_ttl=2h", "--nodemo", "--upstream-page-size", "40"});
  AIR_ASSERT_OK(options);
  // Given on the command line: the flag wins, false and zero included.
  EXPECT_EQ(options->action_ttl, absl::Hours(2));
  EXPECT_EQ(options->upstream.sync.action_ttl, absl::Hours(2));
  EXPECT_FALSE(options->demo);
  EXPECT_EQ(options->upstream.sync.page_size, 40);
  // Not given: the file's value, not the flag's default.
  EXPECT_EQ(options->upstream.target, "127.0.0.1:50061");
  EXPECT_EQ(options->log_level, "debug");
  EXPECT_EQ(options->watch_limits.default_heartbeat, absl::Seconds(5));
  // In neither: the default.
  EXPECT_EQ(options->keepalive_time, ServerOptions().keepalive_time);
}

TEST(AirdFlags, EveryFlagIsASettingOrACommand) {
  const std::set<std::string> commands = {"config", "check_config", "backup"};
  std::set<std::string> settings;
  for (const SettingFlag& setting : SettingFlags()) settings.insert(setting.flag);
  int aird_flags = 0;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!absl::EndsWith(flag->Filename(), "aird_flags.cc")) continue;
    ++aird_flags;
    EXPECT_TRUE(settings.count(std::string(name)) + commands.count(std::string(name)) == 1)
        << "--" << name << " sets no ServerConfig field";
  }
  EXPECT_EQ(aird_flags, static_cast<int>(settings.size() + commands.size()));
}

TEST(AirdFlags, EveryDefaultGivenAsAFlagIsTheDefault) {
  // As if every setting flag were typed with its default value: each maps to
  // a field that can hold it, and the result is the default options.
  std::map<std::string, std::string> defaults;
  for (const SettingFlag& setting : SettingFlags()) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(setting.flag);
    ASSERT_NE(flag, nullptr) << setting.flag;
    defaults[setting.flag] = flag->DefaultValue();
  }
  ServerConfig config;
  AIR_ASSERT_OK(ApplySettingFlags(defaults, config));
  absl::StatusOr<ServerOptions> options = ToServerOptions(config);
  AIR_ASSERT_OK(options);
  const ServerOptions expected;
  EXPECT_EQ(options->listen_address, expected.listen_address);
  EXPECT_EQ(options->db_path, expected.db_path);
  EXPECT_EQ(options->action_ttl, expected.action_ttl);
  EXPECT_EQ(options->event_retention, expected.event_retention);
  EXPECT_EQ(options->max_events, expected.max_events);
  EXPECT_EQ(options->max_connection_age, expected.max_connection_age);
  EXPECT_EQ(options->keepalive_time, expected.keepalive_time);
  EXPECT_EQ(options->upstream.outage_threshold, expected.upstream.outage_threshold);
  EXPECT_EQ(options->upstream.sync.page_size, expected.upstream.sync.page_size);
  EXPECT_EQ(options->upstream.sync.rpc_timeout, expected.upstream.sync.rpc_timeout);
  EXPECT_EQ(options->log_format, expected.log_format);
  EXPECT_EQ(options->max_receive_message_bytes, expected.max_receive_message_bytes);
  EXPECT_EQ(options->watch_limits.max_snapshot_actions,
            expected.watch_limits.max_snapshot_actions);
  EXPECT_EQ(options->watch_limits.default_heartbeat, expected.watch_limits.default_heartbeat);
}

}  // namespace
}  // namespace air
