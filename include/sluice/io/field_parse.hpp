// Text fields to typed values, exactly: integers, fixed-point decimals as scaled integers (12.34
// with scale 2 is 1234, never a float), floats, strings, booleans, optionals. A parser returns
// nullptr on success or a static reason; the caller adds the field's name and position.
// Customisation point: specialise sluice::field_parser<T> for a type of your own.
#pragma once

#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "sluice/core/time.hpp"

namespace sluice {

/// Reasons a field can be rejected (static strings: rejecting a field allocates nothing).
namespace field_error {
inline constexpr const char* empty = "empty field";
inline constexpr const char* not_integer = "not an integer";
inline constexpr const char* out_of_range = "number out of range";
inline constexpr const char* not_decimal = "not a decimal number";
inline constexpr const char* too_many_decimals = "more decimal places than the column's scale";
inline constexpr const char* not_number = "not a number";
inline constexpr const char* not_boolean = "not a boolean (true/false/1/0)";
}  // namespace field_error

namespace detail {
/// Parse an optionally signed decimal integer that must fill `s` exactly.
template <class I>
const char* parse_integer(std::string_view s, I& out) {
  if (s.empty()) {
    return field_error::empty;
  }
  const char* p = s.data();
  const char* end = p + s.size();
  bool negative = false;
  if (*p == '-' || *p == '+') {
    negative = *p == '-';
    ++p;
    if (p == end) {
      return field_error::not_integer;
    }
    if constexpr (std::is_unsigned_v<I>) {
      if (negative) {
        return field_error::out_of_range;
      }
    }
  }
  // Accumulate negatively so that the most negative value parses without overflow.
  using wide = std::conditional_t<std::is_unsigned_v<I>, std::uint64_t, std::int64_t>;
  wide acc = 0;
  for (; p != end; ++p) {
    const unsigned digit = static_cast<unsigned char>(*p) - unsigned{'0'};
    if (digit > 9) {
      return field_error::not_integer;
    }
    if constexpr (std::is_unsigned_v<I>) {
      if (__builtin_mul_overflow(acc, wide{10}, &acc) || __builtin_add_overflow(acc, wide(digit), &acc)) {
        return field_error::out_of_range;
      }
    } else {
      if (__builtin_mul_overflow(acc, wide{10}, &acc) || __builtin_sub_overflow(acc, wide(digit), &acc)) {
        return field_error::out_of_range;
      }
    }
  }
  if constexpr (std::is_signed_v<I>) {
    if (!negative) {
      if (acc == std::numeric_limits<wide>::min()) {
        return field_error::out_of_range;
      }
      acc = -acc;
    }
  }
  if (acc < static_cast<wide>(std::numeric_limits<I>::min()) || acc > static_cast<wide>(std::numeric_limits<I>::max())) {
    return field_error::out_of_range;
  }
  out = static_cast<I>(acc);
  return nullptr;
}
}  // namespace detail

/// The default parser for a field of type T. Specialise it for your own types:
///   template <> struct sluice::field_parser<Money> {
///     static const char* parse(std::string_view text, Money& out);  // nullptr or a reason
///   };
template <class T>
struct field_parser;

template <class T>
  requires std::is_integral_v<T> && (!std::is_same_v<T, bool>)
struct field_parser<T> {
  static const char* parse(std::string_view s, T& out) { return detail::parse_integer(s, out); }
};

template <>
struct field_parser<millis> {
  static const char* parse(std::string_view s, millis& out) {
    std::int64_t v = 0;
    if (const char* err = detail::parse_integer(s, v)) {
      return err;
    }
    out = millis{v};
    return nullptr;
  }
};

template <class T>
  requires std::is_floating_point_v<T>
struct field_parser<T> {
  static const char* parse(std::string_view s, T& out) {
    if (s.empty()) {
      return field_error::empty;
    }
    const char* b = s.data();
    if (*b == '+') {
      ++b;  // from_chars rejects a leading '+', CSV writers emit one
    }
    auto [end, ec] = std::from_chars(b, s.data() + s.size(), out);
    if (ec == std::errc::result_out_of_range) {
      return field_error::out_of_range;
    }
    return (ec != std::errc{} || end != s.data() + s.size()) ? field_error::not_number : nullptr;
  }
};

template <>
struct field_parser<bool> {
  static const char* parse(std::string_view s, bool& out) {
    if (s == "true" || s == "1" || s == "TRUE" || s == "True") {
      out = true;
    } else if (s == "false" || s == "0" || s == "FALSE" || s == "False") {
      out = false;
    } else {
      return s.empty() ? field_error::empty : field_error::not_boolean;
    }
    return nullptr;
  }
};

/// A string_view field points into the input (the mapped file, or the record's scratch buffer
/// when it had escaped quotes): valid while the event is being processed, never after.
template <>
struct field_parser<std::string_view> {
  static const char* parse(std::string_view s, std::string_view& out) {
    out = s;
    return nullptr;
  }
};

/// A std::string field owns a copy (an allocation for long strings): prefer string_view.
template <>
struct field_parser<std::string> {
  static const char* parse(std::string_view s, std::string& out) {
    out.assign(s);
    return nullptr;
  }
};

/// An empty field is nullopt; anything else must parse as T.
template <class T>
struct field_parser<std::optional<T>> {
  static const char* parse(std::string_view s, std::optional<T>& out) {
    if (s.empty()) {
      out.reset();
      return nullptr;
    }
    T v{};
    if (const char* err = field_parser<T>::parse(s, v)) {
      return err;
    }
    out = std::move(v);
    return nullptr;
  }
};

/// A decimal read exactly as an integer scaled by 10^Scale: with Scale 2, "12.3" is 1230,
/// "-0.05" is -5, "7" is 700, and "1.234" is rejected rather than rounded.
template <unsigned Scale>
struct fixed_point {
  static_assert(Scale <= 18, "sluice::fixed_point: at most 18 decimal places fit in int64");

