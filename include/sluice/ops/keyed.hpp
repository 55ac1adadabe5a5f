// The element that flows after key_by: the key and a reference to the value. Stateless stages
// after key_by (map, filter, flat_map) work on the value and keep the key, like mapValues in
// Kafka Streams.
#pragma once

#include <functional>
#include <type_traits>

namespace sluice {

template <class K, class V>
struct keyed {
  K key;
  const V& value;
};

template <class T>
inline constexpr bool is_keyed_v = false;
template <class K, class V>
inline constexpr bool is_keyed_v<keyed<K, V>> = true;

namespace detail {
/// The value a stage's user function sees: the value of a keyed element, or the element itself.
template <class E>
struct value_of {
  using type = E;
  static const E& get(const E& e) { return e; }
};
template <class K, class V>
struct value_of<keyed<K, V>> {
  using type = V;
  static const V& get(const keyed<K, V>& e) { return e.value; }
};
template <class E>
using value_of_t = typename value_of<E>::type;

/// Push `value` downstream, re-attaching the key of `origin` when the stream is keyed. A new
/// value (a temporary) goes on as one, so the stage that keeps it (collect) can move it.
template <class Next, class Origin, class V>
void push_like(Next& next, millis t, const Origin& origin, V&& value) {
  if constexpr (is_keyed_v<Origin>) {
    next(t, keyed<decltype(origin.key), std::remove_cvref_t<V>>{origin.key, value});
  } else {
    next(t, std::forward<V>(value));
  }
}

/// The element type after a value transform V -> R: keyed<K, R> if the stream is keyed.
template <class E, class R>
struct rewrap {
  using type = R;
};
template <class K, class V, class R>
struct rewrap<keyed<K, V>, R> {
  using type = keyed<K, R>;
};
template <class E, class R>
using rewrap_t = typename rewrap<E, R>::type;
}  // namespace detail

}  // namespace sluice
