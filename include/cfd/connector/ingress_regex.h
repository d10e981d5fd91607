// Path regular expressions of ingress rules, written in Go's (RE2) syntax as cloudflared users
// write them, matched in time linear in the path and memory bounded by the pattern.
//
// Why our own matcher: paths come from the network, so matching must be bounded.
//   - std::regex (libstdc++) backtracks recursively and overflows the stack on long inputs.
//   - glibc's regexec is not bounded either (measured): an unanchored search restarts at every
//     offset, so `x+x+y` against 16 KiB of `x` takes seconds; anchoring it helps, but its lazy
//     DFA caches every state set it meets without limit, so `a[ab]{20}c` against 16 KiB of
//     random a/b takes 0.6 s and keeps 40 MB, growing with every request.
// So patterns compile to a Thompson NFA program, run as a Pike VM without captures: every
// byte of the path advances each live instruction once, O(path x program), no recursion, no
// cache. Programs are capped at kMaxProgram instructions, which bounds the cost per byte.
//
// Syntax (everything else is refused with a message, never silently mis-matched):
//   literals, `.`, `^`, `$`, `|`, groups `(...)`, `(?:...)`, `(?P<name>...)`, `(?<name>...)`,
//   `* + ?` and `{n}`, `{n,}`, `{n,m}` (counts up to 1000, nested products up to 1000 as RE2),
//   lazy forms (`*?` ...: same answer to "does it match"), classes `[a-z]`, `[^/]`,
//   `[[:alpha:]]`, Perl classes `\d \D \w \W \s \S` (ASCII, as Go), escapes `\. \/ \t \n \xHH`
//   `\x{HHHH}`, and the flags `(?i)` `(?s)` `(?is)` at the very start of the pattern.
// Refused: backreferences `\1` (RE2 has none), `\b \B \A \z \pL \Q`, lookaround and other
// `(?` forms, non-ASCII characters inside classes. Matching is byte-wise where Go's is
// rune-wise; the two differ only where `.` or a negated class must match exactly one
// multi-byte character (`^/.$` matches `/é` in Go, not here).
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cfd/core/result.h"

namespace cfd::connector {

class PathRegex {
public:
    // Instructions per program: a path byte costs at most this many steps.
    static constexpr size_t kMaxProgram = 1000;

    static Result<PathRegex, std::string> compile(std::string_view go_pattern);

    // Unanchored search as Go's MatchString: true when the pattern matches anywhere in `s`.
    // Const and thread-safe; allocates three small arrays sized by the program per call.
    bool matches(std::string_view s) const;

    const std::string& source() const { return source_; }  // as written in the config
    size_t program_size() const { return prog_.size(); }

private:
    struct Inst {
        enum class Op : uint8_t { Byte, Split, Jmp, Begin, End, Match };
        Op op = Op::Match;
        uint32_t x = 0;        // next instruction (Byte, Jmp, Begin, End), first branch (Split)
        uint32_t y = 0;        // second branch (Split)
        std::bitset<256> set;  // Byte: the bytes that let a thread through
    };
    friend class RegexCompiler;

    // Adds the threads reachable from `pc` without consuming input at offset `pos` of a
    // `len`-byte path. Returns true when one of them reaches Match.
    bool add_thread(uint32_t pc, size_t pos, size_t len, uint32_t mark_value,
                    std::vector<uint32_t>* list, std::vector<uint32_t>* marks,
                    std::vector<uint32_t>* stack) const;

    std::string source_;
    std::vector<Inst> prog_;
    bool start_only_at_0_ = false;  // the pattern begins with `^`: no thread starts later
};

}  // namespace cfd::connector
