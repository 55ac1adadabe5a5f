// expect: this stage cannot take the flow's element type
// map turns an order into a std::string; the filter after it still expects an order.
#include <cstdint>
#include <string>

#include "sluice/sluice.hpp"

struct order {
  std::int64_t ts;
  std::int64_t qty;
};

auto bad = sluice::flow<order>() | sluice::map([](const order& o) { return std::to_string(o.qty); }) |
           sluice::filter([](const order& o) { return o.qty > 0; });
