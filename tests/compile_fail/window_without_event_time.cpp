// expect: window(...) needs event time
// A time window on a flow that never said where event time comes from.
#include <chrono>
#include <cstdint>

#include "sluice/sluice.hpp"

struct order {
  std::int64_t ts;
  std::int64_t region;
  std::int64_t qty;
};

auto bad = sluice::flow<order>() | sluice::key_by(&order::region) |
           sluice::window(sluice::tumbling(std::chrono::minutes(1))) | sluice::aggregate(sluice::count{});
