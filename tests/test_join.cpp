// Joins of two event types carried by one std::variant flow: window, interval, inner (with and
// without a ttl) and temporal joins against brute-force models over all pairs, in batch mode on
// one and four threads and in stream mode with disorder within the max delay; state is dropped
// once the watermark makes a match impossible; by_type and only<T>() on variant flows.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <compare>
#include <cstdint>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "sluice/io/file_source.hpp"
#include "sluice/io/memory_source.hpp"
#include "sluice/io/table_file.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/sluice.hpp"
#include "join_fixtures.hpp"
#include "temp_dir.hpp"

using namespace std::chrono_literals;
using namespace join_test;

namespace {

template <class Flow>
std::vector<pair_row> stream_rows(const Flow& f, const std::vector<either>& events, std::int64_t delay,
                                  std::uint64_t* late = nullptr) {
  sluice::event_queue<either> q(32);
  std::thread producer([&] {
    for (const auto& e : events) {
      q.push(e);
    }
    q.close();
  });
  std::vector<pair_row> rows;
  sluice::stream_options opts;
  opts.max_delay = std::chrono::milliseconds(delay);
  opts.queue_events = 9;
  const auto stats = sluice::run_stream(
      sluice::from_queue(q), f,
      [&rows](const std::vector<pair_row>& emitted) { rows.insert(rows.end(), emitted.begin(), emitted.end()); }, opts);
  producer.join();
  if (late != nullptr) {
    *late = stats.late_events;
  }
  return sorted(rows);
}

/// The join's rows equal the model in batch mode (1 and 4 threads) and in stream mode.
template <class Flow>
void check_join(const Flow& f, const std::vector<either>& events, const std::vector<pair_row>& model,
                std::int64_t delay) {
  REQUIRE(model.size() > 20);  // the input really joins
  for (const unsigned threads : {1U, 4U}) {
    CAPTURE(threads);
    const auto rows = sluice::run_batch(sluice::from_range(events), f,
                                        sluice::batch_options{.threads = threads, .min_chunk_units = 1});
    CHECK(sorted(rows) == model);
  }
  std::uint64_t late = 1;
  CHECK(stream_rows(f, events, delay, &late) == model);
  CHECK(late == 0);
}

}  // namespace

TEST_CASE("interval_join: b.time in [a.time + lower, a.time + upper], batch and stream") {
  constexpr std::int64_t delay = 40;
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    CAPTURE(seed);
    const auto events = random_either(seed, 1500, 6, delay);
    for (const auto& bounds : {std::pair{-10, 25}, std::pair{0, 0}, std::pair{5, 60}, std::pair{-30, -5}}) {
      const int lo = bounds.first;  // not a structured binding: clang 14 cannot capture one
      const int hi = bounds.second;
      CAPTURE(lo);
      CAPTURE(hi);
      const auto f = keyed_either() | sluice::interval_join<left_ev, right_ev>(std::chrono::milliseconds(lo),
                                                                               std::chrono::milliseconds(hi), pair_of);
      const auto model = all_pairs(events, [&](const left_ev& a, const right_ev& b) {
        return b.t.count() >= a.t.count() + lo && b.t.count() <= a.t.count() + hi;
      });
      check_join(f, events, model, delay);
    }
  }
}

TEST_CASE("window_join: both in the same tumbling or sliding window, each window's pairs once") {
  constexpr std::int64_t delay = 40;
  const auto events = random_either(7, 1500, 6, delay);
  auto with_window = [](const left_ev& a, const right_ev& b, sluice::time_window w) {
    return pair_row{a.k, a.id, b.id, w.start.count()};
  };
  {
    const auto f = keyed_either() | sluice::window_join<left_ev, right_ev>(sluice::tumbling(50ms), with_window);
    std::vector<pair_row> model;
    for (auto row : all_pairs(events, [](const left_ev&a, const right_ev&b) {
           return sluice::detail::floor_div(a.t.count(), 50) == sluice::detail::floor_div(b.t.count(), 50);
         })) {
      const auto& a = std::get<left_ev>(events[static_cast<std::size_t>(row.left_id)]);
      row.window = sluice::detail::floor_div(a.t.count(), 50) * 50;
      model.push_back(row);
    }
    check_join(f, events, sorted(model), delay);
  }
  {
    const auto f = keyed_either() | sluice::window_join<left_ev, right_ev>(sluice::sliding(60ms, 20ms), with_window);
    std::vector<pair_row> model;
    for (auto row : all_pairs(events, [](const left_ev&, const right_ev&) { return true; })) {
      const auto ta = std::get<left_ev>(events[static_cast<std::size_t>(row.left_id)]).t.count();
      const auto tb = std::get<right_ev>(events[static_cast<std::size_t>(row.right_id)]).t.count();
      for (std::int64_t start = sluice::detail::floor_div(std::min(ta, tb), 20) * 20 - 60; start <= std::max(ta, tb);
           start += 20) {
        if (start <= std::min(ta, tb) && std::max(ta, tb) < start + 60) {
          row.window = start;
          model.push_back(row);
        }
      }
    }
    check_join(f, events, sorted(model), delay);
  }
}

