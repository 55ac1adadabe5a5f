// expect: window(...) must be followed by aggregate(...)
// A window followed by a stateless stage instead of aggregate.
#include <chrono>
#include <cstdint>

#include "sluice/sluice.hpp"

struct order {
  std::int64_t ts;
  std::int64_t region;
  std::int64_t qty;
};

auto bad = sluice::flow<order>() | sluice::event_time(&order::ts) | sluice::key_by(&order::region) |
           sluice::window(sluice::tumbling(std::chrono::minutes(1))) |
           sluice::map([](const order& o) { return o.qty; });
