#include "service/operations_service.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "domain/errors.h"
#include "domain/lifecycle.h"
#include "service/grpc_status.h"
#include "service/logging.h"
#include "storage/sqlite_backup.h"

namespace air {
namespace {

constexpr size_t kChunkBytes = 256 * 1024;

using Reactor = grpc::ServerWriteReactor<v1::BackupDatabaseResponse>;

class FinishedReactor final : public Reactor {
 public:
  explicit FinishedReactor(const absl::Status& status) { Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t nanos = absl::ToInt64Nanoseconds(d);
  out->set_seconds(nanos / 1000000000);
  out->set_nanos(static_cast<int32_t>(nanos % 1000000000));
}

std::string Hex(const unsigned char* bytes, unsigned int length) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0xf]);
  }
  return out;
}

class BackupReactor final : public Reactor {
 public:
  BackupReactor(OnlineBackup& backup, std::string principal, std::atomic<bool>* running)
      : backup_(backup), principal_(std::move(principal)), running_(running),
        digest_(EVP_MD_CTX_new()) {
    EVP_DigestInit_ex(digest_, EVP_sha256(), nullptr);
    worker_ = std::thread([this] { Prepare(); });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Done(absl::CancelledError("the backup stream was cancelled"));
      return;
    }
    if (sent_ >= size_) {
      Done(absl::OkStatus());
      return;
    }
    WriteNext();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }

  void OnDone() override {
    if (worker_.joinable()) {
      if (worker_.get_id() == std::this_thread::get_id()) {
        worker_.detach();
      } else {
        worker_.join();
      }
    }
    in_.close();
    if (!tmp_.empty()) std::remove(tmp_.c_str());
    EVP_MD_CTX_free(digest_);
    running_->store(false);
    delete this;
  }

 private:
  // On the worker thread: the snapshot, then the first write.
  void Prepare() {
    tmp_ = absl::StrCat(backup_.scratch_prefix(), "XXXXXX");
    const int fd = ::mkstemp(tmp_.data());
    if (fd < 0) {
      tmp_.clear();
      Done(MakeError(absl::StatusCode::kUnavailable,
                     "backup failed: cannot create a temporary file beside the database",
                     v1::BACKUP_FAILED));
      return;
    }
    ::close(fd);
    const absl::Time snapshot_time = absl::Now();
    absl::StatusOr<BackupResult> result = backup_.BackupTo(tmp_);
    bool cancelled;
    {
      absl::MutexLock lock(&mu_);
      cancelled = cancelled_;
    }
    if (cancelled) {
      Done(absl::CancelledError("the backup was cancelled"));
      return;
    }
    if (!result.ok()) {
      Done(result.status());
      return;
    }
    result_ = *result;
    in_.open(tmp_, std::ios::binary);
    if (!in_) {
      Done(MakeError(absl::StatusCode::kUnavailable, "backup failed: cannot read the copy",
                     v1::BACKUP_FAILED));
      return;
    }
    size_ = result->size_bytes;
    v1::BackupInfo* info = message_.mutable_info();
    info->set_size_bytes(result->size_bytes);
    info->set_schema_version(result->schema_version);
    info->set_event_sequence(result->event_head);
    info->set_action_count(result->actions);
    SetTimestamp(snapshot_time, info->mutable_snapshot_time());
    SetDuration(result->duration, info->mutable_snapshot_duration());
    WriteNext();
  }

  // Reads the next chunk into message_ (which may already hold `info`) and
  // writes it; the last chunk also carries the checksum.
  void WriteNext() {
    std::string* data = message_.mutable_data();
    data->resize(static_cast<size_t>(std::min<int64_t>(kChunkBytes, size_ - sent_)));
    in_.read(data->data(), static_cast<std::streamsize>(data->size()));
    if (in_.gcount() != static_cast<std::streamsize>(data->size())) {
      Done(MakeError(absl::StatusCode::kUnavailable, "backup failed: the copy changed size",
                     v1::BACKUP_FAILED));
      return;
    }
    EVP_DigestUpdate(digest_, data->data(), data->size());
    sent_ += static_cast<int64_t>(data->size());
    if (sent_ >= size_) {
      unsigned char digest[EVP_MAX_MD_SIZE];
      unsigned int length = 0;
      EVP_DigestFinal_ex(digest_, digest, &length);
      message_.set_sha256(Hex(digest, length));
    }
    outgoing_ = std::move(message_);
    message_.Clear();
    StartWrite(&outgoing_);
  }

  void Done(const absl::Status& status) {
    if (status.ok()) {
      LogEvent(spdlog::level::info, "backup", "database backup streamed",
               {{"principal", principal_},
                {"bytes", absl::StrCat(result_.size_bytes)},
                {"event_sequence", absl::StrCat(result_.event_head)},
                {"snapshot_ms", absl::StrCat(absl::ToInt64Milliseconds(result_.duration))}});
    } else {
      LogEvent(spdlog::level::warn, "backup", "database backup failed",
               {{"principal", principal_}, {"error", std::string(status.message())}});
    }
    Finish(ToGrpcStatus(status));
  }

  OnlineBackup& backup_;
  const std::string principal_;
  std::atomic<bool>* const running_;
  EVP_MD_CTX* const digest_;
  std::thread worker_;
  std::string tmp_;
  std::ifstream in_;
  BackupResult result_;
  int64_t size_ = 0;
  int64_t sent_ = 0;
  v1::BackupDatabaseResponse message_;
  v1::BackupDatabaseResponse outgoing_;
  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerWriteReactor<v1::BackupDatabaseResponse>* OperationsServiceImpl::BackupDatabase(
    grpc::CallbackServerContext* context, const v1::BackupDatabaseRequest* /*request*/) {
  absl::StatusOr<Principal> caller = access_.Check(*context, Permission::kOperate);
  if (!caller.ok()) return new FinishedReactor(caller.status());
  if (backup_ == nullptr) {
    return new FinishedReactor(MakeError(
        absl::StatusCode::kFailedPrecondition,
        "this server's database has no online backup (PostgreSQL: back it up with pg_dump)",
        v1::BACKUP_NOT_SUPPORTED));
  }
  bool expected = false;
  if (!backup_running_.compare_exchange_strong(expected, true)) {
    return new FinishedReactor(MakeError(absl::StatusCode::kResourceExhausted,
                                         "another backup is running; retry when it ends",
                                         v1::BACKUP_IN_PROGRESS));
  }
  LogEvent(spdlog::level::info, "backup", "database backup started",
           {{"principal", caller->name}});
  return new BackupReactor(*backup_, caller->name, &backup_running_);
}

}  // namespace air
