// expect: process(...) handles events in event-time order
// A process function sees each key's events in event-time order, so the flow must have one.
#include <cstdint>

#include "sluice/sluice.hpp"

struct txn {
  std::int64_t ts;
  std::int64_t card;
};

auto bad = sluice::flow<txn>() | sluice::key_by(&txn::card) |
           sluice::process<std::int64_t>([](auto& ctx, const txn& t) { ctx.emit(t.ts); });
