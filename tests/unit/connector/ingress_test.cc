#include <doctest/doctest.h>

#include <string>

#include "cfd/config/ini.h"
#include "cfd/connector/ingress.h"

using namespace cfd;
using namespace cfd::connector;
using Kind = Service::Kind;

namespace {

Result<Ingress, config::Diag> load(std::string_view text) {
    auto f = config::IniFile::parse(text, "config.ini");
    REQUIRE(f);
    return Ingress::from_file(*f);
}

Ingress must_load(std::string_view text) {
    auto ing = load(text);
    if (!ing) {
        FAIL("unexpected error: " << ing.error().str());
    }
    return std::move(*ing);
}

std::string error_of(std::string_view text) {
    auto ing = load(text);
    REQUIRE_FALSE(ing);
    return ing.error().str();
}

constexpr std::string_view kRouting = R"([ingress "api-v1"]
hostname = api.example.com
path = ^/v1/
service = http://localhost:8001
[ingress "api"]
hostname = api.example.com
service = http://localhost:8000
[ingress "images"]
path = \.(jpg|png)$
service = http://localhost:9000
[ingress "wild"]
hostname = *.example.com
service = https://10.0.0.2:8443
[ingress "default"]
service = http_status:404
)";

}  // namespace

TEST_CASE("ingress: exact and wildcard hostnames, case and port ignored") {
    CHECK(host_matches("api.example.com", "api.example.com"));
    CHECK(host_matches("api.example.com", "API.Example.COM"));
    CHECK(host_matches("api.example.com", "api.example.com:8443"));
    CHECK(host_matches("api.example.com", "api.example.com."));
    CHECK_FALSE(host_matches("api.example.com", "www.example.com"));
    CHECK_FALSE(host_matches("api.example.com", "api.example.com.evil.net"));
    CHECK_FALSE(host_matches("api.example.com", "xapi.example.com"));

    CHECK(host_matches("*.example.com", "a.example.com"));
    CHECK(host_matches("*.example.com", "a.b.example.com"));  // one or more labels
    CHECK(host_matches("*.example.com", "A.EXAMPLE.com:80"));
    CHECK_FALSE(host_matches("*.example.com", "example.com"));     // not the bare domain
    CHECK_FALSE(host_matches("*.example.com", "badexample.com"));  // the dot is kept
    CHECK_FALSE(host_matches("*.example.com", "a.example.org"));

    CHECK(host_matches("", "anything"));
    CHECK(host_matches("*", "anything:1"));
    CHECK(host_matches("127.0.0.1", "127.0.0.1:8080"));
    CHECK_FALSE(host_matches("example.com", "[::1]:443"));
}

TEST_CASE("ingress: first match wins, by hostname then path, in file order") {
    Ingress ing = must_load(kRouting);
    REQUIRE(ing.size() == 5);
    CHECK(ing.rule(0).name == "api-v1");
    CHECK(ing.match("api.example.com", "/v1/users") == 0);
    CHECK(ing.match("API.example.com:443", "/v1/") == 0);
    CHECK(ing.match("api.example.com", "/v2/users") == 1);
    CHECK(ing.match("api.example.com", "/x/v1/") == 1);  // ^ anchors at the start
    CHECK(ing.match("api.example.com", "/a.png") == 1);  // rule 2 comes first
    CHECK(ing.match("www.example.com", "/a.png") == 2);
    CHECK(ing.match("www.example.com", "/a.png?x=1") == 2);  // the query is not the path
    CHECK(ing.match("www.example.com", "/a.pngx") == 3);     // $ anchors at the end
    CHECK(ing.match("a.b.example.com", "/") == 3);
    CHECK(ing.match("example.com", "/") == 4);
    CHECK(ing.match("other.net", "/v1/") == 4);
    CHECK(ing.match("", "") == 4);
    CHECK(ing.rule(3).service.kind == Kind::Https);
    CHECK(ing.rule(4).service.status == 404);
}

TEST_CASE("ingress: paths are matched decoded, as Go's URL.Path") {
    Ingress ing = must_load(R"([ingress "admin"]
path = ^/admin
service = http_status:403
[ingress "all"]
service = http://localhost:8080
)");
    CHECK(ing.match("h", "/admin/x") == 0);
    CHECK(ing.match("h", "/%61dmin/x") == 0);  // cannot slip past the rule by escaping
    CHECK(ing.match("h", "/%2Fadmin") == 1);
    CHECK(ing.match("h", "/%zz/admin") == 1);  // bad escape kept as written
    CHECK(ing.match("h", "/public") == 1);
}

