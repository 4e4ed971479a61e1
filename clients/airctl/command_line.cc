#include "clients/airctl/command_line.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace air::airctl {
namespace {

const FlagSpec* FindFlag(const std::vector<FlagSpec>& flags, absl::string_view name) {
  for (const FlagSpec& f : flags) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

absl::Status Usage(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

std::string CommandName(const CommandSpec& command) { return absl::StrJoin(command.words, " "); }

}  // namespace

const std::vector<FlagSpec>& GlobalFlags() {
  static const auto* flags = new std::vector<FlagSpec>{
      {"server", "HOST:PORT", "server address (env AIR_SERVER; default 127.0.0.1:50051)"},
      {"output", "FORMAT", "table (default), json or csv; -o is short for --output"},
      {"token", "TOKEN", "bearer token sent as 'authorization: Bearer TOKEN' (env AIR_TOKEN)"},
      {"tls", "", "use TLS with the system's root certificates"},
      {"ca", "FILE", "use TLS; PEM file of the CA that signs the server's certificate"},
      {"cert", "FILE", "use TLS; PEM client certificate chain (with --key)"},
      {"key", "FILE", "use TLS; PEM client private key (with --cert)"},
      {"timeout", "DURATION", "deadline of each call, retries included (default 10s)"},
      {"help", "", "show this help; -h is short for --help"},
  };
  return *flags;
}

const std::vector<FlagSpec>& CommandFlags() {
  static const auto* flags = new std::vector<FlagSpec>{
      {"filter", "EXPR", "AIP-160 filter, e.g. 'state = STATE_PENDING AND type = ACTION_TYPE_BLOCK_URL'"},
      {"order_by", "ORDER", "e.g. 'create_time desc'"},
      {"page_size", "N", "results per page (server default 50, max 1000)"},
      {"page_token", "TOKEN", "continue from a previous page"},
      {"all", "", "follow next_page_token to the last page"},
      {"state", "STATE", "only this state, e.g. pending (adds 'state = STATE_PENDING')"},
      {"type", "TYPE", "only this action type, e.g. block_url"},
      {"investigation", "ID", "only this investigation's actions (adds 'investigation_id = \"ID\"')"},
      {"comment", "TEXT", "justification recorded with the decision"},
      {"etag", "ETAG[,ETAG...]", "decide only if unchanged since read (one etag per ID)"},
      {"request_id", "KEY", "idempotency key: a repeat returns the first result; makes retries safe"},
      {"since", "SEQ", "resume after this event sequence"},
      {"initial", "", "first list the pending actions, then stream changes"},
      {"heartbeat", "DURATION", "bookmark interval while idle (server default 30s)"},
      {"max_messages", "N", "stop after N messages (default: run until interrupted)"},
      {"service", "NAME", "health of this service instead of the whole server"},
      {"to", "PATH", "where to write the backup (replaced only once complete and verified)"},
  };
  return *flags;
}

const std::vector<CommandSpec>& Commands() {
  static const auto* commands = new std::vector<CommandSpec>{
      {{"investigations", "list"}, "", 0, 0,
       {"filter", "state", "order_by", "page_size", "page_token", "all"},
       "list investigations, newest first"},
      {{"investigations", "get"}, "ID", 1, 1, {}, "show one investigation"},
      {{"actions", "list"}, "", 0, 0,
       {"filter", "investigation", "state", "type", "order_by", "page_size", "page_token", "all"},
       "list actions, oldest first"},
      {{"actions", "get"}, "ID", 1, 1, {}, "show one action"},
      {{"actions", "approve"}, "ID [ID...]", 1, -1, {"comment", "etag", "request_id"},
       "approve pending actions (several IDs: one atomic batch of one action type)"},
      {{"actions", "reject"}, "ID [ID...]", 1, -1, {"comment", "etag", "request_id"},
       "reject pending actions (several IDs: one atomic batch of one action type)"},
      {{"actions", "watch"}, "", 0, 0,
       {"since", "filter", "investigation", "state", "type", "initial", "heartbeat",
        "max_messages"},
       "stream changes, one line per message; reconnects and resumes after a restart"},
      {{"status"}, "", 0, 0, {"service"}, "the server's health (exit 0 only if SERVING), then upstream sync and decision delivery"},
      {{"backup"}, "", 0, 0, {"to"},
       "admin: stream a consistent online backup of the database to --to=PATH "
       "(default --timeout 1h)"},
  };
  return *commands;
}

std::string HelpText() {
  std::string text =
      "airctl: list, inspect, approve, reject and watch automated-investigation\n"
      "remediation actions on an aird server.\n\n"
      "Usage: airctl [global flags] COMMAND [flags] [args]\n\nCommands:\n";
  for (const CommandSpec& c : Commands()) {
    std::string usage = CommandName(c);
    if (!c.args_usage.empty()) absl::StrAppend(&usage, " ", c.args_usage);
    for (const std::string& name : c.flags) {
      const FlagSpec* f = FindFlag(CommandFlags(), name);
      absl::StrAppend(&usage, " [--", name, f->value_name.empty() ? "" : "=",
                      f->value_name, "]");
    }
    absl::StrAppend(&text, "  ", usage, "\n      ", c.help, "\n");
  }
  auto describe = [&](const std::vector<FlagSpec>& flags) {
    for (const FlagSpec& f : flags) {
      std::string left = absl::StrCat("--", f.name);
      if (!f.value_name.empty()) absl::StrAppend(&left, "=", f.value_name);
      left.resize(std::max<size_t>(left.size() + 2, 26), ' ');
      absl::StrAppend(&text, "  ", left, f.help, "\n");
    }
  };
  absl::StrAppend(&text, "\nGlobal flags:\n");
  describe(GlobalFlags());
  absl::StrAppend(&text, "\nCommand flags:\n");
  describe(CommandFlags());
  absl::StrAppend(
      &text,
      "\nOutput: table is for people; json prints each response in protobuf's JSON\n"
      "mapping (watch: one JSON object per line); csv has a header row and RFC 4180\n"
      "quoting, and a field starting with = + - @ gets a leading ' so spreadsheets\n"
      "do not run it as a formula.\n"
      "Retries: reads, and decisions with --request_id, are retried on UNAVAILABLE\n"
      "within --timeout. Watch has no deadline; it resumes after the last sequence.\n"
      "Exit status: 0 ok, 1 the server returned an error (printed as\n"
      "'airctl: CODE: message (reason: REASON[, field: FIELD])'), 2 usage error.\n\n"
      "Examples:\n"
      "  airctl investigations list --state=pending_action\n"
      "  airctl actions list --investigation=inv-1001 --state=pending\n"
      "  airctl actions approve act-1001-1 --comment='confirmed phish' --request_id=$(uuidgen)\n"
      "  airctl actions watch --initial --output=json\n");
  return text;
}

std::string ParsedCommandLine::Get(absl::string_view name, absl::string_view fallback) const {
  auto it = flags.find(std::string(name));
  return it == flags.end() ? std::string(fallback) : it->second;
}

absl::StatusOr<bool> ParsedCommandLine::GetBool(absl::string_view name) const {
  auto it = flags.find(std::string(name));
  if (it == flags.end()) return false;
  bool value = false;
  if (!absl::SimpleAtob(it->second, &value)) {
    return Usage(absl::StrCat("--", name, " takes true or false, not '", it->second, "'"));
  }
  return value;
}

absl::StatusOr<int64_t> ParsedCommandLine::GetInt(absl::string_view name,
                                                  int64_t fallback) const {
  auto it = flags.find(std::string(name));
  if (it == flags.end()) return fallback;
  int64_t value = 0;
  if (!absl::SimpleAtoi(it->second, &value)) {
    return Usage(absl::StrCat("--", name, " takes an integer, not '", it->second, "'"));
  }
  return value;
}

absl::StatusOr<absl::Duration> ParsedCommandLine::GetDuration(absl::string_view name,
                                                              absl::Duration fallback) const {
  auto it = flags.find(std::string(name));
  if (it == flags.end()) return fallback;
  absl::Duration value;
  if (!absl::ParseDuration(it->second, &value) || value <= absl::ZeroDuration()) {
    return Usage(absl::StrCat("--", name, " takes a positive duration such as 10s or 500ms, not '",
                              it->second, "'"));
  }
  return value;
}

absl::StatusOr<ParsedCommandLine> ParseCommandLine(const std::vector<std::string>& argv) {
  ParsedCommandLine parsed;
  std::vector<std::string> words;
  bool flags_done = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    std::string arg = argv[i];
    if (flags_done || arg.empty() || arg[0] != '-' || arg == "-") {
      words.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    if (arg == "-h") arg = "--help";
    if (arg == "-o") arg = "--output";
    if (absl::StartsWith(arg, "-o") && !absl::StartsWith(arg, "--")) {
      arg = absl::StrCat("--output=", arg.substr(2));
    }
    if (!absl::StartsWith(arg, "--")) return Usage(absl::StrCat("unknown flag ", arg));
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const FlagSpec* spec = FindFlag(GlobalFlags(), name);
    if (spec == nullptr) spec = FindFlag(CommandFlags(), name);
    if (spec == nullptr) return Usage(absl::StrCat("unknown flag --", name));
    if (!value) {
      if (spec->value_name.empty()) {
        value = "true";
      } else if (i + 1 < argv.size()) {
        value = argv[++i];
      } else {
        return Usage(absl::StrCat("--", name, " needs a value (--", name, "=",
                                  spec->value_name, ")"));
      }
    }
    parsed.flags[name] = *value;
  }

  absl::StatusOr<bool> help = parsed.GetBool("help");
  if (!help.ok()) return help.status();
  if (*help || (!words.empty() && words[0] == "help")) {
    parsed.help = true;
    return parsed;
  }
  if (words.empty()) return Usage("missing command");

  for (const CommandSpec& command : Commands()) {
    if (words.size() < command.words.size() ||
        !std::equal(command.words.begin(), command.words.end(), words.begin())) {
      continue;
    }
    parsed.command = &command;
    parsed.args.assign(words.begin() + command.words.size(), words.end());
    break;
  }
  if (parsed.command == nullptr) {
    return Usage(absl::StrCat("unknown command '", absl::StrJoin(words, " "), "'"));
  }
  const CommandSpec& command = *parsed.command;
  const int n = static_cast<int>(parsed.args.size());
  if (n < command.min_args || (command.max_args >= 0 && n > command.max_args)) {
    return Usage(absl::StrCat(
        "'", CommandName(command), "' takes ",
        command.args_usage.empty() ? std::string("no arguments") : command.args_usage,
        n > 0 ? absl::StrCat(", not '", absl::StrJoin(parsed.args, " "), "'") : ""));
  }
  for (const auto& [name, value] : parsed.flags) {
    if (FindFlag(GlobalFlags(), name) != nullptr) continue;
    if (std::find(command.flags.begin(), command.flags.end(), name) == command.flags.end()) {
      return Usage(absl::StrCat("'", CommandName(command), "' has no flag --", name));
    }
  }
  return parsed;
}

}  // namespace air::airctl