TEST_CASE("window_join over sessions: pairs of a key's events (both sides) less than gap apart in a chain") {
  constexpr std::int64_t delay = 40;
  constexpr std::int64_t gap = 60;
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    CAPTURE(seed);
    // 30 keys: a key's events come about 75 ms apart on average, so sessions of one to many.
    const auto events = random_either(seed + 40, 3000, 30, delay);
    std::map<std::int64_t, std::vector<either>> by_key;
    for (const auto& e : events) {
      by_key[std::visit([](const auto& x) { return x.k; }, e)].push_back(e);
    }
    std::vector<pair_row> model;
    std::size_t sessions = 0;
    auto time_of = [](const either& e) { return std::visit([](const auto& x) { return x.t.count(); }, e); };
    for (auto& entry : by_key) {
      auto& list = entry.second;
      std::stable_sort(list.begin(), list.end(), [&](const either& a, const either& b) { return time_of(a) < time_of(b); });
      for (std::size_t first = 0; first < list.size();) {
        std::size_t end = first + 1;
        while (end < list.size() && time_of(list[end]) - time_of(list[end - 1]) < gap) {
          ++end;
        }
        ++sessions;
        for (std::size_t i = first; i < end; ++i) {
          for (std::size_t j = first; j < end; ++j) {
            const auto* a = std::get_if<left_ev>(&list[i]);
            const auto* b = std::get_if<right_ev>(&list[j]);
            if (a != nullptr && b != nullptr) {
              model.push_back(pair_row{a->k, a->id, b->id, time_of(list[first])});
            }
          }
        }
        first = end;
      }
    }
    REQUIRE(sessions > 200);
    const auto f = keyed_either() | sluice::window_join<left_ev, right_ev>(
                                        sluice::session(std::chrono::milliseconds(gap)),
                                        [](const left_ev& a, const right_ev& b, sluice::time_window w) {
                                          return pair_row{a.k, a.id, b.id, w.start.count()};
                                        });
    check_join(f, events, sorted(model), delay);
  }
}

TEST_CASE("inner_join: every pair of equal keys; with a ttl, pairs at most ttl apart") {
  constexpr std::int64_t delay = 40;
  const auto events = random_either(11, 600, 9, delay);
  check_join(keyed_either() | sluice::inner_join<left_ev, right_ev>(pair_of), events,
             all_pairs(events, [](const left_ev&, const right_ev&) { return true; }), delay);
  check_join(keyed_either() | sluice::inner_join<left_ev, right_ev>(pair_of, 30ms), events,
             all_pairs(events, [](const left_ev& a, const right_ev& b) { return std::abs((a.t - b.t).count()) <= 30; }),
             delay);
}

TEST_CASE("temporal_join: each left with its key's latest right at or before it") {
  constexpr std::int64_t delay = 40;
  const auto events = random_either(13, 1500, 5, delay);
  // The latest right by (time, input position) before the left by the same order: events are
  // handled in time order, equal times in input order.
  std::vector<pair_row> model;
  const auto rights = of_type<right_ev>(events);
  for (const left_ev& a : of_type<left_ev>(events)) {
    const right_ev* version = nullptr;
    for (const right_ev& b : rights) {
      const bool before = b.t < a.t || (b.t == a.t && b.id < a.id);
      if (b.k == a.k && before && (version == nullptr || std::pair(version->t, version->id) < std::pair(b.t, b.id))) {
        version = &b;
      }
    }
    if (version != nullptr) {
      model.push_back(pair_of(a, *version));
    }
  }
  check_join(keyed_either() | sluice::temporal_join<left_ev, right_ev>(pair_of), events, sorted(model), delay);
}