TEST_CASE("ingress: the last rule must be a catch-all, and only the last") {
    std::string e = error_of(R"([tunnel]
id = x

[ingress "api"]
hostname = api.example.com
service = http://localhost:8000
)");
    CHECK(e == "config.ini:5: ingress rule \"api\" is last but not a catch-all: the last rule "
               "must have no hostname (or `*`) and no path");

    e = error_of(R"([ingress "a"]
hostname = a.example.com
service = http://localhost:1
[ingress "only-path"]
path = ^/x
service = http://localhost:2
)");
    CHECK(e.starts_with("config.ini:5: ingress rule \"only-path\" is last but not a catch-all"));

    e = error_of(R"([ingress "all"]
hostname = *
service = http://localhost:1
[ingress "b"]
service = http://localhost:2
)");
    CHECK(e.starts_with("config.ini:2: ingress rule \"all\" matches every request"));

    // `*` with a path is not a catch-all, and may come first.
    Ingress ing = must_load(R"([ingress "a"]
hostname = *
path = ^/a
service = http://localhost:1
[ingress "b"]
hostname = *
service = http://localhost:2
)");
    CHECK(ing.match("x", "/a") == 0);
    CHECK(ing.match("x", "/b") == 1);

    e = error_of("[other]\nkey = 1\n");
    CHECK(e.find("no ingress rules") != std::string::npos);
}

TEST_CASE("ingress: every service kind parses") {
    auto s = parse_service("http://localhost:8000");
    REQUIRE(s);
    CHECK(s->kind == Kind::Http);
    CHECK(s->host == "localhost");
    CHECK(s->port == 8000);
    CHECK(s->text() == "http://localhost:8000");

    s = parse_service("http://LocalHost/");
    REQUIRE(s);
    CHECK(s->port == 80);
    CHECK(s->text() == "http://localhost");

    s = parse_service("https://10.0.0.2");
    REQUIRE(s);
    CHECK(s->kind == Kind::Https);
    CHECK(s->port == 443);

    s = parse_service("http://[::1]:9000");
    REQUIRE(s);
    CHECK(s->host == "::1");
    CHECK(s->port == 9000);
    CHECK(s->text() == "http://[::1]:9000");

    s = parse_service("unix:/run/app.sock");
    REQUIRE(s);
    CHECK(s->kind == Kind::Unix);
    CHECK(s->path == "/run/app.sock");
    CHECK(s->text() == "unix:/run/app.sock");

    s = parse_service("unix+tls:/run/tls.sock");
    REQUIRE(s);
    CHECK(s->kind == Kind::UnixTls);
    CHECK(s->path == "/run/tls.sock");

    s = parse_service("http_status:503");
    REQUIRE(s);
    CHECK(s->kind == Kind::HttpStatus);
    CHECK(s->status == 503);
    CHECK(s->text() == "http_status:503");

    for (const char* hw : {"hello_world", "hello-world", "helloworld"}) {
        s = parse_service(hw);
        REQUIRE(s);
        CHECK(s->kind == Kind::HelloWorld);
    }

    s = parse_service("tcp://db.internal:5432");
    REQUIRE(s);
    CHECK(s->kind == Kind::Tcp);
    CHECK(s->port == 5432);
    CHECK(s->text() == "tcp://db.internal:5432");

    s = parse_service("ssh://localhost");
    REQUIRE(s);
    CHECK(s->kind == Kind::Ssh);
    CHECK(s->port == 22);
    s = parse_service("ssh://localhost:2222");
    REQUIRE(s);
    CHECK(s->text() == "ssh://localhost:2222");
}

