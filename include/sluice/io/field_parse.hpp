// Text fields to typed values, exactly: integers, fixed-point decimals as scaled integers (12.34
// with scale 2 is 1234, never a float), floats, strings (valid UTF-8 without NUL bytes, unless
// the column says raw_bytes), booleans, optionals. A parser returns
// nullptr on success or a static reason; the caller adds the field's name and position.
// Customisation point: specialise sluice::field_parser<T> for a type of your own.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "sluice/core/time.hpp"
#include "sluice/io/utf8.hpp"

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

/// What a reader already knows about a field's bytes, so that checking it can skip work.
struct field_context {
  const char* readable_end = nullptr;  // the field's buffer may be read up to here (nullptr: not past the field)
  bool ascii_without_nul = false;      // every byte of the field is ASCII and none is NUL
};

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

/// True if the 8 bytes at p are all ASCII digits (SWAR: two masks, no branch per byte).
inline bool eight_digits(const char* p) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, 8);
  const std::uint64_t high = 0xF0F0F0F0F0F0F0F0ULL;
  return (v & high) == 0x3030303030303030ULL && ((v + 0x0606060606060606ULL) & high) == 0x3030303030303030ULL;
}

/// True if p[0, n) are all ASCII digits; nothing is converted. Eight at a time, the last eight
/// overlapping. A shorter run is read as one word when the caller says the 8 bytes at p are
/// readable (p + 8 <= readable_end, true for every field of a buffer but its last few bytes):
/// the bytes past the run are masked to '0'. Otherwise byte by byte.
[[gnu::always_inline]] inline bool all_digits(const char* p, std::size_t n, const char* readable_end = nullptr) {
  if (n >= 8) {
    for (std::size_t i = 0; i + 8 < n; i += 8) {
      if (!eight_digits(p + i)) {
        return false;
      }
    }
    return eight_digits(p + n - 8);
  }
  if (readable_end != nullptr && std::less_equal<>()(p + 8, readable_end)) {
    std::uint64_t v = 0;
    std::memcpy(&v, p, 8);
    const std::uint64_t keep = (std::uint64_t{1} << (8 * n)) - 1;  // the run's bytes: little-endian, low first
    v = (v & keep) | (0x3030303030303030ULL & ~keep);
    char word[8];
    std::memcpy(word, &v, 8);
    return eight_digits(word);
  }
  unsigned bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    bad |= static_cast<unsigned char>(p[i] - '0') > 9 ? 1U : 0U;
  }
  return bad == 0;
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

/// Check what parse_integer<I> would accept, without converting: a column outside the query's
/// projection. Up to 18 digits fit any 64-bit integer; anything else takes the full parse.
template <class I>
[[gnu::always_inline]] inline const char* check_integer(std::string_view s, const char* readable_end) {
  const std::size_t sign = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  const std::size_t digits = s.size() - sign;
  if (sizeof(I) == 8 && std::is_signed_v<I> && digits >= 1 && digits <= 18) {
    return all_digits(s.data() + sign, digits, readable_end) ? nullptr : field_error::not_integer;
  }
  I scratch{};
  return parse_integer(s, scratch);
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
  [[gnu::always_inline]] static const char* validate(std::string_view s, const field_context& ctx) {
    return detail::check_integer<T>(s, ctx.readable_end);
  }
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
  [[gnu::always_inline]] static const char* validate(std::string_view s, const field_context& ctx) {
    return detail::check_integer<std::int64_t>(s, ctx.readable_end);
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
/// when it had escaped quotes): valid while the event is being processed, never after. Its text
/// must be valid UTF-8 without NUL bytes (a column bound with sluice::raw_bytes{} takes any bytes).
template <>
struct field_parser<std::string_view> {
  [[gnu::always_inline]] static const char* parse(std::string_view s, std::string_view& out,
                                                  const field_context& ctx = {}) {
    if (const char* err = validate(s, ctx)) {
      return err;
    }
    out = s;
    return nullptr;
  }
  [[gnu::always_inline]] static const char* validate(std::string_view s, const field_context& ctx) {
    return ctx.ascii_without_nul ? nullptr : detail::text_error(s, ctx.readable_end);
  }
};

/// A std::string field owns a copy (an allocation for long strings): prefer string_view.
template <>
struct field_parser<std::string> {
  static const char* parse(std::string_view s, std::string& out) {
    if (const char* err = detail::text_error(s)) {
      return err;
    }
    out.assign(s);
    return nullptr;
  }
  [[gnu::always_inline]] static const char* validate(std::string_view s, const field_context& ctx) {
    return ctx.ascii_without_nul ? nullptr : detail::text_error(s, ctx.readable_end);
  }
};

/// A text column that takes any bytes, invalid UTF-8 and NUL included, for data that is not
/// text (binary ids, legacy encodings): column("blob", &T::blob, sluice::raw_bytes{}).
struct raw_bytes {
  static const char* parse(std::string_view s, std::string_view& out) {
    out = s;
    return nullptr;
  }
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

/// Parse a field with `parser`, telling it what the reader knows about the field's bytes where
/// it can use that (a parse(text, out, field_context) member).
template <class M, class Parser>
[[gnu::always_inline]] inline const char* parse_field(const Parser& parser, std::string_view text, M& out,
                                                      const field_context& ctx) {
  if constexpr (requires { parser.parse(text, out, ctx); }) {
    return parser.parse(text, out, ctx);
  } else {
    return parser.parse(text, out);
  }
}

/// Check a field as `parser` would read it into an M, converting only where the parser has no
/// cheaper check (a validate(text, field_context) member): a column outside the query's
/// projection.
template <class M, class Parser>
[[gnu::always_inline]] inline const char* validate_field(const Parser& parser, std::string_view text,
                                                         const field_context& ctx) {
  if constexpr (requires { parser.validate(text, ctx); }) {
    return parser.validate(text, ctx);
  } else {
    M scratch{};
    return parser.parse(text, scratch);
  }
}

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
