// Synthetic sales rows: what gen_sales writes, and what the Lambda benchmarks append to an event
// log, row by row. Deterministic: the same seed gives the same rows on every platform and compiler.
//
// Event times advance about 1 ms per row and jitter up to 200 ms back ("nearly in order"); a
// fraction of rows can be pushed further into the past (late data for stream mode). Products
// follow a skewed distribution so that top-products has a clear head.
#pragma once

#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "../common/splitmix64.hpp"
#include "sales.hpp"

namespace sales {

struct row_options {
  std::uint64_t seed = 42;
  double late_fraction = 0;            // rows whose time is pushed into the past
  std::int64_t max_lateness = 60'000;  // how far back such a row may be, in ms
};

class row_generator {
 public:
  static constexpr std::int64_t base_time_ms = 1'700'000'000'000;
  static constexpr std::int64_t jitter_ms = 200;
  static constexpr std::int64_t products = 100'000;

  explicit row_generator(row_options opts = {}) : opts_(opts), rng_{opts.seed} {}

  /// Appends the next row (columns as in csv_header, without a line ending) to `out` and returns its event time (ms).
  std::int64_t append(std::string& out) {
    clock_ += static_cast<std::int64_t>(rng_.below(3));  // about one event per ms
    std::int64_t ts = clock_ - static_cast<std::int64_t>(rng_.below(jitter_ms));
    if (opts_.late_fraction > 0 && rng_.unit() < opts_.late_fraction) {
      ts -= 1 + static_cast<std::int64_t>(rng_.below(static_cast<std::uint64_t>(opts_.max_lateness) + 1));
    }
    const double u = rng_.unit();
    const std::int64_t product = 1 + static_cast<std::int64_t>(u * u * u * static_cast<double>(products - 1));
    const std::int64_t price_cents = 50 + (product * 7919) % 49'950;
    const std::int64_t qty = 1 + static_cast<std::int64_t>(rng_.below(5));
    const std::uint64_t user = 1 + rng_.below(1'000'000);
    // Drawn in this order, one statement each: the order of a call's arguments is unspecified.
    const std::uint64_t category_pick = rng_.below(3);
    const std::string& region = regions()[rng_.below(regions().size())];
    const std::string& category =
        categories()[(static_cast<std::uint64_t>(product) * 31 + category_pick) % categories().size()];
    fmt::format_to(std::back_inserter(out), "{},{},{},{},{},{},{},{}.{:02}", ts, 100'000'000 + row_, user, region,
                   category, product, qty, price_cents / 100, price_cents % 100);
    ++row_;
    return ts;
  }

  static const std::vector<std::string>& regions() {
    static const std::vector<std::string> names = {
        "af-south",   "ap-east",  "ap-northeast", "ap-south", "ap-southeast", "ca-central", "cn-north",
        "eu-central", "eu-north", "eu-south",     "eu-west",  "il-central",   "me-central", "me-south",
        "mx-central", "sa-east",  "us-east",      "us-gov",   "us-north",     "us-west"};
    return names;
  }

  static const std::vector<std::string>& categories() {
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

 private:
  row_options opts_;
  cli::splitmix64 rng_;
  std::int64_t clock_ = base_time_ms;
  std::uint64_t row_ = 0;
};

}  // namespace sales
