#include "service/api_services.h"

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "domain/errors.h"
#include "domain/filter.h"
#include "domain/page_token.h"
#include "domain/status_macros.h"
#include "domain/validation.h"
#include "service/action_commands.h"
#include "service/grpc_status.h"

namespace air {
namespace {

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// Normalizes order_by ("create_time desc" etc.) to a canonical string.
std::string NormalizeOrderBy(absl::string_view order_by) {
  std::string text = absl::AsciiStrToLower(absl::StripAsciiWhitespace(order_by));
  std::string out;
  bool space = false;
  for (char c : text) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

// Resolves a page token for the query it must belong to.
absl::StatusOr<std::optional<PageCursor>> ResolvePageToken(
    absl::string_view token, uint64_t fingerprint) {
  if (token.empty()) return std::optional<PageCursor>();
  AIR_ASSIGN_OR_RETURN(PageCursor cursor, DecodePageToken(token, fingerprint));
  return std::optional<PageCursor>(std::move(cursor));
}

absl::StatusOr<InvestigationQuery> BuildInvestigationQuery(
    const v1::ListInvestigationsRequest& request, uint64_t* fingerprint) {
  InvestigationQuery query;
  AIR_ASSIGN_OR_RETURN(query.page_size, EffectivePageSize(request.page_size()));
  AIR_ASSIGN_OR_RETURN(query.filter, ParseInvestigationFilter(request.filter()));
  const std::string order = NormalizeOrderBy(request.order_by());
  if (order.empty() || order == "create_time desc") {
    query.order_by = InvestigationOrder::kCreateTime;
    query.descending = true;
  } else if (order == "create_time" || order == "create_time asc") {
    query.order_by = InvestigationOrder::kCreateTime;
    query.descending = false;
  } else if (order == "update_time desc") {
    query.order_by = InvestigationOrder::kUpdateTime;
    query.descending = true;
  } else if (order == "update_time" || order == "update_time asc") {
    query.order_by = InvestigationOrder::kUpdateTime;
    query.descending = false;
  } else {
    return InvalidField("order_by",
                        "must be create_time or update_time, optionally "
                        "followed by desc",
                        v1::INVALID_ORDER_BY);
  }
  *fingerprint = QueryFingerprint("investigations", request.filter(), order);
  AIR_ASSIGN_OR_RETURN(query.after, ResolvePageToken(request.page_token(), *fingerprint));
  return query;
}

absl::StatusOr<ActionQuery> BuildActionQuery(const v1::ListActionsRequest& request,
                                             uint64_t* fingerprint) {
  ActionQuery query;
  AIR_ASSIGN_OR_RETURN(query.page_size, EffectivePageSize(request.page_size()));
  AIR_ASSIGN_OR_RETURN(query.filter, ParseActionFilter(request.filter()));
  const std::string order = NormalizeOrderBy(request.order_by());
  if (order.empty() || order == "create_time" || order == "create_time asc") {
    query.descending = false;
  } else if (order == "create_time desc") {
    query.descending = true;
  } else {
    return InvalidField("order_by", "must be create_time or create_time desc",
                        v1::INVALID_ORDER_BY);
  }
  *fingerprint = QueryFingerprint("actions", request.filter(), order);
  AIR_ASSIGN_OR_RETURN(query.after, ResolvePageToken(request.page_token(), *fingerprint));
  return query;
}

// Runs a decision as one asynchronous write; `on_success` fills the
// response from the decided actions before the reactor finishes.
grpc::ServerUnaryReactor* DecideAsync(
    grpc::CallbackServerContext* context, Storage& repository,
    DecideActionsInput input,
    std::function<void(std::vector<v1::Action>&)> on_success) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto decided = std::make_shared<std::vector<v1::Action>>();
  repository.writer().WriteAsync(
      [input = std::move(input), decided](WriteTransaction& tx) -> absl::Status {
        AIR_ASSIGN_OR_RETURN(*decided, DecideActionsTx(tx, input));
        return absl::OkStatus();
      },
      [reactor, decided, on_success = std::move(on_success)](absl::Status status) {
        if (status.ok()) on_success(*decided);
        reactor->Finish(ToGrpcStatus(status));
      });
  return reactor;
}

DecideActionsInput SingleDecision(const Principal& caller,
                                  absl::string_view method, absl::string_view id,
                                  absl::string_view etag, absl::string_view comment,
                                  absl::string_view request_id,
                                  v1::Decision::Outcome outcome) {
  DecideActionsInput input;
  input.ids = {std::string(id)};
  input.etags = {std::string(etag)};
  input.command.outcome = outcome;
  input.command.source = v1::Decision::SOURCE_API;
  input.command.decider = caller.name;
  input.command.comment = std::string(comment);
  input.request_id = std::string(request_id);
  input.fingerprint = absl::StrCat(method, "\n", id, "\n", etag, "\n", comment);
  return input;
}

}  // namespace

grpc::ServerUnaryReactor* InvestigationServiceImpl::GetInvestigation(
    grpc::CallbackServerContext* context, const v1::GetInvestigationRequest* request,
    v1::GetInvestigationResponse* response) {
  absl::StatusOr<Principal> caller = access_.Check(*context, Permission::kRead);
  if (!caller.ok()) return FinishNow(context, caller.status());
  absl::Status status = ValidateId("id", request->id());
  if (status.ok()) {
    absl::StatusOr<v1::Investigation> investigation =
        repository_.actions().GetInvestigation(request->id());
    if (investigation.ok()) {
      *response->mutable_investigation() = *std::move(investigation);
    } else {
      status = investigation.status();
    }
  }
  return FinishNow(context, status);
}

grpc::ServerUnaryReactor* InvestigationServiceImpl::ListInvestigations(
    grpc::CallbackServerContext* context, const v1::ListInvestigationsRequest* request,
    v1::ListInvestigationsResponse* response) {
  absl::StatusOr<Principal> caller = access_.Check(*context, Permission::kRead);
  if (!caller.ok()) return FinishNow(context, caller.status());
  uint64_t fingerprint = 0;
  absl::StatusOr<InvestigationQuery> query =
      BuildInvestigationQuery(*request, &fingerprint);
  if (!query.ok()) return FinishNow(context, query.status());
  absl::StatusOr<InvestigationPage> page = repository_.actions().ListInvestigations(*query);
  if (!page.ok()) return FinishNow(context, page.status());
  for (v1::Investigation& inv : page->investigations) {
    *response->add_investigations() = std::move(inv);
  }
  if (page->next) response->set_next_page_token(EncodePageToken(*page->next, fingerprint));
  return FinishNow(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* ActionServiceImpl::GetAction(
    grpc::CallbackServerContext* context, const v1::GetActionRequest* request,
    v1::GetActionResponse* response) {
  absl::StatusOr<Principal> caller = access_.Check(*context, Permission::kRead);
  if (!caller.ok()) return FinishNow(context, caller.status());
  absl::Status status = ValidateId("id", request->id());
  if (status.ok()) {
    absl::StatusOr<v1::Action> action = repository_.actions().GetAction(request->id());
    if (action.ok()) {
      *response->mutable_action() = *std::move(action);
    } else {
      status = action.status();
    }
  }
  return FinishNow(context, status);
}

grpc::ServerUnaryReactor* ActionServiceImpl::ListActions(
    grpc::CallbackServerContext* context, const v1::ListActionsRequest* request,
    v1::ListActionsResponse* response) {
  absl::StatusOr<Principal> caller = access_.Check(*context, Permission::kRead);
  if (!caller.ok()) return FinishNow(context, caller.status());
  uint64_t fingerprint = 0;
  absl::StatusOr<ActionQuery> query = BuildActionQuery(*request, &fingerprint);
  if (!query.ok()) return FinishNow(context, query.status());
  absl::StatusOr<ActionPage> page = repository_.actions().ListActions(*query);
  if (!page.ok()) return FinishNow(context, page.status());
  for (v1::Action& action : page->actions) *response->add_actions() = std::move(action);
  if (page->next) response->set_next_page_token(EncodePageToken(*page->next, fingerprint));
  return FinishNow(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* ActionServiceImpl::ApproveAction(
    grpc::CallbackServerContext* context, const v1::ApproveActionRequest* request,
    v1::ApproveActionResponse* response) {
  absl::StatusOr<Principal> caller = access_.Check(*context, Permission::kDecide);
  if (!caller.ok()) return FinishNow(context, caller.status());
  if (absl::Status s = ValidateDecision(request->id(), request->comment(),
                                        request->request_id());
      !s.ok()) {
    return FinishNow(context, s);
  }
  return DecideAsync(context, repository_,
                     SingleDecision(*caller, "approve", request->id(), request->etag(),
                                    request->comment(), request->request_id(),
                                    v1::Decision::OUTCOME_APPROVED),
                     [response](std::vector<v1::Action>& actions) {
                       *response->mutable_action() = std::move(actions.front());
                     });
}

grpc::ServerUnaryReactor* ActionServiceImpl::RejectAction(
    grpc::CallbackServerContext* context, const v1::RejectActionRequest* request,
    v1::RejectActionResponse* response) {
  absl::StatusOr<Principal> caller = access_.Check(*context, Permission::kDecide);
  if (!caller.ok()) return FinishNow(context, caller.status());
  if (absl::Status s = ValidateDecision(request->id(), request->comment(),
                                        request->request_id());
      !s.ok()) {
    return FinishNow(context, s);
  }
  return DecideAsync(context, repository_,
                     SingleDecision(*caller, "reject", request->id(), request->etag(),
                                    request->comment(), request->request_id(),
                                    v1::Decision::OUTCOME_REJECTED),
                     [response](std::vector<v1::Action>& actions) {
                       *response->mutable_action() = std::move(actions.front());
                     });
}

// Most actions one batch may decide.
constexpr int kMaxBatchSize = 100;

grpc::ServerUnaryReactor* ActionServiceImpl::BatchDecideActions(
    grpc::CallbackServerContext* context, const v1::BatchDecideActionsRequest* request,
    v1::BatchDecideActionsResponse* response) {
  absl::StatusOr<Principal> caller = access_.Check(*context, Permission::kDecide);
  if (!caller.ok()) return FinishNow(context, caller.status());
  absl::Status status;
  if (request->ids().empty()) {
    status = InvalidField("ids", "must name at least one action", v1::INVALID_ID);
  } else if (request->ids_size() > kMaxBatchSize) {
    status = InvalidField("ids",
                          absl::StrCat("may name at most ", kMaxBatchSize, " actions"),
                          v1::BATCH_TOO_LARGE);
  } else if (!request->etags().empty() && request->etags_size() != request->ids_size()) {
    status = InvalidField("etags", "must be empty or have one entry per id",
                          v1::INVALID_ETAGS);
  } else if (request->decision() != v1::BATCH_DECISION_APPROVE &&
             request->decision() != v1::BATCH_DECISION_REJECT) {
    status = InvalidField("decision", "must be BATCH_DECISION_APPROVE or "
                          "BATCH_DECISION_REJECT", v1::INVALID_DECISION);
  }
  for (int i = 0; status.ok() && i < request->ids_size(); ++i) {
    status = ValidateId(absl::StrCat("ids[", i, "]"), request->ids(i));
  }
  if (status.ok()) status = ValidateComment("comment", request->comment());
  if (status.ok()) status = ValidateRequestId("request_id", request->request_id());
  if (!status.ok()) return FinishNow(context, status);

  DecideActionsInput input;
  input.ids.assign(request->ids().begin(), request->ids().end());
  input.etags.assign(request->etags().begin(), request->etags().end());
  input.command.outcome = request->decision() == v1::BATCH_DECISION_APPROVE
                              ? v1::Decision::OUTCOME_APPROVED
                              : v1::Decision::OUTCOME_REJECTED;
  input.command.source = v1::Decision::SOURCE_API;
  input.command.decider = caller->name;
  input.command.comment = request->comment();
  input.request_id = request->request_id();
  input.fingerprint = absl::StrCat("batch\n", request->decision(), "\n",
                                   absl::StrJoin(input.ids, ","), "\n",
                                   absl::StrJoin(input.etags, ","), "\n",
                                   request->comment());
  return DecideAsync(context, repository_, std::move(input),
                     [response](std::vector<v1::Action>& actions) {
                       for (v1::Action& a : actions) *response->add_actions() = std::move(a);
                     });
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* ActionServiceImpl::WatchActions(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request) {
  absl::StatusOr<Principal> caller = access_.Check(*context, Permission::kRead);
  if (!caller.ok()) return FinishedWatch(caller.status());
  v1::WatchActionsRequest request;
  grpc::ByteBuffer copy(*raw_request);  // the reader consumes its buffer
  if (!grpc::SerializationTraits<v1::WatchActionsRequest>::Deserialize(&copy, &request)
           .ok()) {
    return FinishedWatch(MakeError(absl::StatusCode::kInvalidArgument,
                                   "the request is not a valid WatchActionsRequest",
                                   v1::INVALID_REQUEST));
  }
  return StartWatch(context, request, repository_, hub_, watch_limits_, on_watch_send_);
}

}  // namespace air
