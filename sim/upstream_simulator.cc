#include "sim/upstream_simulator.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "domain/errors.h"
#include "domain/lifecycle.h"
#include "domain/validation.h"

namespace air::sim {
namespace {

using upstream::v1::Change;
using v1::Action;
using v1::Entity;
using v1::Investigation;

constexpr size_t kHistoryCapacity = 1024;
// Most arrivals created by one Advance(), so a clock jump cannot stall calls.
constexpr int kMaxArrivalsPerAdvance = 10000;
constexpr int kMaxRequestIdLength = 200;

// ---- Playbook material: realistic, and drawn from small pools so that the
// same targets recur across investigations. ----

constexpr const char* kPhishSubjects[] = {
    "Invoice 4471 overdue", "Your mailbox is almost full", "Shared document: Q3 bonus plan",
    "Password expiry notice", "DocuSign: please review and sign", "Voicemail from +1 206 555 0142",
    "Unusual sign-in activity", "Payroll update required"};
constexpr const char* kPhishDomains[] = {
    "contoso-payments.co", "login-micros0ft.example.com", "sharepoint-docs.example.net",
    "docu-sign.example.org", "mail-quota.example.info", "hr-portal.example.biz"};
constexpr const char* kPeople[] = {"j.doe", "k.patel", "a.lee", "m.garcia", "s.nguyen",
                                   "r.okafor", "l.rossi", "t.yamada", "e.muller", "c.smith"};
constexpr const char* kRuleNames[] = {"fwd-all", "move-to-rss", "delete-security-alerts",
                                      "external-copy", "mark-as-read"};
constexpr const char* kMalwareNames[] = {"Trojan:Win32/Emotet", "Backdoor:Win32/Qakbot",
                                         "Ransom:Win32/LockBit", "Trojan:Win64/IcedID",
                                         "HackTool:Win32/Mimikatz"};

template <size_t N>
const char* Pick(const char* const (&list)[N], int index) {
  return list[static_cast<size_t>(index) % N];
}

std::string Person(int i) { return absl::StrCat(Pick(kPeople, i), i, "@fabrikam.com"); }

std::string FailureReason(v1::ActionType type, int target) {
  switch (type) {
    case v1::ACTION_TYPE_SOFT_DELETE_EMAIL:
      return "some messages of the cluster were already moved by their owners";
    case v1::ACTION_TYPE_BLOCK_URL:
      return "the tenant block list is full (limit 500 URLs)";
    case v1::ACTION_TYPE_TURN_OFF_EXTERNAL_FORWARDING:
    case v1::ACTION_TYPE_REMOVE_INBOX_RULE:
      return absl::StrCat("mailbox ", Person(target), " is on litigation hold");
    case v1::ACTION_TYPE_RESET_PASSWORD:
      return "password reset refused: the account is synchronised from on-premises AD";
    case v1::ACTION_TYPE_QUARANTINE_FILE:
      return "the file is no longer present on the device";
    case v1::ACTION_TYPE_ISOLATE_DEVICE:
      return absl::StrFormat("device WS-%04d is offline; isolation not confirmed",
                             1000 + target);
    default:
      return "the remediation timed out";
  }
}

struct PlannedAction {
  v1::ActionType type;
  Entity::Kind kind;
  std::string identifier;
  std::string display_name;
};

struct Story {
  std::string title;
  Investigation::Source source;
  v1::Verdict verdict;
  std::vector<PlannedAction> actions;
};

Story MakeStory(Playbook playbook, int t) {
  Story s;
  switch (playbook) {
    case Playbook::kPhish: {
      const std::string subject = Pick(kPhishSubjects, t);
      const std::string domain = Pick(kPhishDomains, t);
      s.title = absl::StrCat("User-reported phish: \"", subject, "\" from billing@", domain);
      s.source = Investigation::SOURCE_USER_REPORTED;
      s.verdict = v1::VERDICT_MALICIOUS;
      s.actions = {
          {v1::ACTION_TYPE_SOFT_DELETE_EMAIL, Entity::KIND_MESSAGE_CLUSTER,
           absl::StrCat("cluster:subject=\"", subject, "\";sender=billing@", domain, ";wave=", t),
           absl::StrCat("Email cluster: ", 3 + t % 40, " messages in ", 2 + t % 30, " mailboxes")},
          {v1::ACTION_TYPE_BLOCK_URL, Entity::KIND_URL,
           absl::StrCat("https://", domain, "/l/", t), absl::StrCat(domain, "/l/", t)}};
      break;
    }
    case Playbook::kCompromisedMailbox: {
      const std::string user = Person(t);
      const std::string rule = Pick(kRuleNames, t);
      s.title = absl::StrCat("Compromised mailbox: ", user, " forwards to an external address");
      s.source = Investigation::SOURCE_ALERT;
      s.verdict = v1::VERDICT_MALICIOUS;
      s.actions = {
          {v1::ACTION_TYPE_TURN_OFF_EXTERNAL_FORWARDING, Entity::KIND_MAILBOX, user,
           absl::StrCat("Mailbox ", user)},
          {v1::ACTION_TYPE_REMOVE_INBOX_RULE, Entity::KIND_MAILBOX_RULE,
           absl::StrCat(user, "/rules/", rule), absl::StrCat("Inbox rule \"", rule, "\"")},
          {v1::ACTION_TYPE_RESET_PASSWORD, Entity::KIND_USER, user,
           absl::StrCat("User ", user)}};
      break;
    }
    case Playbook::kMalware: {
      const std::string device = absl::StrFormat("WS-%04d", 1000 + t);
      const std::string malware = Pick(kMalwareNames, t);
      s.title = absl::StrCat("Malware detected on device ", device, " (", malware, ")");
      s.source = Investigation::SOURCE_ALERT;
      s.verdict = t % 5 == 0 ? v1::VERDICT_SUSPICIOUS : v1::VERDICT_MALICIOUS;
      s.actions = {
          {v1::ACTION_TYPE_QUARANTINE_FILE, Entity::KIND_FILE,
           absl::StrFormat("sha256:%016x%016x%016x%016x", 0x9f86d081884c7d65ULL * (t + 1),
                           0x9a2feaa0c55ad015ULL ^ t, 0xa3bf4f1b2b0b822cULL + t,
                           0xd15d6c15b0f00a08ULL),
           absl::StrCat("C:\\Users\\", Pick(kPeople, t), "\\AppData\\Local\\Temp\\inv", t,
                        ".exe")},
          {v1::ACTION_TYPE_ISOLATE_DEVICE, Entity::KIND_DEVICE,
           absl::StrCat("device:", absl::AsciiStrToLower(device)), device}};
      break;
    }
    case Playbook::kClean:
      s.source = t % 2 == 0 ? Investigation::SOURCE_USER_REPORTED : Investigation::SOURCE_ALERT;
      s.title = s.source == Investigation::SOURCE_USER_REPORTED
                    ? absl::StrCat("User-reported message \"", Pick(kPhishSubjects, t + 3),
                                   "\": clean")
                    : absl::StrCat("Anomalous sign-in for ", Person(t), ": benign");
      s.verdict = v1::VERDICT_CLEAN;
      break;
  }
  return s;
}

std::string TargetKey(const upstream::v1::Action& a) {
  return absl::StrCat(static_cast<int>(a.type()), ":", a.target().identifier());
}

}  // namespace

struct UpstreamSimulator::InvestigationRecord {
  upstream::v1::Investigation record;
  // Tracks action counts with the domain's own rules, so the upstream's
  // investigation status follows its actions the way aird derives it.
  Investigation holder;
  Playbook playbook;
  int target_index;
};

struct UpstreamSimulator::ActionRecord {
  upstream::v1::Action record;
};

UpstreamSimulator::UpstreamSimulator(SimulatorOptions options, const Clock* clock)
    : options_(std::move(options)),
      clock_(clock != nullptr ? clock : SystemClock::Get()),
      instance_(!options_.instance.empty()
                    ? options_.instance
                    : absl::StrFormat("%04x", std::random_device{}() & 0xffff)),
      faults_(options_.faults),
      random_(options_.seed),
      last_advance_(clock_->Now()) {}

UpstreamSimulator::~UpstreamSimulator() = default;

// ---------------------------------------------------------------------------
// Faults

bool UpstreamSimulator::RollLocked(double probability) {
  if (probability <= 0) return false;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  return unit(random_) < probability;
}

absl::Status UpstreamSimulator::CheckAvailableLocked(absl::Time now) {
  std::string why;
  if (down_) {
    why = "the upstream is down";
  } else if (now < crashed_until_) {
    why = "the upstream is restarting after a crash";
  } else if (faults_.outage_every > absl::ZeroDuration() &&
             faults_.outage_duration > absl::ZeroDuration()) {
    absl::Duration phase;
    absl::IDivDuration(now - absl::UnixEpoch(), faults_.outage_every, &phase);
    if (phase < faults_.outage_duration) why = "the upstream is in a scheduled outage";
  }
  if (why.empty() && RollLocked(faults_.error_rate)) why = "injected error";
  if (why.empty()) return absl::OkStatus();
  ++stats_.injected_failures;
  return MakeError(absl::StatusCode::kUnavailable, absl::StrCat("upstream simulator: ", why),
                   upstream::v1::UPSTREAM_UNAVAILABLE);
}

void UpstreamSimulator::SetFaults(const SimulatorFaults& faults) {
  absl::MutexLock lock(&mu_);
  faults_ = faults;
}

SimulatorFaults UpstreamSimulator::faults() const {
  absl::MutexLock lock(&mu_);
  return faults_;
}

void UpstreamSimulator::SetDown(bool down) {
  absl::MutexLock lock(&mu_);
  down_ = down;
}

void UpstreamSimulator::Crash(absl::Duration downtime) {
  absl::MutexLock lock(&mu_);
  crashed_until_ = clock_->Now() + downtime;
}

// ---------------------------------------------------------------------------
// The story

void UpstreamSimulator::ScheduleLocked(absl::Time at, Due what, const std::string& id) {
  schedule_.push_back(Scheduled{at, next_order_++, what, id});
  std::push_heap(schedule_.begin(), schedule_.end(), std::greater<>());
}

void UpstreamSimulator::Advance() {
  absl::MutexLock lock(&mu_);
  AdvanceLocked(clock_->Now());
}

void UpstreamSimulator::AdvanceLocked(absl::Time now) {
  if (now > last_advance_) {
    if (options_.arrival_rate > 0) {
      owed_arrivals_ += options_.arrival_rate * absl::ToDoubleSeconds(now - last_advance_);
      const int due = static_cast<int>(
          std::min<double>(std::floor(owed_arrivals_), kMaxArrivalsPerAdvance));
      owed_arrivals_ = std::min(owed_arrivals_ - due, 1.0);
      std::uniform_int_distribution<int> target(0, std::max(options_.target_pool, 1) - 1);
      std::uniform_real_distribution<double> unit(0.0, 1.0);
      for (int i = 0; i < due; ++i) {
        const double r = unit(random_);
        Playbook playbook = Playbook::kClean;
        if (r >= options_.clean_fraction) {
          const double threat = (r - options_.clean_fraction) / (1 - options_.clean_fraction);
          playbook = threat < 0.4   ? Playbook::kPhish
                     : threat < 0.7 ? Playbook::kCompromisedMailbox
                                    : Playbook::kMalware;
        }
        StartInvestigationLocked(playbook, target(random_), now);
      }
    }
    last_advance_ = now;
  }
  while (!schedule_.empty() && schedule_.front().at <= now) {
    std::pop_heap(schedule_.begin(), schedule_.end(), std::greater<>());
    Scheduled next = std::move(schedule_.back());
    schedule_.pop_back();
    if (next.what == Due::kAnalysis) {
      AnalyseLocked(next.id, next.at);
      continue;
    }
    auto it = actions_.find(next.id);
    if (it == actions_.end()) continue;
    ActionRecord& action = *it->second;
    const Action::State state = action.record.state();
    switch (next.what) {
      case Due::kRun:
        if (state != Action::STATE_APPROVED) break;
        {
          ++stats_.executions;
          const std::string key = TargetKey(action.record);
          auto last = last_execution_.find(key);
          if (last != last_execution_.end() && next.at - last->second < absl::Hours(1)) {
            ++stats_.repeated_executions;
          }
          last_execution_[key] = next.at;
        }
        SetActionStateLocked(action, Action::STATE_RUNNING, next.at);
        ScheduleLocked(next.at + options_.run_duration, Due::kFinish, next.id);
        break;
      case Due::kFinish:
        if (state != Action::STATE_RUNNING) break;
        SetActionStateLocked(action,
                             RollLocked(options_.failure_rate) ? Action::STATE_FAILED
                                                               : Action::STATE_COMPLETED,
                             next.at);
        break;
      case Due::kExpire:
        if (state == Action::STATE_PENDING) {
          SetActionStateLocked(action, Action::STATE_EXPIRED, next.at);
        }
        break;
      case Due::kAnalysis:
        break;
    }
  }
}

std::vector<std::string> UpstreamSimulator::CreateInvestigations(int count) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  std::vector<std::string> ids;
  ids.reserve(count);
  std::uniform_int_distribution<int> target(0, std::max(options_.target_pool, 1) - 1);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int i = 0; i < count; ++i) {
    const double r = unit(random_);
    Playbook playbook = Playbook::kClean;
    if (r >= options_.clean_fraction) {
      const double threat = (r - options_.clean_fraction) / (1 - options_.clean_fraction);
      playbook = threat < 0.4   ? Playbook::kPhish
                 : threat < 0.7 ? Playbook::kCompromisedMailbox
                                : Playbook::kMalware;
    }
    ids.push_back(StartInvestigationLocked(playbook, target(random_), now));
  }
  AdvanceLocked(now);
  return ids;
}

