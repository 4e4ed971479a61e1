#include "service/config.h"

#include <fstream>

#include "domain/errors.h"
#include "tests/support/test_support.h"

namespace air {
namespace {

using testing::StatusIs;
using testing::TempDir;

using config::v1::ServerConfig;

// Loads the config `text` (format by the extension of `name`), validates and
// converts it into *options.
absl::Status Apply(const TempDir& dir, const std::string& name, const std::string& text,
                   ServerOptions* options) {
  std::ofstream(dir.File(name)) << text;
  auto config = LoadConfigFile(dir.File(name));
  if (!config.ok()) return config.status();
  absl::StatusOr<ServerOptions> converted = ToServerOptions(*config);
  if (!converted.ok()) return converted.status();
  *options = *std::move(converted);
  return absl::OkStatus();
}

absl::StatusOr<ServerOptions> LoadExample(const std::string& relative_path) {
  auto config = LoadConfigFile(std::string(AIR_SOURCE_DIR) + "/" + relative_path);
  if (!config.ok()) return config.status();
  return ToServerOptions(*config);
}

TEST(Config, TheExampleFileIsValid) {
  absl::StatusOr<ServerOptions> example = LoadExample("deploy/aird.example.textproto");
  AIR_ASSERT_OK(example);
  const ServerOptions& options = *example;
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

  // Upstream credentials need TLS.
  absl::Status token = Apply(dir, "f.textproto",
                             "upstream { target: \"u:1\" token_file: \"t\" }", &options);
  EXPECT_EQ(BadRequestField(token), "upstream.ca_file");
  absl::Status half = Apply(dir, "g.textproto",
                            "upstream { target: \"u:1\" ca_file: \"ca\" cert_file: \"c\" }",
                            &options);
  EXPECT_EQ(BadRequestField(half), "upstream.key_file");

  EXPECT_THAT(LoadConfigFile(dir.File("missing.textproto")),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(Config, TheExampleCoversOperations) {
  absl::StatusOr<ServerOptions> example = LoadExample("deploy/aird.example.textproto");
  AIR_ASSERT_OK(example);
  const ServerOptions& options = *example;
  EXPECT_EQ(options.metrics_listen, "127.0.0.1:9464");
  EXPECT_EQ(options.log_format, "json");
  EXPECT_EQ(options.shutdown_grace, absl::Seconds(10));
  EXPECT_EQ(options.watch_limits.default_heartbeat, absl::Seconds(30));
}

TEST(Config, TheContainerConfigIsValid) {
  absl::StatusOr<ServerOptions> container = LoadExample("deploy/container.textproto");
  AIR_ASSERT_OK(container);
  const ServerOptions& options = *container;
  EXPECT_EQ(options.listen_address, "0.0.0.0:50051");
  EXPECT_TRUE(options.tls.enabled());
  EXPECT_FALSE(options.tokens_file.empty());
  EXPECT_EQ(options.health_listen, "0.0.0.0:50052");
}

TEST(Config, EverySettingIsInTheFile) {
  TempDir dir;
  ServerOptions o;
  AIR_ASSERT_OK(Apply(dir, "all.textproto", R"pb(
    listen: "0.0.0.0:6000"
    db: "/data/air.db"
    upstream {
      target: "upstream.example:7443"
      ca_file: "/etc/aird/upstream-ca.pem"
      token_file: "/etc/aird/upstream-token"
      outage { seconds: 60 }
      poll_interval { nanos: 500000000 }
      page_size: 250
      timeout { seconds: 3 }
    }
    metrics_listen: "127.0.0.1:9464"
    health_listen: "0.0.0.0:50052"
    http_listen: "127.0.0.1:8080"
    log { format: "text" level: "debug" }
    full_fsync: true
    demo: true
    housekeeping_interval { seconds: 5 }
    keepalive_time { seconds: 20 }
    max_connection_age { seconds: 3600 }
    shutdown_grace { seconds: 25 }
    limits {
      max_receive_message_bytes: 2097152
      max_snapshot_actions: 5000
      default_heartbeat { seconds: 10 }
    }
  )pb", &o));
  EXPECT_EQ(o.listen_address, "0.0.0.0:6000");
  EXPECT_EQ(o.db_path, "/data/air.db");
  EXPECT_EQ(o.http_listen_address, "127.0.0.1:8080");
  EXPECT_EQ(o.upstream.target, "upstream.example:7443");
  EXPECT_EQ(o.upstream.ca_file, "/etc/aird/upstream-ca.pem");
  EXPECT_EQ(o.upstream.token_file, "/etc/aird/upstream-token");
  EXPECT_EQ(o.upstream.outage_threshold, absl::Minutes(1));
  EXPECT_EQ(o.upstream.sync.poll_interval, absl::Milliseconds(500));
  EXPECT_EQ(o.upstream.sync.page_size, 250);
  EXPECT_EQ(o.upstream.sync.rpc_timeout, absl::Seconds(3));
  EXPECT_EQ(o.upstream.delivery.rpc_timeout, absl::Seconds(3));
  EXPECT_EQ(o.metrics_listen, "127.0.0.1:9464");
  EXPECT_EQ(o.health_listen, "0.0.0.0:50052");
  EXPECT_EQ(o.log_format, "text");
  EXPECT_EQ(o.log_level, "debug");
  EXPECT_TRUE(o.full_fsync);
  EXPECT_TRUE(o.demo);
  EXPECT_EQ(o.housekeeping_interval, absl::Seconds(5));
  EXPECT_EQ(o.keepalive_time, absl::Seconds(20));
  EXPECT_EQ(o.max_connection_age, absl::Hours(1));
  EXPECT_EQ(o.shutdown_grace, absl::Seconds(25));
  EXPECT_EQ(o.max_receive_message_bytes, 2 << 20);
  EXPECT_EQ(o.watch_limits.max_snapshot_actions, 5000);
  EXPECT_EQ(o.watch_limits.default_heartbeat, absl::Seconds(10));

  // The same in JSON, protobuf's JSON mapping (lowerCamelCase).
  ServerOptions j;
  AIR_ASSERT_OK(Apply(dir, "all.json", R"({
    "upstream": {"target": "127.0.0.1:50061", "pageSize": 10, "pollInterval": "0.25s"},
    "metricsListen": "127.0.0.1:9100",
    "log": {"format": "json"},
    "limits": {"maxSnapshotActions": 7, "defaultHeartbeat": "5s"}
  })", &j));
  EXPECT_EQ(j.upstream.target, "127.0.0.1:50061");
  EXPECT_EQ(j.upstream.sync.page_size, 10);
  EXPECT_EQ(j.upstream.sync.poll_interval, absl::Milliseconds(250));
  EXPECT_EQ(j.metrics_listen, "127.0.0.1:9100");
  EXPECT_EQ(j.log_format, "json");
  EXPECT_EQ(j.watch_limits.max_snapshot_actions, 7);
  EXPECT_EQ(j.watch_limits.default_heartbeat, absl::Seconds(5));
}

// aird runs no simulator: its old settings (field 6, reserved) configure
// nothing. Text format skips a reserved name; JSON refuses it by name.
TEST(Config, SimulatorSettingsConfigureNothing) {
  TempDir dir;
  ServerOptions text;
  AIR_ASSERT_OK(Apply(dir, "old.textproto",
                      "upstream { target: \"127.0.0.1:50061\" simulator { arrival_rate: 2 } }",
                      &text));
  EXPECT_EQ(text.upstream.target, "127.0.0.1:50061");
  ServerOptions json;
  absl::Status old_json =
      Apply(dir, "old.json", R"({"upstream": {"simulator": {"arrivalRate": 2}}})", &json);
  EXPECT_THAT(old_json, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(old_json.message().find("simulator"), absl::string_view::npos) << old_json;
}

TEST(Config, OperationsErrorsNameTheField) {
  TempDir dir;
  struct Case {
    const char* text;
    const char* field;
  };
  const Case cases[] = {
      {"metrics_listen: \"9464\"", "metrics_listen"},
      {"health_listen: \"host:99999\"", "health_listen"},
      {"listen: \"nohost\"", "listen"},
      {"log { format: \"xml\" }", "log.format"},
      {"log { level: \"loud\" }", "log.level"},
      {"upstream { page_size: -1 }", "upstream.page_size"},
      {"upstream { page_size: 0 }", "upstream.page_size"},
      {"action_ttl { seconds: 0 }", "action_ttl"},
      {"max_events: 0", "max_events"},
      {"upstream { outage { seconds: 0 } }", "upstream.outage"},
      {"upstream { timeout { seconds: -1 } }", "upstream.timeout"},
      {"housekeeping_interval { seconds: 0 }", "housekeeping_interval"},
      {"keepalive_time { seconds: 0 }", "keepalive_time"},
      {"shutdown_grace { seconds: -3 }", "shutdown_grace"},
      {"limits { max_receive_message_bytes: -1 }", "limits.max_receive_message_bytes"},
      {"limits { max_receive_message_bytes: 1000000000 }", "limits.max_receive_message_bytes"},
      {"limits { max_receive_message_bytes: 0 }", "limits.max_receive_message_bytes"},
      {"limits { max_snapshot_actions: -1 }", "limits.max_snapshot_actions"},
      {"limits { max_snapshot_actions: 0 }", "limits.max_snapshot_actions"},
      {"limits { default_heartbeat { seconds: 3600 } }", "limits.default_heartbeat"},
      {"limits { default_heartbeat { nanos: 1000000 } }", "limits.default_heartbeat"},
      {"tls { require_client_cert: true cert_file: \"c\" key_file: \"k\" }",
       "tls.client_ca_file"},
  };
  for (const Case& c : cases) {
    ServerOptions options;
    absl::Status status = Apply(dir, "bad.textproto", c.text, &options);
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument)) << c.text;
    EXPECT_EQ(BadRequestField(status), c.field) << c.text << ": " << status;
  }
  // Unknown fields, in either format, are refused with their name.
  ServerOptions options;
  absl::Status typo = Apply(dir, "t.textproto", "upstream { tagret: \"x\" }", &options);
  EXPECT_NE(typo.message().find("tagret"), absl::string_view::npos) << typo;
  absl::Status json = Apply(dir, "t.json", R"({"metricsListn": "x"})", &options);
  EXPECT_THAT(json, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(json.message().find("metricsListn"), absl::string_view::npos) << json;
  // A type error names the line.
  absl::Status type = Apply(dir, "u.textproto", "\n\nmax_events: \"many\"", &options);
  EXPECT_NE(type.message().find("line 3"), absl::string_view::npos) << type;
}

TEST(Config, CrossFieldChecks) {
  ServerConfig config;
  config.set_listen("127.0.0.1:7000");
  config.set_metrics_listen("127.0.0.1:7000");
  EXPECT_EQ(BadRequestField(ValidateConfig(config)), "metrics_listen");
  config.set_metrics_listen("127.0.0.1:9464");
  config.set_health_listen("127.0.0.1:9464");
  EXPECT_EQ(BadRequestField(ValidateConfig(config)), "health_listen");
  config.set_health_listen("127.0.0.1:7001");
  EXPECT_THAT(ValidateConfig(config), StatusIs(absl::StatusCode::kOk));
  // An unset listen is the default address.
  config.clear_listen();
  config.set_http_listen(ServerOptions().listen_address);
  EXPECT_EQ(BadRequestField(ValidateConfig(config)), "http_listen");
  // Port 0 picks a free port for each: no collision.
  config.set_listen("127.0.0.1:0");
  config.set_metrics_listen("127.0.0.1:0");
  config.set_health_listen("127.0.0.1:0");
  config.set_http_listen("127.0.0.1:0");
  EXPECT_THAT(ValidateConfig(config), StatusIs(absl::StatusCode::kOk));
  // A unix socket is a valid gRPC listen address.
  TempDir dir;
  ServerOptions unix_socket;
  EXPECT_TRUE((Apply(dir, "unix.textproto", "listen: \"unix:/run/aird/aird.sock\"", &unix_socket)).ok());
}

}  // namespace
}  // namespace air
