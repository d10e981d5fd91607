// Parsing Go (RE2) regular expression syntax into the tree that ingress_regex.cc compiles.
#include <algorithm>
#include <cctype>
#include <optional>

#include "connector/ingress_regex_impl.h"

namespace cfd::connector::regex_impl {

namespace {

// RE2's limit: a counted repetition, or nested ones multiplied, may not exceed 1000 copies.
// Without it `(a{1,1000}){1,1000}` would compile to a million instructions.
constexpr long kMaxRepeat = 1000;
// Compiling and freeing the tree recurse once per level of groups.
constexpr size_t kMaxDepth = 100;

std::string err_at(size_t pos, std::string_view what) {
    return std::string(what) + " at offset " + std::to_string(pos);
}

void add_range(ByteSet* s, int lo, int hi) {
    for (int c = lo; c <= hi; ++c) {
        s->set(static_cast<size_t>(c));
    }
}

// Go's Perl classes are ASCII-only: \d [0-9], \w [0-9A-Za-z_], \s [\t\n\f\r ].
bool perl_class(char c, ByteSet* out) {
    ByteSet s;
    switch (std::tolower(static_cast<unsigned char>(c))) {
    case 'd': add_range(&s, '0', '9'); break;
    case 'w':
        add_range(&s, '0', '9');
        add_range(&s, 'A', 'Z');
        add_range(&s, 'a', 'z');
        s.set('_');
        break;
    case 's':
        for (char x : std::string_view("\t\n\f\r ")) {
            s.set(static_cast<unsigned char>(x));
        }
        break;
    default: return false;
    }
    *out = std::isupper(static_cast<unsigned char>(c)) ? ~s : s;
    return true;
}

// [[:name:]] classes, ASCII as in Go.
bool posix_class(std::string_view name, ByteSet* out) {
    ByteSet s;
    for (int c = 0; c < 128; ++c) {
        bool in = false;
        if (name == "alpha") {
            in = std::isalpha(c);
        } else if (name == "digit") {
            in = std::isdigit(c);
        } else if (name == "alnum") {
            in = std::isalnum(c);
        } else if (name == "upper") {
            in = std::isupper(c);
        } else if (name == "lower") {
            in = std::islower(c);
        } else if (name == "space") {
            in = std::isspace(c);
        } else if (name == "blank") {
            in = c == ' ' || c == '\t';
        } else if (name == "punct") {
            in = std::ispunct(c);
        } else if (name == "xdigit") {
            in = std::isxdigit(c);
        } else if (name == "cntrl") {
            in = std::iscntrl(c);
        } else if (name == "graph") {
            in = std::isgraph(c);
        } else if (name == "print") {
            in = std::isprint(c);
        } else if (name == "word") {
            in = std::isalnum(c) || c == '_';
        } else if (name == "ascii") {
            in = true;
        } else {
            return false;
        }
        s.set(static_cast<size_t>(c), in);
    }
    *out = s;
    return true;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

class Parser {
public:
    explicit Parser(std::string_view p) : p_(p) {}

    Result<Node, std::string> run();

private:
    struct Frame {
        std::vector<Node> alts;  // finished alternatives
        std::vector<Node> seq;   // the alternative being read
        long max_weight = 1;     // largest repetition product of anything inside the group
    };

    bool at_end() const { return i_ >= p_.size(); }
    char peek(size_t ahead = 0) const { return i_ + ahead < p_.size() ? p_[i_ + ahead] : '\0'; }

    // Under (?i) every set holds both cases; flags come first, so icase_ is known here.
    Node set_node(ByteSet s) const {
        if (icase_) {
            for (int c = 'a'; c <= 'z'; ++c) {
                if (s.test(static_cast<size_t>(c)) || s.test(static_cast<size_t>(c - 32))) {
                    s.set(static_cast<size_t>(c));
                    s.set(static_cast<size_t>(c - 32));
                }
            }
        }
        Node n;
        n.kind = Node::Kind::Set;
        n.set = s;
        return n;
    }
    Node byte_node(unsigned char c) const { return set_node(ByteSet().set(c)); }
    static Node kind_node(Node::Kind k) {
        Node n;
        n.kind = k;
        return n;
    }
    static Node finish(Frame* f) {
        f->alts.push_back(concat(std::move(f->seq)));
        if (f->alts.size() == 1) {
            return std::move(f->alts.front());
        }
        Node n = kind_node(Node::Kind::Alt);
        n.kids = std::move(f->alts);
        return n;
    }
    static Node concat(std::vector<Node> parts) {
        if (parts.size() == 1) {
            return std::move(parts.front());
        }
        Node n = kind_node(parts.empty() ? Node::Kind::Empty : Node::Kind::Concat);
        n.kids = std::move(parts);
        return n;
    }
    void atom(Node n, long weight) {
        frames_.back().seq.push_back(std::move(n));
        has_atom_ = true;
        after_quantifier_ = false;
        atom_weight_ = weight;
        note_weight(weight);
    }
    void note_weight(long w) {
        if (w > frames_.back().max_weight) {
            frames_.back().max_weight = w;
        }
    }
    std::optional<std::string> flags();
    std::optional<std::string> group();
    std::optional<std::string> escape();
    std::optional<std::string> bracket();
    std::optional<std::string> class_escape(ByteSet* set, int* single);
    std::optional<std::string> quantifier(long times, int min, int max);
    bool counted(long* lo, long* hi, size_t* len) const;
    std::optional<std::string> hex_escape(uint32_t* value);

    std::string_view p_;
    size_t i_ = 0;
    bool icase_ = false;
    bool dotall_ = false;
    bool has_atom_ = false;
    bool after_quantifier_ = false;
    long atom_weight_ = 1;
    std::vector<Frame> frames_{Frame{}};
};

std::optional<std::string> Parser::flags() {
    // Only at the start: (?i) (?s) (?is) (?si). Flags elsewhere would need scoping.
    size_t j = i_ + 2;
    bool i = false;
    bool s = false;
    while (j < p_.size() && (p_[j] == 'i' || p_[j] == 's')) {
        (p_[j] == 'i' ? i : s) = true;
        ++j;
    }
    if (j < p_.size() && p_[j] == ')' && j > i_ + 2) {
        if (i_ != 0) {
            return err_at(i_, "flags (?...) are supported only at the start of the pattern");
        }
        icase_ = i;
        dotall_ = s;
        i_ = j + 1;
        return std::nullopt;
    }
    return err_at(i_, "unsupported group syntax (only (?:...), (?P<name>...), (?i) and (?s))");
}

std::optional<std::string> Parser::group() {
    if (peek(1) == '?') {
        if (peek(2) == ':') {
            i_ += 3;
        } else if (peek(2) == 'P' || peek(2) == '<') {
            size_t open = i_ + (peek(2) == 'P' ? 3 : 2);
            size_t close = p_.find('>', open);
            if (open >= p_.size() || p_[open] != '<' || close == std::string_view::npos ||
                close == open + 1) {
                return err_at(i_, "bad group (only (?:...), (?P<name>...) and (?<name>...))");
            }
            for (size_t j = open + 1; j < close; ++j) {
                if (!std::isalnum(static_cast<unsigned char>(p_[j])) && p_[j] != '_') {
                    // Also what (?<=...) and (?<!...) run into: RE2 has no lookbehind.
                    return err_at(i_, "bad group name (lookaround is not supported)");
                }
            }
            i_ = close + 1;
        } else {
            return flags();
        }
    } else {
        ++i_;
    }
    if (frames_.size() > kMaxDepth) {
        return err_at(i_, "groups nested too deeply");
    }
    frames_.push_back(Frame{});
    has_atom_ = false;
    return std::nullopt;
}

std::optional<std::string> Parser::hex_escape(uint32_t* value) {
    // At `\x`: either \xHH or \x{H...}.
    size_t start = i_;
    i_ += 2;
    uint32_t v = 0;
    if (peek() == '{') {
        size_t close = p_.find('}', i_);
        if (close == std::string_view::npos || close == i_ + 1 || close - i_ > 7) {
            return err_at(start, "bad \\x{...} escape");
        }
        for (size_t j = i_ + 1; j < close; ++j) {
            int h = hex_value(p_[j]);
            if (h < 0) {
                return err_at(start, "bad \\x{...} escape");
            }
            v = v * 16 + static_cast<uint32_t>(h);
        }
        i_ = close + 1;
    } else {
        int h1 = hex_value(peek());
        int h2 = hex_value(peek(1));
        if (h1 < 0 || h2 < 0) {
            return err_at(start, "bad \\xHH escape");
        }
        v = static_cast<uint32_t>(h1 * 16 + h2);
        i_ += 2;
    }
    if (v == 0 || v > 0x10ffff) {
        return err_at(start, "\\x value out of range");
    }
    *value = v;
    return std::nullopt;
}

std::optional<std::string> Parser::escape() {
    size_t start = i_;
    if (i_ + 1 >= p_.size()) {
        return err_at(start, "trailing backslash");
    }
    char c = p_[i_ + 1];
    ByteSet set;
    if (perl_class(c, &set)) {
        i_ += 2;
        atom(set_node(set), 1);
        return std::nullopt;
    }
    if (c == 'x') {
        uint32_t v = 0;
        if (auto e = hex_escape(&v)) {
            return e;
        }
        if (v < 0x80) {
            atom(byte_node(static_cast<unsigned char>(v)), 1);
        } else {
            // Go means the character U+v: its UTF-8 bytes, as one node so that a quantifier
            // after it repeats all of them.
            std::string utf8;
            if (v < 0x800) {
                utf8 += static_cast<char>(0xc0 | (v >> 6));
            } else if (v < 0x10000) {
                utf8 += static_cast<char>(0xe0 | (v >> 12));
                utf8 += static_cast<char>(0x80 | ((v >> 6) & 0x3f));
            } else {
                utf8 += static_cast<char>(0xf0 | (v >> 18));
                utf8 += static_cast<char>(0x80 | ((v >> 12) & 0x3f));
                utf8 += static_cast<char>(0x80 | ((v >> 6) & 0x3f));
            }
            utf8 += static_cast<char>(0x80 | (v & 0x3f));
            std::vector<Node> bytes;
            for (char b : utf8) {
                bytes.push_back(byte_node(static_cast<unsigned char>(b)));
            }
            atom(concat(std::move(bytes)), 1);
        }
        return std::nullopt;
    }
    const char* control = nullptr;
    switch (c) {
    case 't': control = "\t"; break;
    case 'n': control = "\n"; break;
    case 'r': control = "\r"; break;
    case 'f': control = "\f"; break;
    case 'v': control = "\v"; break;
    case 'a': control = "\a"; break;
    default: break;
    }
    if (control != nullptr) {
        atom(byte_node(static_cast<unsigned char>(*control)), 1);
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
        return err_at(start, "backreferences (\\1 ...) are not supported");
    } else if (std::ispunct(static_cast<unsigned char>(c))) {
        atom(byte_node(static_cast<unsigned char>(c)), 1);
    } else {
        return err_at(start, std::string("unsupported escape '\\") + c + "'");
    }
    i_ += 2;
    return std::nullopt;
}

// One escape inside a class: a Perl class (added to `set`) or a single byte (`*single`).
std::optional<std::string> Parser::class_escape(ByteSet* set, int* single) {
    size_t start = i_;
    if (i_ + 1 >= p_.size()) {
        return err_at(start, "trailing backslash");
    }
    char c = p_[i_ + 1];
    ByteSet perl;
    *single = -1;
    if (perl_class(c, &perl)) {
        *set |= perl;
        i_ += 2;
        return std::nullopt;
    }
    if (c == 'x') {
        uint32_t v = 0;
        if (auto e = hex_escape(&v)) {
            return e;
        }
        if (v >= 0x80) {
            return err_at(start, "non-ASCII characters in a class are not supported");
        }
        *single = static_cast<int>(v);
        return std::nullopt;
    }
    switch (c) {
    case 't': *single = '\t'; break;
    case 'n': *single = '\n'; break;
    case 'r': *single = '\r'; break;
    case 'f': *single = '\f'; break;
    case 'v': *single = '\v'; break;
    case 'a': *single = '\a'; break;
    default:
        if (!std::ispunct(static_cast<unsigned char>(c))) {
            return err_at(start, std::string("unsupported escape '\\") + c + "' in a class");
        }
        *single = static_cast<unsigned char>(c);
    }
    i_ += 2;
    return std::nullopt;
}

std::optional<std::string> Parser::bracket() {
    size_t start = i_;
    ++i_;
    bool negated = false;
    if (peek() == '^') {
        negated = true;
        ++i_;
    }
    ByteSet set;
    bool first = true;
    for (;;) {
        if (at_end()) {
            return err_at(start, "missing closing ]");
        }
        char c = p_[i_];
        if (c == ']' && !first) {
            ++i_;
            break;
        }
        first = false;
        if (c == '[' && peek(1) == ':') {
            size_t close = p_.find(":]", i_ + 2);
            if (close == std::string_view::npos) {
                return err_at(i_, "bad [:class:]");
            }
            std::string_view name = p_.substr(i_ + 2, close - i_ - 2);
            bool neg = !name.empty() && name.front() == '^';
            ByteSet cls;
            if (!posix_class(neg ? name.substr(1) : name, &cls)) {
                return err_at(i_, "unknown class [:" + std::string(name) + ":]");
            }
            set |= neg ? ~cls : cls;
            i_ = close + 2;
            continue;
        }
        int lo = -1;
        if (c == '\\') {
            if (auto e = class_escape(&set, &lo)) {
                return e;
            }
            if (lo < 0) {
                continue;  // a Perl class: cannot start a range
            }
        } else {
            lo = static_cast<unsigned char>(c);
            ++i_;
        }
        if (lo >= 0x80) {
            return err_at(start, "non-ASCII characters in a class are not supported");
        }
        int hi = lo;
        if (peek() == '-' && peek(1) != ']' && i_ + 1 < p_.size()) {
            ++i_;
            if (peek() == '\\') {
                ByteSet ignored;
                if (auto e = class_escape(&ignored, &hi)) {
                    return e;
                }
                if (hi < 0) {
                    return err_at(start, "a class like \\d cannot end a range");
                }
            } else {
                hi = static_cast<unsigned char>(peek());
                ++i_;
            }
            if (hi >= 0x80) {
                return err_at(start, "non-ASCII characters in a class are not supported");
            }
            if (hi < lo) {
                return err_at(start, "bad range in class");
            }
        }
        add_range(&set, lo, hi);
    }
    if (negated) {
        set = ~set;  // all 256 bytes, NUL included, as Go's negated classes
    }
    if (set.none()) {
        return err_at(start, "class matches nothing");
    }
    atom(set_node(set), 1);
    return std::nullopt;
}

// {n} {n,} {n,m} at i_ (Go treats anything else starting with `{` as a literal).
bool Parser::counted(long* lo, long* hi, size_t* len) const {
    size_t j = i_ + 1;
    auto number = [&](long* v) {
        size_t s = j;
        *v = 0;
        while (j < p_.size() && std::isdigit(static_cast<unsigned char>(p_[j]))) {
            *v = std::min(*v * 10 + (p_[j] - '0'), kMaxRepeat + 1);  // too large either way
            ++j;
        }
        return j > s;
    };
    if (!number(lo)) {
        return false;
    }
    *hi = *lo;
    if (j < p_.size() && p_[j] == ',') {
        ++j;
        if (!number(hi)) {
            *hi = -1;  // open
        }
    }
    if (j >= p_.size() || p_[j] != '}') {
        return false;
    }
    *len = j + 1 - i_;
    return true;
}

std::optional<std::string> Parser::quantifier(long times, int min, int max) {
    if (!has_atom_) {
        return err_at(i_, "missing argument to repetition operator");
    }
    if (after_quantifier_) {
        return err_at(i_, "invalid nested repetition operator");
    }
    long w = atom_weight_ * times;
    if (w > kMaxRepeat) {
        return err_at(i_, "repetition count too large (at most 1000 in all)");
    }
    atom_weight_ = w;
    note_weight(w);
    Node& last = frames_.back().seq.back();
    Node rep = kind_node(Node::Kind::Repeat);
    rep.min = min;
    rep.max = max;
    rep.kids.push_back(std::move(last));
    last = std::move(rep);
    after_quantifier_ = true;
    if (peek() == '?') {
        ++i_;  // lazy: the same answer to "is there a match"
    }
    return std::nullopt;
}

Result<Node, std::string> Parser::run() {
    while (!at_end()) {
        char c = p_[i_];
        std::optional<std::string> e;
        switch (c) {
        case '\\': e = escape(); break;
        case '[': e = bracket(); break;
        case '(': e = group(); break;
        case ')': {
            if (frames_.size() == 1) {
                return err_at(i_, "unexpected )");
            }
            long w = frames_.back().max_weight;
            Node g = finish(&frames_.back());
            frames_.pop_back();
            ++i_;
            atom(std::move(g), w);
            break;
        }
        case '|': {
            Frame& f = frames_.back();
            f.alts.push_back(concat(std::move(f.seq)));
            f.seq.clear();
            ++i_;
            has_atom_ = false;
            after_quantifier_ = false;
            break;
        }
        case '^':
        case '$':
            frames_.back().seq.push_back(kind_node(c == '^' ? Node::Kind::Begin : Node::Kind::End));
            ++i_;
            has_atom_ = false;
            after_quantifier_ = false;
            break;
        case '.': {
            ByteSet any = ByteSet().set();
            if (!dotall_) {
                any.reset('\n');  // Go's `.` excludes \n unless (?s)
            }
            ++i_;
            atom(set_node(any), 1);
            break;
        }
        case '*':
            ++i_;
            e = quantifier(1, 0, -1);
            break;
        case '?':
            ++i_;
            e = quantifier(1, 0, 1);
            break;
        case '+':
            ++i_;
            e = quantifier(2, 1, -1);  // compiled as x x*: two copies
            break;
        case '{': {
            long lo = 0;
            long hi = 0;
            size_t len = 0;
            if (!counted(&lo, &hi, &len)) {
                ++i_;
                atom(byte_node('{'), 1);
                break;
            }
            if (lo > kMaxRepeat || hi > kMaxRepeat || (hi >= 0 && hi < lo)) {
                return err_at(i_, "bad repetition count");
            }
            i_ += len;
            e = quantifier(hi < 0 ? lo + 1 : (hi > 0 ? hi : 1), static_cast<int>(lo),
                           static_cast<int>(hi));
            break;
        }
        default:
            ++i_;
            atom(byte_node(static_cast<unsigned char>(c)), 1);
            break;
        }
        if (e) {
            return std::move(*e);
        }
    }
    if (frames_.size() != 1) {
        return std::string("missing closing )");
    }
    return finish(&frames_.back());
}

}  // namespace

Result<Node, std::string> parse(std::string_view pattern) {
    return Parser(pattern).run();
}

}  // namespace cfd::connector::regex_impl