std::string UpstreamSimulator::CreateInvestigation(Playbook playbook, int target_index) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  std::string id = StartInvestigationLocked(playbook, target_index, now);
  AdvanceLocked(now);
  return id;
}

std::string UpstreamSimulator::StartInvestigationLocked(Playbook playbook, int target_index,
                                                        absl::Time now) {
  const std::string id =
      absl::StrFormat("sim%s-inv-%06d", instance_, next_investigation_++);
  const Story story = MakeStory(playbook, target_index);
  auto inv = std::make_unique<InvestigationRecord>();
  inv->playbook = playbook;
  inv->target_index = target_index;
  inv->record.set_id(id);
  inv->record.set_display_name(story.title);
  inv->record.set_source(story.source);
  inv->record.set_verdict(v1::VERDICT_UNSPECIFIED);  // reached during analysis
  inv->record.set_state(Investigation::STATE_STARTING);
  SetTimestamp(now, inv->record.mutable_create_time());
  inv->holder.set_id(id);
  inv->holder.set_state(Investigation::STATE_STARTING);
  InvestigationRecord& ref = *inv;
  investigations_[id] = std::move(inv);
  ++stats_.investigations;
  LogInvestigationLocked(ref, now);
  ScheduleLocked(now + options_.analysis_delay, Due::kAnalysis, id);
  return id;
}

