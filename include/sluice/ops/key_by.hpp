// key_by(f...): partitions the stream by key. With one extractor the key is f(x); with several
// it is the tuple (f1(x), f2(x), ...). A std::string key is viewed as a string_view on the hot
// path and copied only when a new key enters state.
//
//   x  --key_by(&Sale::category)-->  (x.category, x)
//
// Performance: the extractors' calls; no copy of the event, no allocation.
#pragma once

#include <concepts>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "sluice/core/key.hpp"
#include "sluice/core/time.hpp"
#include "sluice/ops/keyed.hpp"

namespace sluice {

namespace detail {
template <class F, class V>
using extracted_key_t = borrowed_key_t<std::invoke_result_t<const F&, const V&>>;

template <class V, class... Fs>
struct key_of {
  using type = std::tuple<extracted_key_t<Fs, V>...>;
};
template <class V, class F>
struct key_of<V, F> {
  using type = extracted_key_t<F, V>;
};
}  // namespace detail

template <class Next, class... Fs>
struct key_by_pusher {
  std::tuple<Fs...> extractors;
  Next next;
  template <class V>
  void operator()(millis t, const V& v) {
    using key_type = typename detail::key_of<V, Fs...>::type;
    if constexpr (sizeof...(Fs) == 1) {
      next(t, keyed<key_type, V>{key_type(std::invoke(std::get<0>(extractors), v)), v});
    } else {
      // Push from inside the lambda: an extractor returning a std::string by value is borrowed as a
      // string_view, so its temporary must outlive the push, not just the tuple's construction.
      std::apply([&](const auto&... f) { next(t, keyed<key_type, V>{key_type(std::invoke(f, v)...), v}); }, extractors);
    }
  }
  void finish() { next.finish(); }
};

template <class... Fs>
struct key_by_stage {
  std::tuple<Fs...> extractors;

  template <class E>
  static constexpr bool accepts = !is_keyed_v<E> && (std::invocable<const Fs&, const E&> && ...);
  template <class E>
  using output = keyed<typename detail::key_of<E, Fs...>::type, E>;

  template <class E, class Next>
  auto bind(Next next) const {
    return key_by_pusher<Next, Fs...>{extractors, std::move(next)};
  }
};

template <class... Fs>
requires(sizeof...(Fs) >= 1) key_by_stage<std::decay_t<Fs>...> key_by(Fs&&... extractors) {
  return {{std::forward<Fs>(extractors)...}};
}

}  // namespace sluice
