#include <doctest/doctest.h>

#include <cmath>

#include "cfd/core/prometheus.h"

using namespace cfd;

TEST_CASE("prometheus: families, samples and labels in text format 0.0.4") {
    prom::TextWriter w;
    w.family("x_total", prom::Type::Counter, "Things.\nMore \\ things.");
    w.sample("x_total", uint64_t{18446744073709551615u});
    w.sample("x_total", 3, {{"code", "200"}, {"path", "a\"b\\c\nd"}});
    w.family("y", prom::Type::Gauge, "A gauge.");
    w.sample("y", int64_t{-2});
    w.sample("y", 0.5);
    w.sample("y", std::nan(""));
    w.sample("y", -HUGE_VAL);
    CHECK(w.text() ==
          "# HELP x_total Things.\\nMore \\\\ things.\n"
          "# TYPE x_total counter\n"
          "x_total 18446744073709551615\n"
          "x_total{code=\"200\",path=\"a\\\"b\\\\c\\nd\"} 3\n"
          "# HELP y A gauge.\n"
          "# TYPE y gauge\n"
          "y -2\n"
          "y 0.5\n"
          "y NaN\n"
          "y -Inf\n");
    std::string t = w.take();
    CHECK(!t.empty());
    CHECK(w.text().empty());
}

TEST_CASE("prometheus: metric names") {
    CHECK(prom::valid_metric_name("cfdtunnel_tunnel_total_requests"));
    CHECK(prom::valid_metric_name("a:b_c9"));
    CHECK(prom::valid_metric_name("_x"));
    CHECK_FALSE(prom::valid_metric_name(""));
    CHECK_FALSE(prom::valid_metric_name("9a"));
    CHECK_FALSE(prom::valid_metric_name("a-b"));
    CHECK_FALSE(prom::valid_metric_name("a b"));
}
