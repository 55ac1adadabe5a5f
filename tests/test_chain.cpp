// Chained stages: an aggregate's rows feeding more stages. Against a naive reference computed
// here: windowed rows into another window (final rows), into a process function, a running
// aggregate's changelog into an aggregate without a window (group and multiset monoids, rows that
// move between keys), and windows re-fired under allowed lateness (retract the old row, insert
// the new). Batch mode on 1 and 4 threads, stream mode one event per pop (the watermark moves
// between almost every event, so changelogs are long) and in large batches. And a process
// function's rows, each at the time it was emitted, into a window and into a running aggregate.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

#include "sluice/io/memory_source.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/sluice.hpp"
#include "stream_fixtures.hpp"

using stream_test::ev;

namespace {

constexpr std::int64_t window_ms = 100;

std::int64_t floor_to(std::int64_t t, std::int64_t size) {
  return t >= 0 ? t / size * size : (t - size + 1) / size * size;
}

/// Runs `f` over `events` pushed by another thread; sink(store or rows) gets every emission.
template <class Flow, class Sink>
sluice::stream_stats stream_over_queue(const Flow& f, const std::vector<ev>& events, sluice::stream_options opts,
                                       Sink sink) {
  sluice::event_queue<ev> q(64);
  std::thread producer([&q, &events] {
    for (const ev& e : events) {
      q.push(e);
    }
    q.close();
  });
  struct join_on_exit {
    std::thread& t;
    ~join_on_exit() { t.join(); }
  } joiner{producer};
  return sluice::run_stream(sluice::from_queue(q), f, sink, opts);
}

// ---- windowed rows into another window -------------------------------------------------------

// Per key and 100 ms window: count and sum; then per key % 3 and 200 ms window of those rows:
// the largest count, the total sum and how many rows.
auto windows_of_windows() {
  return sluice::flow<ev>() | sluice::event_time(&ev::t) | sluice::key_by(&ev::k) |
         sluice::window(sluice::tumbling(std::chrono::milliseconds(window_ms))) |
         sluice::aggregate(sluice::count{}, sluice::sum(&ev::v)) |
         sluice::key_by([](const auto& row) { return row.key % 3; }) |
         sluice::window(sluice::tumbling(std::chrono::milliseconds(2 * window_ms))) |
         sluice::aggregate(sluice::max([](const auto& row) { return std::get<0>(row.value); }),
                           sluice::sum([](const auto& row) { return std::get<1>(row.value); }), sluice::count{});
}

using window_answer = std::map<std::pair<std::int64_t, std::int64_t>, std::tuple<std::int64_t, std::int64_t, std::int64_t>>;

window_answer windows_reference(const std::vector<ev>& events) {
  std::map<std::pair<std::int64_t, std::int64_t>, std::pair<std::int64_t, std::int64_t>> first;  // (k, start) -> count, sum
  for (const ev& e : events) {
    auto& cell = first[{e.k, floor_to(e.t.count(), window_ms)}];
    ++cell.first;
    cell.second += e.v;
  }
  window_answer out;
  for (const auto& entry : first) {
    const std::int64_t key = entry.first.first % 3;
    // A row's time is its window's last millisecond.
    const std::int64_t start = floor_to(entry.first.second + window_ms - 1, 2 * window_ms);
    auto [it, fresh] = out.try_emplace({key, start}, 0, 0, 0);
    auto& [largest, sum, rows] = it->second;
    largest = fresh ? entry.second.first : std::max(largest, entry.second.first);
    sum += entry.second.second;
    ++rows;
  }
  return out;
}

template <class Store>
void collect_windows(const Store& store, window_answer& out) {
  for (const auto& row : store.scan()) {
    const auto& [largest, sum, rows] = row.value;
    REQUIRE(largest.has_value());
    // Final rows: each fires once (a second one would be added in, and differ from the reference).
    auto& [out_largest, out_sum, out_rows] = out[{row.key.key, row.key.window.start.count()}];
    out_largest = std::max(out_largest, *largest);
    out_sum += sum;
    out_rows += rows;
  }
}

TEST_CASE("chain: windowed rows into another window equal the reference in batch and stream mode") {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    CAPTURE(seed);
    constexpr std::int64_t delay = 40;
    const auto events = stream_test::random_events(seed, 5000, 11, delay);
    const window_answer reference = windows_reference(events);
    REQUIRE(reference.size() > 50);
    for (const unsigned threads : {1U, 4U}) {
      CAPTURE(threads);
      window_answer batch;
      collect_windows(sluice::run_batch(sluice::from_range(events), windows_of_windows(),
                                        sluice::batch_options{.threads = threads, .min_chunk_units = 1}),
                      batch);
      CHECK(batch == reference);
    }
    for (const std::size_t queue_events : {std::size_t{1}, std::size_t{4096}}) {
      CAPTURE(queue_events);
      sluice::stream_options opts;
      opts.max_delay = std::chrono::milliseconds(delay);
      opts.queue_events = queue_events;
      window_answer stream;
      std::size_t emissions = 0;
      const auto stats = stream_over_queue(windows_of_windows(), events, opts, [&](const auto& store) {
        ++emissions;
        collect_windows(store, stream);
      });
      CHECK(stats.late_events == 0);
      CHECK(stream == reference);
      if (queue_events == 1) {
        CHECK(emissions > 10);  // windows of rows fire as the run goes, not at its end
      }
    }
  }
}

