// cfd::config::IniFile::parse on arbitrary text, then OptionSet::apply_file of every section
// onto a small option set with one option of each kind, and OptionSet::split + apply_args on
// a command line made from the same input. Checks: every entry's line lies in the file and its
// section is listed once in sections(); find() returns the last entry for a key; a refusal names
// the file, a line and the key; applied values respect their kind (ints within range, durations
// survive format/parse); no CFD_BUG.
//
// Input: [INI text] ("\0\0" [argv words separated by "\0"])?
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cfd/config/ini.h"
#include "cfd/config/options.h"
#include "cfd/core/duration.h"
#include "fuzz_util.h"

namespace {

using cfd::config::Diag;
using cfd::config::IniFile;
using cfd::config::OptionSet;

constexpr int64_t kMin = -5;
constexpr int64_t kMax = 1000;

struct Targets {
    std::string name = "default";
    int64_t workers = 4;
    bool verbose = false;
    cfd::Millis grace{30000};
    std::vector<std::string> origins{"http://localhost:8080"};
};

void add_all(OptionSet& set, Targets& t) {
    set.add_string("name", &t.name, "a name");
    set.add_int("workers", &t.workers, kMin, kMax, "a count");
    set.add_bool("verbose", &t.verbose, "a switch");
    set.add_duration("grace-period", &t.grace, "a duration");
    set.add_list("origin", &t.origins, "a list");
    set.add_alias("w", "workers");
}

void check_values(const Targets& t) {
    FUZZ_REQUIRE(t.workers >= kMin && t.workers <= kMax);
    FUZZ_REQUIRE(t.grace.count() >= 0);
    auto back = cfd::parse_duration(cfd::format_duration(t.grace));
    FUZZ_REQUIRE(back && *back == t.grace);
    FUZZ_REQUIRE(!t.origins.empty());
}

int count_lines(std::string_view text) {
    if (text.empty()) {
        return 0;
    }
    int n = static_cast<int>(std::count(text.begin(), text.end(), '\n'));
    return text.back() == '\n' ? n : n + 1;
}

void check_file(const IniFile& f, std::string_view text) {
    const int lines = count_lines(text);
    const auto& sections = f.sections();
    for (size_t i = 0; i < sections.size(); ++i) {
        for (size_t j = i + 1; j < sections.size(); ++j) {
            FUZZ_REQUIRE(sections[i] != sections[j]);
        }
    }
    for (const auto& e : f.entries()) {
        FUZZ_REQUIRE(e.line >= 1 && e.line <= lines);
        FUZZ_REQUIRE(std::find(sections.begin(), sections.end(), e.section) != sections.end());
        const auto* last = f.find(e.section, e.key);
        FUZZ_REQUIRE(last != nullptr && last->line >= e.line);
        std::string kind, name;
        (void)cfd::config::split_section(e.section, &kind, &name);
    }
    // Entries come in file order.
    for (size_t i = 1; i < f.entries().size(); ++i) {
        FUZZ_REQUIRE(f.entries()[i - 1].line <= f.entries()[i].line);
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    cfd::fuzz::quiet_logs();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view all(reinterpret_cast<const char*>(data), size);
    std::string_view text = all;
    std::string_view argv_part;
    bool has_args = false;
    if (size_t sep = all.find(std::string_view("\0\0", 2)); sep != std::string_view::npos) {
        text = all.substr(0, sep);
        argv_part = all.substr(sep + 2);
        has_args = true;
    }

    auto file = IniFile::parse(text, "fuzz.ini");
    if (!file) {
        const Diag& d = file.error();
        FUZZ_REQUIRE(d.file == "fuzz.ini");
        FUZZ_REQUIRE(!d.message.empty());
        FUZZ_REQUIRE(d.line >= 0 && d.line <= count_lines(text));
        (void)d.str();
    } else {
        check_file(*file, text);
        // Every section, then the usual role section (empty in most inputs).
        std::vector<std::string> sections = file->sections();
        sections.emplace_back("edge");
        for (const std::string& s : sections) {
            Targets t;
            OptionSet set;
            add_all(set, t);
            auto r = set.apply_file(*file, s);
            if (!r) {
                FUZZ_REQUIRE(r.error().file == "fuzz.ini");
                FUZZ_REQUIRE(r.error().line >= 1);
                FUZZ_REQUIRE(!r.error().key.empty() || !r.error().message.empty());
                (void)r.error().str();
            }
            check_values(t);
            (void)set.usage();
        }
    }

    if (has_args) {
        // argv[0] is the program, as in main(); words are NUL-terminated copies.
        std::vector<std::string> words{"cfdtunnel"};
        size_t pos = 0;
        while (pos <= argv_part.size() && words.size() < 64) {
            size_t end = argv_part.find('\0', pos);
            if (end == std::string_view::npos) {
                end = argv_part.size();
            }
            words.emplace_back(argv_part.substr(pos, end - pos));
            pos = end + 1;
        }
        std::vector<char*> argv;
        for (std::string& w : words) {
            argv.push_back(w.data());
        }
        argv.push_back(nullptr);
        Targets t;
        OptionSet set;
        add_all(set, t);
        auto args = set.split(static_cast<int>(words.size()), argv.data(), 1);
        if (args) {
            FUZZ_REQUIRE(args->flags.size() + args->positionals.size() < words.size());
            if (file) {
                (void)set.apply_file(*file, "edge");
            }
            auto r = set.apply_args(*args);
            if (!r) {
                FUZZ_REQUIRE(r.error().file == "command line");
            }
            check_values(t);
        } else {
            FUZZ_REQUIRE(args.error().file == "command line");
        }
    }
    cfd::fuzz::require_no_bug();
    return 0;
}
