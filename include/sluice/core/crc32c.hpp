// CRC-32C (Castagnoli): the checksum over every event log record, so a torn or flipped byte is
// found before it is read as data. x86-64 computes it with the SSE4.2 crc32 instruction (8 bytes a
// step); elsewhere, or on a CPU without it, with slicing-by-8 tables built at compile time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace sluice {

namespace detail {

/// table[0] is the classic byte-at-a-time table; table[k][b] is the CRC of byte b followed by k
/// zero bytes, so eight table look-ups consume eight bytes at once.
inline constexpr auto crc32c_tables = [] {
  constexpr std::uint32_t poly = 0x82F63B78U;  // Castagnoli, reflected
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t c = b;
    for (int bit = 0; bit < 8; ++bit) {
      c = (c & 1U) != 0 ? (c >> 1U) ^ poly : c >> 1U;
    }
    t[0][b] = c;
  }
  for (std::size_t k = 1; k < 8; ++k) {
    for (std::size_t b = 0; b < 256; ++b) {
      t[k][b] = (t[k - 1][b] >> 8U) ^ t[0][t[k - 1][b] & 0xFFU];
    }
  }
  return t;
}();

inline std::uint32_t load_le32(const unsigned char* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8U | std::uint32_t{p[2]} << 16U | std::uint32_t{p[3]} << 24U;
}

/// The portable path; same contract as sluice::crc32c (exposed so the tests compare the two).
inline std::uint32_t crc32c_software(const void* data, std::size_t n, std::uint32_t crc = 0) {
  const auto& t = crc32c_tables;
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t c = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    const std::uint32_t lo = load_le32(p) ^ c;
    const std::uint32_t hi = load_le32(p + 4);
    c = t[7][lo & 0xFFU] ^ t[6][(lo >> 8U) & 0xFFU] ^ t[5][(lo >> 16U) & 0xFFU] ^ t[4][lo >> 24U] ^ t[3][hi & 0xFFU] ^
        t[2][(hi >> 8U) & 0xFFU] ^ t[1][(hi >> 16U) & 0xFFU] ^ t[0][hi >> 24U];
  }
  for (; n > 0; --n, ++p) {
    c = (c >> 8U) ^ t[0][(c ^ *p) & 0xFFU];
  }
  return ~c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SLUICE_CRC32C_HARDWARE 1

/// The SSE4.2 path: call only where crc32c_hardware_available().
__attribute__((target("sse4.2"))) inline std::uint32_t crc32c_hardware(const void* data, std::size_t n,
                                                                       std::uint32_t crc = 0) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t c = ~crc;
  for (; n > 0 && (reinterpret_cast<std::uintptr_t>(p) & 7U) != 0; --n, ++p) {
    c = __builtin_ia32_crc32qi(c, *p);
  }
  unsigned long long c64 = c;
  for (; n >= 8; n -= 8, p += 8) {
    unsigned long long word = 0;
    std::memcpy(&word, p, 8);
    c64 = __builtin_ia32_crc32di(c64, word);
  }
  c = static_cast<std::uint32_t>(c64);
  if (n >= 4) {
    unsigned int word = 0;
    std::memcpy(&word, p, 4);
    c = __builtin_ia32_crc32si(c, word);
    n -= 4;
    p += 4;
  }
  for (; n > 0; --n, ++p) {
    c = __builtin_ia32_crc32qi(c, *p);
  }
  return ~c;
}

inline bool crc32c_hardware_available() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return yes;
}
#endif

}  // namespace detail

/// CRC-32C of n bytes (standard init and final xor: crc32c("123456789", 9) == 0xE3069283).
/// Chains: crc32c(b, nb, crc32c(a, na)) is the CRC of a followed by b.
inline std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc = 0) {
#ifdef SLUICE_CRC32C_HARDWARE
  if (detail::crc32c_hardware_available()) {
    return detail::crc32c_hardware(data, n, crc);
  }
#endif
  return detail::crc32c_software(data, n, crc);
}

}  // namespace sluice
