// expect: emits a changelog (its rows change); only an aggregate(...) without a window can follow it
// A running aggregate's rows change in stream mode: a process function cannot take them back.
#include <cstdint>
#include <vector>

#include "sluice/sluice.hpp"

struct order {
  std::int64_t ts;
  std::int64_t region;
};

int main() {
  auto bad = sluice::flow<order>() | sluice::event_time(&order::ts) | sluice::key_by(&order::region) |
             sluice::aggregate(sluice::count{}) | sluice::key_by([](const auto& row) { return row.key % 10; }) |
             sluice::process<std::int64_t>([](auto& ctx, const auto& row) { ctx.emit(row.value); });
  auto partial = bad.make_partial();
  (void)partial;
}
