// Checkpoint cost (issue 13, item 8): saving and restoring a partition's state against its size.
//
//   checkpoint/save      partial.save into bytes (the codec: varints, key strings)
//   checkpoint/file      save + checkpoint_dir::save (CRC, temp file, fsync, rename, fsync dir)
//   checkpoint/restore   checkpoint_dir::load + partial.load (CRC, decode, rebuild the table)
//
// The state is region-minute's: (region string, 1-minute window) -> (count, sum), 16 regions a
// window; sizes 100k, 1M and 4M entries. Counters: entries, and checkpoint bytes per entry;
// items/s are entries a second, bytes/s checkpoint bytes a second.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/sluice.hpp"
#include "sluice/store/checkpoint.hpp"

namespace {

struct sale {
  sluice::millis ts;
  std::string_view region;
  std::int64_t cents = 0;
};

auto region_minute() {
  using namespace std::chrono_literals;
  return sluice::flow<sale>() | sluice::event_time(&sale::ts) | sluice::key_by(&sale::region) |
         sluice::window(sluice::tumbling(1min)) | sluice::aggregate(sluice::count{}, sluice::sum(&sale::cents));
}
using partial_type = decltype(region_minute().make_partial());

constexpr std::int64_t regions = 16;
const std::string& region_name(std::int64_t i) {
  static const auto names = [] {
    std::vector<std::string> n;
    for (std::int64_t r = 0; r < regions; ++r) {
      n.push_back("region-" + std::to_string(r));
    }
    return n;
  }();
  return names[static_cast<std::size_t>(i)];
}

/// A partial holding `entries` open (region, minute) windows.
partial_type filled(std::int64_t entries) {
  const auto flow = region_minute();
  auto p = flow.make_partial();
  auto chain = flow.bind(p);
  for (std::int64_t i = 0; i < entries; ++i) {
    chain(sluice::millis{0}, sale{sluice::millis{(i / regions) * 60'000}, region_name(i % regions), i});
  }
  return p;
}

std::string saved(const partial_type& p) {
  std::string bytes;
  sluice::byte_writer w(bytes);
  p.save(w);
  return bytes;
}

void counters(benchmark::State& state, std::int64_t entries, std::size_t bytes) {
  state.SetItemsProcessed(state.iterations() * entries);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
  state.counters["entries"] = static_cast<double>(entries);
  state.counters["bytes_per_entry"] = static_cast<double>(bytes) / static_cast<double>(entries);
}

std::string scratch_dir() {
  return (std::filesystem::temp_directory_path() / ("sluice-bench-checkpoint-" + std::to_string(::getpid()))).string();
}

void save(benchmark::State& state) {
  const partial_type p = filled(state.range(0));
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string b = saved(p);
    bytes = b.size();
    benchmark::DoNotOptimize(b.data());
  }
  counters(state, state.range(0), bytes);
}

void file(benchmark::State& state) {
  const partial_type p = filled(state.range(0));
  const sluice::checkpoint_dir dir(scratch_dir());
  std::size_t bytes = 0;
  for (auto _ : state) {
    sluice::checkpoint c;
    c.add("state", saved(p));
    bytes = c.parts.back().second.size();
    dir.save("p0", c);
  }
  counters(state, state.range(0), bytes);
  std::filesystem::remove_all(dir.dir());
}

void restore(benchmark::State& state) {
  const sluice::checkpoint_dir dir(scratch_dir());
  sluice::checkpoint c;
  c.add("state", saved(filled(state.range(0))));
  const std::size_t bytes = c.parts.back().second.size();
  dir.save("p0", c);
  const auto flow = region_minute();
  for (auto _ : state) {
    auto p = flow.make_partial();
    const auto loaded = dir.load("p0");
    sluice::byte_reader r(*loaded->find("state"));
    p.load(r);
    benchmark::DoNotOptimize(p.held().size());
  }
  counters(state, state.range(0), bytes);
  std::filesystem::remove_all(dir.dir());
}

}  // namespace

BENCHMARK(save)->Name("checkpoint/save")->Arg(100'000)->Arg(1'000'000)->Arg(4'000'000)->Unit(benchmark::kMillisecond);
BENCHMARK(file)->Name("checkpoint/file")->Arg(100'000)->Arg(1'000'000)->Arg(4'000'000)->Unit(benchmark::kMillisecond);
BENCHMARK(restore)
    ->Name("checkpoint/restore")
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Arg(4'000'000)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
