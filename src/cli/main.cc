// cfdtunnel: one binary, roles as subcommands.
#include <cstdio>
#include <cstring>
#include <string_view>

#include "cfd/core/version.h"
#include "cfd/reactor/features.h"

namespace {

int cmd_version() {
    std::printf("cfdtunnel version %s\n", cfd::kVersion);
    std::printf("io_uring features: %s\n", cfd::reactor::features_line().c_str());
    return 0;
}

void usage(FILE* out) {
    std::fprintf(out,
                 "usage: cfdtunnel <command> [options]\n"
                 "\n"
                 "commands:\n"
                 "  version    print the version and the io_uring features in use\n"
                 "  help       this text\n"
                 "\n"
                 "See man cfdtunnel.\n");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    std::string_view cmd = argv[1];
    if (cmd == "version" || cmd == "--version" || cmd == "-v") {
        return cmd_version();
    }
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
        usage(stdout);
        return 0;
    }
    std::fprintf(stderr, "cfdtunnel: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
