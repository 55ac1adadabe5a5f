// Core vocabulary: event time, hashing, keys, monoids, and the flat table under keyed state.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/sluice.hpp"

using namespace std::chrono_literals;

namespace {

// A key type of the user's own, hashed through ADL. Every value hashes alike, so every lookup
// walks one probe chain and only == tells the keys apart.
struct colliding_key {
  int v = 0;
  friend bool operator==(const colliding_key&, const colliding_key&) = default;
};
std::uint64_t hash_value(const colliding_key& /*k*/) {
  return 42;
}

struct item {
  std::int64_t v = 0;
};
auto value_of_item = [](const item& x) { return x.v; };

std::vector<item> random_items(std::mt19937_64& rng, std::size_t n) {
  std::vector<item> xs;
  xs.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    xs.push_back({static_cast<std::int64_t>(rng() % 2001) - 1000});
  }
  return xs;
}

template <class M, class T>
typename M::state fold(const M& m, const std::vector<T>& xs) {
  auto s = m.identity();
  for (const auto& x : xs) {
    m.add(s, x);
  }
  return s;
}

template <class M>
typename M::state merged(const M& m, typename M::state a, const typename M::state& b) {
  m.merge(a, b);
  return a;
}

// The monoid laws on random data, compared through result() (the only view a reader gets):
// identity neutral on both sides, merge associative and commutative, and any split of the
// input into partials, merged in any order, equal to folding everything in one state.
template <class M>
void check_monoid_laws(const M& m, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    const auto xs = random_items(rng, rng() % 40);
    const auto ys = random_items(rng, rng() % 40);
    const auto zs = random_items(rng, rng() % 40);
    const auto a = fold(m, xs);
    const auto b = fold(m, ys);
    const auto c = fold(m, zs);

    CHECK(m.result(merged(m, m.identity(), a)) == m.result(a));
    CHECK(m.result(merged(m, a, m.identity())) == m.result(a));
    CHECK(m.result(merged(m, merged(m, a, b), c)) == m.result(merged(m, a, merged(m, b, c))));
    CHECK(m.result(merged(m, a, b)) == m.result(merged(m, b, a)));

    std::vector<item> all = xs;
    all.insert(all.end(), ys.begin(), ys.end());
    all.insert(all.end(), zs.begin(), zs.end());
    const auto whole = m.result(fold(m, all));
    CHECK(m.result(merged(m, merged(m, c, a), b)) == whole);

    // Random scatter over up to 6 partials, merged in a random order.
    const std::size_t parts = 1 + rng() % 6;
    std::vector<typename M::state> partial(parts, m.identity());
    for (const auto& x : all) {
      m.add(partial[rng() % parts], x);
    }
    std::shuffle(partial.begin(), partial.end(), rng);
    auto acc = m.identity();
    for (const auto& p : partial) {
      m.merge(acc, p);
    }
    CHECK(m.result(acc) == whole);
  }
}

}  // namespace

TEST_CASE("millis arithmetic moves event time by chrono durations") {
  const sluice::millis t{1000};
  CHECK((t + 1min).count() == 61000);
  CHECK((t - 1s).count() == 0);
  CHECK((sluice::millis{5000} - t) == 4000ms);
}

