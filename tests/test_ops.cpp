// Operators and their composition into flows: each stateless operator on its own and after
// key_by, each window kind against a naive reference on random inputs, the merge property of
// partial states, and the result store's get / scan / top_k.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/io/memory_source.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/sluice.hpp"

using namespace std::chrono_literals;

namespace {

struct click {
  std::int64_t ts = 0;
  std::string user;
  std::string page;
  std::int64_t amount = 0;
};

// Random clicks: `users` users (some names longer than the small-string buffer), event times
// uniform in [t_lo, t_hi], amounts in [-50, 999].
std::vector<click> random_clicks(std::uint64_t seed, std::size_t n, std::int64_t t_lo, std::int64_t t_hi, int users) {
  std::mt19937_64 rng(seed);
  std::vector<click> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto u = static_cast<int>(rng() % static_cast<std::uint64_t>(users));
    std::string user = u % 2 == 0 ? "u" : "user-with-a-rather-long-name-";  // appended, not "a" + b: GCC 12's
    user += std::to_string(u);                                               // false -Wrestrict warning
    const auto span = static_cast<std::uint64_t>(t_hi - t_lo + 1);
    out.push_back({t_lo + static_cast<std::int64_t>(rng() % span), std::move(user), std::string(1, 'p').append(std::to_string(rng() % 5)),
                   static_cast<std::int64_t>(rng() % 1050) - 50});
  }
  return out;
}

template <class Flow, class Events>
auto partial_over(const Flow& f, const Events& events) {
  auto partial = f.make_partial();
  auto chain = f.bind(partial);
  for (const auto& e : events) {
    chain(sluice::millis{0}, e);
  }
  return partial;
}

template <class Flow, class Events>
auto store_over(const Flow& f, const Events& events) {
  return sluice::make_result_store(partial_over(f, events).into_result());
}

// (user, window start, window end) -> (count, sum of amount)
using window_map = std::map<std::tuple<std::string, std::int64_t, std::int64_t>, std::pair<std::int64_t, std::int64_t>>;

template <class Store>
window_map windows_of(const Store& store) {
  window_map out;
  for (const auto& row : store.scan()) {
    const auto inserted =
        out.emplace(std::tuple{std::string(row.key.key), row.key.window.start.count(), row.key.window.end.count()},
                    std::pair{std::get<0>(row.value), std::get<1>(row.value)});
    CHECK(inserted.second);
  }
  return out;
}

// Tumbling and sliding windows, by testing containment: for each event, every window
// [k*slide, k*slide + size) from a multiple of slide at or below ts - size up to ts.
window_map assigned_reference(const std::vector<click>& events, std::int64_t size, std::int64_t slide) {
  window_map ref;
  for (const auto& e : events) {
    const std::int64_t low = e.ts - size;
    const std::int64_t first = low - ((low % slide) + slide) % slide;  // a multiple of slide, <= low
    for (std::int64_t start = first; start <= e.ts; start += slide) {
      if (start <= e.ts && e.ts < start + size) {
        auto& [cnt, total] = ref[{e.user, start, start + size}];
        ++cnt;
        total += e.amount;
      }
    }
  }
  return ref;
}

// Sessions, the textbook way: per user, sort by time; a gap of `gap` or more starts a new
// session; a session [first, last] is reported as the window [first, last + gap).
window_map session_reference(const std::vector<click>& events, std::int64_t gap) {
  std::map<std::string, std::vector<click>> by_user;
  for (const auto& e : events) {
    by_user[e.user].push_back(e);
  }
  window_map ref;
  for (auto& [user, list] : by_user) {
    std::stable_sort(list.begin(), list.end(), [](const click& a, const click& b) { return a.ts < b.ts; });
    std::int64_t first = list.front().ts;
    std::int64_t last = first;
    std::int64_t cnt = 0;
    std::int64_t total = 0;
    for (const auto& e : list) {
      if (e.ts - last >= gap) {
        ref[{user, first, last + gap}] = {cnt, total};
        first = e.ts;
        cnt = 0;
        total = 0;
      }
      last = e.ts;
      ++cnt;
      total += e.amount;
    }
    ref[{user, first, last + gap}] = {cnt, total};
  }
  return ref;
}

auto by_user_windowed(auto spec) {
  return sluice::flow<click>() | sluice::event_time(&click::ts) | sluice::key_by(&click::user) | sluice::window(spec) |
         sluice::aggregate(sluice::count{}, sluice::sum(&click::amount));
}

// Split `events` at random into `parts` partials (each in random order), merge them in random
// order, and return the merged result as a map.
template <class Flow, class ToMap>
auto merged_from_random_split(const Flow& f, const std::vector<click>& events, std::size_t parts, std::mt19937_64& rng,
                              ToMap to_map) {
  std::vector<std::vector<click>> split(parts);
  for (const auto& e : events) {
    split[rng() % parts].push_back(e);
  }
  std::vector<decltype(f.make_partial())> partials;
  for (auto& s : split) {
    std::shuffle(s.begin(), s.end(), rng);
    partials.push_back(partial_over(f, s));
  }
  std::shuffle(partials.begin(), partials.end(), rng);
  auto acc = f.make_partial();
  for (const auto& p : partials) {
    acc.merge(p);
  }
  return to_map(sluice::make_result_store(std::move(acc).into_result()));
}

}  // namespace