void UpstreamSimulator::AnalyseLocked(const std::string& id, absl::Time now) {
  auto it = investigations_.find(id);
  if (it == investigations_.end()) return;
  InvestigationRecord& inv = *it->second;
  const Story story = MakeStory(inv.playbook, inv.target_index);
  inv.record.set_verdict(story.verdict);
  if (story.actions.empty()) {
    inv.holder.set_state(Investigation::STATE_NO_THREATS_FOUND);
    inv.record.set_state(Investigation::STATE_NO_THREATS_FOUND);
    LogInvestigationLocked(inv, now);
    return;
  }
  inv.holder.set_state(Investigation::STATE_RUNNING);
  inv.record.set_state(Investigation::STATE_RUNNING);
  LogInvestigationLocked(inv, now);
  int k = 0;
  for (const PlannedAction& planned : story.actions) {
    auto action = std::make_unique<ActionRecord>();
    upstream::v1::Action& a = action->record;
    a.set_id(absl::StrCat(id, "-a", ++k));
    a.set_investigation_id(id);
    a.set_type(planned.type);
    a.mutable_target()->set_kind(planned.kind);
    a.mutable_target()->set_identifier(planned.identifier);
    a.mutable_target()->set_display_name(planned.display_name);
    a.set_verdict(story.verdict);
    a.set_state(Action::STATE_UNSPECIFIED);
    SetTimestamp(now, a.mutable_create_time());
    SetTimestamp(now + options_.action_ttl, a.mutable_expire_time());
    ActionRecord& ref = *action;
    actions_[a.id()] = std::move(action);
    ++stats_.actions;
    SetActionStateLocked(ref, Action::STATE_PENDING, now);
    ScheduleLocked(now + options_.action_ttl, Due::kExpire, ref.record.id());
  }
}

