#include <doctest/doctest.h>

#include "cfd/core/base64.h"
#include "cfd/core/duration.h"
#include "cfd/core/log.h"
#include "cfd/core/numbers.h"
#include "cfd/core/uuid.h"

using namespace cfd;

TEST_CASE("uuid: random is version 4 and round-trips through text") {
    Uuid u = Uuid::random();
    CHECK((u.bytes[6] >> 4) == 4);
    CHECK((u.bytes[8] & 0xc0) == 0x80);
    auto p = Uuid::parse(u.str());
    REQUIRE(p);
    CHECK(*p == u);
    CHECK(Uuid::random() != u);
}

TEST_CASE("uuid: parse accepts canonical and bare forms, refuses junk") {
    auto a = Uuid::parse("610a53bd-ed0c-4afe-92b5-ca0238153410");
    REQUIRE(a);
    CHECK(a->str() == "610a53bd-ed0c-4afe-92b5-ca0238153410");
    auto b = Uuid::parse("610A53BDED0C4AFE92B5CA0238153410");
    REQUIRE(b);
    CHECK(*a == *b);
    CHECK(!Uuid::parse("610a53bd-ed0c-4afe-92b5-ca023815341"));
    CHECK(!Uuid::parse("610a53bd_ed0c-4afe-92b5-ca0238153410"));
    CHECK(!Uuid::parse("zz0a53bd-ed0c-4afe-92b5-ca0238153410"));
    CHECK(!Uuid::from_bytes("short"));
    auto c = Uuid::from_bytes(a->raw());
    REQUIRE(c);
    CHECK(*c == *a);
}

TEST_CASE("duration: cloudflared forms") {
    CHECK(parse_duration("30s").value() == Millis{30000});
    CHECK(parse_duration("1m30s").value() == Millis{90000});
    CHECK(parse_duration("500ms").value() == Millis{500});
    CHECK(parse_duration("2h").value() == Millis{7200000});
    CHECK(parse_duration("1.5s").value() == Millis{1500});
    CHECK(parse_duration("0").value() == Millis{0});
    CHECK(!parse_duration(""));
    CHECK(!parse_duration("30"));
    CHECK(!parse_duration("s"));
    CHECK(!parse_duration("-5s"));
    CHECK(!parse_duration("5 s"));
    CHECK(!parse_duration("5d"));
    CHECK(format_duration(Millis{90000}) == "1m30s");
    CHECK(format_duration(Millis{500}) == "500ms");
    CHECK(format_duration(Millis{1500}) == "1.5s");
    CHECK(format_duration(Millis{0}) == "0s");
}

TEST_CASE("base64: padded and unpadded, refuses bad input") {
    CHECK(base64_encode("foobar") == "Zm9vYmFy");
    CHECK(base64_encode("fo") == "Zm8=");
    CHECK(base64_encode("fo", false) == "Zm8");
    CHECK(base64_encode("f", false) == "Zg");
    CHECK(base64_decode("Zm8=").value() == "fo");
    CHECK(base64_decode("Zm8").value() == "fo");
    CHECK(base64_decode("Zg").value() == "f");
    CHECK(!base64_decode("Z"));
    CHECK(!base64_decode("Zm9*"));
    std::string all;
    for (int i = 0; i < 256; ++i) {
        all.push_back(static_cast<char>(i));
    }
    CHECK(base64_decode(base64_encode(all, false)).value() == all);
}

TEST_CASE("log: text line in cloudflared's format, JSON with --output json") {
    std::string line = log::render(log::Level::Info, "Registered tunnel connection",
                                   {{"connIndex", 0}, {"location", "DFW"}}, 1617043217);
    CHECK(line == "2021-03-29T18:40:17Z INF Registered tunnel connection connIndex=0 location=DFW\n");
    CHECK(log::render(log::Level::Warn, "x", {{"err", "a b"}}, 0) ==
          "1970-01-01T00:00:00Z WRN x err=\"a b\"\n");
    log::set_format(log::Format::Json);
    line = log::render(log::Level::Error, "bad \"x\"", {{"n", 3}, {"s", "v"}}, 1617043217);
    log::set_format(log::Format::Text);
    CHECK(line ==
          "{\"level\":\"error\",\"time\":\"2021-03-29T18:40:17Z\",\"message\":\"bad \\\"x\\\"\","
          "\"n\":3,\"s\":\"v\"}\n");
    log::Level l;
    CHECK(log::parse_level("warn", &l));
    CHECK(l == log::Level::Warn);
    CHECK(!log::parse_level("loud", &l));
}

TEST_CASE("result: value and error paths") {
    Result<std::string> ok = std::string("v");
    REQUIRE(ok);
    CHECK(*ok == "v");
    Result<std::string> bad = Err{Errc::Syscall, 2, "open"};
    REQUIRE(!bad);
    CHECK(bad.error().message() == "open: No such file or directory");
    Status s;
    CHECK(s);
    Status f = Err{Errc::Busy, 0, "queue"};
    CHECK(!f);
    CHECK(f.error().code == Errc::Busy);
}

TEST_CASE("numbers: strict decimal parsing") {
    uint64_t v = 7;
    CHECK(parse_uint("65535", 65535, &v));
    CHECK(v == 65535);
    CHECK(!parse_uint("65536", 65535, &v));
    CHECK(v == 65535);
    CHECK(!parse_uint("", 10, &v));
    CHECK(!parse_uint("-1", 10, &v));
    CHECK(!parse_uint("1 ", 10, &v));
    CHECK(!parse_uint("99999999999999999999", UINT64_MAX, &v));
    CHECK(parse_uint("0", 0, &v));
    CHECK(v == 0);
}