// ---- stateless operators ------------------------------------------------------------------

TEST_CASE("map, filter and flat_map transform, drop and multiply elements in order") {
  const std::vector<click> events = {{1, "a", "p1", 10}, {2, "b", "p2", -5}, {3, "a", "p3", 0}, {4, "c", "p4", 3}};

  const auto amounts = sluice::flow<click>() | sluice::map(&click::amount);
  static_assert(std::is_same_v<decltype(amounts)::element_type, std::int64_t>);
  std::vector<std::int64_t> got;
  auto chain = amounts.bind_sink([&](sluice::millis /*t*/, std::int64_t v) { got.push_back(v); });
  for (const auto& e : events) {
    chain(sluice::millis{0}, e);
  }
  CHECK(got == std::vector<std::int64_t>{10, -5, 0, 3});

  const auto positive = sluice::flow<click>() | sluice::filter([](const click& c) { return c.amount > 0; });
  static_assert(std::is_same_v<decltype(positive)::element_type, click>);
  std::vector<std::string> kept;
  auto chain2 = positive.bind_sink([&](sluice::millis /*t*/, const click& c) { kept.push_back(c.user + c.page); });
  for (const auto& e : events) {
    chain2(sluice::millis{0}, e);
  }
  CHECK(kept == std::vector<std::string>{"ap1", "cp4"});

  // flat_map: zero, one or several outputs per input, in emission order.
  const auto repeated = sluice::flow<click>() | sluice::flat_map<std::string>([](const click& c, auto emit) {
                          for (std::int64_t i = 0; i < c.ts % 3; ++i) {
                            emit(c.user + std::to_string(i));
                          }
                        });
  static_assert(std::is_same_v<decltype(repeated)::element_type, std::string>);
  std::vector<std::string> emitted;
  auto chain3 = repeated.bind_sink([&](sluice::millis /*t*/, const std::string& s) { emitted.push_back(s); });
  for (const auto& e : events) {
    chain3(sluice::millis{0}, e);
  }
  CHECK(emitted == std::vector<std::string>{"a0", "b0", "b1", "c0"});  // ts 3 -> no output
}

TEST_CASE("stages compose: each stage sees the previous stage's output type") {
  const auto f = sluice::flow<click>() | sluice::map([](const click& c) { return c.amount * 2; }) |
                 sluice::filter([](std::int64_t v) { return v >= 0; }) |
                 sluice::flat_map<std::string>([](std::int64_t v, auto emit) {
                   emit(std::to_string(v));
                   emit("+");
                 }) |
                 sluice::map([](const std::string& s) { return s.size(); });
  static_assert(std::is_same_v<decltype(f)::element_type, std::size_t>);
  static_assert(!decltype(f)::is_aggregating && !decltype(f)::has_event_time);
  std::vector<std::size_t> got;
  auto chain = f.bind_sink([&](sluice::millis /*t*/, std::size_t n) { got.push_back(n); });
  for (std::int64_t amount : {5, -1, 123, 0}) {
    chain(sluice::millis{0}, click{0, "u", "p", amount});
  }
  CHECK(got == std::vector<std::size_t>{2, 1, 3, 1, 1, 1});  // "10" "+" "246" "+" "0" "+"
}

TEST_CASE("event_time stamps each element; without it the time handed in passes through") {
  const std::vector<click> events = {{-7, "a", "p", 1}, {1'700'000'000'123, "b", "p", 2}, {0, "c", "p", 3}};
  std::vector<std::int64_t> times;
  auto record = [&](sluice::millis t, const auto& /*e*/) { times.push_back(t.count()); };

  const auto by_member = sluice::flow<click>() | sluice::event_time(&click::ts);
  static_assert(decltype(by_member)::has_event_time);
  auto c1 = by_member.bind_sink(record);
  for (const auto& e : events) {
    c1(sluice::millis{99}, e);
  }
  CHECK(times == std::vector<std::int64_t>{-7, 1'700'000'000'123, 0});

  times.clear();
  const auto by_lambda = sluice::flow<click>() |
                         sluice::event_time([](const click& c) { return sluice::millis{c.ts * 2}; }) |
                         sluice::map(&click::amount);  // later stages keep the stamped time
  auto c2 = by_lambda.bind_sink(record);
  for (const auto& e : events) {
    c2(sluice::millis{99}, e);
  }
  CHECK(times == std::vector<std::int64_t>{-14, 3'400'000'000'246, 0});

  times.clear();
  const auto none = sluice::flow<click>() | sluice::map(&click::amount);
  auto c3 = none.bind_sink(record);
  c3(sluice::millis{42}, events[0]);
  c3(sluice::millis{-3}, events[1]);
  CHECK(times == std::vector<std::int64_t>{42, -3});

  times.clear();
  const auto after_key = sluice::flow<click>() | sluice::key_by(&click::user) | sluice::event_time(&click::ts);
  auto c4 = after_key.bind_sink(record);
  for (const auto& e : events) {
    c4(sluice::millis{0}, e);
  }
  CHECK(times == std::vector<std::int64_t>{-7, 1'700'000'000'123, 0});
}

