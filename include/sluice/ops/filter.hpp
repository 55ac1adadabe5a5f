// filter(p): keeps the inputs for which p(x) is true.
//
//   x1 x2 x3  --filter(p)-->  x1 x3      (p(x2) == false)
//
// Performance: one inlined predicate call and a branch per event.
#pragma once

#include <concepts>
#include <functional>
#include <type_traits>
#include <utility>

#include "sluice/core/time.hpp"
#include "sluice/ops/keyed.hpp"

namespace sluice {

template <class P, class Next>
struct filter_pusher {
  P pred;
  Next next;
  template <class E>
  void operator()(millis t, const E& e) {
    if (std::invoke(pred, detail::value_of<E>::get(e))) {
      next(t, e);
    }
  }
  void finish() { next.finish(); }
};

template <class P>
struct filter_stage {
  P pred;

  template <class E>
  static constexpr bool accepts = std::predicate<const P&, const detail::value_of_t<E>&>;
  template <class E>
  using output = E;

  template <class E, class Next>
  auto bind(Next next) const {
    return filter_pusher<P, Next>{pred, std::move(next)};
  }
};

template <class P>
filter_stage<std::decay_t<P>> filter(P&& pred) {
  return {std::forward<P>(pred)};
}

}  // namespace sluice
