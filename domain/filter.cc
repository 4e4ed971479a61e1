#include "domain/filter.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "domain/errors.h"
#include "domain/status_macros.h"
#include "domain/validation.h"

namespace air {
namespace {

enum class Op { kEq, kLt, kLe, kGt, kGe };

struct Comparison {
  std::string field;
  Op op;
  std::string value;
};

absl::Status FilterError(absl::string_view description) {
  return InvalidField("filter", description, v1::INVALID_FILTER);
}

bool IsWordChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         c == '-' || c == '.' || c == ':';
}

// Splits `text` into comparisons. Grammar:
//   filter     := [comparison { "AND" comparison }]
//   comparison := word op value
//   op         := "=" | "<" | "<=" | ">" | ">="
//   value      := word | '"' chars '"'    (\" and \\ escapes)
absl::StatusOr<std::vector<Comparison>> Tokenize(absl::string_view text) {
  if (text.size() > kMaxFilterLength) {
    return FilterError(absl::StrCat("is longer than ", kMaxFilterLength, " bytes"));
  }
  if (!IsValidUtf8(text)) return FilterError("is not valid UTF-8");
  std::vector<Comparison> out;
  size_t i = 0;
  auto skip_space = [&] {
    while (i < text.size() && absl::ascii_isspace(static_cast<unsigned char>(text[i]))) ++i;
  };
  auto read_word = [&]() -> std::string {
    const size_t start = i;
    while (i < text.size() && IsWordChar(text[i])) ++i;
    return std::string(text.substr(start, i - start));
  };
  skip_space();
  if (i == text.size()) return out;
  while (true) {
    skip_space();
    Comparison c;
    c.field = read_word();
    if (c.field.empty()) {
      return FilterError(absl::StrCat("expected a field name at offset ", i));
    }
    skip_space();
    if (i >= text.size()) return FilterError(absl::StrCat("expected an operator after ", c.field));
    if (text[i] == '=') {
      c.op = Op::kEq;
      ++i;
    } else if (text[i] == '<' || text[i] == '>') {
      const bool less = text[i] == '<';
      ++i;
      const bool equal = i < text.size() && text[i] == '=';
      if (equal) ++i;
      c.op = less ? (equal ? Op::kLe : Op::kLt) : (equal ? Op::kGe : Op::kGt);
    } else {
      return FilterError(absl::StrCat("unsupported operator at offset ", i,
                                      "; use =, <, <=, > or >="));
    }
    skip_space();
    if (i < text.size() && text[i] == '"') {
      ++i;
      bool closed = false;
      while (i < text.size()) {
        char ch = text[i++];
        if (ch == '\\' && i < text.size()) {
          c.value.push_back(text[i++]);
        } else if (ch == '"') {
          closed = true;
          break;
        } else {
          c.value.push_back(ch);
        }
      }
      if (!closed) return FilterError("unterminated string");
    } else {
      c.value = read_word();
      if (c.value.empty()) {
        return FilterError(absl::StrCat("expected a value for ", c.field));
      }
    }
    out.push_back(std::move(c));
    skip_space();
    if (i == text.size()) break;
    std::string conj = read_word();
    if (conj != "AND") {
      return FilterError(absl::StrCat(
          "expected AND at offset ", i - conj.size(),
          conj.empty() ? "" : absl::StrCat(", found '", conj, "'")));
    }
  }
  return out;
}

template <typename Enum>
absl::StatusOr<Enum> ParseEnum(const Comparison& c,
                               bool (*parse)(const std::string&, Enum*)) {
  if (c.op != Op::kEq) {
    return FilterError(absl::StrCat(c.field, " supports only ="));
  }
  Enum value;
  if (!parse(c.value, &value) || static_cast<int>(value) == 0) {
    return FilterError(absl::StrCat("unknown value '", c.value, "' for ", c.field));
  }
  return value;
}

absl::Status Duplicate(const Comparison& c) {
  return FilterError(absl::StrCat(c.field, " appears more than once"));
}

absl::Status SetTimeBound(const Comparison& c, std::optional<absl::Time>& after,
                          std::optional<absl::Time>& before) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, c.value, &t, &err)) {
    return FilterError(absl::StrCat(c.field, " needs an RFC 3339 time, got '",
                                    c.value, "'"));
  }
  // Store half-open bounds at microsecond precision, the storage precision.
  const absl::Duration tick = absl::Microseconds(1);
  switch (c.op) {
    case Op::kGe:
    case Op::kGt:
      if (after) return Duplicate(c);
      after = c.op == Op::kGe ? t : t + tick;
      return absl::OkStatus();
    case Op::kLt:
    case Op::kLe:
      if (before) return Duplicate(c);
      before = c.op == Op::kLt ? t : t + tick;
      return absl::OkStatus();
    case Op::kEq:
      if (after || before) return Duplicate(c);
      after = t;
      before = t + tick;
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace

bool ActionFilter::Matches(const v1::Action& action) const {
  if (state && action.state() != *state) return false;
  if (type && action.type() != *type) return false;
  if (investigation_id && action.investigation_id() != *investigation_id) {
    return false;
  }
  return true;
}

absl::StatusOr<ActionFilter> ParseActionFilter(absl::string_view text) {
  AIR_ASSIGN_OR_RETURN(std::vector<Comparison> terms, Tokenize(text));
  ActionFilter filter;
  for (const Comparison& c : terms) {
    if (c.field == "state") {
      if (filter.state) return Duplicate(c);
      AIR_ASSIGN_OR_RETURN(filter.state, ParseEnum(c, &v1::Action::State_Parse));
    } else if (c.field == "type") {
      if (filter.type) return Duplicate(c);
      AIR_ASSIGN_OR_RETURN(filter.type, ParseEnum(c, &v1::ActionType_Parse));
    } else if (c.field == "investigation_id") {
      if (filter.investigation_id) return Duplicate(c);
      if (c.op != Op::kEq) return FilterError("investigation_id supports only =");
      if (!ValidateId("filter", c.value).ok()) {
        return FilterError(absl::StrCat("malformed investigation_id '", c.value, "'"));
      }
      filter.investigation_id = c.value;
    } else {
      return FilterError(absl::StrCat(
          "unknown field '", c.field,
          "'; actions filter on state, type and investigation_id"));
    }
  }
  return filter;
}

absl::StatusOr<InvestigationFilter> ParseInvestigationFilter(
    absl::string_view text) {
  AIR_ASSIGN_OR_RETURN(std::vector<Comparison> terms, Tokenize(text));
  InvestigationFilter filter;
  for (const Comparison& c : terms) {
    if (c.field == "state") {
      if (filter.state) return Duplicate(c);
      AIR_ASSIGN_OR_RETURN(filter.state,
                           ParseEnum(c, &v1::Investigation::State_Parse));
    } else if (c.field == "source") {
      if (filter.source) return Duplicate(c);
      AIR_ASSIGN_OR_RETURN(filter.source,
                           ParseEnum(c, &v1::Investigation::Source_Parse));
    } else if (c.field == "verdict") {
      if (filter.verdict) return Duplicate(c);
      AIR_ASSIGN_OR_RETURN(filter.verdict, ParseEnum(c, &v1::Verdict_Parse));
    } else if (c.field == "create_time") {
      AIR_RETURN_IF_ERROR(SetTimeBound(c, filter.create_after, filter.create_before));
    } else if (c.field == "update_time") {
      AIR_RETURN_IF_ERROR(SetTimeBound(c, filter.update_after, filter.update_before));
    } else {
      return FilterError(absl::StrCat(
          "unknown field '", c.field,
          "'; investigations filter on state, source, verdict, create_time "
          "and update_time"));
    }
  }
  return filter;
}

}  // namespace air
