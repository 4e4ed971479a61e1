#include "service/upstream_sync_worker.h"

#include <random>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "domain/errors.h"
#include "domain/status_macros.h"
#include "service/upstream_commands.h"
#include "spdlog/spdlog.h"
#include "storage/write_behind_transaction.h"

namespace air {
namespace {

// Logs the first failure of a run and then every power of two, so a long
// outage leaves a trail without flooding the log.
bool ShouldLogFailure(int failures) { return (failures & (failures - 1)) == 0; }

uint64_t Seed() { return std::random_device{}(); }

// Which changes of a page to apply, in which order: only the newest copy of
// each record (an older copy in the same page would be stale anyway; this
// also spares the stream the intermediate states one commit skips over),
// investigations before actions so that actions find their investigation,
// then records without an id (malformed: applied only to be counted).
struct PagePlan {
  std::vector<int> apply;
  int superseded = 0;
  // Whose upstream versions the write will ask for: the records applied,
  // and the investigation of each action.
  std::vector<std::string> action_ids;
  std::vector<std::string> investigation_ids;
};

PagePlan PlanPage(const upstream::v1::ListChangesResponse& page) {
  absl::flat_hash_map<std::string, int> newest;  // "i:<id>" / "a:<id>" -> index
  newest.reserve(page.changes_size());
  std::vector<int> anonymous;
  for (int i = 0; i < page.changes_size(); ++i) {
    const upstream::v1::Change& c = page.changes(i);
    const bool is_action = c.has_action();
    const std::string& id = is_action ? c.action().id() : c.investigation().id();
    if ((!is_action && !c.has_investigation()) || id.empty()) {
      anonymous.push_back(i);
      continue;
    }
    auto [it, inserted] = newest.try_emplace(absl::StrCat(is_action ? "a:" : "i:", id), i);
    if (inserted) continue;
    const upstream::v1::Change& kept = page.changes(it->second);
    const int64_t kept_version =
        is_action ? kept.action().version() : kept.investigation().version();
    const int64_t version = is_action ? c.action().version() : c.investigation().version();
    if (version > kept_version) it->second = i;
  }
  PagePlan plan;
  plan.apply.reserve(newest.size() + anonymous.size());
  for (bool actions : {false, true}) {
    for (int i = 0; i < page.changes_size(); ++i) {
      const upstream::v1::Change& c = page.changes(i);
      if (c.has_action() != actions) continue;
      const std::string& id = actions ? c.action().id() : c.investigation().id();
      if (id.empty()) continue;
      auto it = newest.find(absl::StrCat(actions ? "a:" : "i:", id));
      if (it != newest.end() && it->second == i) plan.apply.push_back(i);
    }
  }
  for (int i : plan.apply) {
    const upstream::v1::Change& c = page.changes(i);
    if (c.has_action()) {
      plan.action_ids.push_back(c.action().id());
      plan.investigation_ids.push_back(c.action().investigation_id());
    } else {
      plan.investigation_ids.push_back(c.investigation().id());
    }
  }
  plan.apply.insert(plan.apply.end(), anonymous.begin(), anonymous.end());
  plan.superseded = page.changes_size() - static_cast<int>(plan.apply.size());
  return plan;
}

}  // namespace

// ---------------------------------------------------------------------------
// UpstreamSyncWorker

UpstreamSyncWorker::UpstreamSyncWorker(Storage& repository, UpstreamClient& client,
                                       SyncMonitor& monitor, UpstreamSyncOptions options)
    : repository_(repository), client_(client), monitor_(monitor),
      options_(std::move(options)), page_size_(options_.page_size) {}

UpstreamSyncWorker::~UpstreamSyncWorker() { Stop(); }

void UpstreamSyncWorker::Start() {
  thread_ = std::thread([this] { Run(); });
}

void UpstreamSyncWorker::Stop() {
  sleep_.Stop();
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<SyncPageResult> UpstreamSyncWorker::SyncOnce() {
  absl::MutexLock lock(&step_mu_);
  if (!cursor_loaded_) {
    AIR_ASSIGN_OR_RETURN(cursor_, repository_.upstream().GetSyncCursor(options_.cursor_name));
    cursor_loaded_ = true;
  }
  absl::StatusOr<upstream::v1::ListChangesResponse> page;
  if (prefetch_.valid() && prefetch_cursor_ == cursor_) {
    page = prefetch_.get();
  } else {
    if (prefetch_.valid()) prefetch_.wait();  // stale: nobody uses it
    prefetch_ = {};
    page = Fetch(cursor_, page_size_);
  }
  if (!page.ok() && page.status().code() == absl::StatusCode::kResourceExhausted) {
    // A reply too large for the channel, or a throttling upstream: ask for
    // less until it passes (down to one change); successes grow it back.
    page_size_ = page_size_ <= 0 ? 256 : std::max(1, page_size_ / 2);
    return page.status();
  }
  if (!page.ok() && page.status().code() == absl::StatusCode::kOutOfRange) {
    // The upstream cannot resume from our cursor. Start again from the
    // beginning: versions make every record we already have a no-op.
    spdlog::warn("upstream sync: the upstream cannot resume from the stored cursor ({}); "
                 "starting again from the beginning",
                 std::string(page.status().message()));
    AIR_RETURN_IF_ERROR(repository_.writer().Write([&](WriteTransaction& tx) {
      return tx.upstream().SetSyncCursor(options_.cursor_name, "");
    }));
    cursor_.clear();
    SyncPageResult result;
    result.has_more = true;
    return result;
  }
  if (!page.ok()) return page.status();
  if (page_size_ != options_.page_size) {
    page_size_ = options_.page_size <= 0 ? options_.page_size
                                         : std::min(options_.page_size, page_size_ * 2);
  }

  // An upstream that returns no cursor has nothing new: keep ours.
  const std::string next_cursor =
      page->next_cursor().empty() ? cursor_ : page->next_cursor();
  SyncPageResult result;
  result.changes = page->changes_size();
  result.has_more = page->has_more();
  std::vector<std::string> notes;  // logged after the commit, not before
  const std::string expected_cursor = cursor_;
  const PagePlan plan = PlanPage(*page);  // off the writer thread
  if (result.has_more && options_.prefetch) {
    // Fetch the next page while this one is written: the writer and the
    // upstream work in parallel. It is used only if this page commits.
    prefetch_cursor_ = next_cursor;
    prefetch_ = std::async(std::launch::async, [this, cursor = next_cursor,
                                                size = page_size_] {
      return Fetch(cursor, size);
    });
  }
  absl::Status written = repository_.writer().Write([&](WriteTransaction& tx) -> absl::Status {
    result.tally = PageTally{};
    result.tally.stale = plan.superseded;
    notes.clear();
    AIR_ASSIGN_OR_RETURN(std::string stored, tx.upstream().GetSyncCursor(options_.cursor_name));
    if (stored != expected_cursor) {
      return MakeError(absl::StatusCode::kAborted,
                       "the sync cursor moved since this page was requested",
                       v1::SYNC_CURSOR_MOVED);
    }
    // A page updates each investigation once per action and per version of
    // it; buffering them makes that one read and one write per page.
    WriteBehindTransaction buffered(tx);
    AIR_RETURN_IF_ERROR(buffered.PrefetchUpstreamVersions(UpstreamKind::kAction, plan.action_ids));
    AIR_RETURN_IF_ERROR(
        buffered.PrefetchUpstreamVersions(UpstreamKind::kInvestigation, plan.investigation_ids));
    for (int i : plan.apply) {
      const upstream::v1::Change& change = page->changes(i);
      SyncRecordResult applied;
      if (change.has_action()) {
        AIR_ASSIGN_OR_RETURN(applied,
                             SyncActionTx(buffered, change.action(), options_.action_ttl,
                                          options_.policy));
      } else if (change.has_investigation()) {
        AIR_ASSIGN_OR_RETURN(applied, SyncInvestigationTx(buffered, change.investigation()));
      } else {
        applied = SyncRecordResult{SyncOutcome::kMalformed,
                                   absl::StrCat("change ", i, " after cursor \"",
                                                expected_cursor, "\" carries no record")};
      }
      switch (applied.outcome) {
        case SyncOutcome::kApplied: ++result.tally.applied; break;
        case SyncOutcome::kUnchanged: ++result.tally.unchanged; break;
        case SyncOutcome::kStale: ++result.tally.stale; break;
        case SyncOutcome::kMalformed:
          ++result.tally.malformed;
          notes.push_back(absl::StrCat("skipped malformed record: ", applied.detail));
          break;
        case SyncOutcome::kConflict:
          ++result.tally.conflicting;
          notes.push_back(absl::StrCat("conflict: ", applied.detail));
          break;
      }
    }
    AIR_RETURN_IF_ERROR(buffered.Flush());
    return tx.upstream().SetSyncCursor(options_.cursor_name, next_cursor);
  });
  if (!written.ok()) {
    cursor_loaded_ = false;  // storage is the truth about where we are
    if (prefetch_.valid()) prefetch_.wait();
    prefetch_ = {};
    return written;
  }
  cursor_ = next_cursor;
  for (const std::string& note : notes) spdlog::warn("upstream sync: {}", note);
  std::optional<absl::Time> head;
  if (page->has_head_time()) head = ToAbslTime(page->head_time());
  monitor_.RecordSyncSuccess(result.tally, !result.has_more, head);
  return result;
}

absl::StatusOr<upstream::v1::ListChangesResponse> UpstreamSyncWorker::Fetch(
    const std::string& cursor, int page_size) {
  upstream::v1::ListChangesRequest request;
  request.set_cursor(cursor);
  request.set_page_size(page_size);
  return client_.ListChanges(request, options_.rpc_timeout);
}

void UpstreamSyncWorker::Run() {
  Backoff backoff(options_.backoff, Seed());
  while (!sleep_.stopped()) {
    absl::StatusOr<SyncPageResult> result = SyncOnce();
    if (result.ok()) {
      if (backoff.failures() > 0) {
        spdlog::info("upstream sync: recovered after {} failed attempts", backoff.failures());
      }
      backoff.Reset();
      if (result->has_more) continue;
      if (!sleep_.Sleep(options_.poll_interval)) break;
      continue;
    }
    monitor_.RecordSyncFailure(result.status());
    const absl::Duration delay = backoff.NextDelay();
    if (ShouldLogFailure(backoff.failures())) {
      spdlog::warn("upstream sync failed ({} in a row): {}; retrying in {}",
                   backoff.failures(), result.status().ToString(),
                   absl::FormatDuration(delay));
    }
    if (!sleep_.Sleep(delay)) break;
  }
}

// ---------------------------------------------------------------------------
// DecisionDeliveryWorker

DecisionDeliveryWorker::DecisionDeliveryWorker(Storage& repository,
                                               UpstreamClient& client,
                                               SyncMonitor& monitor,
                                               DecisionDeliveryOptions options)
    : repository_(repository), client_(client), monitor_(monitor),
      options_(std::move(options)) {}

DecisionDeliveryWorker::~DecisionDeliveryWorker() { Stop(); }

void DecisionDeliveryWorker::Start() {
  thread_ = std::thread([this] { Run(); });
}

void DecisionDeliveryWorker::Stop() {
  sleep_.Stop();
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<int> DecisionDeliveryWorker::DeliverOnce() {
  absl::MutexLock lock(&step_mu_);
  AIR_ASSIGN_OR_RETURN(std::vector<OutboxDecision> rows,
                       repository_.outbox().ReadDecisionOutbox(options_.batch_size));
  struct Settled {
    int64_t position;
    std::string result;
  };
  std::vector<Settled> settled;
  int64_t refused = 0;
  absl::Status failure;
  for (const OutboxDecision& row : rows) {
    if (sleep_.stopped()) break;
    upstream::v1::SubmitDecisionRequest request;
    request.set_request_id(row.request_id);
    request.set_action_id(row.action_id);
    request.set_outcome(row.decision.outcome());
    request.set_decider(row.decision.decider());
    request.set_comment(row.decision.comment());
    *request.mutable_decide_time() = row.decision.decide_time();
    request.set_duplicate_of(row.duplicate_of);
    request.set_action_version(row.upstream_version);
    absl::StatusOr<upstream::v1::SubmitDecisionResponse> response =
        client_.SubmitDecision(request, options_.rpc_timeout);
    if (response.ok()) {
      settled.push_back({row.position, "acknowledged"});
    } else if (!IsRetryableUpstreamError(response.status())) {
      // Retrying cannot change the answer (the action was decided in the
      // vendor console, or is unknown there): record why and move on, so
      // one refused decision does not hold up the ones behind it.
      spdlog::warn("decision delivery: the upstream refused {} for action {}: {}",
                   row.request_id, row.action_id, response.status().ToString());
      settled.push_back({row.position, absl::StrCat("refused: ", response.status().ToString())});
      ++refused;
    } else {
      failure = response.status();
      break;  // keep the order: nothing behind it goes first
    }
  }
  if (!settled.empty()) {
    AIR_RETURN_IF_ERROR(repository_.writer().Write([&](WriteTransaction& tx) -> absl::Status {
      for (const Settled& s : settled) {
        AIR_RETURN_IF_ERROR(tx.outbox().MarkDecisionDelivered(s.position, s.result));
      }
      return absl::OkStatus();
    }));
    monitor_.RecordDeliverySuccess(static_cast<int64_t>(settled.size()) - refused, refused);
  }
  if (!failure.ok()) return failure;
  return static_cast<int>(settled.size());
}

void DecisionDeliveryWorker::Run() {
  Backoff backoff(options_.backoff, Seed());
  while (!sleep_.stopped()) {
    absl::StatusOr<int> delivered = DeliverOnce();
    if (delivered.ok()) {
      backoff.Reset();
      if (*delivered >= options_.batch_size) continue;  // more may be waiting
      if (!sleep_.Sleep(options_.poll_interval)) break;
      continue;
    }
    monitor_.RecordDeliveryFailure(delivered.status());
    const absl::Duration delay = backoff.NextDelay();
    if (ShouldLogFailure(backoff.failures())) {
      spdlog::warn("decision delivery failed ({} in a row): {}; retrying in {}",
                   backoff.failures(), delivered.status().ToString(),
                   absl::FormatDuration(delay));
    }
    if (!sleep_.Sleep(delay)) break;
  }
}

}  // namespace air
