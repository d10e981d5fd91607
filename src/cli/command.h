// Subcommands register themselves, so each lives in its own file and main.cc never changes:
//
//     int run_edge(int argc, char** argv);   // argv[0] is "edge"
//     CFD_COMMAND(edge, "edge", "run an edge location", run_edge);
//
// Nested commands ("tunnel run") register as "tunnel run"; main matches the longest name.
#pragma once

#include <string_view>
#include <vector>

namespace cfd::cli {

using CommandFn = int (*)(int argc, char** argv);

struct Command {
    std::string_view name;     // "version", "tunnel run"
    std::string_view summary;  // one line for `cfdtunnel help`
    CommandFn fn;
};

// Exit codes shared by every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // runtime error
inline constexpr int kExitUsage = 2;    // usage or configuration error

std::vector<Command>& commands();

struct Registrar {
    Registrar(std::string_view name, std::string_view summary, CommandFn fn) {
        commands().push_back({name, summary, fn});
    }
};

}  // namespace cfd::cli

#define CFD_COMMAND(id, name, summary, fn) \
    static ::cfd::cli::Registrar cfd_command_##id{(name), (summary), (fn)}
