// Ingress rules: which local service serves a request, by hostname and path, with cloudflared's
// semantics (ingress/ingress.go): rules are tried in order, the first match wins, and the last
// rule must be a catch-all (no hostname or `*`, no path) so that every request has a rule.
//
// The connector's INI file holds one section per rule, in order, plus defaults:
//     [originRequest]                 ; defaults for every rule
//     connectTimeout = 10s
//     [ingress "api"]                 ; the name is used in messages
//     hostname = api.example.com      ; exact, or `*.example.com` (one or more labels)
//     path = ^/v1/                    ; Go regexp syntax, unanchored (see ingress_regex.h)
//     service = http://localhost:8000
//     keepAliveConnections = 10       ; per-rule originRequest options override the defaults
//     [ingress "default"]
//     service = http_status:404
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cfd/config/ini.h"
#include "cfd/connector/ingress_regex.h"
#include "cfd/core/duration.h"
#include "cfd/core/result.h"

namespace cfd::connector {

// How the connector talks to a rule's origin: cloudflared's OriginRequestConfig, with its
// names (in the INI file) and its defaults.
struct OriginRequest {
    Millis connect_timeout{30000};            // connectTimeout
    Millis tls_timeout{10000};                // tlsTimeout
    Millis tcp_keep_alive{30000};             // tcpKeepAlive
    bool no_happy_eyeballs = false;           // noHappyEyeballs
    int keep_alive_connections = 100;         // keepAliveConnections: idle pool size
    Millis keep_alive_timeout{90000};         // keepAliveTimeout: idle connection lifetime
    std::string http_host_header;             // httpHostHeader: Host sent to the origin
    std::string origin_server_name;           // originServerName: SNI and name to verify
    bool match_sni_to_host = false;           // matchSNItoHost
    std::string ca_pool;                      // caPool: PEM file of CAs for the origin
    bool no_tls_verify = false;               // noTLSVerify
    bool disable_chunked_encoding = false;    // disableChunkedEncoding
    bool bastion_mode = false;                // bastionMode
    std::string proxy_address = "127.0.0.1";  // proxyAddress
    uint16_t proxy_port = 0;                  // proxyPort
    std::string proxy_type;                   // proxyType: "" or "socks"
    bool http2_origin = false;                // http2Origin
    std::string proxy_protocol;               // proxyProtocol (ours): "", "v1" or "v2"
};

// True when `key` is an originRequest option name (cloudflared's spelling).
bool is_origin_option(std::string_view key);
// Sets one option from its INI text. Errors say what was expected ("bad duration '5x' ...").
Result<void, std::string> set_origin_option(OriginRequest* o, std::string_view key,
                                            std::string_view value);
// The options that differ from cloudflared's defaults, as `name=value` pairs separated by
// spaces (`connectTimeout=5s noTLSVerify=true`); empty when all are defaults.
std::string origin_changes(const OriginRequest& o);

struct Service {
    enum class Kind : uint8_t { Http, Https, Unix, UnixTls, HttpStatus, HelloWorld, Tcp, Ssh };
    Kind kind = Kind::HttpStatus;
    std::string host;   // Http, Https, Tcp, Ssh: lowercase name or IP (IPv6 without brackets)
    uint16_t port = 0;  // Http 80, Https 443 and Ssh 22 when not written; Tcp requires one
    std::string path;   // Unix, UnixTls: the socket's path
    int status = 0;     // HttpStatus: 100..599

    // Canonical text, e.g. "http://localhost:8000", "unix:/run/app.sock", "http_status:404".
    std::string text() const;
};

// Parses a rule's `service` (or --url). Refused: unknown schemes, missing hosts, bad ports,
// tcp:// without a port, http_status outside 100..599, URLs with a path other than "/" (the
// request's own path is always kept, as in cloudflared), a query, a fragment or user info.
Result<Service, std::string> parse_service(std::string_view text);

struct Rule {
    std::string name;               // section name, or "#N" (1-based) when unnamed
    std::string hostname;           // lowercase; empty or "*" matches every host
    std::optional<PathRegex> path;  // none: every path
    Service service;
    OriginRequest origin;  // defaults with this rule's overrides applied
    int line = 0;          // line of the rule's first key in its file (0 for --url)

    bool catch_all() const { return (hostname.empty() || hostname == "*") && !path; }
};

// Immutable once loaded; match() is const and thread-safe.
class Ingress {
public:
    // True when the file has at least one [ingress "..."] section.
    static bool present(const config::IniFile& file);
    // Reads [originRequest] and every [ingress "NAME"] section of `file`; other sections
    // belong to other loaders and are ignored. Every error names the file, line and key.
    static Result<Ingress, config::Diag> from_file(const config::IniFile& file);
    // `--url URL`: a single catch-all rule with the given origin options. As in cloudflared, a
    // URL without a scheme (`localhost:8080`) means http.
    static Result<Ingress, config::Diag> from_url(std::string_view url,
                                                  const OriginRequest& origin = {});

    // Index of the first rule matching the request. `host` is the Host/:authority (a port and
    // one trailing dot are ignored, case does not matter); `path` is the request target as
    // received: the query is cut off and %XX escapes are decoded first, as cloudflared matches
    // Go's URL.Path (so that `/%61dmin` cannot slip past a rule for `^/admin`). Always a valid
    // index: the last rule matches everything.
    size_t match(std::string_view host, std::string_view path) const;

    // `cfdtunnel tunnel ingress rule URL`: the rule that would serve `https://host/path?q`.
    Result<size_t, std::string> match_url(std::string_view url) const;

    const Rule& rule(size_t i) const { return rules_[i]; }
    const std::vector<Rule>& rules() const { return rules_; }
    size_t size() const { return rules_.size(); }
    const OriginRequest& defaults() const { return defaults_; }

    // One block per rule, as `cfdtunnel tunnel ingress validate` prints it:
    //   rule 1 "api" (config.ini:7)
    //       hostname: api.example.com
    //       path: ^/v1/
    //       service: http://localhost:8000
    std::string describe() const;

private:
    std::vector<Rule> rules_;
    OriginRequest defaults_;
    std::string source_;  // file name, or "--url"
};

// Exposed for tests: does a rule's hostname (lowercase, validated) accept the request's host?
bool host_matches(std::string_view rule_host, std::string_view request_host);

}  // namespace cfd::connector
