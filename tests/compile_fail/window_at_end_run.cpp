// expect: window(...) must be followed by aggregate(...)
// A flow that ends in window(...) and is then run: the window would have nothing to fold.
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
  auto partial = f.make_partial();
  (void)partial;
}
