// Fixtures for join tests: two event types in one std::variant, random streams of them with
// bounded disorder, and brute-force models over all pairs to check a join's rows against.
#pragma once

#include <algorithm>
#include <compare>
#include <cstdint>
#include <random>
#include <variant>
#include <vector>

#include "sluice/sluice.hpp"

namespace join_test {

struct left_ev {
  sluice::millis t;
  std::int64_t k = 0;
  std::int64_t id = 0;
};
struct right_ev {
  sluice::millis t;
  std::int64_t k = 0;
  std::int64_t id = 0;
};
using either = std::variant<left_ev, right_ev>;

struct pair_row {
  std::int64_t key = 0;
  std::int64_t left_id = 0;
  std::int64_t right_id = 0;
  std::int64_t window = -1;  // window_join: the window's start
  auto operator<=>(const pair_row&) const = default;
};

/// n events, about a third of them rights, over `keys` keys; each at most `disorder` behind an
/// earlier one. ids are input positions.
inline std::vector<either> random_either(std::uint64_t seed, std::size_t n, std::int64_t keys, std::int64_t disorder) {
  std::mt19937_64 rng(seed);
  std::vector<either> out;
  std::int64_t clock = 10'000;
  for (std::size_t i = 0; i < n; ++i) {
    clock += static_cast<std::int64_t>(rng() % 5);
    const sluice::millis t{clock - static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(disorder + 1))};
    const auto k = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(keys));
    const auto id = static_cast<std::int64_t>(i);
    if (rng() % 3 == 0) {
      out.emplace_back(right_ev{t, k, id});
    } else {
      out.emplace_back(left_ev{t, k, id});
    }
  }
  return out;
}

template <class T>
std::vector<T> of_type(const std::vector<either>& events) {
  std::vector<T> out;
  for (const auto& e : events) {
    if (const T* x = std::get_if<T>(&e)) {
      out.push_back(*x);
    }
  }
  return out;
}

inline auto keyed_either() {
  return sluice::flow<either>() | sluice::event_time(sluice::by_type(&left_ev::t, &right_ev::t)) |
         sluice::key_by(sluice::by_type(&left_ev::k, &right_ev::k));
}

inline auto pair_of(const left_ev& a, const right_ev& b) {
  return pair_row{a.k, a.id, b.id};
}

inline std::vector<pair_row> sorted(std::vector<pair_row> rows) {
  std::sort(rows.begin(), rows.end());
  return rows;
}

/// Every (a, b) of equal keys for which `match` holds, by brute force.
template <class Match>
std::vector<pair_row> all_pairs(const std::vector<either>& events, Match match) {
  std::vector<pair_row> out;
  for (const left_ev& a : of_type<left_ev>(events)) {
    for (const right_ev& b : of_type<right_ev>(events)) {
      if (a.k == b.k && match(a, b)) {
        out.push_back(pair_of(a, b));
      }
    }
  }
  return sorted(out);
}

}  // namespace join_test
