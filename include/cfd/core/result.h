// Result<T>: a minimal std::expected<T, Error> look-alike, so that moving to C++23 is a rename.
// No exceptions in project code: every fallible function returns a Result and is [[nodiscard]].
#pragma once

#include <cstdint>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include "cfd/core/assert.h"

namespace cfd {

enum class Errc : uint8_t {
    Ok = 0,
    Syscall,       // `sys` holds errno
    Invalid,       // bad argument or bad input
    Protocol,      // peer broke the protocol
    Tls,           // TLS failure; `sys` holds the library's error code
    Closed,        // the peer or the object is gone
    TimedOut,
    Busy,          // a bounded queue or limit is full
    NotFound,
    Unsupported,   // kernel or library lacks a feature
    Unauthorized,
    Exists,
    Config,        // configuration error; logged with file:line:key by the loader
};

const char* errc_name(Errc c);

struct Error {
    Errc code = Errc::Ok;
    int sys = 0;              // errno or a library code, when the code says so
    const char* op = "";      // static string naming what failed, e.g. "socket"

    // "socket: Permission denied" style text for logs.
    std::string message() const;
};

// Err{...} plays the role of std::unexpected.
struct Err {
    Error error;
    Err(Errc c, int s = 0, const char* o = "") : error{c, s, o} {}
    Err(Error e) : error(e) {}  // NOLINT(google-explicit-constructor)
};

// E is Error everywhere except where an error must carry text (configuration diagnostics).
template <class T, class E = Error>
class [[nodiscard]] Result {
public:
    Result(T v) : ok_(true) { new (&value_) T(std::move(v)); }  // NOLINT
    template <class U = E, std::enable_if_t<std::is_same_v<U, Error>, int> = 0>
    Result(Err e) : ok_(false), error_(e.error) {}  // NOLINT
    Result(E e) : ok_(false), error_(std::move(e)) {}  // NOLINT
    Result(const Result& o) : ok_(o.ok_), error_(o.error_) {
        if (ok_) {
            new (&value_) T(o.value_);
        }
    }
    Result(Result&& o) noexcept : ok_(o.ok_), error_(std::move(o.error_)) {
        if (ok_) {
            new (&value_) T(std::move(o.value_));
        }
    }
    Result& operator=(Result o) noexcept {
        this->~Result();
        new (this) Result(std::move(o));
        return *this;
    }
    ~Result() {
        if (ok_) {
            value_.~T();
        }
    }

    bool has_value() const { return ok_; }
    explicit operator bool() const { return ok_; }

    T& value() & {
        CFD_CHECK(ok_);
        return value_;
    }
    const T& value() const& {
        CFD_CHECK(ok_);
        return value_;
    }
    T&& value() && {
        CFD_CHECK(ok_);
        return std::move(value_);
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const E& error() const {
        CFD_CHECK(!ok_);
        return error_;
    }

private:
    bool ok_;
    E error_{};
    union {
        T value_;
    };
};

template <class E>
class [[nodiscard]] Result<void, E> {
public:
    Result() = default;
    template <class U = E, std::enable_if_t<std::is_same_v<U, Error>, int> = 0>
    Result(Err e) : ok_(false), error_(e.error) {}  // NOLINT
    Result(E e) : ok_(false), error_(std::move(e)) {}  // NOLINT

    bool has_value() const { return ok_; }
    explicit operator bool() const { return ok_; }
    void value() const { CFD_CHECK(ok_); }
    const E& error() const {
        CFD_CHECK(!ok_);
        return error_;
    }

private:
    bool ok_ = true;
    E error_{};
};

using Status = Result<void>;

}  // namespace cfd