void UpstreamSimulator::SetActionStateLocked(ActionRecord& action, Action::State to,
                                             absl::Time now) {
  const Action::State from = action.record.state();
  action.record.set_state(to);
  if (to == Action::STATE_FAILED) {
    auto inv_it = investigations_.find(action.record.investigation_id());
    const int t = inv_it != investigations_.end() ? inv_it->second->target_index : 0;
    action.record.set_failure_reason(FailureReason(action.record.type(), t));
  }
  LogActionLocked(action, now);
  auto it = investigations_.find(action.record.investigation_id());
  if (it == investigations_.end()) return;
  InvestigationRecord& inv = *it->second;
  if (ApplyActionChange(from, to, now, inv.holder) ||
      inv.record.state() != inv.holder.state()) {
    inv.record.set_state(inv.holder.state());
    LogInvestigationLocked(inv, now);
  }
}

absl::Status UpstreamSimulator::ApplyDecisionLocked(ActionRecord& action, bool approve,
                                                    const std::string& duplicate_of,
                                                    absl::Time now) {
  if (action.record.state() != Action::STATE_PENDING) {
    const std::string state = Action::State_Name(action.record.state());
    return MakeError(absl::StatusCode::kFailedPrecondition,
                     absl::StrCat("action ", action.record.id(), " is ", state,
                                  ", not STATE_PENDING"),
                     upstream::v1::ACTION_NOT_PENDING, {{"state", state}});
  }
  ++decisions_per_action_[action.record.id()];
  if (!approve) {
    SetActionStateLocked(action, Action::STATE_REJECTED, now);
    return absl::OkStatus();
  }
  SetActionStateLocked(action, Action::STATE_APPROVED, now);
  if (!duplicate_of.empty()) {
    // The same target was remediated within the hour: record the approval,
    // do not run it again.
    SetActionStateLocked(action, Action::STATE_COMPLETED, now);
  } else {
    ScheduleLocked(now + options_.execution_delay, Due::kRun, action.record.id());
  }
  return absl::OkStatus();
}

