// expect: no stage can follow aggregate(...)
// A window after aggregate (instead of before it).
#include <chrono>
#include <cstdint>

#include "sluice/sluice.hpp"

struct order {
  std::int64_t ts;
  std::int64_t region;
};

auto bad = sluice::flow<order>() | sluice::key_by(&order::region) | sluice::aggregate(sluice::count{}) |
           sluice::window(sluice::tumbling(std::chrono::minutes(1)));