TEST_CASE("joins drop a key's state once the watermark makes any further match impossible") {
  const auto events = random_either(17, 800, 4, 0);
  auto drained = [&](const auto& f) {
    auto partial = f.make_partial();
    auto chain = f.bind(partial);
    for (const auto& e : events) {
      chain(sluice::millis{0}, e);
    }
    const auto last = std::visit([](const auto& x) { return x.t; }, events.back());
    const auto rows = partial.advance(last + 1s);  // far past every interval, window and ttl
    CHECK(rows.size() > 0);
    CHECK(partial.held_events() == 0);
    return partial.keys();
  };
  CHECK(drained(keyed_either() | sluice::interval_join<left_ev, right_ev>(-5ms, 20ms, pair_of)) == 0);
  CHECK(drained(keyed_either() | sluice::window_join<left_ev, right_ev>(sluice::sliding(60ms, 20ms), pair_of)) == 0);
  CHECK(drained(keyed_either() | sluice::window_join<left_ev, right_ev>(sluice::session(15ms), pair_of)) == 0);
  CHECK(drained(keyed_either() | sluice::inner_join<left_ev, right_ev>(pair_of, 30ms)) == 0);
  CHECK(drained(keyed_either() | sluice::inner_join<left_ev, right_ev>(pair_of)) == 4);  // unbounded: kept
}

TEST_CASE("by_type reads the field of whichever type an event holds; only<T>() keeps one type") {
  const auto events = random_either(19, 300, 3, 10);
  const auto rights = of_type<right_ev>(events);
  const auto per_key = sluice::run_batch(
      sluice::from_range(events), sluice::flow<either>() | sluice::only<right_ev>() | sluice::key_by(&right_ev::k) |
                                      sluice::aggregate(sluice::count{}, sluice::sum(&right_ev::id)));
  for (std::int64_t k = 0; k < 3; ++k) {
    std::int64_t n = 0;
    std::int64_t ids = 0;
    for (const auto& r : rights) {
      if (r.k == k) {
        ++n;
        ids += r.id;
      }
    }
    CHECK(per_key.get(k) == std::tuple{n, ids});
  }
  const auto keyed_ids = sluice::by_type([](const left_ev& a) { return a.id * 2; }, &right_ev::id);
  CHECK(keyed_ids(either{left_ev{{}, 0, 21}}) == 42);
  CHECK(keyed_ids(either{right_ev{{}, 0, 21}}) == 21);
}

namespace {
struct product_line {  // a catalogue row as the CSV parser gives it: the name borrows the file
  std::int64_t id = 0;
  std::string_view name;
  std::int64_t price = 0;
};
struct product {
  std::string name;
  std::int64_t price = 0;
};
auto product_schema() {
  return sluice::schema<product_line>(sluice::column("id", &product_line::id),
                                      sluice::column("name", &product_line::name),
                                      sluice::column("price", &product_line::price, sluice::fixed_point<2>{}));
}
auto product_entry(const product_line& p) {
  return std::pair{p.id, product{std::string(p.name), p.price}};
}
struct order {
  std::int64_t product_id = 0;
  std::int64_t qty = 0;
};
}  // namespace

TEST_CASE(
    "read_table + lookup_join: orders priced from a CSV catalogue; a bad row is dead-lettered or fails with its line") {
  const test_support::temp_dir dir;
  const std::string path = dir / "products.csv";
  std::ofstream(path) << "id,name,price\n1,tea,2.50\n2,cake,4.00\nthree,bad,1.00\n3,jam,3.25\n1,green tea,2.75\n";
  std::vector<std::uint64_t> bad_lines;
  sluice::input_options skip;
  skip.dead_letters = [&](const sluice::bad_record& r) { bad_lines.push_back(r.line); };
  sluice::lookup_table<std::int64_t, product> catalogue(
      sluice::read_table<std::int64_t, product>(sluice::csv_file(path, product_schema(), skip), product_entry));
  CHECK(bad_lines == std::vector<std::uint64_t>{4});
  REQUIRE(catalogue.snapshot()->size() == 3);
  CHECK(catalogue.snapshot()->at(1).name == "green tea");  // a later row of a key replaces the earlier

  const std::vector<order> orders{{1, 2}, {2, 1}, {9, 5}, {3, 4}, {2, 3}};
  auto revenue = [&](const auto& join) {
    return sluice::run_batch(sluice::from_range(orders),
                             sluice::flow<order>() | join |
                                 sluice::aggregate(sluice::count{}, sluice::sum([](std::int64_t c) { return c; })))
        .get(std::monostate{});
  };
  // Inner: order 9 has no product and is dropped.
  CHECK(revenue(sluice::lookup_join(catalogue, &order::product_id, [](const order& o, const product& p) {
          return o.qty * p.price;
        })) == std::tuple{std::int64_t{4}, std::int64_t{2 * 275 + 1 * 400 + 4 * 325 + 3 * 400}});
  // Left: every order goes on; a missing product prices it at 0.
  CHECK(revenue(sluice::lookup_join(catalogue, &order::product_id, [](const order& o, const product* p) {
          return p == nullptr ? 0 : o.qty * p->price;
        })) == std::tuple{std::int64_t{5}, std::int64_t{2 * 275 + 1 * 400 + 4 * 325 + 3 * 400}});

  sluice::input_options fail;
  fail.on_bad_record = sluice::bad_record_policy::fail;
  auto read_failing = [&] {
    return sluice::read_table<std::int64_t, product>(sluice::csv_file(path, product_schema(), fail), product_entry);
  };
  CHECK_THROWS_WITH_AS(read_failing(), doctest::Contains("products.csv:4"), sluice::bad_input_error);
}

