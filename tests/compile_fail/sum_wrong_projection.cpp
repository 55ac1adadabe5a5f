// expect: sluice::sum(f): f must be callable with the event type
// sum's projection takes another type than the flow's values.
#include <cstdint>
#include <string>

#include "sluice/sluice.hpp"

struct order {
  std::int64_t ts;
  std::int64_t qty;
};

auto bad = sluice::flow<order>() | sluice::aggregate(sluice::sum([](const std::string& s) { return s.size(); }));