absl::Status UpstreamSimulator::DecideInConsole(const std::string& action_id, bool approve,
                                                const std::string& decider) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  AdvanceLocked(now);
  auto it = actions_.find(action_id);
  if (it == actions_.end()) {
    return absl::NotFoundError(absl::StrCat("action ", action_id, " not found"));
  }
  it->second->record.set_decided_by(decider);
  return ApplyDecisionLocked(*it->second, approve, "", now);
}

absl::Status UpstreamSimulator::Cancel(const std::string& action_id) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  auto it = actions_.find(action_id);
  if (it == actions_.end()) {
    return absl::NotFoundError(absl::StrCat("action ", action_id, " not found"));
  }
  const Action::State state = it->second->record.state();
  if (state != Action::STATE_PENDING && state != Action::STATE_APPROVED) {
    return absl::FailedPreconditionError("only pending or approved actions can be cancelled");
  }
  SetActionStateLocked(*it->second, Action::STATE_CANCELLED, now);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// The change log

void UpstreamSimulator::LogInvestigationLocked(InvestigationRecord& inv, absl::Time now) {
  inv.record.set_version(inv.record.version() + 1);
  SetTimestamp(now, inv.record.mutable_update_time());
  Change change;
  *change.mutable_investigation() = inv.record;
  AppendLogLocked(std::move(change), absl::StrCat("i:", inv.record.id()));
}