TEST_CASE("lookup_join: readers see a replaced table at their next event; replacing races with no reader") {
  sluice::lookup_table<std::int64_t, product> catalogue({{1, product{"tea", 100}}});
  sluice::table_reader reader(catalogue);
  REQUIRE(reader.find(std::int64_t{1}) != nullptr);
  CHECK(reader.find(std::int64_t{1})->price == 100);
  CHECK(reader.find(std::int64_t{2}) == nullptr);
  catalogue.replace({{1, product{"tea", 120}}, {2, product{"cake", 300}}});
  CHECK(reader.find(std::int64_t{1})->price == 120);
  CHECK(reader.find(std::int64_t{2})->price == 300);

  // A host replacing the table while four threads read it (ThreadSanitizer checks the sharing):
  // every order is priced by one whole version, 1 or 2 for every product.
  std::vector<order> orders;
  for (std::int64_t i = 0; i < 200'000; ++i) {
    orders.push_back(order{i % 50, 1});
  }
  auto version = [](std::int64_t price) {
    sluice::lookup_table<std::int64_t, product>::map_type rows;
    for (std::int64_t id = 0; id < 50; ++id) {
      rows.emplace(id, product{"p", price});
    }
    return rows;
  };
  catalogue.replace(version(1));
  std::atomic<bool> done{false};
  std::thread host([&] {
    for (std::int64_t n = 0; !done.load(); ++n) {
      catalogue.replace(version(1 + n % 2));
    }
  });
  const auto priced =
      sluice::run_batch(sluice::from_range(orders),
                        sluice::flow<order>() |
                            sluice::lookup_join(catalogue, &order::product_id,
                                                [](const order& o, const product& p) { return o.qty * p.price; }) |
                            sluice::aggregate(sluice::count{}, sluice::min([](std::int64_t v) { return v; }),
                                              sluice::max([](std::int64_t v) { return v; })),
                        sluice::batch_options{.threads = 4, .min_chunk_units = 1});
  done = true;
  host.join();
  const auto [n, lowest, highest] = *priced.get(std::monostate{});
  CHECK(n == 200'000);
  CHECK(lowest >= 1);
  CHECK(highest <= 2);
}

namespace {
/// Random events, the same split by type, an interval join and its batch answer over them.
struct split_case {
  std::vector<either> events;
  std::vector<left_ev> lefts;
  std::vector<right_ev> rights;
  std::vector<pair_row> expected;
};
auto split_interval_join() {
  return keyed_either() | sluice::interval_join<left_ev, right_ev>(std::chrono::milliseconds(-10), 25ms, pair_of);
}
split_case split_events(std::uint64_t seed, std::int64_t delay) {
  split_case c;
  c.events = random_either(seed, 3000, 6, delay);
  c.lefts = of_type<left_ev>(c.events);
  c.rights = of_type<right_ev>(c.events);
  c.expected = sorted(sluice::run_batch(sluice::from_range(c.events), split_interval_join()));
  REQUIRE(c.expected.size() > 100);
  return c;
}
}  // namespace

TEST_CASE("run_batch(inputs(a, b), flow): two sources, one per event type, join as one variant source does") {
  const split_case c = split_events(23, 40);
  const auto& [events, lefts, rights, expected] = c;
  const auto f = split_interval_join();
  for (const unsigned threads : {1U, 3U}) {
    CAPTURE(threads);
    sluice::batch_stats stats;
    const auto rows = sluice::run_batch(sluice::inputs(sluice::from_range(rights), sluice::from_range(lefts)), f,
                                        sluice::batch_options{.threads = threads, .min_chunk_units = 1}, &stats);
    CHECK(sorted(rows) == expected);
    CHECK(stats.records == events.size());
  }
  // A monoid flow over both: counts per type.
  const auto per_type = sluice::run_batch(sluice::inputs(sluice::from_range(lefts), sluice::from_range(rights)),
                                          sluice::flow<either>() | sluice::key_by([](const either& e) {
                                            return static_cast<std::int64_t>(e.index());
                                          }) | sluice::aggregate(sluice::count{}));
  CHECK(per_type.get(std::int64_t{0}) == static_cast<std::int64_t>(lefts.size()));
  CHECK(per_type.get(std::int64_t{1}) == static_cast<std::int64_t>(rights.size()));
}

TEST_CASE(
    "run_stream(from_queues(a, b), flow): each queue its own input and watermark, so a lagging type is not late") {
  // The rights are pushed after every left has been pushed (another producer, running behind in
  // wall-clock time): on one queue they would be far behind the watermark; on their own queue
  // they hold the flow's watermark back instead, and the join equals batch mode's.
  constexpr std::int64_t delay = 40;
  const split_case c = split_events(29, delay);
  const auto& events = c.events;  // not structured bindings: the producers below capture them
  const auto& lefts = c.lefts;
  const auto& rights = c.rights;
  const auto f = split_interval_join();
  sluice::event_queue<left_ev> left_queue(16);
  sluice::event_queue<right_ev> right_queue(16);
  std::atomic<bool> lefts_done{false};
  std::thread left_producer([&] {
    for (const auto& e : lefts) {
      left_queue.push(e);
    }
    lefts_done = true;
    left_queue.close();
  });
  std::thread right_producer([&] {
    while (!lefts_done.load()) {
      std::this_thread::yield();  // ordering the two producers, not timing anything
    }
    for (const auto& e : rights) {
      right_queue.push(e);
    }
    right_queue.close();
  });
  sluice::stream_options opts;
  opts.max_delay = std::chrono::milliseconds(delay);
  opts.queue_events = 7;
  opts.expected_inputs = 2;
  std::vector<pair_row> rows;
  const auto stats = sluice::run_stream(
      sluice::from_queues(left_queue, right_queue), f,
      [&rows](const std::vector<pair_row>& emitted) { rows.insert(rows.end(), emitted.begin(), emitted.end()); }, opts);
  left_producer.join();
  right_producer.join();
  CHECK(stats.late_events == 0);
  CHECK(stats.events == events.size());
  CHECK(stats.inputs == 2);
  CHECK(sorted(rows) == c.expected);

  // The same arrival order through one queue: one watermark, and the rights are late.
  std::vector<either> one_queue(lefts.begin(), lefts.end());
  one_queue.insert(one_queue.end(), rights.begin(), rights.end());
  std::uint64_t late = 0;
  stream_rows(f, one_queue, delay, &late);
  CHECK(late > rights.size() / 2);
}

TEST_CASE(
    "run_stream(from_queues(...)): a throwing sink ends the run with its exception; producers are not left blocked") {
  const auto events = random_either(31, 2000, 4, 0);
  const auto lefts = of_type<left_ev>(events);
  const auto rights = of_type<right_ev>(events);
  sluice::event_queue<left_ev> left_queue(4);
  sluice::event_queue<right_ev> right_queue(4);
  std::thread left_producer([&] {
    for (const auto& e : lefts) {
      left_queue.push(e);  // false once the run has closed the queue: the loop just runs out
    }
    left_queue.close();
  });
  std::thread right_producer([&] {
    for (const auto& e : rights) {
      right_queue.push(e);
    }
    right_queue.close();
  });
  sluice::stream_options opts;
  opts.queue_events = 3;
  const auto f = keyed_either() | sluice::inner_join<left_ev, right_ev>(pair_of);
  CHECK_THROWS_AS(sluice::run_stream(
                      sluice::from_queues(left_queue, right_queue), f,
                      [](const std::vector<pair_row>& /*rows*/) { throw std::runtime_error("sink failed"); }, opts),
                  std::runtime_error);
  left_producer.join();
  right_producer.join();
}
