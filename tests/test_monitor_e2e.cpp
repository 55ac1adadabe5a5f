// End to end: the monitor example (stream mode over an event_queue fed by producer threads) as a
// user runs it. Its ALERT lines are checked against a naive reference computed here from the
// same simulated samples (examples/monitor/fleet.hpp): every sample added to every sliding window
// it falls in, in a std::map, with plain integer arithmetic and strftime for the times.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../examples/monitor/fleet.hpp"
#include "background.hpp"
#include "e2e_support.hpp"

#ifndef MONITOR_BIN
#error "MONITOR_BIN must name the monitor binary (tests/meson.build passes it)"
#endif

namespace {

/// The counts of the summary line: samples, windows checked, alerts, late events.
struct summary {
  std::uint64_t samples = 0, windows = 0, alerts = 0, late = 0;
};
summary summary_of(const std::string& err) {
  static const std::regex line(R"(monitor: (\d+) samples, (\d+) windows checked, (\d+) alerts, (\d+) late events \(\d+ missed only some windows\), )");
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_search(err, m, line), "no summary line on stderr:\n" << err);
  return {std::stoull(m[1]), std::stoull(m[2]), std::stoull(m[3]), std::stoull(m[4])};
}

// ---- the reference ----------------------------------------------------------------------------

struct case_options {
  monitor::fleet_options fleet;
  std::int64_t window_ms = 60'000;
  std::int64_t slide_ms = 10'000;
  std::int64_t threshold_deci = 900;
  std::int64_t min_samples = 0;  // 0: the program's default, half of window / interval

  [[nodiscard]] std::vector<std::string> args(unsigned producers) const {
    std::vector<std::string> a = {
        "--hosts",     std::to_string(fleet.hosts),
        "--hot",       std::to_string(fleet.hot),
        "--interval",  std::to_string(fleet.interval.count()) + "ms",
        "--duration",  std::to_string(fleet.duration.count()) + "ms",
        "--jitter",    std::to_string(fleet.jitter.count()) + "ms",
        "--seed",      std::to_string(fleet.seed),
        "--window",    std::to_string(window_ms) + "ms",
        "--slide",     std::to_string(slide_ms) + "ms",
        "--threshold", std::to_string(threshold_deci / 10) + "." + std::to_string(threshold_deci % 10),
        "--producers", std::to_string(producers)};
    if (min_samples != 0) {
      a.insert(a.end(), {"--min-samples", std::to_string(min_samples)});
    }
    return a;
  }
  [[nodiscard]] std::int64_t effective_min_samples() const {
    return min_samples != 0 ? min_samples : std::max<std::int64_t>(1, window_ms / fleet.interval.count() / 2);
  }
};

std::string utc(std::int64_t ms) {
  REQUIRE(ms % 1000 == 0);  // the cases use whole-second windows
  const std::time_t secs = ms / 1000;
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct expected_run {
  std::uint64_t samples = 0;
  std::uint64_t windows = 0;
  std::vector<std::string> alerts;  // in (window, host) order
  std::set<std::string> alerting_hosts;
};

expected_run reference(const case_options& c) {
  struct totals {
    std::int64_t n = 0, sum = 0;
    std::int64_t max_cpu = std::numeric_limits<std::int64_t>::min();
    std::int64_t max_load = std::numeric_limits<std::int64_t>::min();
  };
  const monitor::fleet fleet(c.fleet);
  const std::vector<monitor::sample> samples = fleet.all_samples();
  std::map<std::pair<std::int64_t, std::string>, totals> windows;  // (window start, host)
  for (const monitor::sample& s : samples) {
    const std::int64_t t = s.ts.count();
    std::int64_t last_start = t / c.slide_ms * c.slide_ms;
    if (last_start > t) {
      last_start -= c.slide_ms;
    }
    for (std::int64_t start = last_start; start > t - c.window_ms; start -= c.slide_ms) {
      totals& w = windows[{start, std::string(s.host)}];
      ++w.n;
      w.sum += s.cpu_deci;
      w.max_cpu = std::max(w.max_cpu, s.cpu_deci);
      w.max_load = std::max(w.max_load, s.load_centi);
    }
  }
  expected_run e;
  e.samples = samples.size();
  e.windows = windows.size();
  for (const auto& [key, w] : windows) {
    // Too few samples (a window at the edge of the data), or the average (sum / n) not above the threshold.
    if (w.n < c.effective_min_samples() || w.sum * 10 <= c.threshold_deci * 10 * w.n) {
      continue;
    }
    // The average in hundredths of a percent, rounded half up: 10 * sum / n.
    std::int64_t avg = w.sum * 10 / w.n;
    if (2 * (w.sum * 10 % w.n) >= w.n) {
      ++avg;
    }
    char line[256];
    std::snprintf(
        line, sizeof line,
        "ALERT host=%s window=[%s,%s) avg_cpu=%lld.%02lld max_cpu=%lld.%lld max_load=%lld.%02lld samples=%lld",
        key.second.c_str(), utc(key.first).c_str(), utc(key.first + c.window_ms).c_str(),
        static_cast<long long>(avg / 100), static_cast<long long>(avg % 100), static_cast<long long>(w.max_cpu / 10),
        static_cast<long long>(w.max_cpu % 10), static_cast<long long>(w.max_load / 100),
        static_cast<long long>(w.max_load % 100), static_cast<long long>(w.n));
    e.alerts.emplace_back(line);
    e.alerting_hosts.insert(key.second);
  }
  return e;
}

std::set<std::string> hot_hosts(const monitor::fleet_options& opts) {
  const monitor::fleet fleet(opts);
  std::set<std::string> out;
  for (std::size_t i = 0; i < fleet.size(); ++i) {
    if (fleet.host(i).hot) {
      out.insert(fleet.host(i).name);
    }
  }
  return out;
}

/// Runs the case with `producers` threads and checks it against the reference.
std::string check_against_reference(const case_options& c, const expected_run& e, unsigned producers) {
  const e2e::run_result r = e2e::run(MONITOR_BIN, c.args(producers));
  INFO("monitor --producers " << producers << "\nstderr:\n" << r.err);
  REQUIRE(r.status == 0);
  const summary s = summary_of(r.err);
  CHECK(s.samples == e.samples);
  CHECK(s.windows == e.windows);
  CHECK(s.alerts == e.alerts.size());
  CHECK(s.late == 0);  // --max-delay 5s covers --jitter 2s + the producers' 1 s lockstep

  // The same set of alerts as the reference, whatever the order ...
  const std::vector<std::string> got = e2e::lines_of(r.out);
  std::vector<std::string> got_sorted = got;
  std::vector<std::string> want_sorted = e.alerts;
  std::sort(got_sorted.begin(), got_sorted.end());
  std::sort(want_sorted.begin(), want_sorted.end());
  std::vector<std::string> missing, unexpected;
  std::set_difference(want_sorted.begin(), want_sorted.end(), got_sorted.begin(), got_sorted.end(),
                      std::back_inserter(missing));
  std::set_difference(got_sorted.begin(), got_sorted.end(), want_sorted.begin(), want_sorted.end(),
                      std::back_inserter(unexpected));
  REQUIRE_MESSAGE(missing.empty(), missing.size() << " alerts missing, the first: " << missing.front());
  REQUIRE_MESSAGE(unexpected.empty(), unexpected.size() << " unexpected alerts, the first: " << unexpected.front());
  REQUIRE(got.size() == e.alerts.size());  // no duplicates either
  // ... and in (window, host) order, as the program promises for any thread timing.
  for (std::size_t i = 0; i < got.size(); ++i) {
    REQUIRE_MESSAGE(got[i] == e.alerts[i], "alert " << i << " out of (window, host) order: " << got[i]);
  }
  return r.out;
}

}  // namespace