// ---- windowed rows into a process function ---------------------------------------------------

struct rise {
  std::int64_t key;
  std::int64_t window_start;
  std::int64_t count;
  auto operator<=>(const rise&) const = default;
};

// Per key: a row for each window whose count is larger than the key's previous window's.
auto rising_counts() {
  return sluice::flow<ev>() | sluice::event_time(&ev::t) | sluice::key_by(&ev::k) |
         sluice::window(sluice::tumbling(std::chrono::milliseconds(window_ms))) | sluice::aggregate(sluice::count{}) |
         sluice::key_by([](const auto& row) { return row.key; }) |
         sluice::process<rise, std::optional<std::int64_t>>([](auto& ctx, const auto& row) {
           auto& previous = ctx.state();
           if (previous && row.value > *previous) {
             ctx.emit(rise{ctx.key(), row.window.start.count(), row.value});
           }
           previous = row.value;
         });
}

std::vector<rise> rising_reference(const std::vector<ev>& events) {
  std::map<std::int64_t, std::map<std::int64_t, std::int64_t>> counts;  // key -> start -> count
  for (const ev& e : events) {
    ++counts[e.k][floor_to(e.t.count(), window_ms)];
  }
  std::vector<rise> out;
  for (const auto& entry : counts) {
    std::optional<std::int64_t> previous;
    for (const auto& window : entry.second) {
      if (previous && window.second > *previous) {
        out.push_back(rise{entry.first, window.first, window.second});
      }
      previous = window.second;
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_CASE("chain: windowed rows into a process function equal the reference in batch and stream mode") {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    CAPTURE(seed);
    constexpr std::int64_t delay = 40;
    const auto events = stream_test::random_events(seed + 10, 4000, 5, delay);
    const auto reference = rising_reference(events);
    REQUIRE(reference.size() > 20);
    for (const unsigned threads : {1U, 4U}) {
      auto rows = sluice::run_batch(sluice::from_range(events), rising_counts(),
                                    sluice::batch_options{.threads = threads, .min_chunk_units = 1});
      std::sort(rows.begin(), rows.end());
      CHECK(rows == reference);
    }
    sluice::stream_options opts;
    opts.max_delay = std::chrono::milliseconds(delay);
    opts.queue_events = 1;
    std::vector<rise> stream;
    stream_over_queue(rising_counts(), events, opts,
                      [&](const std::vector<rise>& rows) { stream.insert(stream.end(), rows.begin(), rows.end()); });
    std::sort(stream.begin(), stream.end());
    CHECK(stream == reference);
  }
}

// ---- a running aggregate's changelog ---------------------------------------------------------

// Per key: its largest value and its event count (rows that change with every event). Then per
// (count / 8), a key's row moving between groups as its count grows, leaving early groups empty
// (they must disappear): the sum of the largest values, the number of keys, and the largest
// count (a max: kept as a multiset to be retracted).
constexpr std::int64_t max_group_width = 8;
auto regrouped_running() {
  return sluice::flow<ev>() | sluice::event_time(&ev::t) | sluice::key_by(&ev::k) |
         sluice::aggregate(sluice::max(&ev::v), sluice::count{}) |
         sluice::key_by([](const auto& row) { return std::get<1>(row.value) / max_group_width; }) |
         sluice::aggregate(sluice::sum([](const auto& row) { return *std::get<0>(row.value); }), sluice::count{},
                           sluice::max([](const auto& row) { return std::get<1>(row.value); }));
}
// The same, with group monoids only (sum and count subtract).
auto regrouped_running_groups() {
  return sluice::flow<ev>() | sluice::event_time(&ev::t) | sluice::key_by(&ev::k) |
         sluice::aggregate(sluice::sum(&ev::v), sluice::count{}) |
         sluice::key_by([](const auto& row) { return std::get<1>(row.value) % 3; }) |
         sluice::aggregate(sluice::sum([](const auto& row) { return std::get<0>(row.value); }), sluice::count{});
}

using group_answer = std::map<std::int64_t, std::tuple<std::int64_t, std::int64_t, std::int64_t>>;

group_answer regrouped_reference(const std::vector<ev>& events, bool sums) {
  std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> per_key;  // key -> (max or sum, count)
  for (const ev& e : events) {
    auto [it, fresh] = per_key.try_emplace(e.k, e.v, 0);
    if (!fresh) {
      it->second.first = sums ? it->second.first + e.v : std::max(it->second.first, e.v);
    }
    ++it->second.second;
  }
  group_answer out;
  for (const auto& entry : per_key) {
    auto& [total, keys, largest] = out[sums ? entry.second.second % 3 : entry.second.second / max_group_width];
    total += entry.second.first;
    ++keys;
    largest = sums ? 0 : std::max(largest, entry.second.second);
  }
  return out;
}

template <class Store>
group_answer groups_of(const Store& store) {
  group_answer out;
  for (const auto& row : store.scan()) {
    if constexpr (std::tuple_size_v<std::remove_cvref_t<decltype(row.value)>> == 3) {
      const auto& largest = std::get<2>(row.value);
      REQUIRE(largest.has_value());
      out[row.key] = {std::get<0>(row.value), std::get<1>(row.value), *largest};
    } else {
      out[row.key] = {std::get<0>(row.value), std::get<1>(row.value), 0};
    }
  }
  return out;
}

template <class Flow>
void check_regrouped(const Flow& flow, bool sums) {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    CAPTURE(seed);
    // Few keys and many events: every key's row changes (and changes group) many times.
    const auto events = stream_test::random_events(seed + 20, 3000, 40, 30);
    const group_answer reference = regrouped_reference(events, sums);
    REQUIRE(reference.size() >= 3);
    REQUIRE(reference.begin()->first > (sums ? -1 : 2));  // the groups keys passed through are gone
    for (const unsigned threads : {1U, 4U}) {
      CAPTURE(threads);
      CHECK(groups_of(sluice::run_batch(sluice::from_range(events), flow,
                                        sluice::batch_options{.threads = threads, .min_chunk_units = 1})) ==
            reference);
    }
    for (const std::size_t queue_events : {std::size_t{1}, std::size_t{512}}) {
      CAPTURE(queue_events);
      sluice::stream_options opts;
      opts.max_delay = std::chrono::milliseconds(30);
      opts.queue_events = queue_events;
      group_answer stream;
      stream_over_queue(flow, events, opts, [&](const auto& store) {
        for (const auto& entry : groups_of(store)) {
          stream[entry.first] = entry.second;
        }
      });
      CHECK(stream == reference);
    }
  }
}

TEST_CASE("chain: a running aggregate's changelog into an aggregate without a window (multiset monoids)") {
  check_regrouped(regrouped_running(), false);
}

TEST_CASE("chain: a running aggregate's changelog into an aggregate without a window (group monoids)") {
  check_regrouped(regrouped_running_groups(), true);
}

// ---- allowed lateness: a re-fired window retracts its old row --------------------------------

// Per key and window: the event count; then per window start: how many keys had events (a row
// re-fired without retracting its first version would be counted twice) and the total.
auto keys_per_window() {
  return sluice::flow<ev>() | sluice::event_time(&ev::t) | sluice::key_by(&ev::k) |
         sluice::window(sluice::tumbling(std::chrono::milliseconds(window_ms))) | sluice::aggregate(sluice::count{}) |
         sluice::key_by([](const auto& row) { return row.window.start.count(); }) |
         sluice::aggregate(sluice::count{}, sluice::sum([](const auto& row) { return row.value; }));
}

TEST_CASE("chain: under allowed lateness a window's changed row replaces its old one downstream") {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    CAPTURE(seed);
    // Disorder up to 200 ms against a 30 ms delay: many events reach fired windows; with 250 ms
    // of lateness none is dropped.
    const auto events = stream_test::random_events(seed + 30, 4000, 13, 200);
    std::map<std::int64_t, std::map<std::int64_t, std::int64_t>> counts;  // start -> key -> count
    for (const ev& e : events) {
      ++counts[floor_to(e.t.count(), window_ms)][e.k];
    }
    stream_test::row_map reference;
    for (const auto& window : counts) {
      std::int64_t total = 0;
      for (const auto& key : window.second) {
        total += key.second;
      }
      reference[{window.first, 0, 0}] = {static_cast<std::int64_t>(window.second.size()), total};
    }
    CHECK(stream_test::store_rows(sluice::run_batch(sluice::from_range(events), keys_per_window())) == reference);
    sluice::stream_options opts;
    opts.max_delay = std::chrono::milliseconds(30);
    opts.allowed_lateness = std::chrono::milliseconds(250);
    opts.queue_events = 1;
    stream_test::row_map stream;
    const auto stats = stream_over_queue(keys_per_window(), events, opts, [&](const auto& store) {
      for (const auto& entry : stream_test::store_rows(store)) {
        stream[entry.first] = entry.second;
      }
    });
    CHECK(stats.late_events == 0);
    CHECK(stream == reference);
  }
}

