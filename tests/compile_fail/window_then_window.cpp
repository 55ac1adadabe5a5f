// expect: window(...) must be followed by aggregate(...)
// Two windows in a row.
#include <chrono>
#include <cstdint>

#include "sluice/sluice.hpp"

struct order {
  std::int64_t ts;
  std::int64_t region;
};

auto bad = sluice::flow<order>() | sluice::event_time(&order::ts) | sluice::key_by(&order::region) |
           sluice::window(sluice::tumbling(std::chrono::minutes(1))) | sluice::window(sluice::count_of(10));