TEST_CASE("millis is an ordered strong type with whole-millisecond conversions") {
  static_assert(!std::is_convertible_v<std::int64_t, sluice::millis>, "an integer must not silently become a time");
  static_assert(sluice::millis{}.count() == 0);
  static_assert((sluice::millis{5} + 2s).count() == 2005);
  CHECK(sluice::millis{-1} < sluice::millis{0});
  CHECK(sluice::millis{3} == sluice::millis{3});
  CHECK(sluice::millis{7} >= sluice::millis{7});
  CHECK(sluice::millis::min() < sluice::millis{std::numeric_limits<std::int64_t>::min() + 1});
  CHECK(sluice::millis::max().count() == std::numeric_limits<std::int64_t>::max());
  CHECK(sluice::to_millis(1min) == 60'000);
  CHECK(sluice::to_millis(2h) == 7'200'000);
  CHECK(sluice::to_millis(1999us) == 1);  // truncated, not rounded
  CHECK(sluice::to_millis(-3s) == -3000);
  CHECK((sluice::millis{0} - 250ms).count() == -250);
  CHECK((sluice::millis{0} + 1500us).count() == 1);
  CHECK((sluice::millis{-10} - sluice::millis{10}) == -20ms);
}

TEST_CASE("hash_value: a std::string and a string_view of the same text hash alike") {
  // Lengths around the 8-byte word steps, an embedded NUL, and bytes above 0x7f.
  std::vector<std::string> texts = {"",
                                    "a",
                                    "abcdefg",
                                    "abcdefgh",
                                    "abcdefghi",
                                    "0123456789abcdef",
                                    "0123456789abcdefg",
                                    std::string("nul\0inside", 10),
                                    "\xff\xfe\x80"};
  for (int i = 0; i < 50; ++i) {
    texts.push_back(std::string(static_cast<std::size_t>(i), static_cast<char>('a' + i % 26)));
  }
  for (const auto& s : texts) {
    CAPTURE(s);
    const std::string_view v = s;
    CHECK(sluice::hash_value(s) == sluice::hash_value(v));
    // A view into a different buffer holding the same bytes hashes alike too.
    const std::string copy = "xx" + s;
    CHECK(sluice::hash_value(std::string_view(copy).substr(2)) == sluice::hash_value(s));
  }
  // Distinct short texts do not collide (a weak hash on words would fold these together).
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 5000; ++i) {
    seen.insert(sluice::hash_value("user-" + std::to_string(i)));
  }
  CHECK(seen.size() == 5000);
  CHECK(sluice::hash_value(std::string_view("ab")) != sluice::hash_value(std::string_view("ba")));
  CHECK(sluice::hash_value(std::string_view("a")) != sluice::hash_value(std::string_view(std::string("a\0", 2))));
}