TEST_CASE("ingress: bad services are refused with a reason") {
    auto reason = [](std::string_view text) {
        auto s = parse_service(text);
        REQUIRE_FALSE(s);
        return s.error();
    };
    CHECK(reason("ftp://example.com") == "unknown scheme 'ftp'");
    CHECK(reason("localhost:8080") == "unknown scheme 'localhost'");
    CHECK(reason("tcp://db.internal").find("missing port") != std::string::npos);
    CHECK(reason("http_status:999").find("100 to 599") != std::string::npos);
    CHECK(reason("http_status:99").find("100 to 599") != std::string::npos);
    CHECK(reason("http_status:abc").find("100 to 599") != std::string::npos);
    CHECK(reason("http_status:").find("100 to 599") != std::string::npos);
    CHECK(reason("http://localhost:8000/api").find("cannot have a path") != std::string::npos);
    CHECK(reason("http://localhost:8000?x=1").find("query") != std::string::npos);
    CHECK(reason("http://user@localhost").find("user info") != std::string::npos);
    CHECK(reason("http://:8000").find("missing host") != std::string::npos);
    CHECK(reason("http://localhost:0").find("bad port") != std::string::npos);
    CHECK(reason("http://localhost:65536").find("bad port") != std::string::npos);
    CHECK(reason("http://localhost:").find("bad port") != std::string::npos);
    CHECK(reason("http://[::1").find("]") != std::string::npos);
    CHECK(reason("http://local host").find("bad host") != std::string::npos);
    CHECK(reason("unix:").find("missing socket path") != std::string::npos);
    CHECK(reason("").find("not a service") != std::string::npos);
    CHECK(reason("hello").find("not a service") != std::string::npos);

    std::string e = error_of(R"([ingress "x"]
service = ftp://example.com
)");
    CHECK(e == "config.ini:2: key 'service': unknown scheme 'ftp'");
    e = error_of(R"([ingress "x"]
hostname = a.example.com
)");
    CHECK(e == "config.ini:2: key 'service': ingress rule \"x\" has no service");
}

TEST_CASE("ingress: hostnames are validated as cloudflared does") {
    auto host_error = [](std::string_view host) {
        std::string text = "[ingress \"h\"]\nhostname = " + std::string(host) +
                           "\nservice = http://a:1\n[ingress \"d\"]\nservice = hello_world\n";
        return error_of(text);
    };
    CHECK(host_error("api.example.com:8443") ==
          "config.ini:2: key 'hostname': a hostname cannot contain a port");
    CHECK(host_error("api.*.example.com").find("one wildcard") != std::string::npos);
    CHECK(host_error("*example.com").find("one wildcard") != std::string::npos);
    CHECK(host_error("a..example.com").find("empty label") != std::string::npos);
    CHECK(host_error("a b.com").find("bad character") != std::string::npos);

    Ingress ing = must_load("[ingress \"h\"]\nhostname = API.Example.COM.\nservice = http://a:1\n"
                            "[ingress \"d\"]\nservice = hello_world\n");
    CHECK(ing.rule(0).hostname == "api.example.com");
    CHECK(ing.match("api.example.com", "/") == 0);
}

TEST_CASE("ingress: originRequest defaults are cloudflared's") {
    Ingress ing = must_load("[ingress \"d\"]\nservice = http://localhost:8080\n");
    const OriginRequest& o = ing.rule(0).origin;
    CHECK(o.connect_timeout == Millis(30000));
    CHECK(o.tls_timeout == Millis(10000));
    CHECK(o.tcp_keep_alive == Millis(30000));
    CHECK_FALSE(o.no_happy_eyeballs);
    CHECK(o.keep_alive_connections == 100);
    CHECK(o.keep_alive_timeout == Millis(90000));
    CHECK(o.http_host_header.empty());
    CHECK(o.origin_server_name.empty());
    CHECK_FALSE(o.match_sni_to_host);
    CHECK(o.ca_pool.empty());
    CHECK_FALSE(o.no_tls_verify);
    CHECK_FALSE(o.disable_chunked_encoding);
    CHECK_FALSE(o.bastion_mode);
    CHECK(o.proxy_address == "127.0.0.1");
    CHECK(o.proxy_port == 0);
    CHECK(o.proxy_type.empty());
    CHECK_FALSE(o.http2_origin);
    CHECK(origin_changes(o).empty());
}