  template <class I>
    requires std::is_integral_v<I> && std::is_signed_v<I>
  static const char* parse(std::string_view s, I& out) {
    if (s.empty()) {
      return field_error::empty;
    }
    const std::size_t dot = s.find('.');
    std::string_view whole = s.substr(0, dot);
    std::string_view frac = dot == std::string_view::npos ? std::string_view{} : s.substr(dot + 1);
    const bool negative = !whole.empty() && whole.front() == '-';
    if (!whole.empty() && (whole.front() == '-' || whole.front() == '+')) {
      whole.remove_prefix(1);
    }
    if ((whole.empty() && frac.empty()) || (dot != std::string_view::npos && frac.empty() && whole.empty())) {
      return field_error::not_decimal;
    }
    if (frac.size() > Scale) {
      return field_error::too_many_decimals;
    }
    std::int64_t value = 0;
    for (const char c : whole) {
      const unsigned digit = static_cast<unsigned char>(c) - unsigned{'0'};
      if (digit > 9) {
        return field_error::not_decimal;
      }
      if (__builtin_mul_overflow(value, std::int64_t{10}, &value) ||
          __builtin_add_overflow(value, std::int64_t(digit), &value)) {
        return field_error::out_of_range;
      }
    }
    for (std::size_t i = 0; i < Scale; ++i) {
      unsigned digit = 0;
      if (i < frac.size()) {
        digit = static_cast<unsigned char>(frac[i]) - unsigned{'0'};
        if (digit > 9) {
          return field_error::not_decimal;
        }
      }
      if (__builtin_mul_overflow(value, std::int64_t{10}, &value) ||
          __builtin_add_overflow(value, std::int64_t(digit), &value)) {
        return field_error::out_of_range;
      }
    }
    if (negative) {
      value = -value;
    }
    if (value < std::numeric_limits<I>::min() || value > std::numeric_limits<I>::max()) {
      return field_error::out_of_range;
    }
    out = static_cast<I>(value);
    return nullptr;
  }
};

}  // namespace sluice
