// Reading small files whole (PEM certificates and keys, tokens). The one
// helper aird's service layer and the upstream simulator share; each wraps
// it with its own error message.
#ifndef AIR_DOMAIN_FILE_IO_H_
#define AIR_DOMAIN_FILE_IO_H_

#include <optional>
#include <string>

namespace air {

// The bytes of the file at `path` (possibly none), or nullopt if it cannot
// be opened.
std::optional<std::string> ReadWholeFile(const std::string& path);

}  // namespace air

#endif  // AIR_DOMAIN_FILE_IO_H_
