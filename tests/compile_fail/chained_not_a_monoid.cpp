// expect: is not a monoid over this flow's values
// The aggregate after an aggregate (over its rows) must be a monoid too.
#include <chrono>
#include <cstdint>

#include "sluice/sluice.hpp"

struct order {
  std::int64_t ts;
  std::int64_t region;
};

struct not_a_monoid {
  int state;
};

auto bad = sluice::flow<order>() | sluice::event_time(&order::ts) | sluice::key_by(&order::region) |
           sluice::window(sluice::tumbling(std::chrono::minutes(1))) | sluice::aggregate(sluice::count{}) |
           sluice::aggregate(not_a_monoid{});
