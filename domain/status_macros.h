// Project-local status helpers. abseil 20220623 ships neither
// RETURN_IF_ERROR nor ASSIGN_OR_RETURN, so they are defined once here.
#ifndef AIR_DOMAIN_STATUS_MACROS_H_
#define AIR_DOMAIN_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define AIR_CONCAT_INNER_(a, b) a##b
#define AIR_CONCAT_(a, b) AIR_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` is not OK.
#define AIR_RETURN_IF_ERROR(expr)                   \
  do {                                              \
    const ::absl::Status air_status_ = (expr);      \
    if (!air_status_.ok()) return air_status_;      \
  } while (0)

// `AIR_ASSIGN_OR_RETURN(auto x, Foo());` assigns the value of a StatusOr or
// returns its error.
#define AIR_ASSIGN_OR_RETURN(lhs, expr) \
  AIR_ASSIGN_OR_RETURN_IMPL_(AIR_CONCAT_(air_statusor_, __LINE__), lhs, expr)
#define AIR_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

#endif  // AIR_DOMAIN_STATUS_MACROS_H_