void UpstreamSimulator::LogActionLocked(ActionRecord& action, absl::Time now) {
  action.record.set_version(action.record.version() + 1);
  SetTimestamp(now, action.record.mutable_update_time());
  Change change;
  *change.mutable_action() = action.record;
  AppendLogLocked(std::move(change), absl::StrCat("a:", action.record.id()));
}

void UpstreamSimulator::AppendLogLocked(Change change, const std::string& key) {
  const int64_t seq = next_seq_++;
  // Every fourth snapshot is kept for the replay fault; by the time it is
  // replayed it is usually stale.
  if (seq % 4 == 0) {
    if (history_.size() < kHistoryCapacity) {
      history_.push_back(change);
    } else {
      history_[history_next_++ % kHistoryCapacity] = change;
    }
  }
  latest_seq_[key] = seq;
  log_.push_back(LogEntry{seq, std::move(change)});
  if (log_.size() >= compact_at_) CompactLogLocked();
}

// Drops entries superseded by a later entry of the same record. A reader at
// any cursor still receives the latest version of everything changed after
// it, which is all the contract promises.
void UpstreamSimulator::CompactLogLocked() {
  auto key_of = [](const Change& c) {
    if (c.has_action()) return absl::StrCat("a:", c.action().id());
    if (c.has_investigation()) return absl::StrCat("i:", c.investigation().id());
    return std::string();
  };
  std::vector<LogEntry> kept;
  kept.reserve(latest_seq_.size());
  for (LogEntry& entry : log_) {
    const std::string key = key_of(entry.change);
    auto it = key.empty() ? latest_seq_.end() : latest_seq_.find(key);
    if (it == latest_seq_.end() || it->second == entry.seq) kept.push_back(std::move(entry));
  }
  log_ = std::move(kept);
  compact_at_ = std::max<size_t>(200000, log_.size() * 2);
}

Change UpstreamSimulator::MalformedChangeLocked() {
  const int kind = malformed_kind_++ % 5;
  const int64_t n = malformed_kind_;
  Change change;
  auto good_action = [&](upstream::v1::Action* a, const std::string& id) {
    a->set_id(id);
    a->set_version(1);
    a->set_investigation_id("malformed-inv");
    a->set_type(v1::ACTION_TYPE_BLOCK_URL);
    a->set_state(Action::STATE_PENDING);
    a->mutable_target()->set_kind(Entity::KIND_URL);
    a->mutable_target()->set_identifier("https://malformed.example.com/");
  };
  switch (kind) {
    case 0:  // missing id
      good_action(change.mutable_action(), "");
      break;
    case 1:  // unknown enum value
      good_action(change.mutable_action(), absl::StrCat("sim", instance_, "-bad-enum-", n));
      change.mutable_action()->set_type(static_cast<v1::ActionType>(999));
      break;
    case 2: {  // over-long field
      upstream::v1::Investigation* inv = change.mutable_investigation();
      inv->set_id(absl::StrCat("sim", instance_, "-bad-long-", n));
      inv->set_version(1);
      inv->set_state(Investigation::STATE_RUNNING);
      inv->set_display_name(std::string(600, 'x'));
      break;
    }
    case 3:  // over-long target identifier
      good_action(change.mutable_action(), absl::StrCat("sim", instance_, "-bad-target-", n));
      change.mutable_action()->mutable_target()->set_identifier(std::string(3000, 'y'));
      break;
    default:  // no record at all
      break;
  }
  ++stats_.malformed_sent;
  return change;
}

void UpstreamSimulator::InjectMalformed() {
  absl::MutexLock lock(&mu_);
  Change change = MalformedChangeLocked();
  AppendLogLocked(std::move(change), absl::StrCat("m:", malformed_kind_));
}