TEST_CASE("hash_value: tuples hash element-wise, so owned and borrowed tuples agree") {
  const std::string region = "north-east-region";
  const std::tuple<std::string, std::int64_t, std::string> owned{region, 42, "c"};
  const std::tuple<std::string_view, std::int64_t, std::string_view> borrowed{region, 42, "c"};
  CHECK(sluice::hash_value(owned) == sluice::hash_value(borrowed));
  // Order and every element matter.
  CHECK(sluice::hash_value(std::tuple<std::int64_t, std::int64_t>{1, 2}) !=
        sluice::hash_value(std::tuple<std::int64_t, std::int64_t>{2, 1}));
  CHECK(sluice::hash_value(borrowed) !=
        sluice::hash_value(std::tuple<std::string_view, std::int64_t, std::string_view>{region, 43, "c"}));
  CHECK(sluice::hash_value(borrowed) !=
        sluice::hash_value(std::tuple<std::string_view, std::int64_t, std::string_view>{region, 42, "d"}));
  // Element boundaries are part of the hash: ("ab", "c") is not ("a", "bc").
  CHECK(sluice::hash_value(std::tuple<std::string_view, std::string_view>{"ab", "c"}) !=
        sluice::hash_value(std::tuple<std::string_view, std::string_view>{"a", "bc"}));
  // Pairs, millis and windowed keys follow the same rule: owned and borrowed agree.
  CHECK(sluice::hash_value(std::pair<std::string, int>{region, 1}) ==
        sluice::hash_value(std::pair<std::string_view, int>{region, 1}));
  CHECK(sluice::hash_value(sluice::millis{5}) == sluice::hash_value(sluice::millis{5}));
  CHECK(sluice::hash_value(sluice::millis{5}) != sluice::hash_value(sluice::millis{6}));
  const sluice::time_window w{sluice::millis{0}, sluice::millis{60'000}};
  CHECK(sluice::hash_value(sluice::windowed_key<std::string>{region, w}) ==
        sluice::hash_value(sluice::windowed_key<std::string_view>{region, w}));
  CHECK(
      sluice::hash_value(sluice::windowed_key<std::string>{region, w}) !=
      sluice::hash_value(sluice::windowed_key<std::string>{region, {sluice::millis{60'000}, sluice::millis{120'000}}}));

  static_assert(sluice::hashable_key<std::tuple<std::string_view, std::int64_t>>);
  static_assert(sluice::hashable_key<colliding_key>);  // found by ADL
  static_assert(sluice::hashable_key<sluice::unit_key>);
}

TEST_CASE("to_owned copies borrowed keys into storage of their own, element-wise") {
  std::string buffer = "category-with-a-long-name";
  const std::string_view view = buffer;

  const auto owned = sluice::to_owned(view);
  static_assert(std::is_same_v<decltype(owned), const std::string>);
  CHECK(owned == "category-with-a-long-name");
  CHECK(owned.data() != buffer.data());

  const std::tuple<std::string_view, std::int64_t, std::string_view> t{view, 7, view.substr(0, 8)};
  const auto owned_tuple = sluice::to_owned(t);
  static_assert(std::is_same_v<decltype(owned_tuple), const std::tuple<std::string, std::int64_t, std::string>>);

  const std::pair<std::string_view, int> p{view.substr(9), 3};
  const auto owned_pair = sluice::to_owned(p);
  static_assert(std::is_same_v<decltype(owned_pair), const std::pair<std::string, int>>);

  const sluice::windowed_key<std::string_view> wk{view, {sluice::millis{10}, sluice::millis{20}}};
  const auto owned_wk = sluice::to_owned(wk);
  static_assert(std::is_same_v<decltype(owned_wk), const sluice::windowed_key<std::string>>);

  // Overwrite the source: every owned copy keeps the original text.
  std::fill(buffer.begin(), buffer.end(), '#');
  CHECK(owned == "category-with-a-long-name");
  CHECK(owned_tuple == std::tuple<std::string, std::int64_t, std::string>{"category-with-a-long-name", 7, "category"});
  CHECK(owned_pair == std::pair<std::string, int>{"with-a-long-name", 3});
  CHECK(owned_wk.key == "category-with-a-long-name");
  CHECK(owned_wk.window == sluice::time_window{sluice::millis{10}, sluice::millis{20}});

  // Keys that own their data already are returned as they are.
  CHECK(sluice::to_owned(std::int64_t{5}) == 5);
  static_assert(std::is_same_v<sluice::owned_key_t<std::int64_t>, std::int64_t>);
  static_assert(std::is_same_v<sluice::owned_key_t<sluice::unit_key>, sluice::unit_key>);
  static_assert(std::is_same_v<sluice::borrowed_key_t<std::string>, std::string_view>);
  static_assert(std::is_same_v<sluice::borrowed_key_t<const std::string&>, std::string_view>);
  static_assert(std::is_same_v<sluice::borrowed_key_t<const std::int64_t&>, std::int64_t>);
}

TEST_CASE("key_equal compares an owned key with a borrowed one byte for byte") {
  // Every length across the word-load paths, with a single differing byte at every position.
  for (std::size_t n = 0; n <= 40; ++n) {
    CAPTURE(n);
    std::string owned;
    for (std::size_t i = 0; i < n; ++i) {
      owned.push_back(static_cast<char>('a' + i % 26));
    }
    std::string other = "__" + owned;  // the same text at another address and alignment
    CHECK(sluice::key_equal(owned, std::string_view(other).substr(2)));
    for (std::size_t i = 0; i < n; ++i) {
      std::string changed = owned;
      changed[i] = static_cast<char>(changed[i] ^ 0x20);
      CHECK_FALSE(sluice::key_equal(owned, std::string_view(changed)));
    }
    CHECK_FALSE(sluice::key_equal(owned, std::string_view(other)));  // a longer text
    if (n > 0) {
      CHECK_FALSE(sluice::key_equal(owned, std::string_view(owned).substr(1)));
    }
  }
  using owned_tuple = std::tuple<std::string, std::int64_t>;
  using borrowed_tuple = std::tuple<std::string_view, std::int64_t>;
  CHECK(sluice::key_equal(owned_tuple{"north", 3}, borrowed_tuple{"north", 3}));
  CHECK_FALSE(sluice::key_equal(owned_tuple{"north", 3}, borrowed_tuple{"north", 4}));
  CHECK_FALSE(sluice::key_equal(owned_tuple{"north", 3}, borrowed_tuple{"nortH", 3}));
  const sluice::time_window w{sluice::millis{0}, sluice::millis{10}};
  const sluice::time_window w2{sluice::millis{0}, sluice::millis{20}};
  CHECK(sluice::key_equal(sluice::windowed_key<std::string>{"k", w}, sluice::windowed_key<std::string_view>{"k", w}));
  CHECK_FALSE(
      sluice::key_equal(sluice::windowed_key<std::string>{"k", w}, sluice::windowed_key<std::string_view>{"j", w}));
  CHECK_FALSE(
      sluice::key_equal(sluice::windowed_key<std::string>{"k", w}, sluice::windowed_key<std::string_view>{"k", w2}));
}

TEST_CASE("count, sum, min, max, mean give the expected results") {
  const std::vector<item> xs = {{5}, {-3}, {12}, {0}, {-3}, {7}};
  const sluice::count c;
  CHECK(c.result(fold(c, xs)) == 6);
  CHECK(c.result(c.identity()) == 0);

  const auto s = sluice::bind_monoid<item>(sluice::sum(&item::v));
  static_assert(std::is_same_v<decltype(s.result(s.identity())), std::int64_t>);
  CHECK(s.result(fold(s, xs)) == 18);
  CHECK(s.result(s.identity()) == 0);

  const auto lo = sluice::bind_monoid<item>(sluice::min(&item::v));
  const auto hi = sluice::bind_monoid<item>(sluice::max(value_of_item));
  CHECK(lo.result(fold(lo, xs)) == std::optional<std::int64_t>(-3));
  CHECK(hi.result(fold(hi, xs)) == std::optional<std::int64_t>(12));
  CHECK_FALSE(lo.result(lo.identity()).has_value());
  CHECK_FALSE(hi.result(hi.identity()).has_value());
  // A single negative input is the min and the max (no hidden 0 from a default state).
  CHECK(lo.result(fold(lo, std::vector<item>{{-9}})) == std::optional<std::int64_t>(-9));
  CHECK(hi.result(fold(hi, std::vector<item>{{-9}})) == std::optional<std::int64_t>(-9));
  // Merging an empty partial does not disturb an extreme, in either direction.
  CHECK(hi.result(merged(hi, hi.identity(), fold(hi, std::vector<item>{{-9}}))) == std::optional<std::int64_t>(-9));

  const auto avg = sluice::bind_monoid<item>(sluice::mean(&item::v));
  CHECK(avg.result(fold(avg, xs)) == std::optional<double>(3.0));
  CHECK(avg.result(fold(avg, std::vector<item>{{1}, {2}})) == std::optional<double>(1.5));
  CHECK_FALSE(avg.result(avg.identity()).has_value());

  // A projection by a lambda over another event type.
  struct sale {
    std::int64_t qty, price;
  };
  const auto revenue = sluice::bind_monoid<sale>(sluice::sum([](const sale& x) { return x.qty * x.price; }));
  CHECK(revenue.result(fold(revenue, std::vector<sale>{{2, 150}, {1, 99}})) == 399);
}

TEST_CASE("min and max of a borrowed string keep their own copy, which outlives the input") {
  struct named {
    std::string_view name;  // borrowed, as a CSV field parsed in place is
  };
  const auto lo = sluice::bind_monoid<named>(sluice::min(&named::name));
  const auto hi = sluice::bind_monoid<named>(sluice::max(&named::name));
  static_assert(std::is_same_v<decltype(hi.result(hi.identity())), std::optional<std::string>>);
  auto s_lo = lo.identity();
  auto s_hi = hi.identity();
  {
    std::string input = "pear,apple,quince-from-a-long-way-away,banana";
    std::size_t start = 0;
    while (start <= input.size()) {
      const std::size_t comma = std::min(input.find(',', start), input.size());
      const named x{std::string_view(input).substr(start, comma - start)};
      lo.add(s_lo, x);
      hi.add(s_hi, x);
      start = comma + 1;
    }
    std::fill(input.begin(), input.end(), '?');  // the input is overwritten, then freed
  }
  CHECK(lo.result(s_lo) == std::optional<std::string>("apple"));
  CHECK(hi.result(s_hi) == std::optional<std::string>("quince-from-a-long-way-away"));
  auto other = hi.identity();
  hi.add(other, named{"zebra"});
  hi.merge(s_hi, other);
  CHECK(hi.result(s_hi) == std::optional<std::string>("zebra"));
}

TEST_CASE("count, sum, min, max, mean obey the monoid laws on random data") {
  SUBCASE("count") {
    check_monoid_laws(sluice::count{}, 1);
  }
  SUBCASE("sum") {
    check_monoid_laws(sluice::bind_monoid<item>(sluice::sum(&item::v)), 2);
  }
  SUBCASE("min") {
    check_monoid_laws(sluice::bind_monoid<item>(sluice::min(&item::v)), 3);
  }
  SUBCASE("max") {
    check_monoid_laws(sluice::bind_monoid<item>(sluice::max(&item::v)), 4);
  }
  SUBCASE("mean") {
    check_monoid_laws(sluice::bind_monoid<item>(sluice::mean(&item::v)), 5);
  }
  SUBCASE("product") {
    check_monoid_laws(
        sluice::bind_monoid<item>(sluice::product_aggregator<sluice::count, sluice::sum<decltype(value_of_item)>,
                                                             sluice::min<decltype(value_of_item)>>{
            {sluice::count{}, sluice::sum(value_of_item), sluice::min(value_of_item)}}),
        6);
  }
}

TEST_CASE("aggregate(count{}, sum(f)) folds both at once and answers a tuple") {
  const auto stage = sluice::aggregate(sluice::count{}, sluice::sum(&item::v));
  const auto m = sluice::bind_monoid<item>(stage.aggregator);
  static_assert(std::is_same_v<decltype(m.result(m.identity())), std::tuple<std::int64_t, std::int64_t>>);
  CHECK(m.result(m.identity()) == std::tuple<std::int64_t, std::int64_t>{0, 0});
  const std::vector<item> xs = {{4}, {10}, {-1}};
  CHECK(m.result(fold(m, xs)) == std::tuple<std::int64_t, std::int64_t>{3, 13});
  // Each part merges with its own monoid.
  CHECK(m.result(merged(m, fold(m, xs), fold(m, std::vector<item>{{100}}))) ==
        std::tuple<std::int64_t, std::int64_t>{4, 113});

  // Five aggregates at once, through a flow.
  const auto all =
      sluice::flow<item>() | sluice::aggregate(sluice::count{}, sluice::sum(&item::v), sluice::min(&item::v),
                                               sluice::max(&item::v), sluice::mean(&item::v));
  auto partial = all.make_partial();
  auto chain = all.bind(partial);
  for (const item& x : xs) {
    chain(sluice::millis{0}, x);
  }
  const auto store = sluice::make_result_store(std::move(partial).into_result());
  const auto answer = store.get(sluice::unit_key{});
  REQUIRE(answer.has_value());
  const auto& [n, total, lo, hi, avg] = *answer;
  CHECK(n == 3);
  CHECK(total == 13);
  CHECK(lo == std::optional<std::int64_t>(-1));
  CHECK(hi == std::optional<std::int64_t>(10));
  CHECK(avg == std::optional<double>(13.0 / 3.0));
}

TEST_CASE("monoid concepts accept the vocabulary and refuse a monoid without merge") {
  struct no_merge {
    using state = int;
    static state identity() { return 0; }
    static void add(state& s, const item& /*x*/) { ++s; }
    static state result(const state& s) { return s; }
  };
  static_assert(sluice::monoid_for<sluice::count, item>);
  static_assert(sluice::aggregator_for<sluice::sum<decltype(value_of_item)>, item>);
  static_assert(!sluice::monoid_for<sluice::sum<decltype(value_of_item)>, item>, "sum(f) is a factory, bound per type");
  static_assert(!sluice::aggregator_for<no_merge, item>);
  static_assert(!sluice::aggregator_for<int, item>);
}

TEST_CASE("keyed state: many keys force the table to grow; every count survives") {
  sluice::keyed_state<std::int64_t, sluice::count> state;
  std::map<std::int64_t, std::int64_t> expected;
  std::mt19937_64 rng(17);
  for (int i = 0; i < 30'000; ++i) {
    const auto k = static_cast<std::int64_t>(rng() % 12'000) - 6'000;
    state.add(k, 0);
    ++expected[k];
  }
  REQUIRE(state.size() == expected.size());
  for (const auto& item : expected) {
    const auto& k = item.first;
    const auto& n = item.second;
    const auto* s = state.find(k);
    REQUIRE(s != nullptr);
    CHECK(*s == n);
  }
  CHECK(state.find(std::int64_t{1'000'000}) == nullptr);
  CHECK(state.find(std::int64_t{-6'001}) == nullptr);
  // Iteration visits each key once, with its state.
  std::map<std::int64_t, std::int64_t> iterated;
  for (const auto& e : state) {
    CHECK(iterated.emplace(e.key, e.value).second);
  }
  CHECK(iterated == expected);

  sluice::keyed_state<std::int64_t, sluice::count> empty;
  CHECK(empty.size() == 0);
  CHECK(empty.find(std::int64_t{0}) == nullptr);
}

TEST_CASE("keyed state: keys found by a borrowed string_view are owned, and survive the source buffer") {
  sluice::keyed_state<std::string, sluice::count> state;
  std::vector<std::string> originals;
  std::string buffer;
  for (int i = 0; i < 2'000; ++i) {
    // Each key is viewed in one reused buffer that is overwritten right after the add.
    buffer = "customer-" + std::to_string(i * 7919) + "-with-a-name-longer-than-sso";
    originals.push_back(buffer);
    state.add(std::string_view(buffer), 0);
    if (i % 3 == 0) {
      state.add(std::string_view(buffer), 0);  // a hit through the borrowed key
    }
    std::fill(buffer.begin(), buffer.end(), 'Z');
  }
  REQUIRE(state.size() == originals.size());
  for (std::size_t i = 0; i < originals.size(); ++i) {
    const std::string probe = originals[i];  // another buffer with the same text
    const auto* s = state.find(std::string_view(probe));
    REQUIRE(s != nullptr);
    CHECK(*s == (i % 3 == 0 ? 2 : 1));
    CHECK(state.find(originals[i]) == s);  // the owned type finds the same entry
  }
  CHECK(state.find(std::string_view(buffer)) == nullptr);  // the overwritten text was never a key
  // Iteration shows every original text once (in the table's own order).
  std::vector<std::string> iterated;
  for (const auto& e : state) {
    iterated.push_back(e.key);
  }
  std::sort(iterated.begin(), iterated.end());
  std::sort(originals.begin(), originals.end());
  CHECK(iterated == originals);
}

TEST_CASE("keyed state: colliding hashes are told apart by key equality") {
  sluice::keyed_state<colliding_key, sluice::count> state;
  for (int round = 0; round < 3; ++round) {
    for (int v = 0; v < 300; ++v) {
      if (v % 3 >= round) {
        state.add(colliding_key{v}, 0);
      }
    }
  }
  CHECK(state.size() == 300);
  for (int v = 0; v < 300; ++v) {
    const auto* s = state.find(colliding_key{v});
    REQUIRE(s != nullptr);
    CHECK(*s == v % 3 + 1);
  }
  CHECK(state.find(colliding_key{300}) == nullptr);
}

TEST_CASE("keyed state: composite keys by borrowed tuples, and merge adds state per key") {
  using key = std::tuple<std::string, std::int64_t>;
  const auto sum_v = sluice::bind_monoid<item>(sluice::sum(&item::v));
  sluice::keyed_state<key, decltype(sum_v)> a(sum_v);
  sluice::keyed_state<key, decltype(sum_v)> b(sum_v);
  std::string region = "west";
  a.add(std::tuple<std::string_view, std::int64_t>{region, 1}, item{10});
  a.add(std::tuple<std::string_view, std::int64_t>{region, 2}, item{20});
  region = "east";
  b.add(std::tuple<std::string_view, std::int64_t>{region, 1}, item{5});
  b.add(std::tuple<std::string_view, std::int64_t>{"west", 1}, item{1});
  a.merge(b);
  CHECK(a.size() == 3);
  CHECK(*a.find(key{"west", 1}) == 11);
  CHECK(*a.find(std::tuple<std::string_view, std::int64_t>{"west", 2}) == 20);
  CHECK(*a.find(key{"east", 1}) == 5);
  CHECK(a.find(key{"east", 2}) == nullptr);
  CHECK(b.size() == 2);  // the merged-from partial is left as it was
  CHECK(*b.find(key{"west", 1}) == 1);
}
