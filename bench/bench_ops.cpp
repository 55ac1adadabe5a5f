// Per-operator cost on in-memory events (ns/event, items/s): the fused chain with no I/O.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <variant>
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

// ---- joins, process functions, dedupe and top-N (100k keys) -----------------------------------
// Stepped as stream mode steps them: the watermark, 100 ms behind the latest event, moves every
// 1024 events (so events are held briefly, sorted, then handled in time order), and a final
// watermark flushes the rest. Counters: rows emitted per event.

struct left_ev {
  sluice::millis ts;
  std::int64_t key = 0;
  std::int64_t value = 0;
};
struct right_ev {
  sluice::millis ts;
  std::int64_t key = 0;
  std::int64_t value = 0;
};
using either = std::variant<left_ev, right_ev>;

std::vector<either> make_either(std::size_t n, std::int64_t keys) {
  std::vector<either> out;
  out.reserve(n);
  for (const event& e : make_events(n, keys)) {
    if (e.value % 3 == 0) {
      out.emplace_back(right_ev{e.ts, e.key, e.value});
    } else {
      out.emplace_back(left_ev{e.ts, e.key, e.value});
    }
  }
  return out;
}

/// An event's time, whichever kind of event it is.
sluice::millis time_of(const event& e) {
  return e.ts;
}
sluice::millis time_of(const either& e) {
  return std::visit([](const auto& x) { return x.ts; }, e);
}

template <class Flow, class Events>
void run_stepped(benchmark::State& state, const Flow& flow, const Events& events) {
  std::size_t rows = 0;
  for (auto _ : state) {
    auto partial = flow.make_partial();
    auto chain = flow.bind(partial);
    sluice::millis latest = sluice::millis::min();
    std::size_t n = 0;
    for (const auto& e : events) {
      latest = std::max(latest, time_of(e));
      chain(sluice::millis{0}, e);
      if (++n % 1024 == 0) {
        rows += partial.advance(latest - std::chrono::milliseconds(100)).size();
      }
    }
    rows += partial.advance(sluice::millis::max()).size();
    benchmark::DoNotOptimize(partial);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * events.size()));
  state.counters["rows_per_event"] =
      static_cast<double>(rows) / static_cast<double>(state.iterations() * events.size());
}

auto keyed_either() {
  return sluice::flow<either>() | sluice::event_time(sluice::by_type(&left_ev::ts, &right_ev::ts)) |
         sluice::key_by(sluice::by_type(&left_ev::key, &right_ev::key));
}
constexpr auto pair_sum = [](const left_ev& a, const right_ev& b) { return a.value + b.value; };

void window_join(benchmark::State& state) {
  using namespace std::chrono_literals;
  static const auto events = make_either(1 << 20, 100'000);
  run_stepped(state, keyed_either() | sluice::window_join<left_ev, right_ev>(sluice::tumbling(10s), pair_sum), events);
}
BENCHMARK(window_join);

void interval_join(benchmark::State& state) {
  using namespace std::chrono_literals;
  static const auto events = make_either(1 << 20, 100'000);
  run_stepped(state, keyed_either() | sluice::interval_join<left_ev, right_ev>(-5s, 5s, pair_sum), events);
}
BENCHMARK(interval_join);

void inner_join_ttl(benchmark::State& state) {
  using namespace std::chrono_literals;
  static const auto events = make_either(1 << 20, 100'000);
  run_stepped(state, keyed_either() | sluice::inner_join<left_ev, right_ev>(pair_sum, 10s), events);
}
BENCHMARK(inner_join_ttl);

void temporal_join(benchmark::State& state) {
  static const auto events = make_either(1 << 20, 100'000);
  run_stepped(state, keyed_either() | sluice::temporal_join<left_ev, right_ev>(pair_sum), events);
}
BENCHMARK(temporal_join);

/// One timer per key: count a key's events, emit the count 10 s after its first and forget it.
void process_one_timer_per_key(benchmark::State& state) {
  static const auto events = make_events(1 << 20, 100'000);
  const auto flow = sluice::flow<event>() | sluice::event_time(&event::ts) | sluice::key_by(&event::key) |
                    sluice::process<std::int64_t, std::int64_t>(
                        [](auto& ctx, const event& /*e*/) {
                          if (ctx.state()++ == 0) {
                            ctx.timer_at(ctx.time() + std::chrono::seconds(10));
                          }
                        },
                        [](auto& ctx) {
                          ctx.emit(ctx.state());
                          ctx.clear();
                        });
  run_stepped(state, flow, events);
}
BENCHMARK(process_one_timer_per_key);

struct ranked {
  sluice::millis ts;
  std::int64_t key = 0;
  std::int64_t value = 0;
  auto operator<=>(const ranked&) const = default;
};

void dedupe_first_by(benchmark::State& state) {
  static const auto events = make_events(1 << 20, 100'000);
  const auto flow = sluice::flow<event>() | sluice::map([](const event& e) {
                      return ranked{e.ts, e.key, e.value};
                    }) |
                    sluice::key_by(&ranked::key) | sluice::aggregate(sluice::first_by(&ranked::ts));
  run_chain(state, flow, events);
}
BENCHMARK(dedupe_first_by);

void top_n_3(benchmark::State& state) {
  static const auto events = make_events(1 << 20, 100'000);
  const auto flow =
      sluice::flow<event>() | sluice::map([](const event& e) {
        return ranked{e.ts, e.key, e.value};
      }) |
      sluice::key_by(&ranked::key) |
      sluice::aggregate(sluice::top_n(3, [](const ranked& a, const ranked& b) { return a.value > b.value; }));
  run_chain(state, flow, events);
}
BENCHMARK(top_n_3);

// ---- chained stages: an aggregate's rows into another aggregate ---------------------------------

auto count_per_key_second() {
  return sluice::flow<event>() | sluice::event_time(&event::ts) | sluice::key_by(&event::key) |
         sluice::window(sluice::tumbling(std::chrono::seconds(1))) | sluice::aggregate(sluice::count{});
}

/// The first stage alone (the floor for the chain below): counts per key and second, stepped.
void window_count_100k_keys(benchmark::State& state) {
  static const auto events = make_events(1 << 20, 100'000);
  run_stepped(state, count_per_key_second(), events);
}
BENCHMARK(window_count_100k_keys);

/// Its rows into a second window: the largest per-key count of each second (Nexmark's hot items).
void chained_window_max(benchmark::State& state) {
  static const auto events = make_events(1 << 20, 100'000);
  const auto flow = count_per_key_second() | sluice::window(sluice::tumbling(std::chrono::seconds(1))) |
                    sluice::aggregate(sluice::max([](const auto& row) { return row.value; }));
  run_stepped(state, flow, events);
}
BENCHMARK(chained_window_max);

/// A running aggregate's changelog: each key's largest value (it changes), summed per key % 100.
/// Every step retracts and re-inserts each key that changed.
void running_max_changelog_sum(benchmark::State& state) {
  static const auto events = make_events(1 << 20, 100'000);
  const auto flow = sluice::flow<event>() | sluice::event_time(&event::ts) | sluice::key_by(&event::key) |
                    sluice::aggregate(sluice::max(&event::value)) |
                    sluice::key_by([](const auto& row) { return row.key % 100; }) |
                    sluice::aggregate(sluice::sum([](const auto& row) { return *row.value; }));
  run_stepped(state, flow, events);
}
BENCHMARK(running_max_changelog_sum);

}  // namespace

BENCHMARK_MAIN();
