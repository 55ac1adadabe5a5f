// Stream mode through the in-process queue (items/s): a host thread pushes binary events into
// an event_queue, run_stream pops them on the benchmark thread and runs
// map -> key_by -> tumbling window -> count, firing windows as the watermark passes.
// `push_batch` pushes 1024 events per lock; `push` one event per lock (the simplest host code).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "sluice/run/stream.hpp"
#include "sluice/sluice.hpp"

namespace {

struct event {
  sluice::millis ts;
  std::int64_t key = 0;
  std::int64_t value = 0;
};

std::vector<event> make_events(std::size_t n, std::int64_t keys) {
  std::vector<event> out(n);
  std::uint64_t x = 7;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    // about 10 events per ms, a little out of order
    out[i] = {sluice::millis{static_cast<std::int64_t>(i / 10) - static_cast<std::int64_t>((x >> 40U) % 5)},
              static_cast<std::int64_t>((x >> 20U) % static_cast<std::uint64_t>(keys)),
              static_cast<std::int64_t>(x % 1000)};
  }
  return out;
}

template <bool Batched>
void queue_map_key_by_tumbling_count(benchmark::State& state) {
  using namespace std::chrono_literals;
  const auto events = make_events(std::size_t{1} << 22U, state.range(0));
  const auto flow = sluice::flow<event>() | sluice::map([](const event& e) {
                      return event{e.ts, e.key, e.value * 3};
                    }) |
                    sluice::event_time(&event::ts) | sluice::key_by(&event::key) |
                    sluice::window(sluice::tumbling(1s)) | sluice::aggregate(sluice::count{});
  std::uint64_t rows = 0;
  for (auto _ : state) {
    sluice::event_queue<event> q(1U << 16U);
    std::jthread producer([&] {
      if constexpr (Batched) {
        for (std::size_t i = 0; i < events.size(); i += 1024) {
          q.push_batch(events.begin() + static_cast<std::ptrdiff_t>(i),
                       events.begin() + static_cast<std::ptrdiff_t>(std::min(events.size(), i + 1024)));
        }
      } else {
        for (const auto& e : events) {
          q.push(e);
        }
      }
      q.close();
    });
    const auto stats = sluice::run_stream(sluice::from_queue(q), flow,
                                          [&](const auto& fired) { rows += fired.size(); },
                                          sluice::stream_options{.max_delay = 10ms});
    benchmark::DoNotOptimize(stats);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * events.size()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * events.size() * sizeof(event)));
  state.counters["rows"] = static_cast<double>(rows) / static_cast<double>(state.iterations());
}
BENCHMARK(queue_map_key_by_tumbling_count<true>)->Name("queue_push_batch/map_key_by_tumbling_count")->Arg(64)->Arg(1024)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(queue_map_key_by_tumbling_count<false>)->Name("queue_push/map_key_by_tumbling_count")->Arg(64)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
