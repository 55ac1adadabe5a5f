// expect: a Lambda view cannot run session windows
// A session can span two epochs: its halves cannot be merged back by key and window.
#include <chrono>
#include <cstdint>

#include "sluice/lambda/epoch_store.hpp"
#include "sluice/sluice.hpp"

struct order {
  sluice::millis ts;
  std::int64_t region;
};

inline auto sessions() {
  return sluice::flow<order>() | sluice::event_time(&order::ts) | sluice::key_by(&order::region) |
         sluice::window(sluice::session(std::chrono::seconds(30))) | sluice::aggregate(sluice::count{});
}

inline void use() {
  const auto flow = sessions();
  sluice::epoch_store<decltype(flow)> store(flow);
}
