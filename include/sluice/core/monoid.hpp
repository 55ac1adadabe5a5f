// Monoids: the aggregation vocabulary. An aggregate's state is a commutative monoid, which is
// what makes per-thread partials, per-epoch stores and the lambda merge exact.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/core/key.hpp"

namespace sluice {

/// A commutative monoid over inputs of type T:
///   state       the partial aggregate
///   identity()  the empty aggregate
///   add(s, x)   fold one input into s
///   merge(s, o) fold another partial into s; associative and commutative, identity() neutral
///   result(s)   the answer a reader sees
template <class M, class T>
concept monoid_for = std::copy_constructible<M> &&
    requires(const M& m, typename M::state& s, const typename M::state& o, const T& x) {
  { m.identity() } -> std::convertible_to<typename M::state>;
  m.add(s, x);
  m.merge(s, o);
  m.result(o);
};

/// A monoid that is also a group over T: subtract(s, x) undoes add(s, x), so a retracted input
/// (a changelog's "retract old row") is taken out of the state (count, sum, mean).
template <class M, class T>
concept group_for = monoid_for<M, T> && requires(const M& m, typename M::state& s, const T& x) {
  m.subtract(s, x);
};

/// An aggregate factory: something that, given the input type, yields a monoid (sum(f) learns
/// its state type from f's result). A ready monoid is its own factory.
template <class A, class T>
concept aggregator_for = monoid_for<A, T> || requires(const A& a) {
  { a.template bind<T>() } -> monoid_for<T>;
};

/// The monoid an aggregator becomes for inputs of type T.
template <class T, class A>
requires aggregator_for<A, T>
auto bind_monoid(const A& a) {
  if constexpr (monoid_for<A, T>) {
    return a;
  } else {
    return a.template bind<T>();
  }
}

template <class T, class A>
using monoid_for_t = decltype(bind_monoid<T>(std::declval<const A&>()));

// ---------------------------------------------------------------------------------------------
// count: how many inputs.  Performance: one increment per event.
struct count {
  using state = std::int64_t;
  [[nodiscard]] static state identity() { return 0; }
  template <class T>
  static void add(state& s, const T& /*input*/) {
    ++s;
  }
  static void merge(state& s, const state& o) { s += o; }
  [[nodiscard]] static state result(const state& s) { return s; }
  template <class T>
  static void subtract(state& s, const T& /*input*/) {
    --s;
  }
};

namespace detail {
template <class F, class T>
using projected_t = std::remove_cvref_t<std::invoke_result_t<const F&, const T&>>;

template <class F, class T>
concept projection_for = std::invocable<const F&, const T&>;
}  // namespace detail

// ---------------------------------------------------------------------------------------------
// sum(f): the sum of f(x). Use integers (cents, not floating euros) for exact answers:
// a floating sum changes in its last bits with summation order.
template <class F, class R>
struct sum_monoid {
  F project;
  using state = R;
  [[nodiscard]] state identity() const { return R{}; }
  template <class T>
  void add(state& s, const T& x) const {
    s += std::invoke(project, x);
  }
  void merge(state& s, const state& o) const { s += o; }
  [[nodiscard]] state result(const state& s) const { return s; }
  template <class T>
  void subtract(state& s, const T& x) const {
    s -= std::invoke(project, x);
  }
};

template <class F>
struct sum {
  F project;
  constexpr explicit sum(F f) : project(std::move(f)) {}
  template <class T>
  [[nodiscard]] auto bind() const {
    static_assert(detail::projection_for<F, T>, "sluice::sum(f): f must be callable with the event type");
    return sum_monoid<F, detail::projected_t<F, T>>{project};
  }
};

// ---------------------------------------------------------------------------------------------
// min(f) / max(f): the extreme f(x); empty (std::nullopt) until the first input.
// A value borrowed from the input (a string_view into a parsed file) is kept owned, as a key
// is: the state outlives the input it was read from.
template <class F, class R, class Better>
struct extreme_monoid {
  F project;
  using value_type = owned_key_t<R>;
  struct state {
    bool seen = false;
    value_type value{};
    auto fields() { return std::tie(seen, value); }
    auto fields() const { return std::tie(seen, value); }
  };
  [[nodiscard]] state identity() const { return {}; }
  template <class V>
  void offer(state& s, const V& v) const {
    if (!s.seen || Better{}(v, s.value)) {
      s.value = to_owned(v);
      s.seen = true;
    }
  }
  template <class T>
  void add(state& s, const T& x) const {
    offer(s, std::invoke(project, x));
  }
  void merge(state& s, const state& o) const {
    if (o.seen) {
      offer(s, o.value);
    }
  }
  [[nodiscard]] std::optional<value_type> result(const state& s) const {
    return s.seen ? std::optional<value_type>(s.value) : std::nullopt;
  }
};

template <class F>
struct min {
  F project;
  constexpr explicit min(F f) : project(std::move(f)) {}
  template <class T>
  [[nodiscard]] auto bind() const {
    static_assert(detail::projection_for<F, T>, "sluice::min(f): f must be callable with the event type");
    return extreme_monoid<F, detail::projected_t<F, T>, std::less<>>{project};
  }
};

template <class F>
struct max {
  F project;
  constexpr explicit max(F f) : project(std::move(f)) {}
  template <class T>
  [[nodiscard]] auto bind() const {
    static_assert(detail::projection_for<F, T>, "sluice::max(f): f must be callable with the event type");
    return extreme_monoid<F, detail::projected_t<F, T>, std::greater<>>{project};
  }
};

// ---------------------------------------------------------------------------------------------
// all_max(f): every input whose f(x) is the largest, ties kept, in no particular order (the
// "hottest" rows of a window: each auction whose bid count is the window's maximum). The inputs
// are kept (copied): use it where few inputs tie, or on small rows.
template <class F, class T, class R>
struct all_max_monoid {
  F project;
  struct state {
    std::optional<R> best;
    std::vector<T> items;  // the inputs at `best`
    auto fields() { return std::tie(best, items); }
    auto fields() const { return std::tie(best, items); }
  };
  [[nodiscard]] state identity() const { return {}; }
  void add(state& s, const T& x) const {
    R r = std::invoke(project, x);
    if (!s.best || *s.best < r) {
      s.best = std::move(r);
      s.items.assign(1, x);
    } else if (!(r < *s.best)) {
      s.items.push_back(x);
    }
  }
  void merge(state& s, const state& o) const {
    if (!o.best || (s.best && *o.best < *s.best)) {
      return;
    }
    if (!s.best || *s.best < *o.best) {
      s = o;
    } else {
      s.items.insert(s.items.end(), o.items.begin(), o.items.end());
    }
  }
  [[nodiscard]] std::vector<T> result(const state& s) const { return s.items; }
};

template <class F>
struct all_max {
  F project;
  constexpr explicit all_max(F f) : project(std::move(f)) {}
  template <class T>
  [[nodiscard]] auto bind() const {
    static_assert(detail::projection_for<F, T>, "sluice::all_max(f): f must be callable with the event type");
    return all_max_monoid<F, T, detail::projected_t<F, T>>{project};
  }
};

// ---------------------------------------------------------------------------------------------
// mean(f): sum and count kept exactly; the division happens only when the answer is read.
template <class F, class R>
struct mean_monoid {
  F project;
  struct state {
    R sum{};
    std::int64_t n = 0;
    auto fields() { return std::tie(sum, n); }
    auto fields() const { return std::tie(sum, n); }
  };
  [[nodiscard]] state identity() const { return {}; }
  template <class T>
  void add(state& s, const T& x) const {
    s.sum += std::invoke(project, x);
    ++s.n;
  }
  void merge(state& s, const state& o) const {
    s.sum += o.sum;
    s.n += o.n;
  }
  template <class T>
  void subtract(state& s, const T& x) const {
    s.sum -= std::invoke(project, x);
    --s.n;
  }
  [[nodiscard]] std::optional<double> result(const state& s) const {
    if (s.n == 0) {
      return std::nullopt;
    }
    return static_cast<double>(s.sum) / static_cast<double>(s.n);
  }
};

template <class F>
struct mean {
  F project;
  constexpr explicit mean(F f) : project(std::move(f)) {}
  template <class T>
  [[nodiscard]] auto bind() const {
    static_assert(detail::projection_for<F, T>, "sluice::mean(f): f must be callable with the event type");
    return mean_monoid<F, detail::projected_t<F, T>>{project};
  }
};

// ---------------------------------------------------------------------------------------------
// Several aggregates over the same input at once: aggregate(count{}, sum{f}) keeps a tuple state
// and answers a tuple.
template <class... Ms>
struct product_monoid {
  std::tuple<Ms...> parts;
  using state = std::tuple<typename Ms::state...>;

