// Starts a real AirServer on 127.0.0.1:0 with a temp SQLite file and a
// ManualClock, and connects real gRPC stubs to it.
#ifndef AIR_TESTS_SUPPORT_SERVER_FIXTURE_H_
#define AIR_TESTS_SUPPORT_SERVER_FIXTURE_H_

#include <grpcpp/grpcpp.h>

#include <memory>

#include "air/v1/action_service.grpc.pb.h"
#include "air/v1/investigation_service.grpc.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "service/server.h"
#include "tests/support/test_support.h"

namespace air::testing {

inline const absl::Time kTestStart = absl::FromUnixSeconds(1'800'000'000);

class ServerFixture : public ::testing::Test {
 public:
  // A client context with a deadline.
  static std::unique_ptr<grpc::ClientContext> Context(
      absl::Duration timeout = absl::Seconds(10)) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() +
                          absl::ToChronoMilliseconds(timeout));
    return context;
  }

 protected:
  ServerFixture() : clock_(kTestStart) {}

  void SetUp() override { StartServer(); }
  void TearDown() override { server_.reset(); }

  // (Re)starts the server on the same database file.
  void StartServer(bool demo = true) {
    server_.reset();
    ServerOptions options = Options();
    options.demo = demo;
    auto server = AirServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    investigations_ = v1::InvestigationService::NewStub(channel_);
    actions_ = v1::ActionService::NewStub(channel_);
  }

  virtual ServerOptions Options() {
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.db_path = dir_.File("air.db");
    options.housekeeping_interval = absl::ZeroDuration();
    options.clock = &clock_;
    return options;
  }

  TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<AirServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::InvestigationService::Stub> investigations_;
  std::unique_ptr<v1::ActionService::Stub> actions_;
};

// The details a grpc::Status carries.
struct ErrorDetails {
  std::string reason;
  std::map<std::string, std::string> metadata;
  std::string bad_field;
};

inline ErrorDetails DetailsOf(const grpc::Status& status) {
  ErrorDetails out;
  google::rpc::Status rpc;
  if (!rpc.ParseFromString(status.error_details())) return out;
  for (const auto& any : rpc.details()) {
    google::rpc::ErrorInfo info;
    google::rpc::BadRequest bad;
    if (any.UnpackTo(&info)) {
      out.reason = info.reason();
      out.metadata.insert(info.metadata().begin(), info.metadata().end());
    } else if (any.UnpackTo(&bad) && bad.field_violations_size() > 0) {
      out.bad_field = bad.field_violations(0).field();
    }
  }
  return out;
}

}  // namespace air::testing

#endif  // AIR_TESTS_SUPPORT_SERVER_FIXTURE_H_
