// The web console's files (the top-level console/ folder), embedded into
// aird at build time by service/embed_assets.cmake, so that the one binary
// serves them and nothing is fetched from anywhere else.
#ifndef AIR_SERVICE_CONSOLE_ASSETS_H_
#define AIR_SERVICE_CONSOLE_ASSETS_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace air {

struct ConsoleAsset {
  // Relative to console/, with '/' separators: "index.html", "app.js".
  absl::string_view path;
  absl::string_view content;
};

// The file at `path`, or null if the console has no such file.
const ConsoleAsset* FindConsoleAsset(absl::string_view path);

}  // namespace air

#endif  // AIR_SERVICE_CONSOLE_ASSETS_H_
