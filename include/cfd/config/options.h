// Named, typed options shared by the INI file and the command line: every key of a role's
// INI section is also a flag of the same name (`workers = 4` in [edge] == `--workers 4`).
// Flags win over the file. Every problem is a Diag naming the file (or "command line"), the
// line and the key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cfd/config/ini.h"
#include "cfd/core/duration.h"
#include "cfd/core/result.h"

namespace cfd::config {

// The command line split into flags and positional arguments, before any is applied.
struct Args {
    std::vector<std::pair<std::string, std::string>> flags;  // name without dashes, value
    std::vector<std::string> positionals;
};

class OptionSet {
public:
    // Targets must outlive the OptionSet; their current values are the defaults.
    void add_string(std::string_view name, std::string* target, std::string_view help);
    void add_int(std::string_view name, int64_t* target, int64_t min, int64_t max,
                 std::string_view help);
    void add_bool(std::string_view name, bool* target, std::string_view help);
    void add_duration(std::string_view name, Millis* target, std::string_view help);
    // Repeatable; the command line replaces (not extends) what the file said.
    void add_list(std::string_view name, std::vector<std::string>* target, std::string_view help);
    // A short alias such as "o" for "output".
    void add_alias(std::string_view alias, std::string_view name);

    // Splits argv[start..] into flags and positionals. `--name value`, `--name=value`, `-o v`;
    // a boolean flag takes no value unless written `--name=false`. `--` ends the flags.
    Result<Args, Diag> split(int argc, char** argv, int start) const;
    // Applies every key of `section` in `file`; unknown keys are errors.
    Result<void, Diag> apply_file(const IniFile& file, std::string_view section);
    Result<void, Diag> apply_args(const Args& args);
    Result<void, Diag> set(std::string_view name, std::string_view value, const std::string& file,
                           int line);

    bool was_set(std::string_view name) const;
    bool has(std::string_view name) const { return find(name) != nullptr; }
    // One line per option: "  --name VALUE   help (default: ...)".
    std::string usage() const;

private:
    enum class Kind : uint8_t { String, Int, Bool, Duration, List };
    struct Option {
        std::string name;
        std::string help;
        Kind kind;
        void* target;
        int64_t min = 0;
        int64_t max = 0;
        std::string default_text;
        bool set = false;
        bool set_by_args = false;
    };
    Option* find(std::string_view name);
    const Option* find(std::string_view name) const;
    std::string resolve(std::string_view name) const;

    std::vector<Option> options_;
    std::vector<std::pair<std::string, std::string>> aliases_;
};

// Parses "true/false/yes/no/on/off/1/0".
bool parse_bool(std::string_view s, bool* out);

}  // namespace cfd::config
