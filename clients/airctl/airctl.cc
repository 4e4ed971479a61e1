#include "clients/airctl/airctl.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "clients/airctl/command_line.h"
#include "clients/airctl/output.h"
#include "clients/cpp/air_client.h"

namespace air::airctl {
namespace {

using client::AirClient;

// Everything a command needs.
struct Context {
  const ParsedCommandLine& cli;
  const AirClient& client;
  OutputFormat format;
  std::ostream& out;
  std::ostream& err;
};

int UsageError(std::ostream& err, absl::string_view message) {
  err << "airctl: " << message << "\nRun 'airctl --help' for usage.\n";
  return kExitUsage;
}

int RpcError(std::ostream& err, const absl::Status& status) {
  err << "airctl: " << client::FormatError(status) << "\n";
  return kExitRpcError;
}

// A usage error from a flag accessor, or the value.
#define AIRCTL_FLAG_OR_USAGE(lhs, expr)                                    \
  auto lhs##_or = (expr);                                                  \
  if (!lhs##_or.ok()) return UsageError(ctx.err, lhs##_or.status().message()); \
  auto lhs = *std::move(lhs##_or)

absl::StatusOr<int32_t> PageSize(const ParsedCommandLine& cli) {
  absl::StatusOr<int64_t> size = cli.GetInt("page_size", 0);
  if (!size.ok()) return size.status();
  if (*size > std::numeric_limits<int32_t>::max() || *size < std::numeric_limits<int32_t>::min()) {
    return absl::InvalidArgumentError("--page_size is out of range");
  }
  return static_cast<int32_t>(*size);
}

// Filter terms from --state, --type and --investigation.
absl::StatusOr<std::string> ComposeFilter(const ParsedCommandLine& cli,
                                          const google::protobuf::EnumDescriptor* state_enum) {
  std::vector<std::string> terms;
  if (cli.Has("investigation")) {
    terms.push_back(absl::StrCat("investigation_id = ", QuoteFilterValue(cli.Get("investigation"))));
  }
  if (cli.Has("state")) {
    absl::StatusOr<std::string> state = EnumValueName(state_enum, "state", cli.Get("state"));
    if (!state.ok()) return state.status();
    terms.push_back(absl::StrCat("state = ", *state));
  }
  if (cli.Has("type")) {
    absl::StatusOr<std::string> type =
        EnumValueName(v1::ActionType_descriptor(), "type", cli.Get("type"));
    if (!type.ok()) return type.status();
    terms.push_back(absl::StrCat("type = ", *type));
  }
  return JoinFilter(cli.Get("filter"), terms);
}

template <typename Row>
void PrintRows(const Context& ctx, const std::vector<const Row*>& rows,
               std::vector<std::string> (*table_header)(),
               std::vector<std::string> (*table_row)(const Row&, absl::Time),
               std::vector<std::string> (*csv_header)(),
               std::vector<std::string> (*csv_row)(const Row&)) {
  if (ctx.format == OutputFormat::kCsv) {
    ctx.out << CsvRow(csv_header()) << "\n";
    for (const Row* r : rows) ctx.out << CsvRow(csv_row(*r)) << "\n";
    return;
  }
  const absl::Time now = absl::Now();
  Table table(table_header());
  for (const Row* r : rows) table.AddRow(table_row(*r, now));
  table.Print(ctx.out);
}

void PrintInvestigations(const Context& ctx, const std::vector<const v1::Investigation*>& rows) {
  PrintRows<v1::Investigation>(ctx, rows, InvestigationTableHeader, InvestigationTableRow,
                               InvestigationCsvHeader, InvestigationCsvRow);
}

void PrintActions(const Context& ctx, const std::vector<const v1::Action*>& rows) {
  PrintRows<v1::Action>(ctx, rows, ActionTableHeader, ActionTableRow, ActionCsvHeader,
                        ActionCsvRow);
}

void PrintJson(const Context& ctx, const google::protobuf::Message& message) {
  ctx.out << ToJson(message, /*pretty=*/true) << "\n";
}

void HintNextPage(const Context& ctx, const std::string& token) {
  if (token.empty() || ctx.format == OutputFormat::kJson) return;  // JSON carries it
  ctx.err << "airctl: more results: add --page_token=" << token << " or --all\n";
}

// Calls `list` page after page (all of them with --all) and returns the pages
// merged into one response.
template <typename Request, typename Response, typename ListFn, typename MergeFn>
absl::StatusOr<Response> ListPages(Request request, const ListFn& list,
                                   const MergeFn& merge, bool all) {
  Response merged;
  while (true) {
    absl::StatusOr<Response> page = list(request);
    if (!page.ok()) return page.status();
    merge(*page, &merged);
    merged.set_next_page_token(page->next_page_token());
    if (!all || page->next_page_token().empty()) return merged;
    request.set_page_token(page->next_page_token());
  }
}

int InvestigationsList(const Context& ctx) {
  AIRCTL_FLAG_OR_USAGE(filter, ComposeFilter(ctx.cli, v1::Investigation::State_descriptor()));
  AIRCTL_FLAG_OR_USAGE(page_size, PageSize(ctx.cli));
  AIRCTL_FLAG_OR_USAGE(all, ctx.cli.GetBool("all"));
  v1::ListInvestigationsRequest request;
  request.set_filter(filter);
  request.set_order_by(ctx.cli.Get("order_by"));
  request.set_page_size(page_size);
  request.set_page_token(ctx.cli.Get("page_token"));
  absl::StatusOr<v1::ListInvestigationsResponse> response =
      ListPages<v1::ListInvestigationsRequest, v1::ListInvestigationsResponse>(
          request,
          [&](const v1::ListInvestigationsRequest& r) { return ctx.client.ListInvestigations(r); },
          [](const v1::ListInvestigationsResponse& page, v1::ListInvestigationsResponse* into) {
            into->mutable_investigations()->MergeFrom(page.investigations());
          },
          all);
  if (!response.ok()) return RpcError(ctx.err, response.status());
  if (ctx.format == OutputFormat::kJson) {
    PrintJson(ctx, *response);
    return kExitOk;
  }
  std::vector<const v1::Investigation*> rows;
  for (const auto& inv : response->investigations()) rows.push_back(&inv);
  PrintInvestigations(ctx, rows);
  HintNextPage(ctx, response->next_page_token());
  return kExitOk;
}

int InvestigationsGet(const Context& ctx) {
  v1::GetInvestigationRequest request;
  request.set_id(ctx.cli.args[0]);
  absl::StatusOr<v1::GetInvestigationResponse> response = ctx.client.GetInvestigation(request);
  if (!response.ok()) return RpcError(ctx.err, response.status());
  if (ctx.format == OutputFormat::kJson) {
    PrintJson(ctx, *response);
  } else {
    PrintInvestigations(ctx, {&response->investigation()});
  }
  return kExitOk;
}

int ActionsList(const Context& ctx) {
  AIRCTL_FLAG_OR_USAGE(filter, ComposeFilter(ctx.cli, v1::Action::State_descriptor()));
  AIRCTL_FLAG_OR_USAGE(page_size, PageSize(ctx.cli));
  AIRCTL_FLAG_OR_USAGE(all, ctx.cli.GetBool("all"));
  v1::ListActionsRequest request;
  request.set_filter(filter);
  request.set_order_by(ctx.cli.Get("order_by"));
  request.set_page_size(page_size);
  request.set_page_token(ctx.cli.Get("page_token"));
  absl::StatusOr<v1::ListActionsResponse> response =
      ListPages<v1::ListActionsRequest, v1::ListActionsResponse>(
          request,
          [&](const v1::ListActionsRequest& r) { return ctx.client.ListActions(r); },
          [](const v1::ListActionsResponse& page, v1::ListActionsResponse* into) {
            into->mutable_actions()->MergeFrom(page.actions());
          },
          all);
  if (!response.ok()) return RpcError(ctx.err, response.status());
  if (ctx.format == OutputFormat::kJson) {
    PrintJson(ctx, *response);
    return kExitOk;
  }
  std::vector<const v1::Action*> rows;
  for (const auto& action : response->actions()) rows.push_back(&action);
  PrintActions(ctx, rows);
  HintNextPage(ctx, response->next_page_token());
  return kExitOk;
}

int ActionsGet(const Context& ctx) {
  v1::GetActionRequest request;
  request.set_id(ctx.cli.args[0]);
  absl::StatusOr<v1::GetActionResponse> response = ctx.client.GetAction(request);
  if (!response.ok()) return RpcError(ctx.err, response.status());
  if (ctx.format == OutputFormat::kJson) {
    PrintJson(ctx, *response);
  } else {
    PrintActions(ctx, {&response->action()});
  }
  return kExitOk;
}

int ActionsDecide(const Context& ctx, bool approve) {
  const std::vector<std::string>& ids = ctx.cli.args;
  std::vector<std::string> etags;
  if (ctx.cli.Has("etag")) {
    etags = absl::StrSplit(ctx.cli.Get("etag"), ',');
    if (etags.size() != ids.size()) {
      return UsageError(ctx.err, absl::StrCat("--etag needs one etag per ID (", ids.size(),
                                              "), separated by commas"));
    }
  }
  const std::string comment = ctx.cli.Get("comment");
  const std::string request_id = ctx.cli.Get("request_id");

  if (ids.size() == 1) {
    const std::string etag = etags.empty() ? "" : etags[0];
    const v1::Action* action = nullptr;
    absl::StatusOr<v1::ApproveActionResponse> approved;
    absl::StatusOr<v1::RejectActionResponse> rejected;
    const google::protobuf::Message* message = nullptr;
    if (approve) {
      v1::ApproveActionRequest request;
      request.set_id(ids[0]);
      request.set_etag(etag);
      request.set_comment(comment);
      request.set_request_id(request_id);
      approved = ctx.client.ApproveAction(request);
      if (!approved.ok()) return RpcError(ctx.err, approved.status());
      action = &approved->action();
      message = &*approved;
    } else {
      v1::RejectActionRequest request;
      request.set_id(ids[0]);
      request.set_etag(etag);
      request.set_comment(comment);
      request.set_request_id(request_id);
      rejected = ctx.client.RejectAction(request);
      if (!rejected.ok()) return RpcError(ctx.err, rejected.status());
      action = &rejected->action();
      message = &*rejected;
    }
    if (ctx.format == OutputFormat::kJson) {
      PrintJson(ctx, *message);
    } else {
      PrintActions(ctx, {action});
    }
    return kExitOk;
  }

  v1::BatchDecideActionsRequest request;
  for (const std::string& id : ids) request.add_ids(id);
  for (const std::string& etag : etags) request.add_etags(etag);
  request.set_decision(approve ? v1::BATCH_DECISION_APPROVE : v1::BATCH_DECISION_REJECT);
  request.set_comment(comment);
  request.set_request_id(request_id);
  absl::StatusOr<v1::BatchDecideActionsResponse> response = ctx.client.BatchDecideActions(request);
  if (!response.ok()) return RpcError(ctx.err, response.status());
  if (ctx.format == OutputFormat::kJson) {
    PrintJson(ctx, *response);
    return kExitOk;
  }
  std::vector<const v1::Action*> rows;
  for (const auto& action : response->actions()) rows.push_back(&action);
  PrintActions(ctx, rows);
  return kExitOk;
}

int ActionsWatch(const Context& ctx) {
  AIRCTL_FLAG_OR_USAGE(filter, ComposeFilter(ctx.cli, v1::Action::State_descriptor()));
  AIRCTL_FLAG_OR_USAGE(since, ctx.cli.GetInt("since", 0));
  AIRCTL_FLAG_OR_USAGE(initial, ctx.cli.GetBool("initial"));
  AIRCTL_FLAG_OR_USAGE(max_messages, ctx.cli.GetInt("max_messages", 0));
  if (since < 0) return UsageError(ctx.err, "--since takes a sequence >= 0");
  if (max_messages < 0) return UsageError(ctx.err, "--max_messages takes a count >= 0");
  if (initial && since > 0) {
    return UsageError(ctx.err, "--initial starts from a snapshot; it cannot resume --since");
  }
  v1::WatchActionsRequest request;
  request.set_filter(filter);
  request.set_after_sequence(since);
  request.set_initial_snapshot(initial);
  if (ctx.cli.Has("heartbeat")) {
    AIRCTL_FLAG_OR_USAGE(heartbeat, ctx.cli.GetDuration("heartbeat", absl::ZeroDuration()));
    const int64_t nanos = absl::ToInt64Nanoseconds(heartbeat);
    request.mutable_heartbeat_interval()->set_seconds(nanos / 1'000'000'000);
    request.mutable_heartbeat_interval()->set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
  }

  int64_t count = 0;
  bool header_printed = false;  // only once the stream works: errors print nothing
  client::WatchOptions options;
  options.on_reconnect = [&](const absl::Status& error, absl::Duration wait, int64_t after) {
    ctx.err << "airctl: watch: " << client::FormatError(error) << "; reconnecting in "
            << absl::FormatDuration(absl::Trunc(wait, absl::Milliseconds(1)))
            << " after sequence " << after << std::endl;
  };
  absl::Status status = ctx.client.Watch(
      request,
      [&](const v1::WatchActionsResponse& message) {
        if (!header_printed) {
          header_printed = true;
          if (ctx.format == OutputFormat::kTable) ctx.out << WatchTableHeader() << "\n";
          if (ctx.format == OutputFormat::kCsv) ctx.out << CsvRow(WatchCsvHeader()) << "\n";
        }
        switch (ctx.format) {
          case OutputFormat::kTable:
            ctx.out << WatchTableLine(message);
            break;
          case OutputFormat::kJson:
            ctx.out << ToJson(message, /*pretty=*/false);
            break;
          case OutputFormat::kCsv:
            ctx.out << CsvRow(WatchCsvRow(message));
            break;
        }
        ctx.out << std::endl;  // one line per message, visible at once
        return max_messages == 0 || ++count < max_messages;
      },
      options);
  if (!status.ok()) return RpcError(ctx.err, status);
  return kExitOk;
}

// Health first (the exit code follows it), then upstream sync and decision
// delivery when the server reports them (a server without SyncService, or a
// caller without the read permission, gets health alone).
int Status(const Context& ctx) {
  absl::StatusOr<client::HealthStatus> health = ctx.client.CheckHealth(ctx.cli.Get("service"));
  if (!health.ok()) return RpcError(ctx.err, health.status());
  const std::string name(client::HealthStatusName(*health));
  const int exit_code = *health == client::HealthStatus::kServing ? kExitOk : kExitRpcError;
  absl::StatusOr<v1::SyncStatus> sync =
      ctx.cli.Has("service") ? absl::NotFoundError("") : ctx.client.GetSyncStatus();
  const absl::Time now = absl::Now();
  switch (ctx.format) {
    case OutputFormat::kTable: {
      ctx.out << name << "\n";
      if (!sync.ok()) break;
      Table table({"SYNC", "UPSTREAM", "LAG", "BACKLOG", "OLDEST UNDELIVERED", "LAST SYNC",
                   "APPLIED", "DELIVERED", "LAST ERROR"});
      const int64_t lag_seconds = sync->lag().seconds();
      table.AddRow({ShortEnumName(v1::SyncStatus::State_descriptor(), sync->state()),
                    sync->upstream().empty() ? "-" : sync->upstream(),
                    sync->state() == v1::SyncStatus::STATE_DISABLED
                        ? "-"
                        : absl::StrCat(lag_seconds, "s"),
                    absl::StrCat(sync->decision_backlog()),
                    Age(sync->oldest_undelivered_time(), now),
                    Age(sync->last_sync_time(), now), absl::StrCat(sync->records_applied()),
                    absl::StrCat(sync->decisions_delivered()),
                    sync->last_error().empty() ? "-" : sync->last_error()});
      table.Print(ctx.out);
      break;
    }
    case OutputFormat::kJson:
      ctx.out << "{\"status\": \"" << name << "\"";
      if (sync.ok()) ctx.out << ", \"sync\": " << ToJson(*sync, /*pretty=*/false);
      ctx.out << "}\n";
      break;
    case OutputFormat::kCsv:
      ctx.out << "status,sync_state,upstream,lag_seconds,decision_backlog\n" << name;
      if (sync.ok()) {
        ctx.out << "," << ShortEnumName(v1::SyncStatus::State_descriptor(), sync->state())
                << "," << CsvField(sync->upstream()) << "," << sync->lag().seconds() << ","
                << sync->decision_backlog();
      } else {
        ctx.out << ",,,,";
      }
      ctx.out << "\n";
      break;
  }
  return exit_code;
}

// Streams a backup into PATH.partial, then renames it to PATH: PATH is
// either untouched or a complete file whose checksum matched.
int Backup(const Context& ctx, absl::Duration timeout) {
  if (!ctx.cli.Has("to") || ctx.cli.Get("to").empty()) {
    return UsageError(ctx.err, "'backup' needs --to=PATH");
  }
  const std::string path = ctx.cli.Get("to");
  const std::string partial = path + ".partial";
  absl::StatusOr<v1::BackupInfo> info;
  {
    std::ofstream file(partial, std::ios::binary | std::ios::trunc);
    if (!file) return UsageError(ctx.err, absl::StrCat("cannot write ", partial));
    info = ctx.client.BackupDatabase(file, timeout);
    file.close();
    if (info.ok() && !file) info = absl::DataLossError(absl::StrCat("cannot write ", partial));
  }
  if (!info.ok() || std::rename(partial.c_str(), path.c_str()) != 0) {
    std::remove(partial.c_str());
    if (info.ok()) info = absl::DataLossError(absl::StrCat("cannot rename to ", path));
    return RpcError(ctx.err, info.status());
  }
  switch (ctx.format) {
    case OutputFormat::kJson:
      ctx.out << ToJson(*info, /*pretty=*/false) << "\n";
      break;
    case OutputFormat::kCsv:
      ctx.out << "path,size_bytes,event_sequence,action_count\n"
              << CsvRow({path, absl::StrCat(info->size_bytes()),
                         absl::StrCat(info->event_sequence()),
                         absl::StrCat(info->action_count())})
              << "\n";
      break;
    case OutputFormat::kTable:
      ctx.out << "backup written to " << path << ": " << info->size_bytes() << " bytes, "
              << info->action_count() << " actions, events up to sequence "
              << info->event_sequence() << "\n";
      break;
  }
  return kExitOk;
}

}  // namespace

absl::StatusOr<std::string> EnumValueName(const google::protobuf::EnumDescriptor* descriptor,
                                          absl::string_view flag, absl::string_view value) {
  const std::string upper = absl::AsciiStrToUpper(value);
  const std::string zero = descriptor->FindValueByNumber(0)->name();
  const std::string prefix = zero.substr(0, zero.size() - std::string("UNSPECIFIED").size());
  for (const std::string& candidate : {upper, prefix + upper}) {
    const google::protobuf::EnumValueDescriptor* v = descriptor->FindValueByName(candidate);
    if (v != nullptr && v->number() != 0) return v->name();
  }
  std::vector<std::string> valid;
  for (int i = 0; i < descriptor->value_count(); ++i) {
    if (descriptor->value(i)->number() == 0) continue;
    valid.push_back(absl::AsciiStrToLower(descriptor->value(i)->name().substr(prefix.size())));
  }
  return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", value, " is not one of ",
                                                 absl::StrJoin(valid, ", ")));
}

std::string JoinFilter(absl::string_view filter, const std::vector<std::string>& terms) {
  std::vector<std::string> all;
  if (!absl::StripAsciiWhitespace(filter).empty()) {
    all.push_back(std::string(absl::StripAsciiWhitespace(filter)));
  }
  all.insert(all.end(), terms.begin(), terms.end());
  return absl::StrJoin(all, " AND ");
}

std::string QuoteFilterValue(absl::string_view value) {
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

int RunAirctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
              const Environment& env) {
  absl::StatusOr<ParsedCommandLine> parsed = ParseCommandLine(args);
  if (!parsed.ok()) return UsageError(err, parsed.status().message());
  if (parsed->help) {
    out << HelpText();
    return kExitOk;
  }
  const ParsedCommandLine& cli = *parsed;

  client::ClientOptions options;
  options.user_agent = "airctl";
  if (cli.Has("server")) {
    options.target = cli.Get("server");
  } else if (std::optional<std::string> server = env("AIR_SERVER"); server && !server->empty()) {
    options.target = *server;
  }
  if (cli.Has("token")) {
    options.bearer_token = cli.Get("token");
  } else if (std::optional<std::string> token = env("AIR_TOKEN")) {
    options.bearer_token = *token;
  }
  absl::StatusOr<bool> tls = cli.GetBool("tls");
  if (!tls.ok()) return UsageError(err, tls.status().message());
  options.tls.enabled = *tls || cli.Has("ca") || cli.Has("cert") || cli.Has("key");
  options.tls.ca_file = cli.Get("ca");
  options.tls.cert_file = cli.Get("cert");
  options.tls.key_file = cli.Get("key");
  const bool backup = !cli.command->words.empty() && cli.command->words[0] == "backup";
  absl::StatusOr<absl::Duration> timeout =
      cli.GetDuration("timeout", backup ? absl::Hours(1) : absl::Seconds(10));
  if (!timeout.ok()) return UsageError(err, timeout.status().message());
  options.deadline = *timeout;
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(cli.Get("output", "table"));
  if (!format.ok()) return UsageError(err, format.status().message());

  absl::StatusOr<std::unique_ptr<AirClient>> client = AirClient::Create(options);
  if (!client.ok()) return UsageError(err, client.status().message());

  const Context ctx{cli, **client, *format, out, err};
  const std::string command = absl::StrJoin(cli.command->words, " ");
  if (command == "investigations list") return InvestigationsList(ctx);
  if (command == "investigations get") return InvestigationsGet(ctx);
  if (command == "actions list") return ActionsList(ctx);
  if (command == "actions get") return ActionsGet(ctx);
  if (command == "actions approve") return ActionsDecide(ctx, /*approve=*/true);
  if (command == "actions reject") return ActionsDecide(ctx, /*approve=*/false);
  if (command == "actions watch") return ActionsWatch(ctx);
  if (command == "status") return Status(ctx);
  if (command == "backup") return Backup(ctx, *timeout);
  return UsageError(err, absl::StrCat("unknown command '", command, "'"));
}

}  // namespace air::airctl