TEST_CASE("chain: allowed lateness is refused when a window's rows feed a stage that cannot retract them") {
  sluice::stream_options opts;
  opts.allowed_lateness = std::chrono::milliseconds(10);
  const std::vector<ev> events{stream_test::at(1, 1)};
  CHECK_THROWS_AS(stream_over_queue(windows_of_windows(), events, opts, [](const auto& /*store*/) {}),
                  std::invalid_argument);
}

// ---- the monoids that take retractions -------------------------------------------------------

TEST_CASE("chain: a multiset monoid answers as if the retracted inputs had never been added") {
  const auto identity = [](std::int64_t x) { return x; };
  using max_monoid = decltype(sluice::max(identity).bind<std::int64_t>());
  const sluice::multiset_monoid<max_monoid, std::int64_t> max{sluice::max(identity).bind<std::int64_t>()};
  auto s = max.identity();
  for (const std::int64_t x : {3, 7, 7, 5}) {
    max.add(s, x);
  }
  CHECK(max.result(s) == 7);
  max.subtract(s, 7);
  CHECK(max.result(s) == 7);
  max.subtract(s, 7);
  CHECK(max.result(s) == 5);
  auto other = max.identity();
  max.add(other, 9);
  max.subtract(other, 5);  // a retraction may reach one partial before its insert reaches another
  max.merge(s, other);
  CHECK(max.result(s) == 9);
  max.subtract(s, 9);
  max.subtract(s, 3);
  CHECK(s.empty());
  CHECK_FALSE(max.result(s).has_value());
}


