// gen_sales: writes deterministic synthetic sales events as CSV, for demos, tests and benchmarks.
//
//   gen_sales ROWS FILE [--seed S] [--late-fraction F] [--max-lateness MS]
//
// Header: ts,order_id,user_id,region,category,product_id,qty,price. Event times advance about
// 1 ms per row and jitter up to 200 ms back ("nearly in order"); a fraction F of rows is up to
// MS further in the past (late data for stream mode). Products follow a skewed distribution so
// that top-products has a clear head.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

#include "common/cli.hpp"
#include "common/splitmix64.hpp"

namespace {

constexpr const char* usage =
    "usage: gen_sales ROWS FILE [--seed S] [--late-fraction F] [--max-lateness MS]\n"
    "  Writes ROWS synthetic sales rows (CSV with header) to FILE ('-' for stdout).\n"
    "  --seed S            random seed (default 42); the same seed gives the same file\n"
    "  --late-fraction F   fraction of rows whose time is pushed into the past (default 0)\n"
    "  --max-lateness MS   how far back a late row may be, in ms (default 60000)\n";

constexpr std::int64_t base_time_ms = 1'700'000'000'000;
constexpr std::int64_t jitter_ms = 200;
constexpr std::int64_t products = 100'000;

using cli::splitmix64;

const std::vector<std::string>& regions() {
  static const std::vector<std::string> names = {"af-south",   "ap-east",    "ap-northeast", "ap-south", "ap-southeast",
                                                 "ca-central", "cn-north",   "eu-central",   "eu-north", "eu-south",
                                                 "eu-west",    "il-central", "me-central",   "me-south", "mx-central",
                                                 "sa-east",    "us-east",    "us-gov",       "us-north", "us-west"};
  return names;
}

const std::vector<std::string>& categories() {
  static const std::vector<std::string> names = [] {
    const char* stems[] = {"audio", "baby",    "beauty",  "books", "camera",  "garden",  "games", "grocery", "health",
                           "home",  "jewelry", "kitchen", "music", "office",  "outdoor", "pets",  "shoes",   "sports",
                           "tools", "toys",    "travel",  "video", "watches", "wine",    "auto"};
    std::vector<std::string> out;
    for (const char* s : stems) {
      out.emplace_back(s);
      out.emplace_back(std::string(s) + "-pro");
    }
    return out;
  }();
  return names;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  std::uint64_t seed = 42;
  double late_fraction = 0;
  std::int64_t max_lateness = 60'000;
  cli::args args("gen_sales", usage, argc, argv);
  while (args.next()) {
    const std::string_view a = args.current();
    if (a == "--seed") {
      seed = args.whole_number(args.value(), "--seed");
    } else if (a == "--max-lateness") {
      max_lateness = static_cast<std::int64_t>(args.whole_number(args.value(), "--max-lateness"));
    } else if (a == "--late-fraction") {
      const std::string v = args.value();
      char* end = nullptr;
      late_fraction = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(late_fraction >= 0 && late_fraction <= 1)) {
        args.fail("--late-fraction must be a number from 0 to 1, not '" + v + "'");
      }
    } else {
      args.take_positional(positional, 2);
    }
  }
  const auto target = args.rows_and_file(positional);
  const std::uint64_t rows = target.rows;

  splitmix64 rng{seed};
  const auto& region = regions();
  const auto& category = categories();
  std::string buf;
  buf.reserve(1U << 20U);
  buf += "ts,order_id,user_id,region,category,product_id,qty,price\n";
  std::int64_t clock = base_time_ms;
  for (std::uint64_t row = 0; row < rows; ++row) {
    clock += static_cast<std::int64_t>(rng.below(3));  // about one event per ms
    std::int64_t ts = clock - static_cast<std::int64_t>(rng.below(jitter_ms));
    if (late_fraction > 0 && rng.unit() < late_fraction) {
      ts -= 1 + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(max_lateness) + 1));
    }
    const double u = rng.unit();
    const std::int64_t product = 1 + static_cast<std::int64_t>(u * u * u * static_cast<double>(products - 1));
    const std::int64_t price_cents = 50 + (product * 7919) % 49'950;
    const std::int64_t qty = 1 + static_cast<std::int64_t>(rng.below(5));
    const std::uint64_t user = 1 + rng.below(1'000'000);
    fmt::format_to(std::back_inserter(buf), "{},{},{},{},{},{},{},{}.{:02}\n", ts, 100'000'000 + row, user,
                   region[rng.below(region.size())], category[(product * 31 + rng.below(3)) % category.size()], product,
                   qty, price_cents / 100, price_cents % 100);
    target.write_if_full(buf);
  }
  return target.finish(buf, "gen_sales");
}