TEST_CASE("key_by with one extractor pairs a borrowed key with the event itself") {
  const auto f = sluice::flow<click>() | sluice::key_by(&click::user);
  using element = decltype(f)::element_type;
  static_assert(std::is_same_v<element, sluice::keyed<std::string_view, click>>);
  const std::vector<click> events = {{1, "alice", "p", 1}, {2, "bob", "q", 2}};
  std::vector<std::pair<std::string, const click*>> got;
  auto chain =
      f.bind_sink([&](sluice::millis /*t*/, const element& k) { got.emplace_back(std::string(k.key), &k.value); });
  for (const auto& e : events) {
    chain(sluice::millis{0}, e);
  }
  REQUIRE(got.size() == 2);
  CHECK(got[0] == std::pair<std::string, const click*>{"alice", &events[0]});  // no copy of the event
  CHECK(got[1] == std::pair<std::string, const click*>{"bob", &events[1]});

  // An integer key stays an integer; a computed std::string key is borrowed as a string_view.
  static_assert(std::is_same_v<decltype(sluice::flow<click>() | sluice::key_by(&click::ts))::element_type,
                               sluice::keyed<std::int64_t, click>>);
  const auto computed = sluice::flow<click>() | sluice::key_by([](const click& c) { return c.user + c.page; });
  static_assert(std::is_same_v<decltype(computed)::element_type, sluice::keyed<std::string_view, click>>);
}

TEST_CASE("key_by with several extractors keys by their tuple") {
  const auto f =
      sluice::flow<click>() | sluice::key_by(&click::user, &click::page, [](const click& c) { return c.ts / 10; });
  using element = decltype(f)::element_type;
  static_assert(
      std::is_same_v<element, sluice::keyed<std::tuple<std::string_view, std::string_view, std::int64_t>, click>>);
  std::vector<std::tuple<std::string, std::string, std::int64_t>> got;
  auto chain = f.bind_sink([&](sluice::millis /*t*/, const element& k) {
    got.emplace_back(std::get<0>(k.key), std::get<1>(k.key), std::get<2>(k.key));
  });
  chain(sluice::millis{0}, click{25, "alice", "home", 1});
  chain(sluice::millis{0}, click{7, "bob", "cart", 1});
  CHECK(got ==
        std::vector<std::tuple<std::string, std::string, std::int64_t>>{{"alice", "home", 2}, {"bob", "cart", 0}});

  // Aggregated, against a reference: (user, page) -> count, sum.
  const auto events = random_clicks(11, 2000, 0, 1000, 6);
  std::map<std::pair<std::string, std::string>, std::pair<std::int64_t, std::int64_t>> ref;
  for (const auto& e : events) {
    auto& [cnt, total] = ref[{e.user, e.page}];
    ++cnt;
    total += e.amount;
  }
  const auto agg = sluice::flow<click>() | sluice::key_by(&click::user, &click::page) |
                   sluice::aggregate(sluice::count{}, sluice::sum(&click::amount));
  const auto store = store_over(agg, events);
  static_assert(std::is_same_v<decltype(store)::key_type, std::tuple<std::string, std::string>>);
  std::map<std::pair<std::string, std::string>, std::pair<std::int64_t, std::int64_t>> got_map;
  for (const auto& row : store.scan()) {
    got_map[{std::get<0>(row.key), std::get<1>(row.key)}] = {std::get<0>(row.value), std::get<1>(row.value)};
  }
  CHECK(got_map == ref);
}

TEST_CASE("key_by extractors that compute a std::string keep it alive while it is borrowed") {
  // Both keys are temporaries viewed as string_views; state must own correct copies of them.
  const auto events = random_clicks(12, 1500, 0, 1000, 5);
  std::map<std::pair<std::string, std::int64_t>, std::int64_t> ref;
  std::map<std::string, std::int64_t> ref_single;
  for (const auto& e : events) {
    ++ref[{e.user + "/" + e.page, e.amount % 3}];
    ++ref_single[e.page + "@" + e.user];
  }
  const auto several = sluice::flow<click>() |
                       sluice::key_by([](const click& c) { return c.user + "/" + c.page; },
                                      [](const click& c) { return c.amount % 3; }) |
                       sluice::aggregate(sluice::count{});
  std::map<std::pair<std::string, std::int64_t>, std::int64_t> got;
  const auto several_store = store_over(several, events);  // rows refer to the store: keep it alive
  for (const auto& row : several_store.scan()) {
    got[{std::get<0>(row.key), std::get<1>(row.key)}] = row.value;
  }
  CHECK(got == ref);

  const auto single = sluice::flow<click>() | sluice::key_by([](const click& c) { return c.page + "@" + c.user; }) |
                      sluice::aggregate(sluice::count{});
  std::map<std::string, std::int64_t> got_single;
  const auto single_store = store_over(single, events);  // rows refer to the store: keep it alive
  for (const auto& row : single_store.scan()) {
    got_single[row.key] = row.value;
  }
  CHECK(got_single == ref_single);
}

