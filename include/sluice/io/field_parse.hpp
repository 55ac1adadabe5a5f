// Text fields to typed values, exactly: integers, fixed-point decimals as scaled integers (12.34
// with scale 2 is 1234, never a float), floats, strings, booleans, optionals. A parser returns
// nullptr on success or a static reason; the caller adds the field's name and position.
// Customisation point: specialise sluice::field_parser<T> for a type of your own.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstring>
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
/// Eight ASCII digits at p (any alignment) as their value, or false if any byte is not a digit.
/// SWAR: the digits are checked and combined pairwise in one 64-bit register (3 multiplies).
inline bool parse_eight_digits(const char* p, std::uint64_t& out) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, 8);  // little-endian: the first digit is the lowest byte
  const std::uint64_t high = 0xF0F0F0F0F0F0F0F0ULL;
  if ((v & high) != 0x3030303030303030ULL || ((v + 0x0606060606060606ULL) & high) != 0x3030303030303030ULL) {
    return false;
  }
  v -= 0x3030303030303030ULL;
  v = (v * 10) + (v >> 8U);  // each 16-bit lane's low byte: a two-digit number
  v = (((v & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32U))) +
       (((v >> 16U) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32U)))) >>
      32U;
  out = v;
  return true;
}

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
  // Up to 18 digits cannot overflow 64 bits: take them eight at a time, without checks.
  if (end - p <= 18) {
    std::uint64_t acc = 0;
    while (end - p >= 8) {
      std::uint64_t eight = 0;
      if (!parse_eight_digits(p, eight)) {
        return field_error::not_integer;
      }
      acc = acc * 100000000ULL + eight;
      p += 8;
    }
    for (; p != end; ++p) {
      const unsigned digit = static_cast<unsigned char>(*p) - unsigned{'0'};
      if (digit > 9) {
        return field_error::not_integer;
      }
      acc = acc * 10 + digit;
    }
    if constexpr (std::is_unsigned_v<I>) {
      if (acc > std::numeric_limits<I>::max()) {
        return field_error::out_of_range;
      }
      out = static_cast<I>(acc);
    } else {
      const std::uint64_t limit = static_cast<std::uint64_t>(std::numeric_limits<I>::max()) + (negative ? 1U : 0U);
      if (acc > limit) {
        return field_error::out_of_range;
      }
      out = negative ? static_cast<I>(0 - acc) : static_cast<I>(acc);
    }
    return nullptr;
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
  if (acc < static_cast<wide>(std::numeric_limits<I>::min()) ||
      acc > static_cast<wide>(std::numeric_limits<I>::max())) {
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
requires std::is_integral_v<T> &&(!std::is_same_v<T, bool>)struct field_parser<T> {
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
    if (*b == '+' && s.size() > 1 && s[1] != '-') {
      ++b;  // from_chars rejects a leading '+', CSV writers emit one (but "+-1" is not a number)
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
    const char* p = s.data();
    const char* const end = p + s.size();
    const bool negative = *p == '-';
    if (*p == '-' || *p == '+') {
      ++p;
    }
    // Short fields (all of real data) cannot overflow: one pass without overflow checks.
    if (static_cast<std::size_t>(end - p) + Scale <= 18) {
      return parse_short(p, end, negative, out);
    }
    // One pass: whole digits, then at most Scale fraction digits; missing ones count as zeros.
    std::int64_t value = 0;
    std::size_t whole_digits = 0;
    for (; p != end && *p != '.'; ++p, ++whole_digits) {
      if (!append_digit(value, *p)) {
        return static_cast<unsigned char>(*p) - unsigned{'0'} > 9 ? field_error::not_decimal
                                                                  : field_error::out_of_range;
      }
    }
    std::size_t frac_digits = 0;
    if (p != end) {
      for (++p; p != end; ++p, ++frac_digits) {
        if (frac_digits == Scale) {
          return static_cast<unsigned char>(*p) - unsigned{'0'} > 9 ? field_error::not_decimal
                                                                    : field_error::too_many_decimals;
        }
        if (!append_digit(value, *p)) {
          return static_cast<unsigned char>(*p) - unsigned{'0'} > 9 ? field_error::not_decimal
                                                                    : field_error::out_of_range;
        }
      }
    }
    if (whole_digits + frac_digits == 0) {
      return field_error::not_decimal;
    }
    for (; frac_digits < Scale; ++frac_digits) {
      if (__builtin_mul_overflow(value, std::int64_t{10}, &value)) {
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

 private:
  template <class I>
  static const char* parse_short(const char* p, const char* end, bool negative, I& out) {
    std::int64_t value = 0;
    const char* const start = p;
    for (; p != end && *p != '.'; ++p) {
      const unsigned digit = static_cast<unsigned char>(*p) - unsigned{'0'};
      if (digit > 9) {
        return field_error::not_decimal;
      }
      value = value * 10 + digit;
    }
    const bool had_whole = p != start;
    std::size_t frac_digits = 0;
    if (p != end) {
      ++p;
      if (static_cast<std::size_t>(end - p) > Scale) {
        for (const char* q = p; q != end; ++q) {
          if (static_cast<unsigned char>(*q) - unsigned{'0'} > 9) {
            return field_error::not_decimal;
          }
        }
        return field_error::too_many_decimals;
      }
      for (; p != end; ++p, ++frac_digits) {
        const unsigned digit = static_cast<unsigned char>(*p) - unsigned{'0'};
        if (digit > 9) {
          return field_error::not_decimal;
        }
        value = value * 10 + digit;
      }
    }
    if (!had_whole && frac_digits == 0) {
      return field_error::not_decimal;
    }
    for (; frac_digits < Scale; ++frac_digits) {
      value *= 10;
    }
    value = negative ? -value : value;
    if (value < std::numeric_limits<I>::min() || value > std::numeric_limits<I>::max()) {
      return field_error::out_of_range;
    }
    out = static_cast<I>(value);
    return nullptr;
  }

  static bool append_digit(std::int64_t& value, char c) {
    const unsigned digit = static_cast<unsigned char>(c) - unsigned{'0'};
    return digit <= 9 && !__builtin_mul_overflow(value, std::int64_t{10}, &value) &&
           !__builtin_add_overflow(value, std::int64_t(digit), &value);
  }
};

}  // namespace sluice
