#include "cli/command.h"

namespace cfd::cli {

// A function-local static: registrars in other files run before main and must find it built.
std::vector<Command>& commands() {
    static std::vector<Command> all;
    return all;
}

}  // namespace cfd::cli
