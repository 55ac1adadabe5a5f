// Keys: how a borrowed key seen on the hot path (a string_view into the input) becomes the
// owned key kept in state, and how the two compare, without allocating on lookup.
#pragma once

#include <cstring>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "sluice/core/hash.hpp"

namespace sluice {

/// The key of a global (un-keyed) aggregate: there is exactly one.
using unit_key = std::monostate;

/// Customisation point: the type stored in state for a key of type K seen in an event.
/// A string_view borrowed from the input is owned as std::string; tuples own element-wise.
template <class K>
struct owned_key {
  using type = K;
};
template <>
struct owned_key<std::string_view> {
  using type = std::string;
};
template <class... Ks>
struct owned_key<std::tuple<Ks...>> {
  using type = std::tuple<typename owned_key<Ks>::type...>;
};
template <class A, class B>
struct owned_key<std::pair<A, B>> {
  using type = std::pair<typename owned_key<A>::type, typename owned_key<B>::type>;
};
template <class K>
using owned_key_t = typename owned_key<K>::type;

/// The key a key extractor's result is borrowed as: a std::string result is viewed, not copied.
template <class R>
struct borrowed_key {
  using type = std::remove_cvref_t<R>;
};
template <class R>
requires std::is_same_v<std::remove_cvref_t<R>, std::string>
struct borrowed_key<R> {
  using type = std::string_view;
};
template <class R>
using borrowed_key_t = typename borrowed_key<R>::type;

/// Turn a borrowed key into the owned key kept in state (one allocation per new key, none per event).
template <class Borrowed>
owned_key_t<Borrowed> to_owned(const Borrowed& b) {
  using owned = owned_key_t<Borrowed>;
  if constexpr (std::is_same_v<owned, Borrowed>) {
    return b;
  } else if constexpr (requires { std::tuple_size<Borrowed>::value; }) {
    return std::apply([](const auto&... parts) { return owned{to_owned(parts)...}; }, b);
  } else {
    return owned(b);
  }
}

namespace detail {
/// Equality of two byte strings of the same length n; short ones (all typical keys) without a
/// library call, by two overlapping word loads.
inline bool same_bytes(const char* a, const char* b, std::size_t n) {
  if (n >= 8 && n <= 16) {
    return load_u64(a) == load_u64(b) && load_u64(a + n - 8) == load_u64(b + n - 8);
  }
  if (n >= 4 && n < 8) {
    return load_u32(a) == load_u32(b) && load_u32(a + n - 4) == load_u32(b + n - 4);
  }
  return n == 0 || std::memcmp(a, b, n) == 0;
}
}  // namespace detail

/// Customisation point: whether an owned key (in state) equals a borrowed key (from an event).
inline bool key_equal(const std::string& owned, std::string_view borrowed) {
  return owned.size() == borrowed.size() && detail::same_bytes(owned.data(), borrowed.data(), owned.size());
}
template <class Owned, class Borrowed>
bool key_equal(const Owned& owned, const Borrowed& borrowed) {
  if constexpr (requires { std::tuple_size<Owned>::value; }) {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return (key_equal(std::get<I>(owned), std::get<I>(borrowed)) && ...);
    }
    (std::make_index_sequence<std::tuple_size_v<Owned>>{});
  } else {
    return owned == borrowed;
  }
}

}  // namespace sluice
