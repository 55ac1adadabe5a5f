// reduce(f): folds each key's values (or each window's) with a binary function f(a, b) -> a.
// Sugar for aggregate(...) with a monoid whose state is "nothing yet, or the running value".
// f must be associative and commutative (max by some field, merge of two records, ...): batch
// runs reduce chunks in parallel and merge the partial results with f.
//
//   (k,a) (k,b) (k,c)  --reduce(f)-->  { k: f(f(a,b),c) }
//
// The values are stored, so they must own their data: reduce a mapped value type, not an
// event holding string_views into the input.
// Performance: one call of f per event after the first of a key.
#pragma once

#include <concepts>
#include <functional>
#include <optional>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "sluice/ops/aggregate.hpp"

namespace sluice {

template <class F, class V>
struct reduce_monoid {
  F fn;
  struct state {
    bool seen = false;
    V value{};
    auto fields() { return std::tie(seen, value); }
    auto fields() const { return std::tie(seen, value); }
  };
  [[nodiscard]] state identity() const { return {}; }
  void add(state& s, const V& x) const {
    if (s.seen) {
      s.value = std::invoke(fn, std::as_const(s.value), x);
    } else {
      s.value = x;
      s.seen = true;
    }
  }
  void merge(state& s, const state& o) const {
    if (o.seen) {
      add(s, o.value);
    }
  }
  [[nodiscard]] std::optional<V> result(const state& s) const {
    return s.seen ? std::optional<V>(s.value) : std::nullopt;
  }
};

template <class F>
struct reducer {
  F fn;
  template <class T>
  [[nodiscard]] auto bind() const {
    static_assert(std::is_invocable_r_v<T, const F&, const T&, const T&>,
                  "sluice::reduce(f): f must take two values of the flow's type and return one");
    static_assert(!std::is_same_v<T, std::string_view>,
                  "sluice::reduce: a string_view points into the input and cannot be kept; map to std::string first");
    return reduce_monoid<F, T>{fn};
  }
};

/// The terminal stage reduce(f): aggregate(reducer{f}).
template <class F>
aggregate_stage<reducer<std::decay_t<F>>> reduce(F&& fn) {
  return {reducer<std::decay_t<F>>{std::forward<F>(fn)}};
}

}  // namespace sluice
