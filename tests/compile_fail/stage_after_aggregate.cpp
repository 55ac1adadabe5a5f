// expect: no stage can follow aggregate(...)
// aggregate is terminal: a map after it has nothing to map.
#include <cstdint>

#include "sluice/sluice.hpp"

struct order {
  std::int64_t ts;
  std::int64_t region;
  std::int64_t qty;
};

auto bad = sluice::flow<order>() | sluice::key_by(&order::region) | sluice::aggregate(sluice::count{}) |
           sluice::map([](std::int64_t n) { return n * 2; });
