// The sales domain shared by the `sales` program, its tests and benchmarks: the event, its CSV
// schema, and the queries as flows. The flows are values: the same object runs in batch mode
// here and in stream mode elsewhere. Keys and sums are named (sluice::named) for
// `sales QUERY --explain`.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/io/schema.hpp"
#include "sluice/sluice.hpp"

namespace sales {

struct sale {
  sluice::millis ts;
  std::int64_t order_id = 0;
  std::int64_t user_id = 0;
  std::string_view region;
  std::string_view category;
  std::int64_t product_id = 0;
  std::int64_t qty = 0;
  std::int64_t price_cents = 0;  // the CSV's price with 2 decimals, read exactly
};

/// The column names in file order: the header of a sales CSV, and of each stream connection.
inline constexpr const char* csv_header = "ts,order_id,user_id,region,category,product_id,qty,price";

inline auto csv_schema() {
  using sluice::column;
  return sluice::schema<sale>(column("ts", &sale::ts), column("order_id", &sale::order_id),
                              column("user_id", &sale::user_id), column("region", &sale::region),
                              column("category", &sale::category), column("product_id", &sale::product_id),
                              column("qty", &sale::qty), column("price", &sale::price_cents, sluice::fixed_point<2>{}));
}

/// The columns each query converts (projection, as DuckDB and Polars push it down). The other
/// columns are still checked in every row: whether a row is valid is the schema's business, not
/// the query's, so every query reads the same rows from the same file and rejects the same ones.
inline auto by_category_schema() {
  return csv_schema().project(&sale::category, &sale::qty, &sale::price_cents);
}
inline auto region_minute_schema() {
  return csv_schema().project(&sale::ts, &sale::region, &sale::qty, &sale::price_cents);
}
inline auto top_products_schema() {
  return csv_schema().project(&sale::product_id, &sale::qty, &sale::price_cents);
}
inline auto popular_schema() {
  return csv_schema().project(&sale::ts, &sale::product_id, &sale::qty);
}

/// Revenue of one sale in cents: exact integer arithmetic, never floating point.
inline constexpr auto revenue_cents = [](const sale& s) { return s.qty * s.price_cents; };

/// Per category: (count, revenue).
inline auto by_category() {
  return sluice::flow<sale>() | sluice::key_by(sluice::named("category", &sale::category)) |
         sluice::aggregate(sluice::count{}, sluice::sum(sluice::named("revenue", revenue_cents)));
}

/// Per region and 1-minute event-time window: (count, revenue).
inline auto region_minute() {
  using namespace std::chrono_literals;
  return sluice::flow<sale>() | sluice::event_time(&sale::ts) | sluice::key_by(sluice::named("region", &sale::region)) |
         sluice::window(sluice::tumbling(1min)) |
         sluice::aggregate(sluice::count{}, sluice::sum(sluice::named("revenue", revenue_cents)));
}

/// Per product: revenue (the top 10 are read from the store).
inline auto product_revenue() {
  return sluice::flow<sale>() | sluice::key_by(sluice::named("product_id", &sale::product_id)) |
         sluice::aggregate(sluice::sum(sluice::named("revenue", revenue_cents)));
}

/// "Popular right now": quantity per product in 5-minute event-time windows sliding by 1 minute
/// (the 10 largest of each window are read from the store). Its state is one entry per
/// (product, window): the size of history, which is what the Lambda engine has to hold.
inline auto popular() {
  using namespace std::chrono_literals;
  return sluice::flow<sale>() | sluice::event_time(&sale::ts) |
         sluice::key_by(sluice::named("product_id", &sale::product_id)) | sluice::window(sluice::sliding(5min, 1min)) |
         sluice::aggregate(sluice::sum(sluice::named("qty", &sale::qty)));
}
inline constexpr std::size_t popular_top = 10;

/// Which rows of a windowed answer to print: all, or one window's (by its start).
struct row_filter {
  std::optional<sluice::millis> window_start;
};

/// Cents as a decimal with exactly two places: 123456 -> "1234.56", -5 -> "-0.05".
inline std::string format_cents(std::int64_t cents) {
  const bool negative = cents < 0;
  const std::uint64_t magnitude = negative ? 0 - static_cast<std::uint64_t>(cents) : static_cast<std::uint64_t>(cents);
  std::string out = negative ? "-" : "";
  out += std::to_string(magnitude / 100);
  out += magnitude % 100 < 10 ? ".0" : ".";
  out += std::to_string(magnitude % 100);
  return out;
}

}  // namespace sales
