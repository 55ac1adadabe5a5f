// expect: is not a monoid over this flow's values
// Looks like a monoid but has no merge: partials could not be combined, so it is refused.
#include <chrono>
#include <cstdint>

#include "sluice/sluice.hpp"

struct order {
  std::int64_t ts;
  std::int64_t region;
  std::int64_t qty;
};
struct running_total {
  using state = std::int64_t;
  static state identity() { return 0; }
  static void add(state& s, const order& o) { s += o.qty; }
  static state result(const state& s) { return s; }
};

auto bad = sluice::flow<order>() | sluice::event_time(&order::ts) | sluice::key_by(&order::region) |
           sluice::window(sluice::tumbling(std::chrono::minutes(1))) | sluice::aggregate(running_total{});
