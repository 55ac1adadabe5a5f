// map(f): one output per input, f(x).
//
//   x1 x2 x3  --map(f)-->  f(x1) f(x2) f(x3)
//
// Performance: one inlined call of f per event; nothing allocated, nothing virtual.
#pragma once

#include <concepts>
#include <functional>
#include <type_traits>
#include <utility>

#include "sluice/core/time.hpp"
#include "sluice/ops/keyed.hpp"

namespace sluice {

template <class F, class Next>
struct map_pusher {
  F fn;
  Next next;
  template <class E>
  void operator()(millis t, const E& e) {
    detail::push_like(next, t, e, std::invoke(fn, detail::value_of<E>::get(e)));
  }
  void finish() { next.finish(); }
};

template <class F>
struct map_stage {
  F fn;

  template <class E>
  static constexpr bool accepts = std::invocable<const F&, const detail::value_of_t<E>&>;
  template <class E>
  using output = detail::rewrap_t<E, std::remove_cvref_t<std::invoke_result_t<const F&, const detail::value_of_t<E>&>>>;

  template <class E, class Next>
  auto bind(Next next) const {
    return map_pusher<F, Next>{fn, std::move(next)};
  }
};

template <class F>
map_stage<std::decay_t<F>> map(F&& fn) {
  return {std::forward<F>(fn)};
}

}  // namespace sluice