std::string UpstreamSimulator::EncodeCursor(int64_t seq) const {
  return absl::StrCat("c1.", instance_, ".", seq);
}

absl::StatusOr<int64_t> UpstreamSimulator::DecodeCursor(absl::string_view cursor) const {
  if (cursor.empty()) return 0;
  std::vector<absl::string_view> parts = absl::StrSplit(cursor, '.');
  int64_t seq = 0;
  if (parts.size() != 3 || parts[0] != "c1" || !absl::SimpleAtoi(parts[2], &seq) || seq < 0) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     "the cursor was not issued by this upstream", upstream::v1::INVALID_CURSOR);
  }
  if (parts[1] != instance_) {
    return MakeError(absl::StatusCode::kOutOfRange,
                     "the cursor belongs to another upstream instance; start again "
                     "from an empty cursor",
                     upstream::v1::CURSOR_EXPIRED);
  }
  return seq;
}

// ---------------------------------------------------------------------------
// The RPCs

absl::StatusOr<upstream::v1::ListChangesResponse> UpstreamSimulator::ListChanges(
    const upstream::v1::ListChangesRequest& request) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  ++stats_.list_calls;
  if (absl::Status s = CheckAvailableLocked(now); !s.ok()) return s;
  if (request.page_size() < 0) {
    return InvalidField("page_size", "must not be negative", upstream::v1::INVALID_PAGE_SIZE);
  }
  absl::StatusOr<int64_t> after = DecodeCursor(request.cursor());
  if (!after.ok()) return after.status();
  if (*after >= next_seq_) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     "the cursor is ahead of this upstream's log", upstream::v1::INVALID_CURSOR);
  }
  AdvanceLocked(now);

  const int size = request.page_size() == 0
                       ? options_.default_page_size
                       : std::min(request.page_size(), options_.max_page_size);
  auto first = std::upper_bound(log_.begin(), log_.end(), *after,
                                [](int64_t seq, const LogEntry& e) { return seq < e.seq; });
  const size_t available = static_cast<size_t>(log_.end() - first);
  const size_t take = std::min<size_t>(available, static_cast<size_t>(size));

  upstream::v1::ListChangesResponse response;
  int64_t next = *after;
  std::vector<const Change*> page;
  page.reserve(take);
  for (size_t i = 0; i < take; ++i) page.push_back(&(first + i)->change);
  if (take > 0) next = (first + take - 1)->seq;
  bool has_more = take < available;

  // Faults that change what the page carries.
  if (take >= 2 && RollLocked(faults_.duplicate_rate)) {
    next = (first + take / 2 - 1)->seq;  // the second half comes again
    has_more = true;
  }
  for (const Change* change : page) {
    *response.add_changes() = *change;
    if (RollLocked(faults_.duplicate_rate)) *response.add_changes() = *change;
    if (!history_.empty() && RollLocked(faults_.replay_rate)) {
      std::uniform_int_distribution<size_t> pick(0, history_.size() - 1);
      *response.add_changes() = history_[pick(random_)];
    }
  }
  if (RollLocked(faults_.malformed_rate)) *response.add_changes() = MalformedChangeLocked();
  if (faults_.reorder) {
    auto* changes = response.mutable_changes();
    for (int i = changes->size() - 1; i > 0; --i) {
      std::uniform_int_distribution<int> pick(0, i);
      changes->SwapElements(i, pick(random_));
    }
  }
  response.set_next_cursor(EncodeCursor(next));
  response.set_has_more(has_more);
  if (take > 0) {
    const Change& last = (first + take - 1)->change;
    *response.mutable_head_time() = last.has_action() ? last.action().update_time()
                                                      : last.investigation().update_time();
  } else {
    SetTimestamp(now, response.mutable_head_time());
  }
  if (RollLocked(faults_.lost_reply_rate)) {
    ++stats_.injected_failures;
    return MakeError(absl::StatusCode::kUnavailable, "upstream simulator: reply lost",
                     upstream::v1::UPSTREAM_UNAVAILABLE);
  }
  return response;
}

