// INI files through inih, kept in file order with the line of every entry, so that every
// configuration error can name the file, the line and the key.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "cfd/core/result.h"

namespace cfd::config {

// A configuration problem, printed as "FILE:LINE: KEY: MESSAGE" (parts that are unknown are
// left out). Flags are reported with file "command line".
struct Diag {
    std::string file;
    int line = 0;
    std::string key;
    std::string message;

    std::string str() const;
};

struct Entry {
    std::string section;  // e.g. `edge`, or `tls "example.com"` for a named section
    std::string key;
    std::string value;
    int line = 0;
};

class IniFile {
public:
    // Reads and parses a file; a missing file is an error with errno's text.
    static Result<IniFile, Diag> load(const std::string& path);
    // Parses text; `name` is used in diagnostics.
    static Result<IniFile, Diag> parse(std::string_view text, std::string_view name);

    const std::string& name() const { return name_; }
    const std::vector<Entry>& entries() const { return entries_; }
    // Section names that have entries, in file order, each once.
    const std::vector<std::string>& sections() const { return sections_; }
    // The last value of `key` in `section`, or nullptr.
    const Entry* find(std::string_view section, std::string_view key) const;

private:
    std::string name_;
    std::vector<Entry> entries_;
    std::vector<std::string> sections_;
};

// Splits `tls "example.com"` into kind `tls` and name `example.com`; a plain section has an
// empty name. Returns false when the quoting is malformed.
bool split_section(std::string_view section, std::string* kind, std::string* name);

// Every section of `file` must be of one of `kinds` (`ingress` allows [ingress "NAME"]): a
// misspelt section would otherwise be ignored in silence. The error names file, line, section.
Result<void, Diag> check_sections(const IniFile& file,
                                  std::initializer_list<std::string_view> kinds);

}  // namespace cfd::config
