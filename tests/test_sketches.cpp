// Tests for the sketch aggregates: distinct_count (HyperLogLog), quantiles (DDSketch-style) and
// top_k. Beyond accuracy, each checks the property the engine relies on: any split of the input
// into partials, merged in any order, gives exactly the state of sequential adding. Also the
// reporting aggregates: exact_distinct_count and filtered ones (count_if, sum_if, filtered).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/core/distinct_count.hpp"
#include "sluice/core/filtered.hpp"
#include "sluice/core/monoid.hpp"
#include "sluice/core/quantiles.hpp"
#include "sluice/core/top_k.hpp"
#include "sluice/io/memory_source.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/sluice.hpp"

namespace {

struct event {
  std::uint64_t user = 0;
  double latency = 0.0;
  int score = 0;
  std::string name;
};

auto identity_u64 = [](std::uint64_t v) { return v; };
auto identity_double = [](double v) { return v; };
auto identity_int = [](int v) { return v; };

template <class M, class T>
typename M::state fold(const M& m, const std::vector<T>& xs) {
  auto s = m.identity();
  for (const auto& x : xs) {
    m.add(s, x);
  }
  return s;
}

// Scatter xs over 1..8 partials (some possibly empty), then merge them pairwise in a random
// tree: random pairs, random left/right, so associativity and commutativity are both exercised.
template <class M, class T>
typename M::state fold_partitioned(const M& m, const std::vector<T>& xs, std::mt19937_64& rng) {
  const std::size_t parts = 1 + static_cast<std::size_t>(rng() % 8);
  std::vector<typename M::state> partial(parts, m.identity());
  for (const auto& x : xs) {
    m.add(partial[static_cast<std::size_t>(rng() % parts)], x);
  }
  while (partial.size() > 1) {
    const std::size_t i = static_cast<std::size_t>(rng() % partial.size());
    std::size_t j = static_cast<std::size_t>(rng() % (partial.size() - 1));
    j += (j >= i) ? 1 : 0;
    m.merge(partial[i], partial[j]);
    partial.erase(partial.begin() + static_cast<std::ptrdiff_t>(j));
  }
  return partial.front();
}

template <class M>
void check_identity_neutral(const M& m, const typename M::state& s) {
  auto left = m.identity();
  m.merge(left, s);
  CHECK(left == s);
  auto right = s;
  m.merge(right, m.identity());
  CHECK(right == s);
  auto none = m.identity();
  m.merge(none, m.identity());
  CHECK(none == m.identity());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// distinct_count

static_assert(
    sluice::monoid_for<decltype(sluice::distinct_count(identity_u64).template bind<std::uint64_t>()), std::uint64_t>);
static_assert(sluice::aggregator_for<sluice::distinct_count<decltype(identity_u64)>, std::uint64_t>);
static_assert(sluice::monoid_for<decltype(sluice::distinct_count(&event::name).template bind<event>()), event>);

TEST_CASE("distinct_count: estimate within 3 standard errors of the true distinct count") {
  const auto m = sluice::distinct_count(identity_u64).bind<std::uint64_t>();
  const double standard_error = 1.04 / std::sqrt(4096.0);
  std::mt19937_64 rng(42);
  for (const std::uint64_t n : {std::uint64_t{1000}, std::uint64_t{100000}, std::uint64_t{1000000}}) {
    // Distinct by construction: a random start and a stride, so no accidental collisions.
    const std::uint64_t start = rng();
    auto s = m.identity();
    for (std::uint64_t i = 0; i < n; ++i) {
      m.add(s, start + i * 0x9e3779b97f4a7c15ULL);
    }
    const auto estimate = static_cast<double>(m.result(s));
    INFO("n = " << n << ", estimate = " << estimate);
    CHECK(std::abs(estimate - static_cast<double>(n)) <= 3.0 * standard_error * static_cast<double>(n));
  }
}

TEST_CASE("distinct_count: strings through a member pointer, and a non-default precision") {
  std::vector<event> events;
  for (int i = 0; i < 50000; ++i) {
    events.push_back(event{0, 0.0, 0, "user-" + std::to_string(i % 20000)});
  }
  const auto by_name = sluice::distinct_count(&event::name).bind<event>();
  const auto estimate12 = static_cast<double>(by_name.result(fold(by_name, events)));
  CHECK(std::abs(estimate12 - 20000.0) <= 3.0 * 1.04 / 64.0 * 20000.0);

  const auto precise = sluice::distinct_count(&event::name, 14).bind<event>();
  CHECK(precise.register_count() == 16384);
  const auto estimate14 = static_cast<double>(precise.result(fold(precise, events)));
  CHECK(std::abs(estimate14 - 20000.0) <= 3.0 * 1.04 / 128.0 * 20000.0);

  CHECK_THROWS_AS(sluice::distinct_count(&event::name, 3), std::invalid_argument);
  CHECK_THROWS_AS(sluice::distinct_count(&event::name, 19), std::invalid_argument);
}

TEST_CASE("distinct_count: duplicates change nothing") {
  const auto m = sluice::distinct_count(identity_u64).bind<std::uint64_t>();
  std::mt19937_64 rng(7);
  std::vector<std::uint64_t> once;
  std::vector<std::uint64_t> repeated;
  for (std::uint64_t i = 0; i < 30000; ++i) {
    once.push_back(rng());
    const auto copies = 1 + rng() % 5;
    for (std::uint64_t c = 0; c < copies; ++c) {
      repeated.push_back(once.back());
    }
  }
  std::shuffle(repeated.begin(), repeated.end(), rng);
  const auto a = fold(m, once);
  const auto b = fold(m, repeated);
  CHECK(a == b);
  CHECK(m.result(a) == m.result(b));
  // Merging a partial with itself is also a no-op (per-register max is idempotent).
  auto twice = a;
  m.merge(twice, a);
  CHECK(twice == a);
}

TEST_CASE("distinct_count: merged partials are register-identical to sequential adding") {
  const auto m = sluice::distinct_count(identity_u64).bind<std::uint64_t>();
  std::mt19937_64 rng(1234);
  std::vector<std::uint64_t> xs(100000);
  for (auto& x : xs) {
    x = rng() % 60000;  // plenty of duplicates across partials too
  }
  const auto sequential = fold(m, xs);
  for (int split = 0; split < 20; ++split) {
    const auto merged = fold_partitioned(m, xs, rng);
    REQUIRE(merged == sequential);
    CHECK(m.result(merged) == m.result(sequential));
  }
}

TEST_CASE("distinct_count: identity is neutral and reads as zero") {
  const auto m = sluice::distinct_count(identity_u64).bind<std::uint64_t>();
  CHECK(m.result(m.identity()) == 0);
  auto one = m.identity();
  m.add(one, 5);
  CHECK(m.result(one) == 1);
  check_identity_neutral(m, one);
  check_identity_neutral(m, fold(m, std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

// ---------------------------------------------------------------------------------------------
// quantiles

static_assert(sluice::monoid_for<decltype(sluice::quantiles(identity_double).template bind<double>()), double>);
static_assert(sluice::monoid_for<decltype(sluice::quantiles(&event::score).template bind<event>()), event>);
static_assert(sluice::aggregator_for<sluice::quantiles<decltype(identity_double)>, double>);

namespace {

// The exact quantile the sketch promises to approximate: the input of 0-based rank
// floor(q * (n - 1)) in ascending order.
double exact_quantile(const std::vector<double>& sorted, double q) {
  const auto rank = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1));
  return sorted[rank];
}

const std::vector<double> probes = {0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 1.0};

void check_accuracy(const std::vector<double>& xs, double alpha) {
  const auto m = sluice::quantiles(identity_double, alpha).bind<double>();
  const auto summary = m.result(fold(m, xs));
  std::vector<double> sorted = xs;
  std::sort(sorted.begin(), sorted.end());
  CHECK(summary.count() == static_cast<std::int64_t>(xs.size()));
  CHECK(summary.min() == sorted.front());
  CHECK(summary.max() == sorted.back());
  for (const double q : probes) {
    const double exact = exact_quantile(sorted, q);
    const double estimate = summary.quantile(q);
    INFO("alpha = " << alpha << ", q = " << q << ", exact = " << exact << ", estimate = " << estimate);
    // 1e-12 absorbs floating rounding at bucket boundaries, far below alpha.
    CHECK(std::abs(estimate - exact) <= alpha * std::abs(exact) * (1.0 + 1e-12));
  }
}

std::vector<double> uniform_data(std::mt19937_64& rng, std::size_t n) {
  std::uniform_real_distribution<double> d(0.0, 1000.0);
  std::vector<double> xs(n);
  for (auto& x : xs) {
    x = d(rng);
  }
  return xs;
}

std::vector<double> lognormal_data(std::mt19937_64& rng, std::size_t n) {
  std::lognormal_distribution<double> d(0.0, 2.0);
  std::vector<double> xs(n);
  for (auto& x : xs) {
    x = d(rng);
  }
  return xs;
}

// Negatives, positives and a block of exact zeros (some of them -0.0) in the middle ranks.
std::vector<double> signed_data(std::mt19937_64& rng, std::size_t n) {
  std::normal_distribution<double> d(5.0, 100.0);
  std::vector<double> xs(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto pick = rng() % 10;
    xs[i] = pick == 0 ? 0.0 : pick == 1 ? -0.0 : d(rng);
  }
  return xs;
}

}  // namespace

TEST_CASE("quantiles: each probed quantile is within relative error alpha of the exact one") {
  std::mt19937_64 rng(99);
  for (const double alpha : {0.01, 0.05}) {
    SUBCASE("uniform") {
      check_accuracy(uniform_data(rng, 20001), alpha);
    }
    SUBCASE("lognormal") {
      check_accuracy(lognormal_data(rng, 20001), alpha);
    }
    SUBCASE("negatives and zeros") {
      check_accuracy(signed_data(rng, 20001), alpha);
    }
    SUBCASE("negatives only") {
      auto xs = lognormal_data(rng, 5000);
      for (auto& x : xs) {
        x = -x;
      }
      check_accuracy(xs, alpha);
    }
    SUBCASE("tiny inputs") {
      check_accuracy({3.5}, alpha);
      check_accuracy({-2.0, 7.0}, alpha);
      check_accuracy({1.0, 1.0, 1.0, 2.0, 1000.0}, alpha);
    }
  }
}

TEST_CASE("quantiles: zeros rank exactly and integer projections work") {
  const auto m = sluice::quantiles(&event::score).bind<event>();
  std::vector<event> events;
  for (int i = -10; i <= 10; ++i) {
    events.push_back(event{0, 0.0, i == 0 ? 0 : i * 100, ""});
  }
  for (int i = 0; i < 9; ++i) {
    events.push_back(event{0, 0.0, 0, ""});  // 10 zeros among 30 inputs: ranks 10..19
  }
  const auto summary = m.result(fold(m, events));
  CHECK(summary.count() == 30);
  CHECK(summary.quantile(0.5) == 0.0);
  CHECK(summary.min() == -1000.0);
  CHECK(summary.max() == 1000.0);
  CHECK(std::abs(summary.quantile(0.25) - -300.0) <= 0.01 * 300.0);
}

TEST_CASE("quantiles: NaN is ignored, infinities are kept as min/max, empty reads NaN") {
  const auto m = sluice::quantiles(identity_double).bind<double>();
  CHECK(m.result(m.identity()).count() == 0);
  CHECK(std::isnan(m.result(m.identity()).quantile(0.5)));
  CHECK(std::isnan(m.result(m.identity()).min()));
  const double inf = std::numeric_limits<double>::infinity();
  const auto summary = m.result(fold(m, std::vector<double>{std::nan(""), 1.0, inf, -inf, 2.0, 3.0}));
  CHECK(summary.count() == 5);
  CHECK(summary.quantile(0.0) == -inf);
  CHECK(summary.quantile(1.0) == inf);
  CHECK(std::abs(summary.quantile(0.5) - 2.0) <= 0.02);
  CHECK(std::isnan(summary.quantile(std::nan(""))));

  // Both zeros rank as zero, and min/max never depend on which zero arrived first: -0.0 reads
  // as +0.0 in either order, so merged and sequential summaries agree bit for bit.
  const auto first_negative = m.result(fold(m, std::vector<double>{-0.0, 0.0, 1.0}));
  const auto first_positive = m.result(fold(m, std::vector<double>{0.0, -0.0, 1.0}));
  CHECK_FALSE(std::signbit(first_negative.min()));
  CHECK_FALSE(std::signbit(first_positive.min()));
  CHECK_FALSE(std::signbit(m.result(fold(m, std::vector<double>{-0.0})).max()));
}

TEST_CASE("quantiles: merged partials give a summary identical to sequential adding") {
  std::mt19937_64 rng(2024);
  std::vector<double> xs = signed_data(rng, 20000);
  const auto more = lognormal_data(rng, 20000);
  xs.insert(xs.end(), more.begin(), more.end());
  std::shuffle(xs.begin(), xs.end(), rng);
  const auto m = sluice::quantiles(identity_double).bind<double>();
  const auto sequential = fold(m, xs);
  const auto expected = m.result(sequential);
  for (int split = 0; split < 20; ++split) {
    const auto merged = fold_partitioned(m, xs, rng);
    REQUIRE(merged == sequential);
    const auto summary = m.result(merged);
    REQUIRE(summary == expected);
    for (const double q : probes) {
      CHECK(summary.quantile(q) == expected.quantile(q));  // bit-identical answers
    }
  }
}

TEST_CASE("quantiles: collapsing the lowest buckets is still order-independent") {
  // Lognormal(0, 3) spans ~e^±12; 600 buckets at alpha 0.01 span only e^12, so the small
  // magnitudes collapse, and which ones depends on the final maximum, not on arrival order.
  std::mt19937_64 rng(5);
  std::lognormal_distribution<double> d(0.0, 3.0);
  std::vector<double> xs(20001);
  for (auto& x : xs) {
    x = (rng() % 4 == 0) ? -d(rng) : d(rng);
  }
  const auto m = sluice::quantiles(identity_double, 0.01, 600).bind<double>();
  const auto sequential = fold(m, xs);
  for (int split = 0; split < 20; ++split) {
    REQUIRE(fold_partitioned(m, xs, rng) == sequential);
  }
  // Adding in sorted order (the top keeps rising) and in reverse must agree too.
  std::vector<double> sorted = xs;
  std::sort(sorted.begin(), sorted.end());
  CHECK(fold(m, sorted) == sequential);
  std::reverse(sorted.begin(), sorted.end());
  CHECK(fold(m, sorted) == sequential);

  std::sort(sorted.begin(), sorted.end());
  const auto summary = m.result(sequential);
  // The large magnitudes keep their accuracy...
  for (const double q : {0.95, 0.99, 0.999}) {
    const double exact = exact_quantile(sorted, q);
    CHECK(std::abs(summary.quantile(q) - exact) <= 0.01 * std::abs(exact) * (1.0 + 1e-12));
  }
  // ...while a small magnitude (near e^-4.5, 10^7 below the maximum) was folded into the floor
  // bucket: proof that this test really collapsed something.
  const double small = exact_quantile(sorted, 0.3);
  CHECK(small > 0.0);
  CHECK(std::abs(summary.quantile(0.3) - small) > 0.01 * small);
}

TEST_CASE("quantiles: identity is neutral") {
  const auto m = sluice::quantiles(identity_double).bind<double>();
  std::mt19937_64 rng(3);
  check_identity_neutral(m, fold(m, signed_data(rng, 1000)));
  check_identity_neutral(m, fold(m, std::vector<double>{0.0}));
  CHECK(m.result(m.identity()) == m.result(fold(m, std::vector<double>{std::nan("")})));
  CHECK_THROWS_AS(sluice::quantiles(identity_double, 0.0), std::invalid_argument);
  CHECK_THROWS_AS(sluice::quantiles(identity_double, 1.0), std::invalid_argument);
  CHECK_THROWS_AS(sluice::quantiles(identity_double, 0.01, 0), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// top_k

static_assert(sluice::monoid_for<decltype(sluice::top_k(3, identity_int).template bind<int>()), int>);
static_assert(sluice::monoid_for<decltype(sluice::top_k(3, &event::name).template bind<event>()), event>);
static_assert(sluice::aggregator_for<sluice::top_k<decltype(identity_int)>, int>);

namespace {
std::vector<int> tied_ints(std::mt19937_64& rng, std::size_t n, int lo, int hi) {
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<int> xs(n);
  for (auto& x : xs) {
    x = d(rng);
  }
  return xs;
}

template <class V, class Before>
std::vector<V> sort_take(std::vector<V> xs, std::size_t k, Before before) {
  std::sort(xs.begin(), xs.end(), before);
  xs.resize(std::min(k, xs.size()));
  return xs;
}
}  // namespace

TEST_CASE("top_k: equals sort and take k on data with many ties") {
  std::mt19937_64 rng(11);
  const auto xs = tied_ints(rng, 2000, 0, 50);
  for (const std::size_t k : {std::size_t{1}, std::size_t{10}, std::size_t{100}}) {
    const auto m = sluice::top_k(k, identity_int).bind<int>();
    CHECK(m.result(fold(m, xs)) == sort_take(xs, k, std::greater<>{}));
  }
  const auto smallest = sluice::top_k(7, identity_int, std::less<>{}).bind<int>();
  CHECK(smallest.result(fold(smallest, xs)) == sort_take(xs, 7, std::less<>{}));
}

TEST_CASE("top_k: ties under a custom compare are broken by the value, whatever the input order") {
  // Rank by magnitude: -5 and 5 tie under compare; the larger value (5) must come first.
  auto by_magnitude = [](int a, int b) { return std::abs(a) > std::abs(b); };
  auto reference = [](int a, int b) { return std::abs(a) != std::abs(b) ? std::abs(a) > std::abs(b) : a > b; };
  std::mt19937_64 rng(12);
  auto xs = tied_ints(rng, 1000, -20, 20);
  const auto m = sluice::top_k(15, identity_int, by_magnitude).bind<int>();
  const auto expected = sort_take(xs, 15, reference);
  for (int round = 0; round < 10; ++round) {
    std::shuffle(xs.begin(), xs.end(), rng);
    CHECK(m.result(fold(m, xs)) == expected);
  }
}

TEST_CASE("top_k: merged partials equal sequential adding") {
  std::mt19937_64 rng(13);
  std::vector<std::pair<int, int>> xs;  // (score, id): the k best scores, ties by id
  for (int id = 0; id < 3000; ++id) {
    xs.emplace_back(static_cast<int>(rng() % 100), static_cast<int>(rng() % 40));
  }
  auto self = [](const std::pair<int, int>& p) { return p; };
  for (const std::size_t k : {std::size_t{1}, std::size_t{5}, std::size_t{64}, std::size_t{5000}}) {
    const auto m = sluice::top_k(k, self).bind<std::pair<int, int>>();
    const auto sequential = fold(m, xs);
    CHECK(m.result(sequential) == sort_take(xs, k, std::greater<>{}));
    for (int split = 0; split < 20; ++split) {
      REQUIRE(fold_partitioned(m, xs, rng) == sequential);
    }
  }
}

TEST_CASE("top_k: k larger than the input, k == 0, and borrowed strings kept owned") {
  const auto m = sluice::top_k(10, identity_int).bind<int>();
  CHECK(m.result(fold(m, std::vector<int>{3, 1, 2, 3})) == std::vector<int>{3, 3, 2, 1});
  CHECK(m.result(m.identity()).empty());
  const auto none = sluice::top_k(0, identity_int).bind<int>();
  CHECK(none.result(fold(none, std::vector<int>{1, 2, 3})).empty());

  auto view = [](const event& e) { return std::string_view(e.name); };
  const auto names = sluice::top_k(2, view).bind<event>();
  static_assert(std::is_same_v<decltype(names.result(names.identity())), std::vector<std::string>>);
  auto s = names.identity();
  {
    // The events (and the strings the views point into) die before the result is read.
    std::vector<event> events;
    for (const char* n : {"pear", "apple", "zucchini", "fig", "plum"}) {
      events.push_back(event{0, 0.0, 0, n});
    }
    for (const auto& e : events) {
      names.add(s, e);
    }
  }
  CHECK(names.result(s) == std::vector<std::string>{"zucchini", "plum"});
}

TEST_CASE("top_k: identity is neutral") {
  std::mt19937_64 rng(14);
  const auto m = sluice::top_k(5, identity_int).bind<int>();
  check_identity_neutral(m, fold(m, tied_ints(rng, 100, 0, 9)));
  check_identity_neutral(m, fold(m, std::vector<int>{4}));
  const auto full = fold(m, tied_ints(rng, 100, 0, 9));
  auto merged = full;
  m.merge(merged, merged);  // merged with itself (aliased): keeps the k best, the values repeat
  std::vector<int> doubled(full.begin(), full.end());
  doubled.insert(doubled.end(), full.begin(), full.end());
  CHECK(merged == sort_take(doubled, 5, std::greater<>{}));
}

TEST_CASE("exact_distinct_count, count_if, sum_if and filtered(...) equal a reference, on 1 and 4 threads") {
  struct visit {
    std::int64_t site = 0;
    std::string user;
    std::int64_t ms = 0;
    bool mobile = false;
  };
  std::mt19937_64 rng(5);
  std::vector<visit> visits;
  for (int i = 0; i < 20'000; ++i) {
    visits.push_back(visit{static_cast<std::int64_t>(rng() % 7), "u" + std::to_string(rng() % 900),
                           static_cast<std::int64_t>(rng() % 5000), rng() % 3 == 0});
  }
  struct expected_row {
    std::int64_t mobile = 0;
    std::int64_t mobile_ms = 0;
    std::set<std::string> users;
    std::set<std::string> mobile_users;
  };
  std::map<std::int64_t, expected_row> expected;
  for (const auto& v : visits) {
    auto& e = expected[v.site];
    e.users.insert(v.user);
    if (v.mobile) {
      ++e.mobile;
      e.mobile_ms += v.ms;
      e.mobile_users.insert(v.user);
    }
  }
  const auto is_mobile = [](const visit& v) { return v.mobile; };
  const auto f = sluice::flow<visit>() | sluice::key_by(&visit::site) |
                 sluice::aggregate(sluice::count_if(is_mobile), sluice::sum_if(is_mobile, &visit::ms),
                                   sluice::exact_distinct_count(&visit::user),
                                   sluice::filtered(is_mobile, sluice::exact_distinct_count(&visit::user)));
  for (const unsigned threads : {1U, 4U}) {
    CAPTURE(threads);
    const auto store = sluice::run_batch(sluice::from_range(visits), f,
                                         sluice::batch_options{.threads = threads, .min_chunk_units = 1});
    REQUIRE(store.size() == expected.size());
    for (const auto& entry : expected) {
      const std::int64_t site = entry.first;  // not a structured binding: clang 14 cannot capture one
      const expected_row& e = entry.second;
      CAPTURE(site);
      const auto row = store.get(site);
      REQUIRE(row.has_value());
      const auto& [mobile, mobile_ms, users, mobile_users] = *row;
      CHECK(mobile == e.mobile);
      CHECK(mobile_ms == e.mobile_ms);
      CHECK(users == static_cast<std::int64_t>(e.users.size()));
      CHECK(mobile_users == static_cast<std::int64_t>(e.mobile_users.size()));
    }
  }
}
