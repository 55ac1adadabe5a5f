// End to end: shop_lambda, the e-commerce Lambda example (one log, two views, TCP ingest, HTTP
// serving), run as the demo runs it on a small gen_sales file with late rows. It must catch up,
// pass its own checks (served revenue == batch over the log and over the file; served popular
// == a Kappa replay), and serve the "popular in the last 5 minutes" a naive reference computed
// here from the CSV gives. A second run over the same log restarts the engine on it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "e2e_support.hpp"

#if !defined(SHOP_LAMBDA_BIN) || !defined(GEN_SALES_BIN)
#error "SHOP_LAMBDA_BIN and GEN_SALES_BIN must name the binaries (tests/meson.build passes them)"
#endif

namespace {

using namespace e2e;

constexpr std::int64_t minute_ms = 60'000;
constexpr std::int64_t window_ms = 5 * minute_ms;

std::string iso8601(std::int64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

/// What GET /popular should answer for `csv`, computed naively: the 5-minute window (starting on
/// a minute) that ended where the latest event's minute starts, or if no row falls in it, the
/// window from 4 minutes before that minute; its 10 products with the largest qty, ties to the
/// smaller id.
std::vector<std::string> expected_popular(const std::string& csv) {
  struct row {
    std::int64_t ts;
    std::int64_t product;
    std::int64_t qty;
  };
  std::vector<row> rows;
  const auto lines = lines_of(csv);
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto f = split(lines[i]);  // ts,order_id,user_id,region,category,product_id,qty,price
    if (f.size() != 8) {
      FAIL("not a gen_sales row: " << lines[i]);
    }
    rows.push_back({std::stoll(f[0]), std::stoll(f[5]), std::stoll(f[6])});
  }
  REQUIRE(!rows.empty());
  const std::int64_t latest =
      std::max_element(rows.begin(), rows.end(), [](const row& a, const row& b) { return a.ts < b.ts; })->ts;
  const std::int64_t latest_minute = latest / minute_ms * minute_ms;  // event times are positive
  std::int64_t start = latest_minute - window_ms;
  if (std::none_of(rows.begin(), rows.end(), [&](const row& r) { return r.ts >= start && r.ts < latest_minute; })) {
    start = latest_minute - window_ms + minute_ms;
  }
  std::map<std::int64_t, std::int64_t> qty;
  for (const row& r : rows) {
    if (r.ts >= start && r.ts < start + window_ms) {
      qty[r.product] += r.qty;
    }
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> ranked(qty.begin(), qty.end());  // (product, qty)
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  ranked.resize(std::min<std::size_t>(ranked.size(), 10));
  std::vector<std::string> out = {"window_start,window_end,product_id,qty"};
  for (const auto& [product, q] : ranked) {
    out.push_back(iso8601(start) + "," + iso8601(start + window_ms) + "," + std::to_string(product) + "," +
                  std::to_string(q));
  }
  return out;
}

/// The lines of stdout after the "== GET ..." line that contains `what`, up to the next empty line.
std::vector<std::string> section(const std::string& out, const std::string& what) {
  std::vector<std::string> lines;
  bool in = false;
  for (const auto& line : lines_of(out)) {
    if (!in) {
      in = line.starts_with("== GET http://") && contains(line, what);
    } else if (line.empty()) {
      break;
    } else {
      lines.push_back(line);
    }
  }
  return lines;
}

const std::string& late_sales_file() {
  static const std::string path = [] {
    std::string p = tmp("shop-sales.csv").string();
    // 50k rows (about 50 s of event time); 2% up to 10 minutes in the past: late for the speed
    // layer's 5-minute windows that have fired, counted by the batch layer.
    const auto gen = run(GEN_SALES_BIN, {"50000", p, "--late-fraction", "0.02", "--max-lateness", "600000"});
    REQUIRE_MESSAGE(gen.status == 0, gen.err);
    return p;
  }();
  return path;
}

}  // namespace

TEST_CASE("shop_lambda serves revenue equal to batch mode and popular products equal to a Kappa replay") {
  const auto r = run(SHOP_LAMBDA_BIN, {"--input", late_sales_file(), "--progress-every", "20ms"});
  INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  REQUIRE(r.status == 0);
  CHECK(contains(r.out, "served revenue == batch recompute over the log (50000 rows)"));
  CHECK(contains(r.out, "served revenue == batch over the input file (50000 rows)"));
  CHECK(contains(r.out, "Kappa: replay_to_head over the log == the served popular view"));
  CHECK(contains(r.out, "all checks passed"));
  // Caught up: the batch horizon is the head and the speed layer holds nothing.
  const auto caught_up = lines_of(r.out.substr(0, r.out.find("the batch horizon reached the log head")));
  REQUIRE(caught_up.size() >= 2);
  // (How many epochs the 50000 rows took depends on timing: segments also seal by age.)
  const std::string& last = caught_up[caught_up.size() - 2];
  CHECK(contains(last, "log head     50000"));
  CHECK(contains(last, " offset     50000  speed epochs [] (0)"));

  const auto revenue = section(r.out, "/revenue (first 12 lines");
  REQUIRE(revenue.size() == 12);
  CHECK(revenue[0] == "category,region,orders,revenue");
  CHECK(section(r.out, "/popular (") == expected_popular(read_file(late_sales_file())));
}

TEST_CASE("shop_lambda restarted on the same log rebuilds the batch view from it and appends to it") {
  const std::string log = tmp("shop-log").string();
  const auto first = run(SHOP_LAMBDA_BIN, {"--input", late_sales_file(), "--log", log});
  REQUIRE_MESSAGE(first.status == 0, first.out << first.err);
  const auto second = run(SHOP_LAMBDA_BIN, {"--input", late_sales_file(), "--log", log, "--segment-bytes", "1000000"});
  INFO("stdout:\n" << second.out << "\nstderr:\n" << second.err);
  REQUIRE(second.status == 0);
  CHECK(contains(second.out, "(50000 records before this run;"));
  CHECK(contains(second.out, "served revenue == batch recompute over the log (100000 rows)"));
  CHECK(contains(second.out, "no check against"));
  CHECK(contains(second.out, "all checks passed"));
}

TEST_CASE("shop_lambda without --input is a usage error") {
  const auto r = run(SHOP_LAMBDA_BIN, {});
  CHECK(r.status == 2);
  CHECK(contains(r.err, "expected --input FILE"));
}
