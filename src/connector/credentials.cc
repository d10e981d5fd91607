#include "cfd/connector/credentials.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "cfd/core/base64.h"
#include "cfd/core/json.h"
#include "cfd/core/log.h"

namespace cfd::connector {

namespace {

Result<Credentials> from_fields(const json::Value& v, const char* tag_key, const char* secret_key,
                                const char* id_key) {
    if (!v.is_object()) {
        return Err{Errc::Invalid, 0, "credentials are not a JSON object"};
    }
    Credentials c;
    c.account_tag = v.get_string(tag_key);
    auto secret = base64_decode(v.get_string(secret_key));
    auto id = Uuid::parse(v.get_string(id_key));
    if (c.account_tag.empty() || !secret || secret->empty() || !id) {
        return Err{Errc::Invalid, 0, "credentials miss the account tag, secret or tunnel ID"};
    }
    c.secret = std::move(*secret);
    c.tunnel_id = *id;
    return c;
}

json::Value to_fields(const Credentials& c, const char* tag_key, const char* secret_key,
                      const char* id_key) {
    json::Value v = json::Value::object();
    v.set(tag_key, json::Value::string(c.account_tag));
    v.set(secret_key, json::Value::string(base64_encode(c.secret)));
    v.set(id_key, json::Value::string(c.tunnel_id.str()));
    return v;
}

}  // namespace

std::string credentials_json(const Credentials& c) {
    return json::write(to_fields(c, "AccountTag", "TunnelSecret", "TunnelID"));
}

Result<Credentials> parse_credentials_json(std::string_view text) {
    auto v = json::parse(text);
    if (!v) {
        return Err{Errc::Invalid, 0, "credentials file is not valid JSON"};
    }
    return from_fields(*v, "AccountTag", "TunnelSecret", "TunnelID");
}

std::string make_token(const Credentials& c) {
    return base64_encode(json::write(to_fields(c, "a", "s", "t")));
}

Result<Credentials> parse_token(std::string_view token) {
    while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) {
        token.remove_suffix(1);
    }
    auto raw = base64_decode(token);
    if (!raw) {
        return Err{Errc::Invalid, 0, "token is not base64"};
    }
    auto v = json::parse(*raw);
    if (!v) {
        return Err{Errc::Invalid, 0, "token is not valid JSON"};
    }
    return from_fields(*v, "a", "s", "t");
}

Result<Credentials> read_credentials_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return Err{Errc::Syscall, errno, "open credentials file"};
    }
    struct stat st {};
    if (::fstat(fd, &st) == 0 && (st.st_mode & 077) != 0) {
        log::warn("credentials file is readable by others; chmod 0400 it", {{"path", path}});
    }
    std::string text;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > 64 * 1024) {
            ::close(fd);
            return Err{Errc::Invalid, 0, "credentials file too large"};
        }
    }
    ::close(fd);
    return parse_credentials_json(text);
}

Result<std::string> write_credentials_file(const Credentials& c, const std::string& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
    if (fd < 0) {
        return Err{Errc::Syscall, errno, "create credentials file"};
    }
    std::string text = credentials_json(c) + "\n";
    // The umask cannot widen 0400, but make the mode exact whatever the umask was.
    ::fchmod(fd, 0400);
    const char* p = text.data();
    size_t left = text.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int e = errno;
            ::close(fd);
            ::unlink(path.c_str());
            return Err{Errc::Syscall, e, "write credentials file"};
        }
        p += n;
        left -= static_cast<size_t>(n);
    }
    if (::close(fd) != 0) {
        return Err{Errc::Syscall, errno, "close credentials file"};
    }
    return path;
}

}  // namespace cfd::connector
