#include "cli/api_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "cfd/config/ini.h"
#include "cfd/core/numbers.h"
#include "cfd/http1/parser.h"
#include "cfd/http1/writer.h"

namespace cfd::cli {

namespace {

constexpr int kConnectTimeoutMs = 5000;
constexpr int kReplyTimeoutMs = 30000;
constexpr size_t kMaxReply = 16 << 20;

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

std::string sys_text(const char* what, int err) {
    return std::string(what) + ": " + std::strerror(err);
}

// A connected, blocking-with-deadline socket to host:port, or a sentence saying why not.
Result<int, std::string> dial(const ApiEndpoint& api) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::string port = std::to_string(api.port);
    int rc = getaddrinfo(api.host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0) {
        return std::string("cannot resolve ") + api.host + ": " + gai_strerror(rc);
    }
    std::string last = "no address";
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last = sys_text("socket", errno);
            continue;
        }
        if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            int err = 0;
            socklen_t len = sizeof err;
            if (::poll(&p, 1, kConnectTimeoutMs) == 1 &&
                ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
                freeaddrinfo(res);
                return fd;
            }
            last = err ? std::strerror(err) : "timed out";
        } else {
            last = std::strerror(errno);
        }
        ::close(fd);
    }
    freeaddrinfo(res);
    return last;
}

Result<void, std::string> send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            pollfd p{fd, POLLOUT, 0};
            if (::poll(&p, 1, kReplyTimeoutMs) != 1) {
                return std::string("timed out sending the request");
            }
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return sys_text("send", errno);
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return {};
}

}  // namespace

std::string ApiResponse::error_text() const {
    std::string e = body.get_string("error");
    return e.empty() ? "HTTP " + std::to_string(status) : e;
}

std::string home_dir() {
    const char* h = std::getenv("HOME");
    if (h != nullptr && *h != '\0') {
        return h;
    }
    passwd* pw = getpwuid(getuid());
    return pw ? pw->pw_dir : "/";
}

Result<ApiEndpoint, std::string> parse_api_url(std::string_view url) {
    ApiEndpoint e;
    e.url = std::string(url);
    std::string_view rest = url;
    if (rest.starts_with("http://")) {
        rest.remove_prefix(7);
    } else if (rest.find("://") != std::string_view::npos) {
        return "the API URL must be http://HOST:PORT, not " + std::string(url);
    }
    while (!rest.empty() && rest.back() == '/') {
        rest.remove_suffix(1);
    }
    std::string_view host = rest;
    std::string_view port;
    if (rest.starts_with("[")) {  // [::1]:7845
        size_t close = rest.find(']');
        if (close == std::string_view::npos) {
            return "bad IPv6 address in API URL " + std::string(url);
        }
        host = rest.substr(1, close - 1);
        std::string_view after = rest.substr(close + 1);
        if (after.starts_with(":")) {
            port = after.substr(1);
        } else if (!after.empty()) {
            return "bad API URL " + std::string(url);
        }
    } else if (size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
    }
    if (!port.empty() || rest.ends_with(":")) {
        uint64_t p = 0;
        if (!parse_uint(port, 65535, &p) || p == 0) {
            return "bad port in API URL " + std::string(url);
        }
        e.port = static_cast<uint16_t>(p);
    }
    if (host.empty()) {
        return "no host in API URL " + std::string(url);
    }
    e.host = std::string(host);
    return e;
}

Result<ApiEndpoint, std::string> find_api(const std::string& flag_api,
                                          const std::string& flag_token) {
    std::string api = flag_api;
    std::string token = flag_token;
    const char* env_api = std::getenv("CFDTUNNEL_API");
    const char* env_token = std::getenv("CFDTUNNEL_API_TOKEN");
    if (api.empty() && env_api != nullptr) {
        api = env_api;
    }
    if (token.empty() && env_token != nullptr) {
        token = env_token;
    }
    if (api.empty() || token.empty()) {
        std::string path = home_dir() + "/.cfdtunnel/cli.ini";
        if (::access(path.c_str(), F_OK) == 0) {
            auto f = config::IniFile::load(path);
            if (!f) {
                return f.error().str();
            }
            if (const config::Entry* e = f->find("cli", "api"); e && api.empty()) {
                api = e->value;
            }
            if (const config::Entry* e = f->find("cli", "token"); e && token.empty()) {
                token = e->value;
            }
        }
    }
    if (api.empty()) {
        api = "http://127.0.0.1:7845";
    }
    auto e = parse_api_url(api);
    if (!e) {
        return e.error();
    }
    if (token.empty()) {
        return std::string("no API token: pass --api-token, set CFDTUNNEL_API_TOKEN, or run "
                           "`cfdtunnel login --api URL --token TOKEN` (the edge writes its "
                           "token to api-token next to its store)");
    }
    e->token = token;
    return e;
}

