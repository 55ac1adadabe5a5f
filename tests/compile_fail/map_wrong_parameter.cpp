// expect: this stage cannot take the flow's element type
// map's function takes a std::string, but the flow carries `order` values.
#include <cstdint>
#include <string>

#include "sluice/sluice.hpp"

struct order {
  std::int64_t ts;
  std::int64_t qty;
};

auto bad = sluice::flow<order>() | sluice::map([](const std::string& s) { return s.size(); });
