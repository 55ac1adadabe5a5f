// first_by(f) / last_by(f): dedupe as a monoid. Per key (and window), the event with the smallest
// (largest) f(x), usually its event time: keep the first or the last event of each key, as Flink
// SQL's ROW_NUMBER() OVER (PARTITION BY key ORDER BY time) = 1.
//
//   flow<bid>() | key_by(&bid::bidder) | aggregate(first_by(&bid::ts))  ->  bidder: first bid
//
// Ties under f go to the smaller (first_by) or larger (last_by) event by its own ordering, so the
// event kept never depends on arrival or merge order: batch, stream on any number of workers and
// Lambda views agree. That is why the event type must be std::totally_ordered. The event is
// kept by value: map one with string_view members to one that owns its strings first.
//
// Performance: one projection and one comparison per event; a copy only when it wins.
#pragma once

#include <concepts>
#include <functional>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "sluice/core/key.hpp"
#include "sluice/core/monoid.hpp"

namespace sluice {

template <class F, class T, class R, class Better>
struct pick_monoid {
  F project;
  struct state {
    bool seen = false;
    R rank{};
    T event{};
    auto fields() { return std::tie(seen, rank, event); }
    auto fields() const { return std::tie(seen, rank, event); }
  };
  [[nodiscard]] state identity() const { return {}; }
  void add(state& s, const T& x) const {
    R r = to_owned(std::invoke(project, x));
    if (!s.seen || wins(r, x, s.rank, s.event)) {
      s = state{true, std::move(r), x};
    }
  }
  void merge(state& s, const state& o) const {
    if (o.seen && (!s.seen || wins(o.rank, o.event, s.rank, s.event))) {
      s = o;
    }
  }
  [[nodiscard]] std::optional<T> result(const state& s) const {
    return s.seen ? std::optional<T>(s.event) : std::nullopt;
  }

 private:
  static bool wins(const R& ra, const T& a, const R& rb, const T& b) {
    if (Better{}(ra, rb)) {
      return true;
    }
    if (Better{}(rb, ra)) {
      return false;
    }
    return Better{}(a, b);
  }
};

namespace detail {
template <class F, class Better>
struct pick {
  F project;
  template <class T>
  [[nodiscard]] auto bind() const {
    static_assert(projection_for<F, T>, "sluice::first_by(f) / last_by(f): f must be callable with the event type");
    static_assert(std::totally_ordered<T>,
                  "sluice::first_by(f) / last_by(f): the event type must be totally ordered (ties under f go to "
                  "the smaller or larger event, so the one kept never depends on arrival order)");
    using R = owned_key_t<projected_t<F, T>>;
    static_assert(std::totally_ordered<R>, "sluice::first_by(f) / last_by(f): f(x) must be totally ordered");
    return pick_monoid<F, T, R, Better>{project};
  }
};
}  // namespace detail

/// The event with the smallest f(x) per key: keep the first event by time (dedupe).
template <class F>
detail::pick<F, std::less<>> first_by(F f) {
  return {std::move(f)};
}

/// The event with the largest f(x) per key: keep the last event by time (the latest version).
template <class F>
detail::pick<F, std::greater<>> last_by(F f) {
  return {std::move(f)};
}

}  // namespace sluice
