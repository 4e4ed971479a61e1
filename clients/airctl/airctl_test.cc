// Unit tests of airctl's parsing and formatting. The commands against a real
// server are covered by tests/e2e.
#include <sstream>

#include "clients/airctl/airctl.h"
#include "clients/airctl/command_line.h"
#include "clients/airctl/output.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace air::airctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(CommandLineTest, ParsesCommandArgsAndFlagsInAnyOrder) {
  absl::StatusOr<ParsedCommandLine> p = ParseCommandLine(
      {"--server=h:1", "actions", "approve", "a-1", "--comment", "ok, go", "a-2", "-o", "json"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(p->command->words, ElementsAre("actions", "approve"));
  EXPECT_THAT(p->args, ElementsAre("a-1", "a-2"));
  EXPECT_EQ(p->Get("server"), "h:1");
  EXPECT_EQ(p->Get("comment"), "ok, go");
  EXPECT_EQ(p->Get("output"), "json");
}

TEST(CommandLineTest, BooleanFlagsAndDoubleDash) {
  absl::StatusOr<ParsedCommandLine> p =
      ParseCommandLine({"investigations", "list", "--all", "--page_size=3"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(*p->GetBool("all"));
  EXPECT_EQ(*p->GetInt("page_size", 0), 3);
  p = ParseCommandLine({"actions", "get", "--", "--odd-id"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(p->args, ElementsAre("--odd-id"));
}

TEST(CommandLineTest, UsageErrors) {
  for (const std::vector<std::string>& argv : std::vector<std::vector<std::string>>{
           {},
           {"actions"},
           {"actions", "frobnicate"},
           {"actions", "get"},
           {"actions", "get", "a", "b"},
           {"actions", "approve"},
           {"actions", "list", "--etag=x"},
           {"actions", "list", "--nope"},
           {"actions", "list", "--filter"},
           {"status", "extra"},
       }) {
    EXPECT_EQ(ParseCommandLine(argv).status().code(), absl::StatusCode::kInvalidArgument)
        << testing::PrintToString(argv);
  }
}

TEST(CommandLineTest, HelpListsEveryCommandAndFlag) {
  absl::StatusOr<ParsedCommandLine> p = ParseCommandLine({"actions", "--help"});
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->help);
  const std::string help = HelpText();
  for (const CommandSpec& c : Commands()) {
    EXPECT_THAT(help, HasSubstr(absl::StrJoin(c.words, " ")));
  }
  for (const FlagSpec& f : GlobalFlags()) EXPECT_THAT(help, HasSubstr("--" + f.name));
  for (const FlagSpec& f : CommandFlags()) EXPECT_THAT(help, HasSubstr("--" + f.name));
}

TEST(OutputTest, CsvQuotingFollowsRfc4180) {
  EXPECT_EQ(CsvField("plain"), "plain");
  EXPECT_EQ(CsvField(""), "");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvField("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(CsvField("cr\r"), "\"cr\r\"");
  EXPECT_EQ(CsvRow({"a", "b,c", ""}), "a,\"b,c\",");
}

TEST(OutputTest, CsvNeutralizesSpreadsheetFormulas) {
  EXPECT_EQ(CsvField("=HYPERLINK(\"http://x\")"), "\"'=HYPERLINK(\"\"http://x\"\")\"");
  EXPECT_EQ(CsvField("+1"), "'+1");
  EXPECT_EQ(CsvField("-cmd"), "'-cmd");
  EXPECT_EQ(CsvField("@SUM(A1)"), "'@SUM(A1)");
  EXPECT_EQ(CsvField("a=b"), "a=b");
}

TEST(OutputTest, ShortEnumNames) {
  EXPECT_EQ(ShortEnumName(v1::Action::State_descriptor(), v1::Action::STATE_PENDING), "PENDING");
  EXPECT_EQ(ShortEnumName(v1::ActionType_descriptor(), v1::ACTION_TYPE_BLOCK_URL), "BLOCK_URL");
  EXPECT_EQ(ShortEnumName(v1::Investigation::State_descriptor(),
                          v1::Investigation::STATE_PENDING_ACTION),
            "PENDING_ACTION");
}

TEST(OutputTest, TableAlignsColumns) {
  Table table({"ID", "STATE"});
  table.AddRow({"act-1001-1", "PENDING"});
  table.AddRow({"a", "APPROVED"});
  std::ostringstream out;
  table.Print(out);
  EXPECT_EQ(out.str(),
            "ID          STATE\n"
            "act-1001-1  PENDING\n"
            "a           APPROVED\n");
}

TEST(OutputTest, Age) {
  google::protobuf::Timestamp t;
  EXPECT_EQ(Age(t, absl::Now()), "-");
  t.set_seconds(1'000'000);
  const absl::Time base = absl::FromUnixSeconds(1'000'000);
  EXPECT_EQ(Age(t, base + absl::Seconds(5)), "5s");
  EXPECT_EQ(Age(t, base + absl::Minutes(30)), "30m");
  EXPECT_EQ(Age(t, base + absl::Hours(5)), "5h");
  EXPECT_EQ(Age(t, base + absl::Hours(24 * 9)), "9d");
  EXPECT_EQ(Age(t, base - absl::Seconds(3)), "0s");
}

TEST(OutputTest, WatchLines) {
  v1::WatchActionsResponse m;
  m.mutable_event()->set_sequence(42);
  m.mutable_event()->set_type(v1::Event::TYPE_ACTION_APPROVED);
  v1::Action* a = m.mutable_event()->mutable_action();
  a->set_id("act-1");
  a->set_investigation_id("inv-1");
  a->set_state(v1::Action::STATE_APPROVED);
  a->set_type(v1::ACTION_TYPE_BLOCK_URL);
  a->mutable_target()->set_identifier("https://x, y");
  a->mutable_decision()->set_outcome(v1::Decision::OUTCOME_APPROVED);
  a->mutable_decision()->set_decider("anonymous");
  EXPECT_EQ(WatchTableLine(m),
            "42      ACTION_APPROVED             act-1        APPROVED             BLOCK_URL "
            "https://x, y [APPROVED by anonymous]");
  EXPECT_EQ(CsvRow(WatchCsvRow(m)),
            "42,event,TYPE_ACTION_APPROVED,action,act-1,inv-1,STATE_APPROVED,"
            "ACTION_TYPE_BLOCK_URL,\"https://x, y\",");
  v1::WatchActionsResponse bookmark;
  bookmark.mutable_bookmark()->set_sequence(7);
  EXPECT_EQ(WatchTableLine(bookmark), "7       BOOKMARK");
  EXPECT_EQ(ToJson(bookmark, false), "{\"bookmark\":{\"sequence\":\"7\"}}");
}

TEST(OutputTest, ActionRows) {
  v1::Action a;
  a.set_id("act-1");
  a.set_state(v1::Action::STATE_PENDING);
  a.set_type(v1::ACTION_TYPE_RESET_PASSWORD);
  a.mutable_target()->set_identifier("j.doe@fabrikam.com");
  a.set_required_approvals(2);
  a.add_approvals()->set_decider("alice");
  const std::vector<std::string> row = ActionTableRow(a, absl::Now());
  ASSERT_EQ(row.size(), ActionTableHeader().size());
  EXPECT_EQ(row[2], "PENDING");
  EXPECT_EQ(row[3], "RESET_PASSWORD");
  EXPECT_EQ(row[5], "1/2 approvals (alice)");
  EXPECT_EQ(row[6], "j.doe@fabrikam.com");
  EXPECT_EQ(ActionCsvRow(a).size(), ActionCsvHeader().size());
  EXPECT_EQ(ActionCsvRow(a).back(), "alice");
  EXPECT_EQ(InvestigationCsvRow(v1::Investigation()).size(), InvestigationCsvHeader().size());
  EXPECT_EQ(InvestigationTableRow(v1::Investigation(), absl::Now()).size(),
            InvestigationTableHeader().size());
}

TEST(AirctlTest, EnumFlagValues) {
  EXPECT_EQ(*EnumValueName(v1::Action::State_descriptor(), "state", "pending"), "STATE_PENDING");
  EXPECT_EQ(*EnumValueName(v1::Action::State_descriptor(), "state", "STATE_REJECTED"),
            "STATE_REJECTED");
  EXPECT_EQ(*EnumValueName(v1::ActionType_descriptor(), "type", "block_url"),
            "ACTION_TYPE_BLOCK_URL");
  absl::StatusOr<std::string> bad =
      EnumValueName(v1::Action::State_descriptor(), "state", "unspecified");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("pending, approved"));
}

TEST(AirctlTest, FilterComposition) {
  EXPECT_EQ(JoinFilter("", {}), "");
  EXPECT_EQ(JoinFilter(" type = ACTION_TYPE_BLOCK_URL ", {"state = STATE_PENDING"}),
            "type = ACTION_TYPE_BLOCK_URL AND state = STATE_PENDING");
  EXPECT_EQ(QuoteFilterValue("inv-1"), "\"inv-1\"");
  EXPECT_EQ(QuoteFilterValue("a\"b\\c"), "\"a\\\"b\\\\c\"");
}

int RunCli(const std::vector<std::string>& args, std::string* out, std::string* err) {
  std::ostringstream o, e;
  int code = RunAirctl(args, o, e, [](const std::string&) { return std::nullopt; });
  *out = o.str();
  *err = e.str();
  return code;
}

TEST(AirctlTest, ExitStatuses) {
  std::string out, err;
  EXPECT_EQ(RunCli({"--help"}, &out, &err), kExitOk);
  EXPECT_THAT(out, HasSubstr("actions approve"));
  EXPECT_EQ(RunCli({"actions", "nope"}, &out, &err), kExitUsage);
  EXPECT_THAT(err, HasSubstr("unknown command"));
  EXPECT_EQ(RunCli({"actions", "list", "--state=bogus"}, &out, &err), kExitUsage);
  EXPECT_EQ(RunCli({"--output=xml", "status"}, &out, &err), kExitUsage);
  EXPECT_EQ(RunCli({"--timeout=soon", "status"}, &out, &err), kExitUsage);
  EXPECT_EQ(RunCli({"actions", "approve", "a", "b", "--etag=x"}, &out, &err), kExitUsage);
  EXPECT_EQ(RunCli({"actions", "watch", "--initial", "--since=3"}, &out, &err), kExitUsage);
  EXPECT_EQ(RunCli({"--ca=/nonexistent.pem", "status"}, &out, &err), kExitUsage);
  // Nothing listens on port 1: an RPC error, printed with its code.
  EXPECT_EQ(RunCli({"--server=127.0.0.1:1", "--timeout=2s", "actions", "get", "a"}, &out, &err),
            kExitRpcError);
  EXPECT_THAT(err, HasSubstr("airctl: UNAVAILABLE: "));
}

}  // namespace
}  // namespace air::airctl
