// expect: a Lambda view cannot run count windows
// Count windows follow arrival order: an epoch's half-filled window cannot be merged back.
#include <cstdint>

#include "sluice/lambda/epoch_store.hpp"
#include "sluice/sluice.hpp"

struct order {
  sluice::millis ts;
  std::int64_t region;
};

inline auto every_ten() {
  return sluice::flow<order>() | sluice::key_by(&order::region) | sluice::window(sluice::count_of(10)) |
         sluice::aggregate(sluice::count{});
}

inline void use() {
  const auto flow = every_ten();
  sluice::epoch_store<decltype(flow)> store(flow);
}
