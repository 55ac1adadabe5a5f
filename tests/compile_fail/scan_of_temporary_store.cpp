// expect: deleted
// Rows of a scan refer into the store: scanning a temporary store would dangle, so it does not compile.
#include <cstdint>
#include <vector>

#include "sluice/io/memory_source.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/sluice.hpp"

struct event {
  std::int64_t key = 0;
};

int main() {
  std::vector<event> events;
  auto f = sluice::flow<event>() | sluice::key_by(&event::key) | sluice::aggregate(sluice::count{});
  auto rows = sluice::run_batch(sluice::from_range(events), f).scan();
  return static_cast<int>(rows.size());
}
