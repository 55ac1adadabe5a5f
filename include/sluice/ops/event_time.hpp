// event_time(f): stamps each event with its event time f(x) (millis or integer milliseconds).
// Windows need it: a flow without it has no event time to window by.
//
//   x  --event_time(&Sale::ts)-->  x @ x.ts
//
// Performance: one field read per event.
#pragma once

#include <concepts>
#include <functional>
#include <type_traits>
#include <utility>

#include "sluice/core/time.hpp"
#include "sluice/ops/keyed.hpp"

namespace sluice {

namespace detail {
template <class R>
constexpr millis as_event_time(const R& r) {
  if constexpr (std::is_same_v<R, millis>) {
    return r;
  } else {
    static_assert(std::is_integral_v<R>, "sluice::event_time(f): f must return sluice::millis or integer milliseconds");
    return millis{static_cast<std::int64_t>(r)};
  }
}
}  // namespace detail

/// event_time(source_time): an event's time is the one its source gives it (a Kafka message's
/// timestamp, as Kafka Streams' default timestamp extractor takes), not a field of it. Sources
/// that give none (files, sockets) give 0.
struct source_time_t {
  [[nodiscard]] static constexpr const char* name() { return "source_time"; }  // for describe(flow)
};
inline constexpr source_time_t source_time{};

template <class F, class Next>
struct event_time_pusher {
  F fn;
  Next next;
  template <class E>
  void operator()(millis source, const E& e) {
    if constexpr (std::is_same_v<F, source_time_t>) {
      next(source, e);
    } else {
      next(detail::as_event_time(std::invoke(fn, detail::value_of<E>::get(e))), e);
    }
  }
  void finish() { next.finish(); }
};

template <class F>
struct event_time_stage {
  F fn;
  static constexpr bool assigns_event_time = true;

  template <class E>
  static constexpr bool accepts =
      std::is_same_v<F, source_time_t> || std::invocable<const F&, const detail::value_of_t<E>&>;
  template <class E>
  using output = E;

  template <class E, class Next>
  auto bind(Next next) const {
    return event_time_pusher<F, Next>{fn, std::move(next)};
  }
};

template <class F>
event_time_stage<std::decay_t<F>> event_time(F&& fn) {
  return {std::forward<F>(fn)};
}

}  // namespace sluice
