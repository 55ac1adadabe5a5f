// Per-operator cost on in-memory events (ns/event, items/s): the fused chain with no I/O.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "sluice/sluice.hpp"

namespace {

struct event {
  sluice::millis ts;
  std::int64_t key = 0;
  std::int64_t value = 0;
};

std::vector<event> make_events(std::size_t n, std::int64_t keys) {
  std::mt19937_64 rng(7);
  std::vector<event> out(n);
  std::int64_t t = 0;
  for (auto& e : out) {
    t += static_cast<std::int64_t>(rng() % 3);
    e = {sluice::millis{t}, static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(keys)),
         static_cast<std::int64_t>(rng() % 1000)};
  }
  return out;
}

template <class Flow>
void run_chain(benchmark::State& state, const Flow& flow, const std::vector<event>& events) {
  for (auto _ : state) {
    auto partial = flow.make_partial();
    auto chain = flow.bind(partial);
    for (const auto& e : events) {
      chain(sluice::millis{0}, e);
    }
    benchmark::DoNotOptimize(partial);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * events.size()));
}

void map_filter_key_by_sum(benchmark::State& state) {
  const auto events = make_events(1 << 20, state.range(0));
  const auto flow = sluice::flow<event>() | sluice::map([](const event& e) {
                      return event{e.ts, e.key, e.value * 3};
                    }) |
                    sluice::filter([](const event& e) { return e.value % 7 != 0; }) | sluice::key_by(&event::key) |
                    sluice::aggregate(sluice::sum(&event::value));
  run_chain(state, flow, events);
}
BENCHMARK(map_filter_key_by_sum)->Arg(64)->Arg(100'000);

void key_by_count(benchmark::State& state) {
  const auto events = make_events(1 << 20, state.range(0));
  const auto flow = sluice::flow<event>() | sluice::key_by(&event::key) | sluice::aggregate(sluice::count{});
  run_chain(state, flow, events);
}
BENCHMARK(key_by_count)->Arg(64)->Arg(100'000);

void tumbling_count(benchmark::State& state) {
  using namespace std::chrono_literals;
  const auto events = make_events(1 << 20, state.range(0));
  const auto flow = sluice::flow<event>() | sluice::event_time(&event::ts) | sluice::key_by(&event::key) |
                    sluice::window(sluice::tumbling(1s)) | sluice::aggregate(sluice::count{});
  run_chain(state, flow, events);
}
BENCHMARK(tumbling_count)->Arg(64);

void sliding_sum(benchmark::State& state) {
  using namespace std::chrono_literals;
  const auto events = make_events(1 << 20, 64);
  const auto flow = sluice::flow<event>() | sluice::event_time(&event::ts) | sluice::key_by(&event::key) |
                    sluice::window(sluice::sliding(4s, 1s)) | sluice::aggregate(sluice::sum(&event::value));
  run_chain(state, flow, events);
}
BENCHMARK(sliding_sum);

void session_count(benchmark::State& state) {
  using namespace std::chrono_literals;
  const auto events = make_events(1 << 20, 64);
  const auto flow = sluice::flow<event>() | sluice::event_time(&event::ts) | sluice::key_by(&event::key) |
                    sluice::window(sluice::session(50ms)) | sluice::aggregate(sluice::count{});
  run_chain(state, flow, events);
}
BENCHMARK(session_count);

}  // namespace

BENCHMARK_MAIN();
