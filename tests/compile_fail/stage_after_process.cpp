// expect: no stage can follow process(...) or a join yet
// A process function's rows cannot feed more stages yet.
#include <cstdint>

#include "sluice/sluice.hpp"

struct order {
  std::int64_t ts;
  std::int64_t region;
};

auto bad = sluice::flow<order>() | sluice::event_time(&order::ts) | sluice::key_by(&order::region) |
           sluice::process<std::int64_t>([](auto& ctx, const order& o) { ctx.emit(o.region); }) |
           sluice::map([](std::int64_t n) { return n * 2; });
