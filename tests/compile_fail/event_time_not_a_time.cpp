// expect: event_time(f): f must return sluice::millis or integer milliseconds
// event_time's function returns text, not a time.
#include <cstdint>
#include <string>

#include "sluice/sluice.hpp"

struct order {
  std::string ts;
  std::int64_t qty;
};

auto bad = sluice::flow<order>() | sluice::event_time(&order::ts) | sluice::aggregate(sluice::count{});
