#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "cfd/connector/credentials.h"
#include "cfd/core/base64.h"

using namespace cfd;
using namespace cfd::connector;

namespace {
Credentials sample() {
    Credentials c;
    c.account_tag = "5a3b4c";
    c.secret = std::string("\x01\x02\xff secret bytes 32 long.........", 32);
    c.tunnel_id = *Uuid::parse("610a53bd-ed0c-4afe-92b5-ca0238153410");
    return c;
}
}  // namespace

TEST_CASE("credentials: cloudflared's file format round-trips") {
    Credentials c = sample();
    std::string text = credentials_json(c);
    CHECK(text.find("\"AccountTag\":\"5a3b4c\"") != std::string::npos);
    CHECK(text.find("\"TunnelID\":\"610a53bd-ed0c-4afe-92b5-ca0238153410\"") != std::string::npos);
    CHECK(text.find("\"TunnelSecret\":\"" + base64_encode(c.secret) + "\"") != std::string::npos);
    auto back = parse_credentials_json(text);
    REQUIRE(back);
    CHECK(back->secret == c.secret);
    CHECK(back->tunnel_id == c.tunnel_id);
    CHECK(!parse_credentials_json("{\"AccountTag\":\"a\"}"));
    CHECK(!parse_credentials_json("not json"));
    CHECK(!parse_credentials_json("{\"AccountTag\":\"a\",\"TunnelSecret\":\"!!\",\"TunnelID\":\"x\"}"));
}

TEST_CASE("credentials: token is base64 of {a,s,t}") {
    Credentials c = sample();
    std::string token = make_token(c);
    auto raw = base64_decode(token);
    REQUIRE(raw);
    CHECK(raw->find("\"a\":\"5a3b4c\"") != std::string::npos);
    CHECK(raw->find("\"t\":\"610a53bd-ed0c-4afe-92b5-ca0238153410\"") != std::string::npos);
    auto back = parse_token(token + "\n");
    REQUIRE(back);
    CHECK(back->secret == c.secret);
    CHECK(back->account_tag == c.account_tag);
    CHECK(!parse_token("%%%"));
    CHECK(!parse_token(base64_encode("{}")));
}

TEST_CASE("credentials: file is written 0400 and never overwritten") {
    char tmpl[] = "/tmp/cfd-cred-XXXXXX";
    std::string dir = mkdtemp(tmpl);
    std::string path = dir + "/610a53bd-ed0c-4afe-92b5-ca0238153410.json";
    REQUIRE(write_credentials_file(sample(), path));
    struct stat st {};
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0400);
    CHECK(!write_credentials_file(sample(), path));
    auto back = read_credentials_file(path);
    REQUIRE(back);
    CHECK(back->tunnel_id == sample().tunnel_id);
    CHECK(!read_credentials_file(dir + "/missing.json"));
    std::system(("rm -rf " + dir).c_str());
}
