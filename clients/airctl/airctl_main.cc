// airctl: command-line client of the AIR decision service. See `airctl --help`.
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "clients/airctl/airctl.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return air::airctl::RunAirctl(args, std::cout, std::cerr,
                                [](const std::string& name) -> std::optional<std::string> {
                                  const char* value = std::getenv(name.c_str());
                                  if (value == nullptr) return std::nullopt;
                                  return std::string(value);
                                });
}
