// expect: is not a monoid over this flow's values
// A plain struct with no monoid interface used as an aggregate.
#include <cstdint>

#include "sluice/sluice.hpp"

struct order {
  std::int64_t ts;
  std::int64_t region;
  std::int64_t qty;
};
struct not_a_monoid {
  std::int64_t total = 0;
};

auto bad = sluice::flow<order>() | sluice::key_by(&order::region) | sluice::aggregate(not_a_monoid{});
