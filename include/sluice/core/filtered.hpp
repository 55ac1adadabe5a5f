// Reporting-query aggregates: an exact distinct count, and aggregates over the events that pass
// a predicate (SQL's COUNT(*) FILTER (WHERE ...), SUM(x) FILTER (...), COUNT(DISTINCT x) FILTER).
//
//   aggregate(count{}, count_if(is_mobile), sum_if(is_mobile, &bid::price),
//             exact_distinct_count(&bid::bidder), filtered(is_mobile, exact_distinct_count(&bid::bidder)))
//
// exact_distinct_count keeps every distinct value (a set per key and window: memory grows with
// the distinct values; distinct_count is the 4 KiB HyperLogLog estimate). Sets merge by union, so
// it is a commutative monoid like any other and is exact on any number of threads and workers.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <unordered_set>
#include <utility>

#include "sluice/core/hash.hpp"
#include "sluice/core/key.hpp"
#include "sluice/core/monoid.hpp"

namespace sluice {

/// The set of distinct f(x), read as its size.
template <class F, class V>
struct exact_distinct_monoid {
  F project;
  using state = std::unordered_set<V, detail::transparent_hash, std::equal_to<>>;
  [[nodiscard]] state identity() const { return {}; }
  template <class T>
  void add(state& s, const T& x) const {
    decltype(auto) v = std::invoke(project, x);
    if (s.find(v) == s.end()) {  // a borrowed value (a string_view) is copied only when new
      s.insert(to_owned(v));
    }
  }
  void merge(state& s, const state& o) const { s.insert(o.begin(), o.end()); }
  [[nodiscard]] std::int64_t result(const state& s) const { return static_cast<std::int64_t>(s.size()); }
};

/// exact_distinct_count(f): the number of distinct f(x), exactly. f(x) must be hashable with
/// sluice::hash_value and equality-comparable.
template <class F>
struct exact_distinct_count {
  F project;
  constexpr explicit exact_distinct_count(F f) : project(std::move(f)) {}
  template <class T>
  [[nodiscard]] auto bind() const {
    static_assert(detail::projection_for<F, T>,
                  "sluice::exact_distinct_count(f): f must be callable with the event type");
    using V = owned_key_t<detail::projected_t<F, T>>;
    static_assert(hashable_key<V> && std::equality_comparable<V>,
                  "sluice::exact_distinct_count(f): f(x) must be hashable with sluice::hash_value and comparable");
    return exact_distinct_monoid<F, V>{project};
  }
};

/// Any monoid M over the events for which pred(x) holds; the others leave its state untouched.
template <class P, class M>
struct filtered_monoid {
  P pred;
  M inner;
  using state = typename M::state;
  [[nodiscard]] state identity() const { return inner.identity(); }
  template <class T>
  void add(state& s, const T& x) const {
    if (std::invoke(pred, x)) {
      inner.add(s, x);
    }
  }
  void merge(state& s, const state& o) const { inner.merge(s, o); }
  [[nodiscard]] auto result(const state& s) const { return inner.result(s); }
  template <class T>
  requires group_for<M, T>
  void subtract(state& s, const T& x) const {
    if (std::invoke(pred, x)) {
      inner.subtract(s, x);
    }
  }
};

/// filtered(pred, aggregator): the aggregator over the events that pass pred.
template <class P, class A>
struct filtered {
  P pred;
  A aggregator;
  constexpr filtered(P p, A a) : pred(std::move(p)), aggregator(std::move(a)) {}
  template <class T>
  [[nodiscard]] auto bind() const {
    static_assert(std::predicate<const P&, const T&>, "sluice::filtered(pred, m): pred must take the event type");
    static_assert(aggregator_for<A, T>, "sluice::filtered(pred, m): m is not a monoid over the event type");
    using M = monoid_for_t<T, A>;
    return filtered_monoid<P, M>{pred, bind_monoid<T>(aggregator)};
  }
};

/// count_if(pred): how many events pass pred.
template <class P>
filtered<P, count> count_if(P pred) {
  return {std::move(pred), count{}};
}

/// sum_if(pred, f): the sum of f(x) over the events that pass pred.
template <class P, class F>
filtered<P, sum<F>> sum_if(P pred, F f) {
  return {std::move(pred), sum<F>(std::move(f))};
}

}  // namespace sluice