TEST_CASE("ingress: [originRequest] sets defaults that each rule can override") {
    Ingress ing = must_load(R"([ingress "api"]
hostname = api.example.com
service = https://localhost:8443
connectTimeout = 5s
noTLSVerify = false
originServerName = api.internal
[ingress "default"]
service = http://localhost:8080
[originRequest]
connectTimeout = 1m30s
tlsTimeout = 2s
tcpKeepAlive = 15s
noHappyEyeballs = true
keepAliveConnections = 7
keepAliveTimeout = 1m
httpHostHeader = origin.internal
originServerName = default.internal
matchSNItoHost = yes
caPool = /etc/ssl/origin-ca.pem
noTLSVerify = true
disableChunkedEncoding = on
bastionMode = false
proxyAddress = 0.0.0.0
proxyPort = 1080
proxyType = socks
http2Origin = 1
)");
    const OriginRequest& d = ing.defaults();
    CHECK(d.connect_timeout == Millis(90000));
    CHECK(d.tls_timeout == Millis(2000));
    CHECK(d.tcp_keep_alive == Millis(15000));
    CHECK(d.no_happy_eyeballs);
    CHECK(d.keep_alive_connections == 7);
    CHECK(d.keep_alive_timeout == Millis(60000));
    CHECK(d.http_host_header == "origin.internal");
    CHECK(d.match_sni_to_host);
    CHECK(d.ca_pool == "/etc/ssl/origin-ca.pem");
    CHECK(d.no_tls_verify);
    CHECK(d.disable_chunked_encoding);
    CHECK(d.proxy_address == "0.0.0.0");
    CHECK(d.proxy_port == 1080);
    CHECK(d.proxy_type == "socks");
    CHECK(d.http2_origin);

    // Defaults apply even though [originRequest] comes after the rules; overrides win.
    const OriginRequest& api = ing.rule(0).origin;
    CHECK(api.connect_timeout == Millis(5000));
    CHECK_FALSE(api.no_tls_verify);
    CHECK(api.origin_server_name == "api.internal");
    CHECK(api.tls_timeout == Millis(2000));
    CHECK(api.keep_alive_connections == 7);
    const OriginRequest& def = ing.rule(1).origin;
    CHECK(def.connect_timeout == Millis(90000));
    CHECK(def.no_tls_verify);
    CHECK(def.origin_server_name == "default.internal");

    std::string d1 = ing.describe();
    CHECK(d1.find("rule 1 \"api\" (config.ini:2)\n    hostname: api.example.com\n"
                  "    service: https://localhost:8443\n") == 0);
    CHECK(d1.find("connectTimeout=5s") != std::string::npos);
    CHECK(d1.find("rule 2 \"default\" (config.ini:8)") != std::string::npos);
}

TEST_CASE("ingress: bad option values and unknown keys name file, line and key") {
    auto rule_with = [](std::string_view line) {
        return error_of("[ingress \"r\"]\nservice = http://a:1\n" + std::string(line) + "\n");
    };
    CHECK(rule_with("connectTimeout = 5 seconds") ==
          "config.ini:3: key 'connectTimeout': bad duration '5 seconds' (expected e.g. 30s, "
          "1m30s, 500ms)");
    CHECK(rule_with("keepAliveTimeout = -1s").find("key 'keepAliveTimeout': bad duration") !=
          std::string::npos);
    CHECK(rule_with("noTLSVerify = maybe") ==
          "config.ini:3: key 'noTLSVerify': bad boolean 'maybe' (expected true or false)");
    CHECK(rule_with("keepAliveConnections = lots")
              .starts_with("config.ini:3: key 'keepAliveConnections': bad number 'lots'"));
    CHECK(rule_with("keepAliveConnections = -1").find("bad number") != std::string::npos);
    CHECK(rule_with("proxyPort = 70000").find("key 'proxyPort': bad port") != std::string::npos);
    CHECK(rule_with("proxyType = http").find("bad proxy type") != std::string::npos);
    CHECK(rule_with("conectTimeout = 5s")
              .starts_with("config.ini:3: key 'conectTimeout': unknown key in ingress rule"));
    CHECK(rule_with("ipRules = x").find("not supported") != std::string::npos);
    CHECK(rule_with("service = http://b:2") ==
          "config.ini:3: key 'service': set twice in ingress rule \"r\" (first at line 2)");

    std::string e = error_of("[originRequest]\nnoTLSverify = true\n[ingress \"r\"]\nservice = "
                             "hello_world\n");
    CHECK(e == "config.ini:2: key 'noTLSverify': unknown originRequest option");
    e = error_of("[originRequest]\ntlsTimeout = soon\n[ingress \"r\"]\nservice = hello_world\n");
    CHECK(e.starts_with("config.ini:2: key 'tlsTimeout': bad duration 'soon'"));
}

