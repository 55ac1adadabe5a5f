// expect: this stage cannot take the flow's element type
// key_by extracts a member of another struct than the flow's element.
#include <cstdint>
#include <string_view>

#include "sluice/sluice.hpp"

struct order {
  std::int64_t ts;
  std::int64_t qty;
};
struct customer {
  std::string_view region;
};

auto bad = sluice::flow<order>() | sluice::key_by(&customer::region);
