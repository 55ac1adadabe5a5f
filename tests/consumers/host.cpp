// A host program that embeds sluice, built by scripts/consumers.sh in each way a project can use
// sluice (meson subproject, pkg-config, CMake package, CMake over the source tree): energy per
// device over events it holds in memory. Exits non-zero when the answer is wrong.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/io/memory_source.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/sluice.hpp"

struct reading {
  sluice::millis ts;
  std::string_view device;
  std::int64_t watts = 0;
};

int main() {
  const std::vector<reading> events = {{sluice::millis{1000}, "pump-1", 120},
                                       {sluice::millis{2000}, "pump-2", 80},
                                       {sluice::millis{3000}, "pump-1", 130}};
  auto energy = sluice::flow<reading>() | sluice::key_by(&reading::device) |
                sluice::aggregate(sluice::count{}, sluice::sum(&reading::watts));
  // Two threads over chunks of one event or more: the threads dependency is exercised too.
  auto store =
      sluice::run_batch(sluice::from_range(events), energy, sluice::batch_options{.threads = 2, .min_chunk_units = 1});

  std::string answer;
  for (const auto& row : store.scan()) {
    const auto& [n, watts] = row.value;
    answer += row.key + "," + std::to_string(n) + "," + std::to_string(watts) + "\n";
  }
  std::fputs(answer.c_str(), stdout);
  const std::string expected = "pump-1,2,250\npump-2,1,80\n";
  if (answer != expected) {
    std::fprintf(stderr, "host: wrong answer, expected:\n%s", expected.c_str());
    return 1;
  }
  return 0;
}
