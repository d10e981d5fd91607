// cfdtunnel: one binary, roles as subcommands (each registered by its own file).
#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>

#include "cli/command.h"
#include "cfd/core/version.h"
#include "cfd/reactor/features.h"

namespace cfd::cli {

namespace {

int run_version(int, char**) {
    std::printf("cfdtunnel version %s\n", kVersion);
    std::printf("io_uring features: %s\n", reactor::features_line().c_str());
    return kExitOk;
}
CFD_COMMAND(version, "version", "print the version and the io_uring features in use",
            run_version);

void usage(FILE* out) {
    std::fprintf(out, "usage: cfdtunnel <command> [options]\n\ncommands:\n");
    std::vector<Command> sorted = commands();
    std::sort(sorted.begin(), sorted.end(),
              [](const Command& a, const Command& b) { return a.name < b.name; });
    for (const Command& c : sorted) {
        std::string name(c.name);
        std::fprintf(out, "  %-20s %.*s\n", name.c_str(), static_cast<int>(c.summary.size()),
                     c.summary.data());
    }
    std::fprintf(out, "\nSee man cfdtunnel, or `cfdtunnel <command> --help`.\n");
}

// The longest registered name made of argv[1..]: "tunnel run" before "tunnel".
const Command* find_command(int argc, char** argv, int* words) {
    const Command* best = nullptr;
    int best_words = 0;
    for (const Command& c : commands()) {
        std::string_view rest = c.name;
        int i = 1;
        bool match = true;
        while (!rest.empty()) {
            size_t sp = rest.find(' ');
            std::string_view word = rest.substr(0, sp);
            if (i >= argc || word != argv[i]) {
                match = false;
                break;
            }
            ++i;
            rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
        }
        if (match && i - 1 > best_words) {
            best = &c;
            best_words = i - 1;
        }
    }
    *words = best_words;
    return best;
}

}  // namespace
}  // namespace cfd::cli

int main(int argc, char** argv) {
    using namespace cfd::cli;
    if (argc < 2) {
        usage(stderr);
        return kExitUsage;
    }
    std::string_view first = argv[1];
    if (first == "--version" || first == "-v") {
        return run_version(argc, argv);
    }
    if (first == "help" || first == "--help" || first == "-h") {
        usage(stdout);
        return kExitOk;
    }
    int words = 0;
    const Command* c = find_command(argc, argv, &words);
    if (c == nullptr) {
        std::fprintf(stderr, "cfdtunnel: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return kExitUsage;
    }
    // The command sees its own name as argv[0] and its arguments after it.
    return c->fn(argc - words, argv + words);
}
