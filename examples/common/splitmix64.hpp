// The example generators' random numbers: splitmix64, small, fast and the same on every
// platform, so a seed always gives the same file.
#pragma once

#include <cstdint>

namespace cli {

struct splitmix64 {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31U);
  }
  std::uint64_t below(std::uint64_t n) { return next() % n; }               // [0, n)
  double unit() { return static_cast<double>(next() >> 11U) * 0x1.0p-53; }  // [0, 1)
};

}  // namespace cli
