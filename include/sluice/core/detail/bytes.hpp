// Byte encodings shared by everything sluice writes to disk (the event log's segments, checkpoints
// and the codecs of their state): fixed-width little-endian integers, LEB128 varints and zigzag.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice::detail {

template <class U>
void put_le(char* out, U v) {
  for (std::size_t i = 0; i < sizeof(U); ++i) {
    out[i] = static_cast<char>((v >> (8U * i)) & 0xFFU);
  }
}

template <class U>
U get_le(const char* in) {
  U v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i) {
    v |= static_cast<U>(static_cast<U>(static_cast<unsigned char>(in[i])) << (8U * i));
  }
  return v;
}

/// Writes `v` as a LEB128 varint at `out` (at most 10 bytes); returns the end.
inline char* put_varint(char* out, std::uint64_t v) {
  while (v >= 0x80U) {
    *out++ = static_cast<char>((v & 0x7FU) | 0x80U);
    v >>= 7U;
  }
  *out++ = static_cast<char>(v);
  return out;
}

/// Reads a varint from [p, end) into `v`; nullptr if it runs past `end` or past 64 bits.
inline const char* get_varint(const char* p, const char* end, std::uint64_t& v) {
  v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (p == end) {
      return nullptr;
    }
    const auto b = static_cast<unsigned char>(*p++);
    if (shift == 63 && b > 1) {
      return nullptr;
    }
    v |= static_cast<std::uint64_t>(b & 0x7FU) << shift;
    if (b < 0x80U) {
      return p;
    }
  }
  return nullptr;
}

/// A time delta (mod 2^64) as zigzag: small deltas of either sign are small numbers.
inline std::uint64_t zigzag(std::uint64_t delta) {
  return (delta << 1U) ^ (0 - (delta >> 63U));
}
inline std::uint64_t unzigzag(std::uint64_t z) {
  return (z >> 1U) ^ (0 - (z & 1U));
}

}  // namespace sluice::detail
