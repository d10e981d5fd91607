// Compiling a parsed path regex to a Thompson NFA program, and running it as a Pike VM.
#include "cfd/connector/ingress_regex.h"

#include <limits>

#include "connector/ingress_regex_impl.h"

namespace cfd::connector {

using regex_impl::Node;

// Lays out a tree as a program in which every piece falls through to the next instruction.
class RegexCompiler {
public:
    using Inst = PathRegex::Inst;
    using Op = Inst::Op;

    explicit RegexCompiler(std::vector<Inst>* prog) : prog_(prog) {}

    // False when the program would grow past PathRegex::kMaxProgram.
    bool emit(const Node& n) {
        if (prog_->size() >= PathRegex::kMaxProgram) {
            return false;
        }
        switch (n.kind) {
        case Node::Kind::Empty: return true;
        case Node::Kind::Set: {
            uint32_t at = add(Op::Byte);
            (*prog_)[at].set = n.set;
            return true;
        }
        case Node::Kind::Begin: add(Op::Begin); return true;
        case Node::Kind::End: add(Op::End); return true;
        case Node::Kind::Concat:
            for (const Node& k : n.kids) {
                if (!emit(k)) {
                    return false;
                }
            }
            return true;
        case Node::Kind::Alt: return alt(n);
        case Node::Kind::Repeat: return repeat(n);
        }
        return false;
    }

    void finish() { add(Op::Match); }

private:
    uint32_t here() const { return static_cast<uint32_t>(prog_->size()); }

    // Appends `op` pointing at the next instruction (Split's second branch is patched later).
    uint32_t add(Op op) {
        uint32_t at = here();
        Inst in;
        in.op = op;
        in.x = at + 1;
        prog_->push_back(in);
        return at;
    }

    // a|b|c: Split(a, Split(b, c)), each branch jumping past the rest.
    bool alt(const Node& n) {
        std::vector<uint32_t> exits;
        for (size_t i = 0; i + 1 < n.kids.size(); ++i) {
            uint32_t split = add(Op::Split);
            if (!emit(n.kids[i])) {
                return false;
            }
            exits.push_back(add(Op::Jmp));
            (*prog_)[split].y = here();
        }
        if (!emit(n.kids.back())) {
            return false;
        }
        for (uint32_t j : exits) {
            (*prog_)[j].x = here();
        }
        return true;
    }

    // x{min,max}: min copies, then a loop (no max) or max-min nested optional copies.
    bool repeat(const Node& n) {
        const Node& kid = n.kids.front();
        for (int i = 0; i < n.min; ++i) {
            if (!emit(kid)) {
                return false;
            }
        }
        if (n.max < 0) {
            uint32_t split = add(Op::Split);
            if (!emit(kid)) {
                return false;
            }
            uint32_t back = add(Op::Jmp);
            (*prog_)[back].x = split;
            (*prog_)[split].y = here();
            return true;
        }
        std::vector<uint32_t> skips;
        for (int i = n.min; i < n.max; ++i) {
            skips.push_back(add(Op::Split));
            if (!emit(kid)) {
                return false;
            }
        }
        for (uint32_t s : skips) {
            (*prog_)[s].y = here();
        }
        return true;
    }

    std::vector<Inst>* prog_;
};

Result<PathRegex, std::string> PathRegex::compile(std::string_view go_pattern) {
    if (go_pattern.find('\0') != std::string_view::npos) {
        return std::string("NUL byte in pattern");
    }
    auto tree = regex_impl::parse(go_pattern);
    if (!tree) {
        return tree.error();
    }
    PathRegex r;
    r.source_ = std::string(go_pattern);
    RegexCompiler c(&r.prog_);
    if (!c.emit(*tree) || r.prog_.size() >= kMaxProgram) {
        return "pattern too large (more than " + std::to_string(kMaxProgram) +
               " instructions once repetitions are expanded)";
    }
    c.finish();
    // Can a thread that starts after offset 0 ever do anything? Not when every path from the
    // start needs `^`; then matching stops as soon as no thread is left (e.g. `^/api/`).
    std::vector<uint32_t> list;
    std::vector<uint32_t> marks(r.prog_.size(), 0);
    std::vector<uint32_t> stack;
    bool midway = r.add_thread(0, 1, 3, 1, &list, &marks, &stack) || !list.empty();
    bool at_end = r.add_thread(0, 1, 1, 2, &list, &marks, &stack);
    r.start_only_at_0_ = !midway && !at_end;
    return r;
}

bool PathRegex::add_thread(uint32_t pc, size_t pos, size_t len, uint32_t mark_value,
                           std::vector<uint32_t>* list, std::vector<uint32_t>* marks,
                           std::vector<uint32_t>* stack) const {
    using Op = Inst::Op;
    stack->clear();
    stack->push_back(pc);
    while (!stack->empty()) {
        uint32_t p = stack->back();
        stack->pop_back();
        // Each instruction is followed once per offset: epsilon loops such as (a*)* end here.
        if ((*marks)[p] == mark_value) {
            continue;
        }
        (*marks)[p] = mark_value;
        const Inst& in = prog_[p];
        switch (in.op) {
        case Op::Match: return true;
        case Op::Byte: list->push_back(p); break;
        case Op::Jmp: stack->push_back(in.x); break;
        case Op::Split:
            stack->push_back(in.y);
            stack->push_back(in.x);
            break;
        case Op::Begin:
            if (pos == 0) {
                stack->push_back(in.x);
            }
            break;
        case Op::End:
            if (pos == len) {
                stack->push_back(in.x);
            }
            break;
        }
    }
    return false;
}

bool PathRegex::matches(std::string_view s) const {
    if (prog_.empty() || s.size() >= std::numeric_limits<uint32_t>::max() - 2) {
        return false;
    }
    const size_t len = s.size();
    std::vector<uint32_t> current;
    std::vector<uint32_t> next;
    std::vector<uint32_t> stack;
    current.reserve(prog_.size());
    next.reserve(prog_.size());
    stack.reserve(2 * prog_.size() + 1);
    // marks[pc] == pos + 1: pc is already in the list for offset pos.
    std::vector<uint32_t> marks(prog_.size(), 0);
    if (add_thread(0, 0, len, 1, &current, &marks, &stack)) {
        return true;
    }
    for (size_t pos = 0; pos < len; ++pos) {
        if (current.empty() && start_only_at_0_) {
            return false;
        }
        const auto byte = static_cast<unsigned char>(s[pos]);
        const auto mark = static_cast<uint32_t>(pos + 2);
        next.clear();
        for (uint32_t pc : current) {
            const Inst& in = prog_[pc];
            if (in.set.test(byte) && add_thread(in.x, pos + 1, len, mark, &next, &marks, &stack)) {
                return true;
            }
        }
        // Unanchored: a match may also start at every offset (Go's implicit leading `.*?`).
        if (!start_only_at_0_ && add_thread(0, pos + 1, len, mark, &next, &marks, &stack)) {
            return true;
        }
        current.swap(next);
    }
    return false;
}

}  // namespace cfd::connector