  [[nodiscard]] state identity() const {
    return std::apply([](const auto&... m) { return state{m.identity()...}; }, parts);
  }
  template <class T>
  void add(state& s, const T& x) const {
    each([&](const auto& m, auto& si, const auto& /*unused*/) { m.add(si, x); }, s, s);
  }
  void merge(state& s, const state& o) const {
    each([](const auto& m, auto& si, const auto& oi) { m.merge(si, oi); }, s, o);
  }
  template <class T>
  requires(group_for<Ms, T>&&...) void subtract(state& s, const T& x) const {
    each([&](const auto& m, auto& si, const auto& /*unused*/) { m.subtract(si, x); }, s, s);
  }
  [[nodiscard]] auto result(const state& s) const {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return std::make_tuple(std::get<I>(parts).result(std::get<I>(s))...);
    }
    (std::index_sequence_for<Ms...>{});
  }

 private:
  template <class Fn>
  void each(Fn&& fn, state& s, const state& o) const {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (fn(std::get<I>(parts), std::get<I>(s), std::get<I>(o)), ...);
    }
    (std::index_sequence_for<Ms...>{});
  }
};

template <class... As>
struct product_aggregator {
  std::tuple<As...> parts;
  template <class T>
  [[nodiscard]] auto bind() const {
    return std::apply([](const auto&... a) { return product_monoid<monoid_for_t<T, As>...>{{bind_monoid<T>(a)...}}; },
                      parts);
  }
};

}  // namespace sluice
