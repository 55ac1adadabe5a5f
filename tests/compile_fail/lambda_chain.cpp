// expect: a Lambda view cannot run a chained aggregate
// A chained aggregate's rows are final only when a window has seen every epoch: no Lambda view.
#include <chrono>
#include <cstdint>

#include "sluice/lambda/epoch_store.hpp"
#include "sluice/sluice.hpp"

struct txn {
  sluice::millis ts;
  std::int64_t card;
};

inline auto busiest_card_per_minute() {
  return sluice::flow<txn>() | sluice::event_time(&txn::ts) | sluice::key_by(&txn::card) |
         sluice::window(sluice::tumbling(std::chrono::minutes(1))) | sluice::aggregate(sluice::count{}) |
         sluice::window(sluice::tumbling(std::chrono::minutes(1))) |
         sluice::aggregate(sluice::max([](const auto& row) { return row.value; }));
}

inline void use() {
  const auto flow = busiest_card_per_minute();
  sluice::epoch_store<decltype(flow)> store(flow);
}