TEST_CASE("map, filter and flat_map after key_by work on the value and keep the key") {
  const auto f = sluice::flow<click>() | sluice::key_by(&click::user) |
                 sluice::map([](const click& c) { return c.amount * 10; }) |
                 sluice::filter([](std::int64_t v) { return v > 0; }) |
                 sluice::flat_map<std::int64_t>([](std::int64_t v, auto emit) {
                   emit(v);
                   emit(-v);
                 });
  using element = decltype(f)::element_type;
  static_assert(std::is_same_v<element, sluice::keyed<std::string_view, std::int64_t>>);
  std::vector<std::pair<std::string, std::int64_t>> got;
  auto chain = f.bind_sink([&](sluice::millis /*t*/, const element& k) { got.emplace_back(k.key, k.value); });
  chain(sluice::millis{0}, click{0, "alice", "p", 3});
  chain(sluice::millis{0}, click{0, "bob", "p", -2});
  chain(sluice::millis{0}, click{0, "carol", "p", 1});
  CHECK(got == std::vector<std::pair<std::string, std::int64_t>>{
                   {"alice", 30}, {"alice", -30}, {"carol", 10}, {"carol", -10}});

  // Aggregated: the sum per original key of the mapped, filtered values.
  const auto events = random_clicks(13, 2000, 0, 1000, 7);
  std::map<std::string, std::int64_t> ref;
  for (const auto& e : events) {
    if (e.amount % 2 == 0) {
      ref[e.user] += e.amount * 3;
    }
  }
  const auto agg = sluice::flow<click>() | sluice::key_by(&click::user) |
                   sluice::filter([](const click& c) { return c.amount % 2 == 0; }) |
                   sluice::map([](const click& c) { return c.amount * 3; }) |
                   sluice::aggregate(sluice::sum([](std::int64_t v) { return v; }));
  std::map<std::string, std::int64_t> got_map;
  const auto agg_store = store_over(agg, events);  // rows refer to the store: keep it alive
  for (const auto& row : agg_store.scan()) {
    got_map[row.key] = row.value;
  }
  CHECK(got_map == ref);
}

TEST_CASE("aggregate without key_by folds the whole stream under the unit key") {
  const auto events = random_clicks(14, 500, 0, 1000, 3);
  std::int64_t total = 0;
  for (const auto& e : events) {
    total += e.amount;
  }
  const auto f = sluice::flow<click>() | sluice::aggregate(sluice::count{}, sluice::sum(&click::amount));
  static_assert(decltype(f)::is_aggregating && !decltype(f)::order_sensitive);
  const auto store = store_over(f, events);
  CHECK(store.size() == 1);
  CHECK(store.get(sluice::unit_key{}) == std::tuple<std::int64_t, std::int64_t>{500, total});
  const auto empty = store_over(f, std::vector<click>{});
  CHECK(empty.size() == 0);
  CHECK_FALSE(empty.get(sluice::unit_key{}).has_value());
}

// ---- windows ------------------------------------------------------------------------------