std::string path_escape(std::string_view segment) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (char c : segment) {
        auto u = static_cast<unsigned char>(c);
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~' || c == '*';
        if (plain) {
            out.push_back(c);
        } else {
            out.push_back('%');
            out.push_back(kHex[u >> 4]);
            out.push_back(kHex[u & 15]);
        }
    }
    return out;
}

Result<ApiResponse, std::string> api_call(const ApiEndpoint& api, std::string_view method,
                                          std::string_view path, const json::Value* body) {
    std::string payload = body ? json::write(*body) : std::string();
    http1::Headers headers{{"Authorization", "Bearer " + api.token},
                           {"Accept", "application/json"},
                           {"Connection", "close"}};
    if (body) {
        headers.push_back({"Content-Type", "application/json"});
    }
    std::string authority = api.host.find(':') != std::string::npos
                                ? "[" + api.host + "]:" + std::to_string(api.port)
                                : api.host + ":" + std::to_string(api.port);
    std::string request;
    auto framing = body ? http1::Framing::content_length(payload.size()) : http1::Framing::none();
    if (auto w = http1::write_request_head(request, method, path, authority, headers, framing);
        !w) {
        return std::string("cannot write the request for ") + std::string(path);
    }
    request += payload;

    auto fd = dial(api);
    if (!fd) {
        return "cannot reach the edge's management API at " + api.url + ": " + fd.error();
    }
    Fd sock(*fd);
    if (auto s = send_all(sock.get(), request); !s) {
        return "management API at " + api.url + ": " + s.error();
    }

    http1::ResponseParser parser;
    parser.set_request_method(method);
    ApiResponse out;
    std::string body_text;
    std::string buf;
    char chunk[16384];
    bool done = false;
    while (!done) {
        pollfd p{sock.get(), POLLIN, 0};
        if (::poll(&p, 1, kReplyTimeoutMs) != 1) {
            return "management API at " + api.url + " did not answer in time";
        }
        ssize_t n = ::recv(sock.get(), chunk, sizeof chunk, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n < 0) {
            return "management API at " + api.url + ": " + sys_text("recv", errno);
        }
        buf.append(chunk, static_cast<size_t>(n));
        std::string_view in = buf;
        for (;;) {
            http1::Step s = n == 0 && in.empty() ? parser.finish() : parser.feed(in);
            in.remove_prefix(parser.consumed());
            if (s == http1::Step::NeedMore) {
                if (n == 0) {
                    return "management API at " + api.url + " closed the connection early";
                }
                break;
            }
            if (s == http1::Step::HeadDone) {
                out.status = parser.head().status;
            } else if (s == http1::Step::Body) {
                body_text.append(parser.body());
                if (body_text.size() > kMaxReply) {
                    return std::string("management API reply too large");
                }
            } else if (s == http1::Step::MessageDone && !parser.head().interim()) {
                done = true;
                break;
            } else if (s == http1::Step::Error || s == http1::Step::Closed ||
                       s == http1::Step::Upgrade) {
                return "management API at " + api.url + " sent a malformed reply";
            }
        }
        buf.erase(0, buf.size() - in.size());
    }
    if (!body_text.empty()) {
        auto v = json::parse(body_text);
        if (!v) {
            return "management API at " + api.url + " sent a reply that is not JSON (HTTP " +
                   std::to_string(out.status) + ")";
        }
        out.body = std::move(*v);
    }
    if (out.status == 401) {
        return std::string("the management API refused the token (401): check --api-token or "
                           "`cfdtunnel login`");
    }
    return out;
}

}  // namespace cfd::cli