absl::StatusOr<upstream::v1::SubmitDecisionResponse> UpstreamSimulator::SubmitDecision(
    const upstream::v1::SubmitDecisionRequest& request) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  ++stats_.submit_calls;
  if (absl::Status s = CheckAvailableLocked(now); !s.ok()) return s;
  AdvanceLocked(now);

  const std::string& rid = request.request_id();
  bool rid_ok = !rid.empty() && rid.size() <= kMaxRequestIdLength;
  for (char c : rid) {
    rid_ok = rid_ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
                        c == '_' || c == '-');
  }
  if (!rid_ok) {
    return InvalidField("request_id", "must be 1 to 200 characters of [A-Za-z0-9._-]",
                        upstream::v1::INVALID_REQUEST_ID);
  }
  if (request.outcome() != v1::Decision::OUTCOME_APPROVED &&
      request.outcome() != v1::Decision::OUTCOME_REJECTED) {
    return InvalidField("outcome", "must be OUTCOME_APPROVED or OUTCOME_REJECTED",
                        upstream::v1::INVALID_OUTCOME);
  }
  const std::string fingerprint = absl::StrCat(request.action_id(), "|", request.outcome(),
                                               "|", request.duplicate_of());
  if (auto seen = requests_.find(rid); seen != requests_.end()) {
    if (seen->second.fingerprint != fingerprint) {
      return InvalidField("request_id", "was already used for a different decision",
                          upstream::v1::REQUEST_ID_REUSED);
    }
    ++stats_.duplicate_requests;
    return seen->second.response;
  }
  auto it = actions_.find(request.action_id());
  if (it == actions_.end()) {
    return MakeError(absl::StatusCode::kNotFound,
                     absl::StrCat("action ", request.action_id(), " not found"),
                     upstream::v1::ACTION_NOT_FOUND);
  }
  ActionRecord& action = *it->second;
  if (action.record.state() == Action::STATE_PENDING) {
    action.record.set_decision_request_id(rid);
  }
  if (absl::Status s = ApplyDecisionLocked(action, request.outcome() ==
                                                       v1::Decision::OUTCOME_APPROVED,
                                           request.duplicate_of(), now);
      !s.ok()) {
    return s;
  }
  ++stats_.decisions_applied;
  ++applied_requests_[rid];
  upstream::v1::SubmitDecisionResponse response;
  *response.mutable_action() = action.record;
  requests_[rid] = StoredDecision{fingerprint, response};
  if (RollLocked(faults_.lost_reply_rate)) {
    ++stats_.injected_failures;
    return MakeError(absl::StatusCode::kUnavailable, "upstream simulator: reply lost",
                     upstream::v1::UPSTREAM_UNAVAILABLE);
  }
  return response;
}

// ---------------------------------------------------------------------------
// Inspection

std::vector<upstream::v1::Investigation> UpstreamSimulator::Investigations() const {
  absl::MutexLock lock(&mu_);
  std::vector<upstream::v1::Investigation> out;
  out.reserve(investigations_.size());
  for (const auto& [id, inv] : investigations_) out.push_back(inv->record);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id() < b.id(); });
  return out;
}

std::vector<upstream::v1::Action> UpstreamSimulator::Actions() const {
  absl::MutexLock lock(&mu_);
  std::vector<upstream::v1::Action> out;
  out.reserve(actions_.size());
  for (const auto& [id, action] : actions_) out.push_back(action->record);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id() < b.id(); });
  return out;
}

SimulatorStats UpstreamSimulator::stats() const {
  absl::MutexLock lock(&mu_);
  SimulatorStats stats = stats_;
  stats.log_entries = static_cast<int64_t>(log_.size());
  return stats;
}

std::map<std::string, int> UpstreamSimulator::AppliedRequests() const {
  absl::MutexLock lock(&mu_);
  return applied_requests_;
}

std::map<std::string, int> UpstreamSimulator::DecisionsPerAction() const {
  absl::MutexLock lock(&mu_);
  return decisions_per_action_;
}

}  // namespace air::sim
