// The record the CSV and stream-framing targets bind: every kind of column sluice parses (a
// 64-bit and a 32-bit integer, a fixed-point decimal, text, event time).
#pragma once

#include <cstdint>
#include <string_view>

#include "sluice/io/schema.hpp"

namespace fuzz {

struct sale {
  std::int64_t id = 0;
  std::int32_t qty = 0;
  std::int64_t price_cents = 0;
  std::string_view name;
  sluice::millis ts;
};

inline auto sale_schema() {
  using sluice::column;
  return sluice::schema<sale>(column("id", &sale::id), column("qty", &sale::qty),
                              column("price", &sale::price_cents, sluice::fixed_point<2>{}),
                              column("name", &sale::name), column("ts", &sale::ts));
}

}  // namespace fuzz
