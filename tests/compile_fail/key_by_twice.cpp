// expect: this stage cannot take the flow's element type
// A keyed stream cannot be keyed again: use key_by(f, g) for a composite key.
#include <cstdint>

#include "sluice/sluice.hpp"

struct order {
  std::int64_t ts;
  std::int64_t region;
  std::int64_t qty;
};

auto bad = sluice::flow<order>() | sluice::key_by(&order::region) | sluice::key_by(&order::qty);
