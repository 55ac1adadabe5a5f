// The Prometheus text-format writer (serve/prometheus.hpp): family headers once, counter names,
// label escaping, cumulative histogram buckets ending at +Inf, and number spelling.
#include <doctest/doctest.h>

#include <chrono>
#include <limits>
#include <string>

#include "sluice/serve/metrics_page.hpp"
#include "sluice/serve/prometheus.hpp"
#include "temp_dir.hpp"

using sluice::prometheus_label;
using sluice::prometheus_text;

TEST_CASE("prometheus: a counter gets _total and one HELP/TYPE pair for all its label sets") {
  prometheus_text out;
  const prometheus_label a[]{{"query", "by-region"}};
  const prometheus_label b[]{{"query", "popular"}, {"shard", "2"}};
  out.counter("sluice_events", "Records in.", a, 10);
  out.counter("sluice_events", "Records in.", b, 3);
  out.gauge("sluice_queue_depth", "Waiting chunks.", {}, 0);
  CHECK(out.str() ==
        "# HELP sluice_events_total Records in.\n"
        "# TYPE sluice_events_total counter\n"
        "sluice_events_total{query=\"by-region\"} 10\n"
        "sluice_events_total{query=\"popular\",shard=\"2\"} 3\n"
        "# HELP sluice_queue_depth Waiting chunks.\n"
        "# TYPE sluice_queue_depth gauge\n"
        "sluice_queue_depth 0\n");
}

TEST_CASE("prometheus: label values escape backslash, double quote and newline; HELP escapes backslash and newline") {
  CHECK(prometheus_text::escape_label_value(R"(a\b"c)"
                                            "\nd") == R"(a\\b\"c\nd)");
  prometheus_text out;
  const prometheus_label l[]{{"path", "C:\\x \"y\"\n"}};
  out.gauge("g", "line one\nback\\slash \"quoted\"", l, 1);
  CHECK(out.str() ==
        "# HELP g line one\\nback\\\\slash \"quoted\"\n"
        "# TYPE g gauge\n"
        "g{path=\"C:\\\\x \\\"y\\\"\\n\"} 1\n");
}

TEST_CASE("prometheus: histogram buckets are cumulative, end with +Inf, and _count equals it") {
  prometheus_text out;
  const prometheus_label l[]{{"query", "q"}};
  // 2 in (.., 0.1], 0 in (0.1, 1], 3 in (1, 10], 1 above 10.
  out.histogram("run_seconds", "Runs.", l, {.bounds = {0.1, 1, 10}, .counts = {2, 0, 3, 1}, .sum = 42.5});
  CHECK(out.str() ==
        "# HELP run_seconds Runs.\n"
        "# TYPE run_seconds histogram\n"
        "run_seconds_bucket{query=\"q\",le=\"0.1\"} 2\n"
        "run_seconds_bucket{query=\"q\",le=\"1\"} 2\n"
        "run_seconds_bucket{query=\"q\",le=\"10\"} 5\n"
        "run_seconds_bucket{query=\"q\",le=\"+Inf\"} 6\n"
        "run_seconds_sum{query=\"q\"} 42.5\n"
        "run_seconds_count{query=\"q\"} 6\n");
}

TEST_CASE("prometheus: numbers: integers plain, large values exact, infinities and NaN spelled out") {
  CHECK(prometheus_text::number(0) == "0");
  CHECK(prometheus_text::number(1234567) == "1234567");
  CHECK(prometheus_text::number(0.25) == "0.25");
  CHECK(prometheus_text::number(-3) == "-3");
  CHECK(prometheus_text::number(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(prometheus_text::number(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(prometheus_text::number(std::numeric_limits<double>::quiet_NaN()) == "NaN");
  CHECK(sluice::prometheus_content_type == "text/plain; version=0.0.4; charset=utf-8");
}

TEST_CASE("prometheus: a checkpointed run's page carries its checkpoint counters after the stream's") {
  sluice::stream_metrics metrics;
  metrics.events = 12;
  const test_support::temp_dir dir;
  sluice::stream_checkpoints checkpoints(dir.str(), std::chrono::seconds(1), "q");
  checkpoints.saved = 7;
  checkpoints.restored = 2;
  const std::string page = sluice::metrics_page("by-category", metrics, checkpoints);
  CHECK(page.find("sluice_events_total{query=\"by-category\"} 12\n") != std::string::npos);
  CHECK(page.find("sluice_checkpoints_written_total{query=\"by-category\"} 7\n") != std::string::npos);
  CHECK(page.find("sluice_checkpoint_restores_total{query=\"by-category\"} 2\n") != std::string::npos);
  CHECK(page.find("sluice_events_total") < page.find("sluice_checkpoints_written_total"));
}
