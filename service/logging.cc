#include "service/logging.h"

#include <unistd.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace air {
namespace {

// The fields of the event being logged on this thread. spdlog formats
// synchronously on the calling thread (aird uses no async logger), so the
// formatter sees exactly the fields of the LogEvent call in progress.
struct CurrentEvent {
  absl::string_view component;
  const LogFields* fields = nullptr;
};
thread_local CurrentEvent current_event;

constexpr absl::string_view kDefaultComponent = "aird";

std::string FormatTime(const spdlog::details::log_msg& msg) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromChrono(msg.time),
                          absl::UTCTimeZone());
}

absl::string_view LevelName(spdlog::level::level_enum level) {
  const spdlog::string_view_t name = spdlog::level::to_string_view(level);
  return absl::string_view(name.data(), name.size());
}

absl::string_view Payload(const spdlog::details::log_msg& msg) {
  return absl::string_view(msg.payload.data(), msg.payload.size());
}

void Append(spdlog::memory_buf_t& dest, absl::string_view text) {
  dest.append(text.data(), text.data() + text.size());
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const CurrentEvent& event = current_event;
    std::string line = absl::StrCat(
        "{\"time\":\"", FormatTime(msg), "\",\"level\":\"", LevelName(msg.level),
        "\",\"component\":",
        JsonQuote(event.component.empty() ? kDefaultComponent : event.component),
        ",\"msg\":", JsonQuote(Payload(msg)));
    if (event.fields != nullptr) {
      for (const auto& [key, value] : *event.fields) {
        absl::StrAppend(&line, ",", JsonQuote(key), ":", JsonQuote(value));
      }
    }
    line += "}\n";
    Append(dest, line);
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

class TextFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const CurrentEvent& event = current_event;
    std::string line = absl::StrCat(
        FormatTime(msg), " ", LevelName(msg.level), " [",
        event.component.empty() ? kDefaultComponent : event.component, "] ", Payload(msg));
    if (event.fields != nullptr) {
      for (const auto& [key, value] : *event.fields) {
        const bool plain = !value.empty() && value.find_first_of(" \"=\n") == std::string::npos;
        absl::StrAppend(&line, " ", key, "=", plain ? value : JsonQuote(value));
      }
    }
    line += "\n";
    Append(dest, line);
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<TextFormatter>();
  }
};

}  // namespace

std::string JsonQuote(absl::string_view text) {
  std::string out = "\"";
  out.reserve(text.size() + 2);
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          static const char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += "\"";
  return out;
}

absl::StatusOr<LogFormat> ResolveLogFormat(absl::string_view name) {
  if (name == "json") return LogFormat::kJson;
  if (name == "text") return LogFormat::kText;
  if (name == "auto" || name.empty()) {
    return isatty(STDERR_FILENO) ? LogFormat::kText : LogFormat::kJson;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("log format must be auto, text or json, not \"", name, "\""));
}

std::unique_ptr<spdlog::formatter> MakeLogFormatter(LogFormat format) {
  if (format == LogFormat::kJson) return std::make_unique<JsonFormatter>();
  return std::make_unique<TextFormatter>();
}

absl::Status ConfigureLogging(LogFormat format, absl::string_view level) {
  const spdlog::level::level_enum parsed =
      spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(absl::StrCat("unknown log level \"", level, "\""));
  }
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  sink->set_formatter(MakeLogFormatter(format));
  auto logger = std::make_shared<spdlog::logger>("aird", std::move(sink));
  logger->set_level(parsed);
  // Warnings and worse reach the terminal or journal at once.
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
  return absl::OkStatus();
}

void LogEvent(spdlog::level::level_enum level, absl::string_view component,
              absl::string_view message, const LogFields& fields) {
  spdlog::logger* logger = spdlog::default_logger_raw();
  if (!logger->should_log(level)) return;
  const CurrentEvent saved = current_event;
  current_event = CurrentEvent{component, &fields};
  logger->log(level, spdlog::string_view_t(message.data(), message.size()));
  current_event = saved;
}

}  // namespace air
