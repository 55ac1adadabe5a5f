// expect: window(...) must be followed by aggregate(...)
// A flow ending in window(...) bound to a plain sink: the window would be silently ignored.
#include <chrono>
#include <cstdint>

#include "sluice/sluice.hpp"

struct order {
  std::int64_t ts;
  std::int64_t region;
};

void run() {
  const auto f = sluice::flow<order>() | sluice::event_time(&order::ts) | sluice::key_by(&order::region) |
                 sluice::window(sluice::tumbling(std::chrono::minutes(1)));
  auto chain = f.bind_sink([](sluice::millis, const auto&) {});
  chain(sluice::millis{0}, order{1, 2});
}
