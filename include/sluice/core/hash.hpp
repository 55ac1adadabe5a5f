// Hashing for keys: one customisation point, sluice::hash_value, used by every keyed table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "sluice/core/time.hpp"

namespace sluice {

namespace detail {
constexpr std::uint64_t mix64(std::uint64_t x) {
  // splitmix64 finaliser: cheap, and every input bit reaches every output bit.
  x ^= x >> 30U;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27U;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31U;
  return x;
}

/// 128-bit multiply, folded: the cheapest way to make every input bit reach every output bit.
__extension__ using uint128 = unsigned __int128;  // GCC and Clang; __extension__ keeps -Wpedantic quiet
constexpr std::uint64_t fold_mul(std::uint64_t a, std::uint64_t b) {
  const uint128 r = static_cast<uint128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64U);
}
inline constexpr std::uint64_t hash_k0 = 0xa0761d6478bd642fULL;
inline constexpr std::uint64_t hash_k1 = 0xe7037ed1a0b428dbULL;

inline std::uint64_t load_u64(const char* p) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline std::uint32_t load_u32(const char* p) {
  std::uint32_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline std::uint64_t hash_bytes(const char* p, std::size_t n) {
  // Keys are mostly short (regions, categories, ids): up to 16 bytes take two possibly
  // overlapping loads and no loop or variable-length copy.
  constexpr std::uint64_t k0 = hash_k0;
  constexpr std::uint64_t k1 = hash_k1;
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  if (n <= 16) {
    if (n >= 8) {
      a = load_u64(p);
      b = load_u64(p + n - 8);
    } else if (n >= 4) {
      a = load_u32(p);
      b = load_u32(p + n - 4);
    } else if (n > 0) {
      a = (std::uint64_t{static_cast<unsigned char>(p[0])} << 16U) |
          (std::uint64_t{static_cast<unsigned char>(p[n / 2])} << 8U) | static_cast<unsigned char>(p[n - 1]);
    }
  } else {
    std::uint64_t h = k0 ^ n;
    while (n > 16) {
      h = fold_mul(load_u64(p) ^ k1, load_u64(p + 8) ^ h);
      p += 16;
      n -= 16;
    }
    a = load_u64(p + n - 16) ^ h;
    b = load_u64(p + n - 8);
  }
  return fold_mul(a ^ k1, b ^ k0 ^ (n * k1));
}

/// Hash of a pair of hashes (or raw integers): one multiply, order-sensitive.
constexpr std::uint64_t combine(std::uint64_t a, std::uint64_t b) {
  return fold_mul(a ^ hash_k0, b ^ hash_k1);
}
}  // namespace detail

template <class T>
requires std::is_integral_v<T> || std::is_enum_v<T>
constexpr std::uint64_t hash_value(T v) {
  return detail::fold_mul(static_cast<std::uint64_t>(v) ^ detail::hash_k0, detail::hash_k1);
}
constexpr std::uint64_t hash_value(millis t) {
  return hash_value(t.count());
}
inline std::uint64_t hash_value(std::string_view s) {
  return detail::hash_bytes(s.data(), s.size());
}
inline std::uint64_t hash_value(const std::string& s) {
  return detail::hash_bytes(s.data(), s.size());
}
constexpr std::uint64_t hash_value(std::monostate /*unit*/) {
  return 0;
}

template <class... Ts>
std::uint64_t hash_value(const std::tuple<Ts...>& t);
template <class A, class B>
std::uint64_t hash_value(const std::pair<A, B>& p);

template <class... Ts>
std::uint64_t hash_value(const std::tuple<Ts...>& t) {
  return std::apply(
      [](const auto&... parts) {
        std::uint64_t h = 0;
        ((h = detail::combine(h, hash_value(parts))), ...);
        return h;
      },
      t);
}
template <class A, class B>
std::uint64_t hash_value(const std::pair<A, B>& p) {
  return detail::combine(hash_value(p.first), hash_value(p.second));
}

namespace detail {
/// sluice's hash for std::unordered_map/set, transparent: a table of owned keys (std::string)
/// is probed with borrowed ones (std::string_view) without building the owned key.
struct transparent_hash {
  using is_transparent = void;
  template <class K>
  std::size_t operator()(const K& k) const {
    return static_cast<std::size_t>(hash_value(k));
  }
};
}  // namespace detail

/// Anything sluice can hash (found by overload resolution or ADL on the user's own key type).
template <class T>
concept hashable_key = requires(const T& v) {
  { hash_value(v) } -> std::convertible_to<std::uint64_t>;
};

}  // namespace sluice