TEST_CASE("ingress: sections are rules in file order, each named once") {
    std::string e = error_of(R"([ingress "a"]
hostname = a.com
service = http://x:1
[originRequest]
tlsTimeout = 1s
[ingress "a"]
path = ^/
)");
    CHECK(e.starts_with("config.ini:7: ingress rule \"a\" appears twice (first at line 2)"));

    Ingress ing = must_load("[ingress]\nhostname = a.com\nservice = http://x:1\n"
                            "[unrelated]\nk = v\n[ingress \"last\"]\nservice = hello_world\n");
    CHECK(ing.rule(0).name == "#1");
    CHECK(ing.rule(1).name == "last");
    CHECK(ing.rule(0).line == 2);

    e = error_of("[ingress \"a]\nservice = hello_world\n");
    CHECK(e.find("bad section") != std::string::npos);
    e = error_of("[ingress\"a\"]\nservice = hello_world\n");
    CHECK(e == "config.ini:2: bad section [ingress\"a\"] (expected [ingress \"NAME\"])");
}

TEST_CASE("ingress: bad path regex names the key") {
    std::string e = error_of(R"([ingress "r"]
path = ^/(a|b
service = http://x:1
[ingress "d"]
service = hello_world
)");
    CHECK(e.starts_with("config.ini:2: key 'path': "));
    CHECK(e.find("missing closing )") != std::string::npos);
    e = error_of("[ingress \"r\"]\npath = \\bword\nservice = http://x:1\n"
                 "[ingress \"d\"]\nservice = hello_world\n");
    CHECK(e.find("unsupported escape '\\b'") != std::string::npos);
}

TEST_CASE("ingress: --url is a single catch-all rule") {
    OriginRequest o;
    o.no_tls_verify = true;
    auto ing = Ingress::from_url("https://localhost:8443", o);
    REQUIRE(ing);
    REQUIRE(ing->size() == 1);
    CHECK(ing->rule(0).catch_all());
    CHECK(ing->rule(0).service.kind == Kind::Https);
    CHECK(ing->rule(0).origin.no_tls_verify);
    CHECK(ing->match("anything.example", "/any/path") == 0);
    CHECK(ing->describe() == "rule 1 \"url\" (--url)\n    service: https://localhost:8443\n"
                             "    originRequest: noTLSVerify=true\n");

    auto bare = Ingress::from_url("localhost:8080");  // cloudflared's default scheme
    REQUIRE(bare);
    CHECK(bare->rule(0).service.text() == "http://localhost:8080");
    CHECK(Ingress::from_url("unix:/run/app.sock")->rule(0).service.kind == Kind::Unix);

    auto bad = Ingress::from_url("ftp://localhost");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().str() == "command line: key 'url': unknown scheme 'ftp'");
    CHECK_FALSE(Ingress::from_url("localhost:http"));
    CHECK_FALSE(Ingress::from_url("http://localhost:8080/app"));
}

TEST_CASE("ingress: present() finds ingress sections") {
    auto f = config::IniFile::parse("[tunnel]\nid = 1\n[ingress \"x\"]\nservice = hello_world\n",
                                    "c.ini");
    REQUIRE(f);
    CHECK(Ingress::present(*f));
    auto g = config::IniFile::parse("[tunnel]\nid = 1\n", "c.ini");
    REQUIRE(g);
    CHECK_FALSE(Ingress::present(*g));
}

TEST_CASE("ingress: match_url answers `tunnel ingress rule URL`") {
    Ingress ing = must_load(kRouting);
    CHECK(*ing.match_url("https://api.example.com/v1/users?x=1") == 0);
    CHECK(*ing.match_url("https://API.example.com:8443/v2") == 1);
    CHECK(*ing.match_url("http://www.example.com") == 3);
    CHECK(*ing.match_url("http://other.net/a.png") == 2);
    CHECK(*ing.match_url("http://other.net?q") == 4);
    CHECK(ing.match_url("api.example.com/v1").error().find("not a URL") != std::string::npos);
    CHECK(ing.match_url("https:///v1").error().find("no host") != std::string::npos);
}

TEST_CASE("ingress: copies match on their own and alike") {
    Ingress a = must_load(kRouting);
    Ingress b = a;  // one per reactor core
    CHECK(b.match("api.example.com", "/v1/x") == 0);
    CHECK(b.match("www.example.com", "/a.jpg") == 2);
    CHECK(a.match("www.example.com", "/a.jpg") == 2);
    Ingress c = must_load("[ingress \"d\"]\nservice = hello_world\n");
    c = b;
    CHECK(c.size() == 5);
    CHECK(c.match("api.example.com", "/v1/x") == 0);
}
