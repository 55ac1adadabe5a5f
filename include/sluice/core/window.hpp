// Windows as values: the half-open event-time interval [start, end) a result belongs to, and the
// (key, window) pair under which a windowed result is stored.
#pragma once

#include <compare>
#include <cstdint>
#include <tuple>

#include "sluice/core/hash.hpp"
#include "sluice/core/key.hpp"
#include "sluice/core/time.hpp"

namespace sluice {

/// A half-open event-time window [start, end).
struct time_window {
  millis start;
  millis end;
  auto fields() { return std::tie(start, end); }
  auto fields() const { return std::tie(start, end); }
  constexpr auto operator<=>(const time_window&) const = default;
  [[nodiscard]] constexpr bool contains(millis t) const { return start <= t && t < end; }
};
inline std::uint64_t hash_value(const time_window& w) {
  return detail::combine(static_cast<std::uint64_t>(w.start.count()), static_cast<std::uint64_t>(w.end.count()));
}

/// The n-th window of a key under a count window (0, 1, 2, ... in arrival order).
struct count_window_index {
  std::int64_t index = 0;
  constexpr auto operator<=>(const count_window_index&) const = default;
  auto fields() { return std::tie(index); }
  auto fields() const { return std::tie(index); }
};
inline std::uint64_t hash_value(const count_window_index& w) {
  return hash_value(w.index);
}

/// The key of a windowed result: the user's key and the window. Ordered by key, then window.
template <class K, class W = time_window>
struct windowed_key {
  K key;
  W window;
  auto fields() { return std::tie(key, window); }
  auto fields() const { return std::tie(key, window); }

  template <class K2>
  friend bool operator==(const windowed_key& a, const windowed_key<K2, W>& b) {
    return a.key == b.key && a.window == b.window;
  }
  friend auto operator<=>(const windowed_key& a, const windowed_key& b)
      -> std::common_comparison_category_t<std::compare_three_way_result_t<K>, std::compare_three_way_result_t<W>> {
    if (auto c = a.key <=> b.key; c != 0) {
      return c;
    }
    return a.window <=> b.window;
  }
};
template <class K, class W, class K2>
bool key_equal(const windowed_key<K, W>& owned, const windowed_key<K2, W>& borrowed) {
  return owned.window == borrowed.window && key_equal(owned.key, borrowed.key);
}
template <class K, class W>
std::uint64_t hash_value(const windowed_key<K, W>& k) {
  return detail::combine(hash_value(k.key), hash_value(k.window));
}
template <class K, class W>
struct owned_key<windowed_key<K, W>> {
  using type = windowed_key<owned_key_t<K>, W>;
};
template <class K, class W>
windowed_key<owned_key_t<K>, W> to_owned(const windowed_key<K, W>& k) {
  return {to_owned(k.key), k.window};
}

}  // namespace sluice
