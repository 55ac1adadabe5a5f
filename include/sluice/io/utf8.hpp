// Is this text valid UTF-8 without NUL bytes? The check every text field of a record passes
// (sluice::field_parser<std::string_view> and <std::string>), and the repair JSON writers apply
// so that invalid bytes never reach JSON.
//
// Performance notes: fields are short (a category, a host name), so the check is a hand loop
// rather than a call into a library: an ASCII field without NUL (nearly all of them) is checked
// eight bytes at a time, one load and three operations; only a field with other bytes walks its
// multi-byte sequences. Measured against simdjson::validate_utf8 in bench/bench_csv.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string_view>

namespace sluice::detail {

/// The length of the valid UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, nothing
/// past U+10FFFF) that starts at s[i] with a byte >= 0x80, or 0 if none starts there.
inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const auto continuation = [&](std::size_t k) { return k < s.size() && (byte(k) & 0xC0U) == 0x80U; };
  const unsigned lead = byte(i);
  if (lead >= 0xC2 && lead <= 0xDF) {
    return continuation(i + 1) ? 2 : 0;
  }
  if (lead >= 0xE0 && lead <= 0xEF) {
    if (!continuation(i + 1) || !continuation(i + 2)) {
      return 0;
    }
    const unsigned second = byte(i + 1);
    if ((lead == 0xE0 && second < 0xA0) || (lead == 0xED && second > 0x9F)) {
      return 0;  // overlong, or a UTF-16 surrogate
    }
    return 3;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    if (!continuation(i + 1) || !continuation(i + 2) || !continuation(i + 3)) {
      return 0;
    }
    const unsigned second = byte(i + 1);
    if ((lead == 0xF0 && second < 0x90) || (lead == 0xF4 && second > 0x8F)) {
      return 0;  // overlong, or past U+10FFFF
    }
    return 4;
  }
  return 0;  // a continuation byte without a lead, or a byte UTF-8 never uses
}

/// True if every byte of `s` is ASCII and none is NUL: nearly every field of real data. Eight
/// bytes at a time, the last eight overlapping; a shorter field as one word with the bytes past
/// it masked when the caller says they are readable (s.data() + 8 <= readable_end), otherwise
/// byte by byte without a branch.
inline bool ascii_without_nul(std::string_view s, const char* readable_end = nullptr) {
  constexpr std::uint64_t high_bits = 0x8080808080808080ULL;
  constexpr std::uint64_t low_bits = 0x0101010101010101ULL;
  // With no high bit set, (w - low_bits) sets a byte's high bit exactly where the byte was 0.
  const auto word_ok = [](std::uint64_t w) { return (((w - low_bits) | w) & high_bits) == 0; };
  const auto load = [](const char* p) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, 8);
    return w;
  };
  const std::size_t n = s.size();
  if (n >= 8) {
    for (std::size_t i = 0; i + 8 < n; i += 8) {
      if (!word_ok(load(s.data() + i))) {
        return false;
      }
    }
    return word_ok(load(s.data() + n - 8));
  }
  if (readable_end != nullptr && std::less_equal<>()(s.data() + 8, readable_end)) {
    const std::uint64_t keep = (std::uint64_t{1} << (8 * n)) - 1;  // the field's bytes: little-endian, low first
    return word_ok((load(s.data()) & keep) | (0x2020202020202020ULL & ~keep));
  }
  unsigned bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    bad |= static_cast<unsigned char>(s[i] - 1) >= 0x7FU ? 1U : 0U;  // 0 wraps to 0xFF; >= 0x80 stays >= 0x7F
  }
  return bad == 0;
}

/// Why `s` is not acceptable text, or nullptr if it is valid UTF-8 holding no NUL byte.
inline const char* text_error(std::string_view s, const char* readable_end = nullptr) {
  if (ascii_without_nul(s, readable_end)) {
    return nullptr;
  }
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == 0) {
      return "contains a NUL byte";
    }
    if (c < 0x80) {
      ++i;
      continue;
    }
    const std::size_t n = utf8_sequence_length(s, i);
    if (n == 0) {
      return "not valid UTF-8";
    }
    i += n;
  }
  return nullptr;
}

}  // namespace sluice::detail
