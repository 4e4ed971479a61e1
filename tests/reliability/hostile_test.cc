// Hostile clients (issue 8) against a real aird fed by an air-upstream-sim
// process (so events keep flowing):
//   - oversized messages (> 1 MiB): RESOURCE_EXHAUSTED;
//   - thousands of TCP connections and gRPC channels opened and dropped;
//   - WatchActions streams opened and never read while events flow;
//   - calls with 1 ms deadlines;
//   - invalid UTF-8 in every kind of string field.
// The server must stay up (a normal call succeeds after every phase) and its
// RSS (/proc/<pid>/status VmRSS) must stay bounded.
// Usage: air_hostile_test --aird=PATH --upstream_sim=PATH [--long] [--only=12345]
//          [--deadline_calls=unary|watch|both] [--deadline_ms=1] [--linger=S]
// Known failure (issue 8 report, CTest air_hostile_deadline_leak, disabled):
// after fat events (phase 3), 1 ms-deadline ListActions calls leave about
// one response each in aird's RSS (gRPC 1.51 callback unary path):
//   air_hostile_test --aird=... --only=34 --deadline_calls=unary
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "air/v1/action_service.grpc.pb.h"
#include "tests/reliability/aird_process.h"

namespace air::reliability {
namespace {

using v1::ActionService;

int failures = 0;
#define EXPECT_OR_FAIL(cond, ...)                 \
  do {                                            \
    if (!(cond)) {                                \
      ++failures;                                 \
      std::fprintf(stderr, "FAIL: " __VA_ARGS__); \
    }                                             \
  } while (0)

std::shared_ptr<grpc::Channel> NewChannel(int port) {
  grpc::ChannelArguments args;
  args.SetInt("grpc.use_local_subchannel_pool", 1);  // a connection of its own
  args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials(), args);
}

bool Healthy(int port) {
  auto stub = ActionService::NewStub(NewChannel(port));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::ListActionsRequest req;
  req.set_page_size(10);
  v1::ListActionsResponse resp;
  return stub->ListActions(&ctx, req, &resp).ok();
}

std::string Codes(const std::map<int, int>& m) {
  std::string out;
  for (const auto& [code, n] : m) absl::StrAppend(&out, " code", code, "=", n);
  return out;
}

int Run(int argc, char** argv) {
  const bool long_form = LongForm(argc, argv);
  const std::string aird = Flag(argc, argv, "aird", "");
  const std::string upstream_sim = Flag(argc, argv, "upstream_sim", "");
  if (aird.empty() || upstream_sim.empty()) {
    std::fprintf(stderr, "usage: air_hostile_test --aird=PATH --upstream_sim=PATH [--long]\n");
    return 2;
  }
  const int scale = long_form ? 10 : 1;
  const std::string dir = MakeTempDir();
  UpstreamSimProcess upstream(upstream_sim, dir);
  if (upstream.Start({"--arrival_rate=20"}) <= 0) {
    std::fprintf(stderr, "air-upstream-sim did not start; log %s\n", upstream.log_file().c_str());
    return 2;
  }
  AirdProcess process(aird, dir);
  const int port = process.Start("127.0.0.1:0", dir + "/air.db",
                                 {"--demo", "--upstream=" + upstream.target(),
                                  "--upstream_poll_interval=50ms"});
  if (port <= 0) {
    std::fprintf(stderr, "aird did not start; log %s\n", process.log_file().c_str());
    return 2;
  }
  EXPECT_OR_FAIL(Healthy(port), "not healthy at start\n");
  const long rss_start = RssKiB(process.pid());
  long rss_peak = rss_start;
  auto phase_done = [&](const char* name) {
    const bool up = Healthy(port);
    const long rss = RssKiB(process.pid());
    rss_peak = std::max(rss_peak, rss);
    std::printf("  %-34s server up=%s rss=%ld KiB\n", name, up ? "yes" : "NO", rss);
    EXPECT_OR_FAIL(up, "server not answering after %s\n", name);
  };

  const std::string only = Flag(argc, argv, "only", "12345");
  auto want = [&](char phase) { return only.find(phase) != std::string::npos; };
  // 1. Oversized messages.
  if (want('1')) {
    std::map<int, int> codes;
    auto stub = ActionService::NewStub(NewChannel(port));
    for (int i = 0; i < 5 * scale; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
      v1::ApproveActionRequest req;
      req.set_id("act-1");
      req.set_comment(std::string((1 << 20) + 1000 * i + 1, 'x'));
      v1::ApproveActionResponse resp;
      ++codes[stub->ApproveAction(&ctx, req, &resp).error_code()];
      grpc::ClientContext lctx;
      v1::ListActionsRequest list;
      list.set_filter(std::string(4 << 20, 'y'));
      v1::ListActionsResponse lresp;
      ++codes[stub->ListActions(&lctx, list, &lresp).error_code()];
    }
    EXPECT_OR_FAIL(codes.size() == 1 && codes.count(grpc::StatusCode::RESOURCE_EXHAUSTED),
                   "oversized messages:%s, want only RESOURCE_EXHAUSTED (8)\n", Codes(codes).c_str());
    phase_done(absl::StrCat("oversized messages:", Codes(codes)).c_str());
  }

  // 2. Connections opened and dropped: raw TCP (some with half an HTTP/2
  // preface), then gRPC channels making one call each.
  if (want('2')) {
    int tcp = 0;
    for (int i = 0; i < 2000 * scale; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<uint16_t>(port));
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        ++tcp;
        if (i % 3 == 1) (void)!write(fd, "PRI * HTTP/2.0\r\n", 16);
        if (i % 3 == 2) (void)!write(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
      }
      close(fd);
    }
    int channels_ok = 0;
    for (int i = 0; i < 300 * scale; ++i) channels_ok += Healthy(port) ? 1 : 0;
    EXPECT_OR_FAIL(channels_ok == 300 * scale, "only %d of %d fresh channels were served\n",
                   channels_ok, 300 * scale);
    phase_done(absl::StrCat(tcp, " TCP + ", channels_ok, " channels dropped").c_str());
  }

