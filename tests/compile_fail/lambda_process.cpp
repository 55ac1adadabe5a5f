// expect: a Lambda view cannot run a process function or a join
// A process function's state and timers follow each key across epochs: no Lambda view for it.
#include <cstdint>

#include "sluice/lambda/epoch_store.hpp"
#include "sluice/sluice.hpp"

struct txn {
  sluice::millis ts;
  std::int64_t card;
};

inline auto per_card() {
  return sluice::flow<txn>() | sluice::event_time(&txn::ts) | sluice::key_by(&txn::card) |
         sluice::process<std::int64_t>([](auto& ctx, const txn& t) { ctx.emit(t.ts.count()); });
}

inline void use() {
  const auto flow = per_card();
  sluice::epoch_store<decltype(flow)> store(flow);
}
