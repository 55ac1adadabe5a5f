// End to end, the fraud example (a process function with per-card state and timers): batch mode
// on 1 and 2 threads and stream mode over 1 to 3 TCP connections print the same alerts; the
// alerts equal an independent reference computed here from the generated file; a transaction
// later than --max-delay is counted as late.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "e2e_support.hpp"

#if !defined(FRAUD_BIN) || !defined(SEND_LINES_BIN)
#error "FRAUD_BIN and SEND_LINES_BIN must name the binaries (tests/meson.build passes them)"
#endif

namespace {

using namespace e2e;

struct txn_row {
  std::int64_t ts = 0;
  std::size_t line = 0;
  std::string card;
  std::string country;
};

/// The two rules over the file, written directly: per card, its transactions sorted by time
/// (ties in file order); burst = more than `limit` within a minute, alerting once until the
/// count falls back; countries = another country paid from within the last 10 minutes.
std::string reference_alerts(const std::string& csv, std::size_t limit) {
  std::map<std::string, std::vector<txn_row>> by_card;
  const auto lines = lines_of(csv);
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto f = split(lines[i]);
    if (f.size() != 4) {  // not one assertion per line: 10^5 of them under the sanitizers
      FAIL("expected 4 fields: " << lines[i]);
    }
    by_card[f[1]].push_back(txn_row{std::stoll(f[0]), i, f[1], f[3]});
  }
  std::vector<std::string> alerts;
  for (auto& entry : by_card) {
    auto& txns = entry.second;
    std::stable_sort(txns.begin(), txns.end(), [](const txn_row& a, const txn_row& b) { return a.ts < b.ts; });
    bool bursting = false;
    for (std::size_t i = 0; i < txns.size(); ++i) {
      const txn_row& t = txns[i];
      std::size_t in_minute = 0;
      for (std::size_t j = 0; j <= i; ++j) {
        if (txns[j].ts > t.ts - 60'000) {
          ++in_minute;
        }
      }
      if (in_minute > limit && !bursting) {
        alerts.push_back(std::to_string(t.ts) + "," + t.card + ",burst," + std::to_string(in_minute) + " in 1 min");
      }
      bursting = in_minute > limit;
      // The earliest-seen other country still within 10 minutes, as the detector keeps them in
      // the order first seen.
      std::vector<std::string> order;
      for (std::size_t j = 0; j < i; ++j) {
        if (t.ts - txns[j].ts > 600'000) {
          continue;
        }
        if (std::find(order.begin(), order.end(), txns[j].country) == order.end()) {
          order.push_back(txns[j].country);
        }
      }
      for (const auto& c : order) {
        if (c != t.country) {
          alerts.push_back(std::to_string(t.ts) + "," + t.card + ",countries," + c + " then " + t.country);
          break;
        }
      }
    }
  }
  std::sort(alerts.begin(), alerts.end());
  std::string out = "time,card,rule,detail\n";
  for (const auto& a : alerts) {
    out += a + "\n";
  }
  return out;
}

const std::string& txn_file() {
  static const std::string path = [] {
    const std::string p = tmp("txns.csv").string();
    REQUIRE(run(FRAUD_BIN, {"generate", "60000", p, "--seed", "9"}).status == 0);
    return p;
  }();
  return path;
}

}  // namespace

TEST_CASE("fraud: batch mode on 1 and 2 threads equals a reference computed from the file") {
  const std::string expected = reference_alerts(read_file(txn_file()), 5);
  REQUIRE(lines_of(expected).size() > 100);
  REQUIRE(contains(expected, ",burst,"));
  REQUIRE(contains(expected, ",countries,"));
  for (const std::string threads : {"1", "2"}) {
    const auto r = run(FRAUD_BIN, {"--input", txn_file(), "--threads", threads});
    REQUIRE(r.status == 0);
    CHECK(sorted_rows(r.out) == expected);
    CHECK(contains(r.err, "60000 transactions"));
  }
  const auto strict = run(FRAUD_BIN, {"--input", txn_file(), "--burst", "3"});
  CHECK(sorted_rows(strict.out) == reference_alerts(read_file(txn_file()), 3));
}

TEST_CASE("fraud --listen: over 1 to 3 connections, the alerts of batch mode") {
  const std::string expected = sorted_rows(run(FRAUD_BIN, {"--input", txn_file()}).out);
  for (const int connections : {1, 3}) {
    CAPTURE(connections);
    const auto r = with_server(FRAUD_BIN, {"--connections", std::to_string(connections), "--max-delay", "2s"},
                               send_lines_to_port(SEND_LINES_BIN, txn_file(), connections, "interleaved"));
    CHECK(r.status == 0);
    CHECK(sorted_rows(r.out) == expected);
    CHECK(contains(r.err, "60000 transactions over " + std::to_string(connections) + " connections"));
    CHECK(contains(r.err, "0 late"));
  }
}

TEST_CASE("fraud --listen: a transaction behind the watermark is late and counted, not applied") {
  // The generator delivers up to 500 ms out of order; with a 0 ms max delay some of that is late.
  const auto r = with_server(FRAUD_BIN, {"--connections", "1", "--max-delay", "0ms"},
                             send_lines_to_port(SEND_LINES_BIN, txn_file(), 1, "interleaved"));
  CHECK(r.status == 0);
  CHECK(contains(r.err, "60000 transactions over 1 connections"));
  CHECK(!contains(r.err, " 0 late"));
}
