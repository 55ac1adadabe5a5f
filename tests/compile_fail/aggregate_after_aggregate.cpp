// expect: no stage can follow aggregate(...)
// Two aggregates in a row: the second must be a new flow over the first's result store.
#include <cstdint>

#include "sluice/sluice.hpp"

struct order {
  std::int64_t ts;
  std::int64_t region;
  std::int64_t qty;
};

auto bad = sluice::flow<order>() | sluice::key_by(&order::region) | sluice::aggregate(sluice::count{}) |
           sluice::aggregate(sluice::count{});