// ---- a process function's rows into more stages ----------------------------------------------

// A process function's row: an event's value when it rises above the key's previous one, or -1
// for the row of a timer 50 ms after each of the key's event times.
struct step {
  std::int64_t key;
  std::int64_t value;
};
constexpr std::int64_t follow_up_ms = 50;

auto rises_and_follow_ups() {
  return sluice::flow<ev>() | sluice::event_time(&ev::t) | sluice::key_by(&ev::k) |
         sluice::process<step, std::optional<std::int64_t>>(
             [](auto& ctx, const ev& e) {
               auto& previous = ctx.state();
               if (previous && e.v > *previous) {
                 ctx.emit(step{ctx.key(), e.v});
               }
               previous = e.v;
               ctx.timer_at(sluice::millis{e.t.count() + follow_up_ms});
             },
             [](auto& ctx) { ctx.emit(step{ctx.key(), -1}); });
}

// The rows by (key % 3, 200 ms window of the time each was emitted at): count and sum. No
// event_time stage: a row's time is its event's or its timer's.
auto steps_per_window() {
  return rises_and_follow_ups() | sluice::key_by([](const step& s) { return s.key % 3; }) |
         sluice::window(sluice::tumbling(std::chrono::milliseconds(2 * window_ms))) |
         sluice::aggregate(sluice::count{}, sluice::sum(&step::value));
}

// The rows by key % 2, without a window: count and largest value (a running aggregate).
auto steps_per_group() {
  return rises_and_follow_ups() | sluice::key_by([](const step& s) { return s.key % 2; }) |
         sluice::aggregate(sluice::count{}, sluice::max(&step::value));
}

struct timed_step {
  std::int64_t time;
  step row;
};

// The process function by hand: each key's events in time order (equal times in arrival order).
std::vector<timed_step> steps_reference(const std::vector<ev>& events) {
  std::map<std::int64_t, std::vector<ev>> by_key;
  for (const ev& e : events) {
    by_key[e.k].push_back(e);
  }
  std::vector<timed_step> out;
  for (auto& entry : by_key) {
    std::stable_sort(entry.second.begin(), entry.second.end(), [](const ev& a, const ev& b) { return a.t < b.t; });
    std::optional<std::int64_t> previous;
    std::set<std::int64_t> timers;
    for (const ev& e : entry.second) {
      if (previous && e.v > *previous) {
        out.push_back(timed_step{e.t.count(), step{e.k, e.v}});
      }
      previous = e.v;
      timers.insert(e.t.count() + follow_up_ms);
    }
    for (const std::int64_t t : timers) {
      out.push_back(timed_step{t, step{entry.first, -1}});
    }
  }
  return out;
}

