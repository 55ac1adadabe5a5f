// flat_map(f): zero or more outputs per input. f(x, emit) calls emit(y) for each output y.
//
//   x1 x2  --flat_map(f)-->  y11 y12 y21
//
// Performance: f is called once per event and emit once per output, both inlined. The output
// type R is given explicitly (flat_map<R>(f)) because emit must be typed before f is called.
#pragma once

#include <concepts>
#include <functional>
#include <type_traits>
#include <utility>

#include "sluice/core/time.hpp"
#include "sluice/ops/keyed.hpp"

namespace sluice {

template <class R>
struct emit_fn_probe {
  void operator()(const R& /*value*/) const {}
};

template <class R, class F, class Next>
struct flat_map_pusher {
  F fn;
  Next next;
  template <class E>
  void operator()(millis t, const E& e) {
    std::invoke(fn, detail::value_of<E>::get(e), emitter<E>{this, t, e});
  }

 private:
  // emit(value): a temporary goes on as one (collect moves it rather than copy it).
  template <class E>
  struct emitter {
    flat_map_pusher* self;
    millis t;
    const E& origin;
    void operator()(const R& out) const { detail::push_like(self->next, t, origin, out); }
    void operator()(R&& out) const { detail::push_like(self->next, t, origin, std::move(out)); }
  };
  void finish() { next.finish(); }
};

template <class R, class F>
struct flat_map_stage {
  F fn;

  template <class E>
  static constexpr bool accepts = std::invocable<const F&, const detail::value_of_t<E>&, emit_fn_probe<R>>;
  template <class E>
  using output = detail::rewrap_t<E, R>;

  template <class E, class Next>
  auto bind(Next next) const {
    return flat_map_pusher<R, F, Next>{fn, std::move(next)};
  }
};

/// flat_map<R>(f) where f(const In&, auto emit) calls emit(R) any number of times.
template <class R, class F>
flat_map_stage<R, std::decay_t<F>> flat_map(F&& fn) {
  return {std::forward<F>(fn)};
}

}  // namespace sluice