TEST_CASE("window specs refuse sizes that cannot work") {
  CHECK_THROWS_AS((void)sluice::tumbling(0ms), std::invalid_argument);
  CHECK_THROWS_AS((void)sluice::tumbling(500us), std::invalid_argument);  // rounds to 0 ms
  CHECK_THROWS_AS((void)sluice::sliding(1s, 2s), std::invalid_argument);
  CHECK_THROWS_AS((void)sluice::sliding(1s, 0s), std::invalid_argument);
  CHECK_THROWS_AS((void)sluice::session(-1s), std::invalid_argument);
  CHECK_THROWS_AS((void)sluice::count_of(0), std::invalid_argument);
  CHECK(sluice::tumbling(1min).size_ms == 60'000);
  CHECK(sluice::sliding(10s, 2s).slide_ms == 2'000);
}

TEST_CASE("tumbling windows match the reference, negative event times included") {
  for (const std::int64_t size : {1, 7, 1000, 60'000}) {
    for (std::uint64_t seed = 1; seed <= 2; ++seed) {
      CAPTURE(size);
      CAPTURE(seed);
      const auto events = random_clicks(seed * 100 + static_cast<std::uint64_t>(size), 1500, -100'000, 100'000, 5);
      const auto store = store_over(by_user_windowed(sluice::tumbling(std::chrono::milliseconds(size))), events);
      const auto got = windows_of(store);
      CHECK(got == assigned_reference(events, size, size));
      std::int64_t counted = 0;
      for (const auto& item : got) {
        const auto& key = item.first;
        const auto& value = item.second;
        CHECK(std::get<2>(key) - std::get<1>(key) == size);
        CHECK(std::get<1>(key) % size == 0);
        counted += value.first;
      }
      CHECK(counted == 1500);  // each event in exactly one window
    }
  }
  // The boundaries, by hand: [-1000, 0) holds -1 and -1000; [0, 1000) holds 0 and 999.
  std::vector<click> edge = {{-1, "a", "p", 1}, {-1000, "a", "p", 2}, {-1001, "a", "p", 4},
                             {0, "a", "p", 8},  {999, "a", "p", 16},  {1000, "a", "p", 32}};
  const auto got = windows_of(store_over(by_user_windowed(sluice::tumbling(1s)), edge));
  CHECK(got == window_map{{{"a", -2000, -1000}, {1, 4}},
                          {{"a", -1000, 0}, {2, 3}},
                          {{"a", 0, 1000}, {2, 24}},
                          {{"a", 1000, 2000}, {1, 32}}});
}

TEST_CASE("sliding windows put each event in size/slide windows, matching the reference") {
  const std::pair<std::int64_t, std::int64_t> specs[] = {
      {10'000, 2'000}, {10'000, 3'000}, {5'000, 5'000}, {60, 1}, {7, 2}};
  for (const auto& spec : specs) {
    const std::int64_t size = spec.first;  // not a structured binding: CAPTURE's lambda names it
    const std::int64_t slide = spec.second;
    CAPTURE(size);
    CAPTURE(slide);
    const auto events = random_clicks(static_cast<std::uint64_t>(size + slide), 800, -50'000, 50'000, 4);
    const auto got = windows_of(store_over(
        by_user_windowed(sluice::sliding(std::chrono::milliseconds(size), std::chrono::milliseconds(slide))), events));
    CHECK(got == assigned_reference(events, size, slide));
    std::int64_t memberships = 0;
    for (const auto& item : got) {
      const auto& key = item.first;
      const auto& value = item.second;
      CHECK(std::get<2>(key) - std::get<1>(key) == size);
      CHECK(std::get<1>(key) % slide == 0);
      memberships += value.first;
    }
    if (size % slide == 0) {
      CHECK(memberships == 800 * (size / slide));
    }
  }
  // By hand: size 3 s, slide 1 s; t = 2500 is in [0,3000), [1000,4000), [2000,5000).
  const auto one =
      windows_of(store_over(by_user_windowed(sluice::sliding(3s, 1s)), std::vector<click>{{2500, "a", "p", 5}}));
  CHECK(one == window_map{{{"a", 0, 3000}, {1, 5}}, {{"a", 1000, 4000}, {1, 5}}, {{"a", 2000, 5000}, {1, 5}}});
  const auto neg =
      windows_of(store_over(by_user_windowed(sluice::sliding(3s, 1s)), std::vector<click>{{-1, "a", "p", 5}}));
  CHECK(neg == window_map{{{"a", -3000, 0}, {1, 5}}, {{"a", -2000, 1000}, {1, 5}}, {{"a", -1000, 2000}, {1, 5}}});
}

TEST_CASE("session windows merge events closer than the gap, and split at the gap") {
  // gap 10: 0 and 5 merge; 20 is 15 after 5 -> new session; 30 is exactly gap after 20 -> new.
  const std::vector<click> events = {
      {0, "a", "p", 1}, {5, "a", "p", 2}, {20, "a", "p", 4}, {30, "a", "p", 8}, {3, "b", "p", 16}};
  const auto got = windows_of(store_over(by_user_windowed(sluice::session(10ms)), events));
  CHECK(got ==
        window_map{{{"a", 0, 15}, {2, 3}}, {{"a", 20, 30}, {1, 4}}, {{"a", 30, 40}, {1, 8}}, {{"b", 3, 13}, {1, 16}}});
}

TEST_CASE("a late event that falls between two sessions bridges them into one") {
  const auto f = by_user_windowed(sluice::session(20ms));
  const std::vector<click> two = {{0, "a", "p", 1}, {30, "a", "p", 2}};
  CHECK(windows_of(store_over(f, two)) == window_map{{{"a", 0, 20}, {1, 1}}, {{"a", 30, 50}, {1, 2}}});

  std::vector<click> bridged = two;
  bridged.push_back({15, "a", "p", 4});
  CHECK(windows_of(store_over(f, bridged)) == window_map{{{"a", 0, 50}, {3, 7}}});

  // A chain of sessions (gap 25, 40 apart) joined one by one by late events, last to first.
  const auto g = by_user_windowed(sluice::session(25ms));
  std::vector<click> chain = {{0, "a", "p", 1}, {40, "a", "p", 1}, {80, "a", "p", 1}, {120, "a", "p", 1}};
  CHECK(windows_of(store_over(g, chain)).size() == 4);
  chain.push_back({100, "a", "p", 1});
  CHECK(windows_of(store_over(g, chain)).size() == 3);
  for (std::int64_t t : {60, 20}) {
    chain.push_back({t, "a", "p", 1});
  }
  CHECK(windows_of(store_over(g, chain)) == window_map{{{"a", 0, 145}, {7, 7}}});

  // The same bridge through partials: each partial alone sees two sessions, merged they are one.
  auto left = partial_over(f, two);
  const auto right = partial_over(f, std::vector<click>{{15, "a", "p", 4}});
  left.merge(right);
  CHECK(windows_of(sluice::make_result_store(std::move(left).into_result())) == window_map{{{"a", 0, 50}, {3, 7}}});
}

TEST_CASE("session windows: inputs in random order give the sessions of sorted order") {
  for (const std::int64_t gap : {1, 250, 1000, 4000, 1'000'000}) {
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      CAPTURE(gap);
      CAPTURE(seed);
      // ~200 events per user over 200 s: average spacing 1 s, so gaps near 1 s both merge and split.
      auto events = random_clicks(seed * 7 + static_cast<std::uint64_t>(gap), 1000, -100'000, 100'000, 5);
      const auto ref = session_reference(events, gap);
      const auto f = by_user_windowed(sluice::session(std::chrono::milliseconds(gap)));
      std::vector<click> sorted = events;
      std::stable_sort(sorted.begin(), sorted.end(), [](const click& a, const click& b) { return a.ts < b.ts; });
      CHECK(windows_of(store_over(f, sorted)) == ref);
      std::mt19937_64 rng(seed);
      for (int shuffle = 0; shuffle < 3; ++shuffle) {
        std::shuffle(events.begin(), events.end(), rng);
        CHECK(windows_of(store_over(f, events)) == ref);
      }
      std::reverse(sorted.begin(), sorted.end());
      CHECK(windows_of(store_over(f, sorted)) == ref);
    }
  }
}

TEST_CASE("session windows in a parallel batch run equal the reference on any thread count") {
  const auto events = random_clicks(77, 3000, 0, 300'000, 6);
  const auto ref = session_reference(events, 800);
  const auto f = by_user_windowed(sluice::session(800ms));
  for (unsigned threads : {1U, 2U, 5U}) {
    CAPTURE(threads);
    const auto store = sluice::run_batch(sluice::from_range(events), f,
                                         sluice::batch_options{.threads = threads, .min_chunk_units = 1});
    CHECK(windows_of(store) == ref);
  }
}

TEST_CASE("count windows: every n events of a key in arrival order; the last incomplete one too") {
  const auto events = random_clicks(21, 1000, 0, 1000, 6);
  for (const std::int64_t n : {1, 3, 7, 1000}) {
    CAPTURE(n);
    std::map<std::pair<std::string, std::int64_t>, std::pair<std::int64_t, std::int64_t>> ref;
    std::map<std::string, std::int64_t> seen;
    for (const auto& e : events) {
      auto& [cnt, total] = ref[{e.user, seen[e.user]++ / n}];
      ++cnt;
      total += e.amount;
    }
    // No event time needed: count windows follow arrival, not time.
    const auto f = sluice::flow<click>() | sluice::key_by(&click::user) | sluice::window(sluice::count_of(n)) |
                   sluice::aggregate(sluice::count{}, sluice::sum(&click::amount));
    static_assert(decltype(f)::order_sensitive);
    const auto store = store_over(f, events);
    static_assert(
        std::is_same_v<decltype(store)::key_type, sluice::windowed_key<std::string, sluice::count_window_index>>);
    std::map<std::pair<std::string, std::int64_t>, std::pair<std::int64_t, std::int64_t>> got;
    for (const auto& row : store.scan()) {
      got[{row.key.key, row.key.window.index}] = {std::get<0>(row.value), std::get<1>(row.value)};
    }
    CHECK(got == ref);
    for (const auto& item : seen) {
      const auto& user = item.first;
      const auto& total = item.second;  // full windows, then one partial window if any
      for (std::int64_t i = 0; i * n < total; ++i) {
        CHECK(got[{user, i}].first == std::min(n, total - i * n));
      }
    }
  }
  // Arrival order, not time order, decides: reversing the input changes the windows.
  const std::vector<click> ordered = {{1, "a", "p", 1}, {2, "a", "p", 2}, {3, "a", "p", 4}};
  const auto f = sluice::flow<click>() | sluice::event_time(&click::ts) | sluice::key_by(&click::user) |
                 sluice::window(sluice::count_of(2)) | sluice::aggregate(sluice::sum(&click::amount));
  const auto forward = store_over(f, ordered);
  CHECK(forward.get(sluice::windowed_key<std::string_view, sluice::count_window_index>{"a", {0}}) == 3);
  CHECK(forward.get(sluice::windowed_key<std::string_view, sluice::count_window_index>{"a", {1}}) == 4);
  const std::vector<click> backward(ordered.rbegin(), ordered.rend());
  const auto reversed = store_over(f, backward);
  CHECK(reversed.get(sluice::windowed_key<std::string_view, sluice::count_window_index>{"a", {0}}) == 6);
  CHECK(reversed.get(sluice::windowed_key<std::string_view, sluice::count_window_index>{"a", {1}}) == 1);
}

TEST_CASE("count window partials refuse to merge a non-empty partial (arrival order would be lost)") {
  const auto f = sluice::flow<click>() | sluice::key_by(&click::user) | sluice::window(sluice::count_of(2)) |
                 sluice::aggregate(sluice::count{});
  auto a = partial_over(f, std::vector<click>{{0, "a", "p", 1}});
  const auto b = partial_over(f, std::vector<click>{{0, "b", "p", 1}});
  CHECK_THROWS_AS(a.merge(b), std::logic_error);
  a.merge(f.make_partial());  // an empty partial is harmless
  const auto store = sluice::make_result_store(std::move(a).into_result());
  CHECK(store.size() == 1);
}

TEST_CASE("windowed aggregates without key_by window the whole stream") {
  const std::vector<click> events = {{5, "a", "p", 1}, {1500, "b", "p", 2}, {1999, "c", "p", 4}};
  const auto f = sluice::flow<click>() | sluice::event_time(&click::ts) | sluice::window(sluice::tumbling(1s)) |
                 sluice::aggregate(sluice::count{});
  const auto store = store_over(f, events);
  static_assert(std::is_same_v<decltype(store)::key_type, sluice::windowed_key<sluice::unit_key>>);
  const auto rows = store.scan();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].key.window == sluice::time_window{sluice::millis{0}, sluice::millis{1000}});
  CHECK(rows[0].value == 1);
  CHECK(rows[1].key.window == sluice::time_window{sluice::millis{1000}, sluice::millis{2000}});
  CHECK(rows[1].value == 2);
}

// ---- partial states merge exactly ---------------------------------------------------------

TEST_CASE("partials over random splits, merged in random order, equal one partial over all input") {
  const auto events = random_clicks(31, 1200, -60'000, 60'000, 6);
  std::mt19937_64 rng(2024);
  const auto check_kind = [&](const auto& f, auto to_map) {
    const auto whole = to_map(store_over(f, events));
    CHECK_FALSE(whole.empty());
    for (std::size_t parts : {1U, 2U, 3U, 8U}) {
      CAPTURE(parts);
      CHECK(merged_from_random_split(f, events, parts, rng, to_map) == whole);
    }
  };
  SUBCASE("no window") {
    const auto f = sluice::flow<click>() | sluice::key_by(&click::user, &click::page) |
                   sluice::aggregate(sluice::count{}, sluice::sum(&click::amount), sluice::min(&click::ts),
                                     sluice::max(&click::ts));
    check_kind(f, [](const auto& store) {
      std::map<std::pair<std::string, std::string>, std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t>>
          out;
      for (const auto& row : store.scan()) {
        const auto& [cnt, total, lo, hi] = row.value;
        out[{std::get<0>(row.key), std::get<1>(row.key)}] = {cnt, total, lo.value(), hi.value()};
      }
      return out;
    });
  }
  SUBCASE("tumbling") {
    check_kind(by_user_windowed(sluice::tumbling(5s)), [](const auto& s) { return windows_of(s); });
  }
  SUBCASE("sliding") {
    check_kind(by_user_windowed(sluice::sliding(10s, 2500ms)), [](const auto& s) { return windows_of(s); });
  }
  SUBCASE("session") {
    for (const auto gap : {50ms, 400ms, 3000ms}) {
      CAPTURE(gap.count());
      check_kind(by_user_windowed(sluice::session(gap)), [](const auto& s) { return windows_of(s); });
    }
  }
}

// ---- the result store ---------------------------------------------------------------------

TEST_CASE("result store: get takes a borrowed key, and misses give nullopt") {
  const std::vector<click> events = {{0, "alice", "p", 5}, {0, "bob", "p", 7}, {0, "alice", "p", 1}};
  const auto f = sluice::flow<click>() | sluice::key_by(&click::user) | sluice::aggregate(sluice::sum(&click::amount));
  const auto store = store_over(f, events);
  std::string buffer = "xxalicexx";
  CHECK(store.get(std::string_view(buffer).substr(2, 5)) == 6);
  CHECK(store.get(std::string("bob")) == 7);
  CHECK(store.get("bob") == 7);  // a string literal
  const char* name = buffer.c_str() + 2;
  buffer[7] = '\0';
  CHECK(store.get(name) == 6);  // a C string
  CHECK(store.get("carol") == std::nullopt);
  CHECK(store.get(std::string_view("bo")) == std::nullopt);
  CHECK(store.get(std::string_view("")) == std::nullopt);
  CHECK(store.size() == 2);

  const auto w = by_user_windowed(sluice::tumbling(1s));
  const auto windowed = store_over(w, std::vector<click>{{1500, "alice", "p", 3}});
  const sluice::time_window win{sluice::millis{1000}, sluice::millis{2000}};
  CHECK(windowed.get(sluice::windowed_key<std::string_view>{std::string_view(buffer).substr(2, 5), win}) ==
        std::tuple<std::int64_t, std::int64_t>{1, 3});
  CHECK(windowed.get(sluice::windowed_key<std::string_view>{"alice", {sluice::millis{0}, sluice::millis{1000}}}) ==
        std::nullopt);
}

TEST_CASE("result store: scan orders string keys by bytes, whatever the insertion order") {
  std::vector<std::string> keys = {"b", "a", "ab", "", "\xff", "A", "aa", "\x7f", "\x80", "a\xe9", "Z", "0"};
  const std::vector<std::string> expected = {"", "0", "A", "Z", "a", "aa", "ab", "a\xe9", "b", "\x7f", "\x80", "\xff"};
  std::mt19937_64 rng(5);
  for (int round = 0; round < 5; ++round) {
    std::shuffle(keys.begin(), keys.end(), rng);
    std::vector<click> events;
    for (const auto& k : keys) {
      events.push_back({0, k, "p", 1});
    }
    const auto store =
        store_over(sluice::flow<click>() | sluice::key_by(&click::user) | sluice::aggregate(sluice::count{}), events);
    std::vector<std::string> scanned;
    for (const auto& row : store.scan()) {
      scanned.push_back(row.key);
    }
    CHECK(scanned == expected);
  }
}

TEST_CASE("result store: windowed rows scan by key, then window start") {
  auto events = random_clicks(41, 600, -20'000, 20'000, 4);
  std::mt19937_64 rng(6);
  std::shuffle(events.begin(), events.end(), rng);
  const auto store = store_over(by_user_windowed(sluice::sliding(4s, 1s)), events);
  const auto rows = store.scan();
  REQUIRE(rows.size() > 10);
  REQUIRE(rows.size() == store.size());
  for (std::size_t i = 1; i < rows.size(); ++i) {
    const auto& a = rows[i - 1].key;
    const auto& b = rows[i].key;
    CHECK((a.key < b.key || (a.key == b.key && a.window.start < b.window.start)));
  }
  // Count windows: by key, then window index.
  const auto counted = store_over(sluice::flow<click>() | sluice::key_by(&click::user) |
                                      sluice::window(sluice::count_of(3)) | sluice::aggregate(sluice::count{}),
                                  events);
  std::vector<std::pair<std::string, std::int64_t>> order;
  for (const auto& row : counted.scan()) {
    order.emplace_back(row.key.key, row.key.window.index);
  }
  CHECK(std::is_sorted(order.begin(), order.end()));
  CHECK(order.size() == counted.size());
}

TEST_CASE("result store: top_k ranks largest first, ties to the smaller key, any k") {
  // counts: a 3, b 5, c 3, d 1, e 5, f 3
  std::vector<click> events;
  for (const auto& [user, n] :
       std::vector<std::pair<std::string, int>>{{"f", 3}, {"e", 5}, {"d", 1}, {"c", 3}, {"b", 5}, {"a", 3}}) {
    for (int i = 0; i < n; ++i) {
      events.push_back({0, user, "p", n * 10 + i});
    }
  }
  std::mt19937_64 rng(8);
  std::shuffle(events.begin(), events.end(), rng);
  const auto store =
      store_over(sluice::flow<click>() | sluice::key_by(&click::user) | sluice::aggregate(sluice::count{}), events);
  const auto keys_of = [](const auto& rows) {
    std::vector<std::pair<std::string, std::int64_t>> out;
    for (const auto& row : rows) {
      out.emplace_back(row.key, row.value);
    }
    return out;
  };
  const auto by_count = [](std::int64_t n) { return n; };
  using ranked = std::vector<std::pair<std::string, std::int64_t>>;
  CHECK(keys_of(store.top_k(1, by_count)) == ranked{{"b", 5}});
  CHECK(keys_of(store.top_k(2, by_count)) == ranked{{"b", 5}, {"e", 5}});
  CHECK(keys_of(store.top_k(4, by_count)) == ranked{{"b", 5}, {"e", 5}, {"a", 3}, {"c", 3}});
  const ranked all = {{"b", 5}, {"e", 5}, {"a", 3}, {"c", 3}, {"f", 3}, {"d", 1}};
  CHECK(keys_of(store.top_k(6, by_count)) == all);
  CHECK(keys_of(store.top_k(100, by_count)) == all);  // k > size: every row, ranked
  CHECK(store.top_k(0, by_count).empty());
  // A rank that reverses the order: the smallest counts first, ties still to the smaller key.
  CHECK(keys_of(store.top_k(3, [](std::int64_t n) { return -n; })) == ranked{{"d", 1}, {"a", 3}, {"c", 3}});

  // Against a sort of the full scan on random data.
  const auto many = random_clicks(51, 3000, 0, 10, 40);
  const auto sums = store_over(
      sluice::flow<click>() | sluice::key_by(&click::page, &click::user) | sluice::aggregate(sluice::count{}), many);
  std::vector<std::pair<std::tuple<std::string, std::string>, std::int64_t>> rows;
  for (const auto& row : sums.scan()) {  // by key ...
    rows.emplace_back(row.key, row.value);
  }
  // ... then by count, largest first: a stable sort leaves ties in key order.
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (std::size_t k : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{50}, sums.size()}) {
    CAPTURE(k);
    const auto top = sums.top_k(k, by_count);
    REQUIRE(top.size() == std::min(k, rows.size()));
    for (std::size_t i = 0; i < top.size(); ++i) {
      CHECK(top[i].key == rows[i].first);
      CHECK(top[i].value == rows[i].second);
    }
  }
}

TEST_CASE("result store: merging two stores equals one store over both inputs") {
  const auto a_events = random_clicks(61, 700, 0, 10'000, 5);
  const auto b_events = random_clicks(62, 500, 5'000, 20'000, 7);
  const auto f = by_user_windowed(sluice::tumbling(2s));
  auto a = store_over(f, a_events);
  const auto b = store_over(f, b_events);
  a.merge(b);
  std::vector<click> both = a_events;
  both.insert(both.end(), b_events.begin(), b_events.end());
  CHECK(windows_of(a) == windows_of(store_over(f, both)));
  CHECK(windows_of(a) == assigned_reference(both, 2000, 2000));
}
