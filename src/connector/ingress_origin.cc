// originRequest options: cloudflared's names (config/configuration.go OriginRequestConfig).
#include "cfd/config/options.h"
#include "cfd/connector/ingress.h"
#include "cfd/connector/proxy_protocol.h"
#include "cfd/core/numbers.h"

namespace cfd::connector {

namespace {

enum class Type : uint8_t { Duration, Bool, Int, Port, String };

struct Option {
    std::string_view name;
    Type type;
    // The member the option sets; only the one of its type is non-null.
    Millis OriginRequest::*duration = nullptr;
    bool OriginRequest::*flag = nullptr;
    int OriginRequest::*number = nullptr;
    uint16_t OriginRequest::*port = nullptr;
    std::string OriginRequest::*text = nullptr;
};

// The type follows from the member's type, so the table below cannot pair them wrongly.
constexpr Option opt(std::string_view name, Millis OriginRequest::*m) {
    Option o{name, Type::Duration};
    o.duration = m;
    return o;
}
constexpr Option opt(std::string_view name, bool OriginRequest::*m) {
    Option o{name, Type::Bool};
    o.flag = m;
    return o;
}
constexpr Option opt(std::string_view name, int OriginRequest::*m) {
    Option o{name, Type::Int};
    o.number = m;
    return o;
}
constexpr Option opt(std::string_view name, uint16_t OriginRequest::*m) {
    Option o{name, Type::Port};
    o.port = m;
    return o;
}
constexpr Option opt(std::string_view name, std::string OriginRequest::*m) {
    Option o{name, Type::String};
    o.text = m;
    return o;
}

constexpr int kMaxKeepAliveConnections = 1000000;

const Option kOptions[] = {
    opt("connectTimeout", &OriginRequest::connect_timeout),
    opt("tlsTimeout", &OriginRequest::tls_timeout),
    opt("tcpKeepAlive", &OriginRequest::tcp_keep_alive),
    opt("noHappyEyeballs", &OriginRequest::no_happy_eyeballs),
    opt("keepAliveConnections", &OriginRequest::keep_alive_connections),
    opt("keepAliveTimeout", &OriginRequest::keep_alive_timeout),
    opt("httpHostHeader", &OriginRequest::http_host_header),
    opt("originServerName", &OriginRequest::origin_server_name),
    opt("matchSNItoHost", &OriginRequest::match_sni_to_host),
    opt("caPool", &OriginRequest::ca_pool),
    opt("noTLSVerify", &OriginRequest::no_tls_verify),
    opt("disableChunkedEncoding", &OriginRequest::disable_chunked_encoding),
    opt("bastionMode", &OriginRequest::bastion_mode),
    opt("proxyAddress", &OriginRequest::proxy_address),
    opt("proxyPort", &OriginRequest::proxy_port),
    opt("proxyType", &OriginRequest::proxy_type),
    opt("http2Origin", &OriginRequest::http2_origin),
    opt("proxyProtocol", &OriginRequest::proxy_protocol),
};

const Option* find_option(std::string_view key) {
    for (const Option& o : kOptions) {
        if (o.name == key) {
            return &o;
        }
    }
    return nullptr;
}

}  // namespace

bool is_origin_option(std::string_view key) {
    return find_option(key) != nullptr;
}

Result<void, std::string> set_origin_option(OriginRequest* o, std::string_view key,
                                            std::string_view value) {
    const Option* option = find_option(key);
    if (option == nullptr) {
        if (key == "ipRules" || key == "access") {
            return std::string("not supported in the INI format yet");
        }
        return std::string("unknown originRequest option");
    }
    std::string v(value);
    switch (option->type) {
    case Type::Duration: {
        auto d = parse_duration(value);
        if (!d) {
            return "bad duration '" + v + "' (expected e.g. 30s, 1m30s, 500ms)";
        }
        o->*(option->duration) = *d;
        return {};
    }
    case Type::Bool: {
        bool b = false;
        if (!config::parse_bool(value, &b)) {
            return "bad boolean '" + v + "' (expected true or false)";
        }
        o->*(option->flag) = b;
        return {};
    }
    case Type::Int: {
        uint64_t n = 0;
        if (!parse_uint(value, kMaxKeepAliveConnections, &n)) {
            return "bad number '" + v + "' (expected 0 to " +
                   std::to_string(kMaxKeepAliveConnections) + ")";
        }
        o->*(option->number) = static_cast<int>(n);
        return {};
    }
    case Type::Port: {
        uint64_t n = 0;
        if (!parse_uint(value, 65535, &n)) {
            return "bad port '" + v + "' (expected 0 to 65535)";
        }
        o->*(option->port) = static_cast<uint16_t>(n);
        return {};
    }
    case Type::String:
        if (key == "proxyType" && !value.empty() && value != "socks") {
            return "bad proxy type '" + v + "' (expected socks or nothing)";
        }
        if (ProxyProtocol pp; key == "proxyProtocol" && !parse_proxy_protocol(value, &pp)) {
            return "bad PROXY protocol version '" + v + "' (expected v1, v2 or nothing)";
        }
        o->*(option->text) = v;
        return {};
    }
    return std::string("unknown originRequest option");
}

std::string origin_changes(const OriginRequest& o) {
    const OriginRequest defaults;
    std::string out;
    for (const Option& option : kOptions) {
        std::string v;
        switch (option.type) {
        case Type::Duration:
            if (o.*(option.duration) != defaults.*(option.duration)) {
                v = format_duration(o.*(option.duration));
            }
            break;
        case Type::Bool:
            if (o.*(option.flag) != defaults.*(option.flag)) {
                v = o.*(option.flag) ? "true" : "false";
            }
            break;
        case Type::Int:
            if (o.*(option.number) != defaults.*(option.number)) {
                v = std::to_string(o.*(option.number));
            }
            break;
        case Type::Port:
            if (o.*(option.port) != defaults.*(option.port)) {
                v = std::to_string(o.*(option.port));
            }
            break;
        case Type::String:
            if (o.*(option.text) != defaults.*(option.text)) {
                v = "\"" + o.*(option.text) + "\"";
            }
            break;
        }
        if (!v.empty()) {
            out += (out.empty() ? "" : " ") + std::string(option.name) + "=" + v;
        }
    }
    return out;
}

}  // namespace cfd::connector
