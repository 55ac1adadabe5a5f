// Random sales rows for property tests, and the same rows as sales CSV. Owned strings: the rows
// outlive any file they are written to.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "sales.hpp"

namespace test_data {

struct owned_sale {
  std::int64_t ts, order_id, user_id;
  std::string region, category;
  std::int64_t product, qty, price_cents;
};

// Appending rather than "r" + std::to_string(n): GCC 12 warns falsely (-Wrestrict) on the latter.
inline std::string label(const char* prefix, std::uint64_t n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

/// n rows with times up to 90 s out of order, 7 regions, 13 categories, 50 products and prices
/// from -10.00 to 989.99 (negative ones exercise the signed fixed-point path).
inline std::vector<owned_sale> random_sales(std::uint64_t seed, std::size_t n) {
  std::mt19937_64 rng(seed);
  std::vector<owned_sale> out;
  out.reserve(n);
  std::int64_t clock = 1'700'000'000'000;
  for (std::size_t i = 0; i < n; ++i) {
    clock += static_cast<std::int64_t>(rng() % 2000);
    out.push_back({clock - static_cast<std::int64_t>(rng() % 90'000), static_cast<std::int64_t>(i),
                   static_cast<std::int64_t>(rng() % 1000), label("r", rng() % 7), label("c", rng() % 13),
                   static_cast<std::int64_t>(rng() % 50), static_cast<std::int64_t>(1 + rng() % 5),
                   static_cast<std::int64_t>(rng() % 100'000) - 1000});
  }
  return out;
}

/// The rows as the events a CSV reader would make of them (views into `rows`, which must outlive them).
inline std::vector<sales::sale> as_events(const std::vector<owned_sale>& rows) {
  std::vector<sales::sale> events;
  events.reserve(rows.size());
  for (const auto& r : rows) {
    events.push_back(
        {sluice::millis{r.ts}, r.order_id, r.user_id, r.region, r.category, r.product, r.qty, r.price_cents});
  }
  return events;
}

/// The rows as sales CSV. With `vary_syntax`, some categories are quoted and some lines end in
/// CRLF (chosen by `seed`), so that readers see more than one spelling of the same data.
inline std::string to_csv(const std::vector<owned_sale>& rows, bool vary_syntax = false, std::uint64_t seed = 0) {
  std::mt19937_64 rng(seed);
  std::string s = "ts,order_id,user_id,region,category,product_id,qty,price\n";
  for (const auto& r : rows) {
    std::string category = r.category;
    if (vary_syntax && rng() % 4 == 0) {
      category = "\"" + category + "\"";  // a quoted field that needs no unescaping
    }
    s += std::to_string(r.ts) + "," + std::to_string(r.order_id) + "," + std::to_string(r.user_id) + "," + r.region +
         "," + category + "," + std::to_string(r.product) + "," + std::to_string(r.qty) + "," +
         sales::format_cents(r.price_cents) + (vary_syntax && rng() % 3 == 0 ? "\r\n" : "\n");
  }
  return s;
}

/// A by-category answer: category -> (count, revenue in cents).
using category_ref = std::map<std::string, std::pair<std::int64_t, std::int64_t>>;

/// A by-category result store as a category_ref.
template <class Store>
category_ref to_map(const Store& store) {
  category_ref out;
  for (const auto& row : store.scan()) {
    out[std::string(row.key)] = {std::get<0>(row.value), std::get<1>(row.value)};
  }
  return out;
}

}  // namespace test_data