  // 3. Streams opened and never read while events flow (the simulator
  // creates investigations; deciders approve).
  if (want('3')) {
    const int n = 200 * (long_form ? 5 : 1);
    std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
    std::vector<std::unique_ptr<grpc::ClientReader<v1::WatchActionsResponse>>> readers;
    std::vector<std::unique_ptr<ActionService::Stub>> stubs;
    for (int i = 0; i < n; ++i) {
      stubs.push_back(ActionService::NewStub(NewChannel(port)));
      contexts.push_back(std::make_unique<grpc::ClientContext>());
      v1::WatchActionsRequest req;
      req.set_initial_snapshot(true);
      readers.push_back(stubs.back()->WatchActions(contexts.back().get(), req));
    }
    // Generate events: decide every pending action, repeatedly.
    auto stub = ActionService::NewStub(NewChannel(port));
    int decided = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(long_form ? 60 : 6);
    while (std::chrono::steady_clock::now() < until) {
      grpc::ClientContext lctx;
      v1::ListActionsRequest list;
      list.set_filter("state = STATE_PENDING");
      list.set_page_size(100);
      v1::ListActionsResponse page;
      grpc::Status listed = stub->ListActions(&lctx, list, &page);
      if (!listed.ok()) {
        std::fprintf(stderr, "unread streams: ListActions: %s\n", listed.error_message().c_str());
        break;
      }
      for (const auto& a : page.actions()) {
        grpc::ClientContext ctx;
        v1::RejectActionRequest req;
        req.set_id(a.id());
        req.set_comment(std::string(1000, 'c'));  // fat events (limit 1024)
        v1::RejectActionResponse resp;
        decided += stub->RejectAction(&ctx, req, &resp).ok() ? 1 : 0;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    phase_done(absl::StrCat(n, " unread streams, ", decided, " decisions").c_str());
    for (auto& c : contexts) c->TryCancel();
    for (auto& r : readers) r->Finish();
    EXPECT_OR_FAIL(decided > 0, "no events were generated for the unread streams\n");
  }

  // 4. 1 ms deadlines, unary and streaming, from several threads.
  if (want('4')) {
    std::map<int, int> codes;
    std::mutex mu;
    const int deadline_ms = std::stoi(Flag(argc, argv, "deadline_ms", "1"));
    const std::string kind = Flag(argc, argv, "deadline_calls", "");  // unary|watch|both
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        auto stub = ActionService::NewStub(NewChannel(port));
        for (int i = 0; i < 500 * scale; ++i) {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
          grpc::Status s;
          if (kind == "watch" || ((kind.empty() || kind == "both") && (i + t) % 3 == 0)) {
            v1::WatchActionsRequest req;
            req.set_initial_snapshot(true);
            auto reader = stub->WatchActions(&ctx, req);
            v1::WatchActionsResponse msg;
            while (reader->Read(&msg)) {
            }
            s = reader->Finish();
          } else {
            v1::ListActionsRequest req;
            req.set_page_size(1000);
            v1::ListActionsResponse resp;
            s = stub->ListActions(&ctx, req, &resp);
          }
          std::lock_guard<std::mutex> lock(mu);
          ++codes[s.error_code()];
        }
      });
    }
    for (auto& t : threads) t.join();
    for (const auto& [code, n] : codes) {
      EXPECT_OR_FAIL(code == grpc::StatusCode::OK || code == grpc::StatusCode::DEADLINE_EXCEEDED,
                     "1 ms deadlines: %d calls ended with code %d\n", n, code);
    }
    phase_done(absl::StrCat("1 ms deadlines:", Codes(codes)).c_str());
  }

  // 5. Invalid UTF-8 in string fields.
  if (want('5')) {
    std::map<int, int> codes;
    auto stub = ActionService::NewStub(NewChannel(port));
    const std::vector<std::string> bad = {"\xff", "act-\xc3\x28", "\xed\xa0\x80",
                                          std::string("a\0b", 3), "\xf4\x90\x80\x80",
                                          "\xc0\xaf"};
    for (const std::string& s : bad) {
      {
        grpc::ClientContext ctx;
        v1::ApproveActionRequest req;
        req.set_id(s);
        req.set_comment(s);
        req.set_request_id(s);
        v1::ApproveActionResponse resp;
        ++codes[stub->ApproveAction(&ctx, req, &resp).error_code()];
      }
      {
        grpc::ClientContext ctx;
        v1::GetActionRequest req;
        req.set_id(s);
        v1::GetActionResponse resp;
        ++codes[stub->GetAction(&ctx, req, &resp).error_code()];
      }
      {
        grpc::ClientContext ctx;
        v1::ListActionsRequest req;
        req.set_filter("investigation_id = \"" + s + "\"");
        req.set_page_token(s);
        v1::ListActionsResponse resp;
        ++codes[stub->ListActions(&ctx, req, &resp).error_code()];
      }
      {
        grpc::ClientContext ctx;
        v1::WatchActionsRequest req;
        req.set_filter(s);
        auto reader = stub->WatchActions(&ctx, req);
        v1::WatchActionsResponse msg;
        while (reader->Read(&msg)) {
        }
        ++codes[reader->Finish().error_code()];
      }
    }
    for (const auto& [code, n] : codes) {
      // INVALID_ARGUMENT from aird's validation; UNIMPLEMENTED is what gRPC
      // 1.51's callback server answers when protobuf refuses to parse a
      // proto3 string that is not UTF-8 (reported in issue 8).
      EXPECT_OR_FAIL(code == grpc::StatusCode::INVALID_ARGUMENT ||
                         code == grpc::StatusCode::NOT_FOUND ||
                         code == grpc::StatusCode::UNIMPLEMENTED,
                     "invalid UTF-8: %d calls ended with code %d\n", n, code);
    }
    phase_done(absl::StrCat("invalid UTF-8:", Codes(codes)).c_str());
  }

  // --linger=N: watch the idle server for N seconds (diagnostics).
  for (int i = 0; i < std::stoi(Flag(argc, argv, "linger", "0")); ++i) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::printf("  idle %ds: rss=%ld KiB\n", i + 1, RssKiB(process.pid()));
    std::fflush(stdout);
  }
  const long rss_end = RssKiB(process.pid());
  // Bounded: the peak stays within a fixed budget over the start.
  // (The 1 ms-deadline regression grew it by 860 MB in the short form.)
  // --rss_budget_mb=0 skips the check: under AddressSanitizer RSS measures
  // the sanitizer's quarantine and shadow memory, not aird.
  const long budget_mb = std::stol(Flag(argc, argv, "rss_budget_mb", long_form ? "512" : "192"));
  if (budget_mb > 0) {
    EXPECT_OR_FAIL(rss_peak - rss_start < budget_mb * 1024, "RSS grew from %ld to %ld KiB\n",
                   rss_start, rss_peak);
  }
  process.Kill(SIGTERM);
  const int status = process.Wait(30);
  EXPECT_OR_FAIL(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                 "aird did not exit cleanly after the hostile clients (status %d)\n", status);
  std::printf("hostile test (%s): rss start=%ld KiB peak=%ld KiB end=%ld KiB failures=%d\n",
              long_form ? "long" : "short", rss_start, rss_peak, rss_end, failures);
  if (failures == 0) std::filesystem::remove_all(dir);
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace air::reliability

int main(int argc, char** argv) { return air::reliability::Run(argc, argv); }
