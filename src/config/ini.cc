#include "cfd/config/ini.h"

#include <ini.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace cfd::config {

std::string Diag::str() const {
    std::string s = file;
    if (line > 0) {
        s += ":" + std::to_string(line);
    }
    if (!key.empty()) {
        s += (s.empty() ? "" : ": ") + std::string("key '") + key + "'";
    }
    if (!message.empty()) {
        s += (s.empty() ? "" : ": ") + message;
    }
    return s;
}

namespace {

// inih hands lines to its handler one by one through our reader, so counting the lines we
// hand out gives the line of each entry without inih's INI_HANDLER_LINENO build option.
struct ParseState {
    std::string_view text;
    size_t pos = 0;
    int line = 0;
    int too_long_line = 0;
    IniFile* file = nullptr;
    std::vector<Entry>* entries = nullptr;
    std::vector<std::string>* sections = nullptr;
};

char* read_line(char* out, int num, void* stream) {
    auto* st = static_cast<ParseState*>(stream);
    if (st->pos >= st->text.size()) {
        return nullptr;
    }
    size_t end = st->text.find('\n', st->pos);
    size_t next = end == std::string_view::npos ? st->text.size() : end + 1;
    size_t len = next - st->pos;
    ++st->line;
    if (len + 1 > static_cast<size_t>(num)) {
        if (st->too_long_line == 0) {
            st->too_long_line = st->line;
        }
        len = static_cast<size_t>(num) - 1;  // inih sees a truncated line; we refuse the file
    }
    std::memcpy(out, st->text.data() + st->pos, len);
    out[len] = '\0';
    st->pos = next;
    return out;
}

void note_section(ParseState* st, const char* section) {
    if (st->sections->empty() || st->sections->back() != section) {
        for (const std::string& s : *st->sections) {
            if (s == section) {
                return;
            }
        }
        st->sections->emplace_back(section);
    }
}

int on_entry(void* user, const char* section, const char* name, const char* value) {
    auto* st = static_cast<ParseState*>(user);
    note_section(st, section);
    st->entries->push_back(Entry{section, name, value ? value : "", st->line});
    return 1;
}

}  // namespace

Result<IniFile, Diag> IniFile::parse(std::string_view text, std::string_view name) {
    IniFile f;
    f.name_ = std::string(name);
    ParseState st;
    st.text = text;
    st.file = &f;
    st.entries = &f.entries_;
    st.sections = &f.sections_;
    int rc = ini_parse_stream(read_line, &st, on_entry, &st);
    if (st.too_long_line > 0) {
        return Diag{f.name_, st.too_long_line, "", "line too long"};
    }
    if (rc > 0) {
        return Diag{f.name_, rc, "", "syntax error (expected [section] or key = value)"};
    }
    if (rc < 0) {
        return Diag{f.name_, 0, "", "cannot parse"};
    }
    return f;
}

Result<IniFile, Diag> IniFile::load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return Diag{path, 0, "", std::strerror(errno)};
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse(ss.str(), path);
}

const Entry* IniFile::find(std::string_view section, std::string_view key) const {
    const Entry* found = nullptr;
    for (const Entry& e : entries_) {
        if (e.section == section && e.key == key) {
            found = &e;
        }
    }
    return found;
}

bool split_section(std::string_view section, std::string* kind, std::string* name) {
    size_t sp = section.find(' ');
    if (sp == std::string_view::npos) {
        *kind = std::string(section);
        name->clear();
        return section.find('"') == std::string_view::npos;
    }
    *kind = std::string(section.substr(0, sp));
    std::string_view rest = section.substr(sp + 1);
    while (!rest.empty() && rest.front() == ' ') {
        rest.remove_prefix(1);
    }
    if (rest.size() < 2 || rest.front() != '"' || rest.back() != '"') {
        return false;
    }
    *name = std::string(rest.substr(1, rest.size() - 2));
    return name->find('"') == std::string::npos;
}

Result<void, Diag> check_sections(const IniFile& file,
                                  std::initializer_list<std::string_view> kinds) {
    for (const Entry& e : file.entries()) {
        std::string kind, name;
        bool ok = split_section(e.section, &kind, &name);
        bool known = false;
        for (std::string_view k : kinds) {
            known = known || kind == k;
        }
        if (!ok || !known) {
            std::string expected;
            for (std::string_view k : kinds) {
                expected += (expected.empty() ? "[" : ", [") + std::string(k) + "]";
            }
            return Diag{file.name(), e.line, e.key,
                        "unknown section [" + e.section + "] (expected " + expected + ")"};
        }
    }
    return {};
}

}  // namespace cfd::config