TEST_CASE("chain: a process function's rows, at the times they were emitted, into a window and into a running aggregate") {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    CAPTURE(seed);
    constexpr std::int64_t delay = 40;
    const auto events = stream_test::random_events(seed + 40, 40'000, 17, delay);
    const auto steps = steps_reference(events);
    window_answer windows_reference;  // (group, start) -> (count, sum, 0)
    group_answer groups_reference;    // group -> (count, largest, 0)
    for (const timed_step& s : steps) {
      auto& [count, sum, unused] = windows_reference[{s.row.key % 3, floor_to(s.time, 2 * window_ms)}];
      ++count;
      sum += s.row.value;
      auto [it, fresh] = groups_reference.try_emplace(s.row.key % 2, 0, s.row.value, 0);
      ++std::get<0>(it->second);
      std::get<1>(it->second) = std::max(std::get<1>(it->second), s.row.value);
    }
    REQUIRE(windows_reference.size() > 100);
    const auto windows_of = [](const auto& store, window_answer& out) {
      for (const auto& row : store.scan()) {
        out[{row.key.key, row.key.window.start.count()}] = {std::get<0>(row.value), std::get<1>(row.value), 0};
      }
    };
    const auto groups_of_steps = [](const auto& store, group_answer& out) {
      for (const auto& row : store.scan()) {
        REQUIRE(std::get<1>(row.value).has_value());
        out[row.key] = {std::get<0>(row.value), *std::get<1>(row.value), 0};
      }
    };
    // 40k events: enough for the process function to split its keys over the threads.
    for (const unsigned threads : {1U, 4U}) {
      CAPTURE(threads);
      const sluice::batch_options opts{.threads = threads, .min_chunk_units = 1};
      window_answer windows;
      windows_of(sluice::run_batch(sluice::from_range(events), steps_per_window(), opts), windows);
      CHECK(windows == windows_reference);
      group_answer groups;
      groups_of_steps(sluice::run_batch(sluice::from_range(events), steps_per_group(), opts), groups);
      CHECK(groups == groups_reference);
    }
    sluice::stream_options opts;
    opts.max_delay = std::chrono::milliseconds(delay);
    opts.queue_events = 256;
    window_answer windows;
    std::size_t emissions = 0;
    auto stats = stream_over_queue(steps_per_window(), events, opts, [&](const auto& store) {
      ++emissions;
      windows_of(store, windows);  // final rows: each window once
    });
    CHECK(stats.late_events == 0);
    CHECK(windows == windows_reference);
    CHECK(emissions > 10);  // windows of the rows fire as the run goes
    group_answer groups;
    stats = stream_over_queue(steps_per_group(), events, opts, [&](const auto& store) {
      groups_of_steps(store, groups);  // a changelog: the latest row of each group
    });
    CHECK(stats.late_events == 0);
    CHECK(groups == groups_reference);
  }
}

TEST_CASE("chain: rows of a process function's processing-time timers go on at the latest time before them") {
  // Batch mode fires processing-time timers at the end of the input; their rows must land in a
  // window (not at time max, where none can hold them).
  const auto flow = sluice::flow<ev>() | sluice::event_time(&ev::t) | sluice::key_by(&ev::k) |
                    sluice::process<step>(
                        [](auto& ctx, const ev& e) {
                          ctx.emit(step{ctx.key(), e.v});
                          ctx.processing_timer_at(sluice::millis{0});
                        },
                        [](auto& ctx) { ctx.emit(step{ctx.key(), 1000}); }) |
                    sluice::key_by([](const step& /*s*/) { return 0; }) |
                    sluice::window(sluice::tumbling(std::chrono::milliseconds(window_ms))) |
                    sluice::aggregate(sluice::count{}, sluice::sum(&step::value));
  const std::vector<ev> events{stream_test::at(5, 1, 1), stream_test::at(130, 2, 2), stream_test::at(250, 1, 3)};
  stream_test::row_map rows;
  const auto store = sluice::run_batch(sluice::from_range(events), flow);
  for (const auto& row : store.scan()) {
    rows[{row.key.window.start.count(), 0, 0}] = {std::get<0>(row.value), std::get<1>(row.value)};
  }
  // The two timers' rows (keys 1 and 2) join the last event's window.
  const stream_test::row_map expected{{{0, 0, 0}, {1, 1}}, {{100, 0, 0}, {1, 2}}, {{200, 0, 0}, {3, 2003}}};
  CHECK(rows == expected);
}

}  // namespace
