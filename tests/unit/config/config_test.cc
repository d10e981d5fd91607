#include <doctest/doctest.h>

#include "cfd/config/ini.h"
#include "cfd/config/options.h"

using namespace cfd;
using namespace cfd::config;

TEST_CASE("config: INI entries keep file order and their lines") {
    auto f = IniFile::parse("# comment\n[edge]\nlocation = DFW\n\nworkers = 2\n"
                            "[tls \"a.example\"]\ncert = a.pem\n[edge]\nworkers = 3\n",
                            "edge.ini");
    REQUIRE(f);
    REQUIRE(f->entries().size() == 4);
    CHECK(f->entries()[0].key == "location");
    CHECK(f->entries()[0].line == 3);
    CHECK(f->entries()[1].line == 5);
    CHECK(f->entries()[2].section == "tls \"a.example\"");
    CHECK(f->entries()[2].line == 7);
    CHECK(f->find("edge", "workers")->value == "3");
    CHECK(f->sections() == std::vector<std::string>{"edge", "tls \"a.example\""});
    std::string kind, name;
    CHECK(split_section("tls \"a.example\"", &kind, &name));
    CHECK(kind == "tls");
    CHECK(name == "a.example");
    CHECK(!split_section("tls \"a.example", &kind, &name));
}

TEST_CASE("config: syntax errors name the file and line") {
    auto f = IniFile::parse("[edge]\nlocation = DFW\nthis line is wrong\n", "edge.ini");
    REQUIRE(!f);
    CHECK(f.error().str() == "edge.ini:3: syntax error (expected [section] or key = value)");
    auto missing = IniFile::load("/nonexistent/edge.ini");
    REQUIRE(!missing);
    CHECK(missing.error().str() == "/nonexistent/edge.ini: No such file or directory");
    auto longline = IniFile::parse("[edge]\nlocation = " + std::string(400, 'x') + "\n", "e.ini");
    REQUIRE(!longline);
    CHECK(longline.error().line == 2);
}

struct EdgeOpts {
    std::string location = "DFW";
    int64_t workers = 0;
    bool verbose = false;
    Millis grace{30000};
    std::vector<std::string> edges{"127.0.0.1:7844"};
    OptionSet set;
    EdgeOpts() {
        set.add_string("location", &location, "location name");
        set.add_int("workers", &workers, 0, 256, "reactor threads");
        set.add_bool("verbose", &verbose, "more logs");
        set.add_duration("grace-period", &grace, "drain time");
        set.add_list("edge", &edges, "edge address");
        set.add_alias("l", "location");
    }
};

TEST_CASE("config: file values, then flags override; lists replace") {
    EdgeOpts o;
    auto f = IniFile::parse("[edge]\nlocation = MCI\nworkers = 4\ngrace-period = 1m30s\n"
                            "edge = a:1\nedge = b:2\n",
                            "edge.ini");
    REQUIRE(f);
    REQUIRE(o.set.apply_file(*f, "edge"));
    CHECK(o.location == "MCI");
    CHECK(o.workers == 4);
    CHECK(o.grace == Millis{90000});
    CHECK(o.edges == std::vector<std::string>{"a:1", "b:2"});
    const char* argv[] = {"x", "run", "--workers=2", "-l", "AMS", "--verbose", "--edge",
                          "c:3", "name"};
    auto args = o.set.split(9, const_cast<char**>(argv), 1);
    REQUIRE(args);
    CHECK(args->positionals == std::vector<std::string>{"run", "name"});
    REQUIRE(o.set.apply_args(*args));
    CHECK(o.workers == 2);
    CHECK(o.location == "AMS");
    CHECK(o.verbose);
    CHECK(o.edges == std::vector<std::string>{"c:3"});
    CHECK(o.set.was_set("workers"));
}

TEST_CASE("config: bad values name file, line and key") {
    EdgeOpts o;
    auto f = IniFile::parse("[edge]\nlocation = MCI\nworkers = many\n", "/etc/cfdtunnel/edge.ini");
    REQUIRE(f);
    auto r = o.set.apply_file(*f, "edge");
    REQUIRE(!r);
    CHECK(r.error().str() == "/etc/cfdtunnel/edge.ini:3: key 'workers': not a whole number: 'many'");
    auto g = IniFile::parse("[edge]\nworkers = 999\n", "e.ini");
    r = o.set.apply_file(*g, "edge");
    REQUIRE(!r);
    CHECK(r.error().str() == "e.ini:2: key 'workers': out of range 0..256: 999");
    auto h = IniFile::parse("[edge]\ncolour = blue\n", "e.ini");
    r = o.set.apply_file(*h, "edge");
    REQUIRE(!r);
    CHECK(r.error().str() == "e.ini:2: key 'colour': unknown option");
    auto d = IniFile::parse("[edge]\ngrace-period = soon\n", "e.ini");
    CHECK(!o.set.apply_file(*d, "edge"));
    const char* argv[] = {"x", "--bogus"};
    auto a = o.set.split(2, const_cast<char**>(argv), 1);
    REQUIRE(!a);
    CHECK(a.error().str() == "command line: key '--bogus': unknown flag");
    const char* argv2[] = {"x", "--workers"};
    CHECK(!o.set.split(2, const_cast<char**>(argv2), 1));
}

TEST_CASE("config: a misspelt or unexpected section is an error naming file, line, section") {
    auto ok = IniFile::parse("[connector]\nurl = x\n[ingress \"a\"]\nservice = y\n"
                             "[originRequest]\nnoTLSVerify = true\n",
                             "c.ini");
    REQUIRE(ok);
    CHECK(check_sections(*ok, {"connector", "ingress", "originRequest"}));

    auto typo = IniFile::parse("[edge]\nlocation = DFW\n\n[egde]\nworkers = 2\n", "edge.ini");
    REQUIRE(typo);
    auto r = check_sections(*typo, {"edge"});
    REQUIRE(!r);
    CHECK(r.error().line == 5);
    CHECK(r.error().str().find("edge.ini") != std::string::npos);
    CHECK(r.error().str().find("[egde]") != std::string::npos);
    CHECK(r.error().str().find("expected [edge]") != std::string::npos);

    auto top = IniFile::parse("workers = 2\n[edge]\n", "top.ini");
    REQUIRE(top);
    CHECK(!check_sections(*top, {"edge"}));  // a key before any section belongs to none
}