TEST_CASE("monitor: alerts equal the naive reference's, with 1, 2 and 4 producers") {
  case_options c;
  c.fleet.hosts = 12;
  c.fleet.hot = 3;
  c.fleet.duration = std::chrono::minutes(15);
  c.fleet.seed = 7;
  const expected_run e = reference(c);
  REQUIRE(e.alerts.size() >= 10);  // the case must exercise alerts
  // Only the hot hosts get there: the others idle at 15-63% with lone spikes a 1-minute mean absorbs.
  CHECK(e.alerting_hosts == hot_hosts(c.fleet));

  const std::string one = check_against_reference(c, e, 1);
  const std::string two = check_against_reference(c, e, 2);
  const std::string four = check_against_reference(c, e, 4);
  CHECK(one == two);
  CHECK(one == four);
}

TEST_CASE("monitor: other windows, interval, threshold and seed agree with the reference too") {
  case_options c;
  c.fleet.hosts = 30;
  c.fleet.hot = 4;
  c.fleet.interval = std::chrono::milliseconds(2500);
  c.fleet.duration = std::chrono::minutes(20);
  c.fleet.jitter = std::chrono::milliseconds(1500);
  c.fleet.seed = 2024;
  c.window_ms = 120'000;
  c.slide_ms = 30'000;
  c.threshold_deci = 875;
  c.min_samples = 20;
  const expected_run e = reference(c);
  REQUIRE(!e.alerts.empty());
  check_against_reference(c, e, 3);
}

TEST_CASE("monitor: a threshold of 100 raises no alert, and the run still checks every window") {
  case_options c;
  c.fleet.hosts = 8;
  c.fleet.hot = 8;
  c.fleet.duration = std::chrono::minutes(10);
  c.threshold_deci = 1000;
  const expected_run e = reference(c);
  REQUIRE(e.alerts.empty());
  check_against_reference(c, e, 2);
}

TEST_CASE("monitor: SIGINT stops it gracefully: the last windows fire and it exits 0") {
  // A fleet far too big to finish: 2000 hosts for a simulated day is 173M samples.
  e2e::background p(MONITOR_BIN, {"--hosts", "2000", "--duration", "24h", "--producers", "3"});
  // The start-up line is printed after the signal thread is installed: wait for it, then signal.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!e2e::contains(p.err(), "hosts,") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let some windows fire first
  p.signal(SIGINT);
  const e2e::run_result r = p.wait();
  INFO("stderr:\n" << r.err);
  CHECK(r.status == 0);
  CHECK(e2e::contains(r.err, "stopped by signal"));
  const summary s = summary_of(r.err);
  CHECK(s.samples > 0);
  CHECK(s.samples < 2000ULL * 86'400);
  CHECK(s.windows > 0);
  static const std::regex alert(R"(ALERT host=\S+ window=\[\S+Z,\S+Z\) avg_cpu=\d+\.\d\d max_cpu=\d+\.\d )"
                                R"(max_load=\d+\.\d\d samples=\d+)");
  for (const std::string& line : e2e::lines_of(r.out)) {
    CHECK_MESSAGE(std::regex_match(line, alert), line);
  }
  CHECK(e2e::lines_of(r.out).size() == s.alerts);
}

TEST_CASE("monitor: a bad option is a usage error (exit 2)") {
  const e2e::run_result zero = e2e::run(MONITOR_BIN, {"--producers", "0"});
  CHECK(zero.status == 2);
  CHECK(e2e::contains(zero.err, "--producers"));
  const e2e::run_result threshold = e2e::run(MONITOR_BIN, {"--threshold", "ninety"});
  CHECK(threshold.status == 2);
  CHECK(e2e::contains(threshold.err, "--threshold"));
}
