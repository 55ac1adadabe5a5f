// Fixtures for stream-mode tests: a small keyed event, random event streams with a chosen bound
// on disorder, the flows the stream tests run, and results flattened into std::map rows so that
// stream output, batch output and a naive reference compare with ==.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/sluice.hpp"

namespace stream_test {

/// One event: time, key, value. Default-constructible, as an event_queue element must be.
struct ev {
  sluice::millis t;
  std::int64_t k = 0;
  std::int64_t v = 0;
};

inline ev at(std::int64_t t, std::int64_t k, std::int64_t v = 1) {
  return ev{sluice::millis{t}, k, v};
}

/// n events over `keys` keys. Event i has time clock_i - r_i, with clock non-decreasing and
/// r_i <= max_disorder, so no event is more than max_disorder behind any earlier one. With
/// `excess` > 0, one event in `excess` is instead up to 8 * max_disorder + 50 behind.
inline std::vector<ev> random_events(std::uint64_t seed, std::size_t n, std::int64_t keys, std::int64_t max_disorder,
                                     std::uint64_t excess = 0) {
  std::mt19937_64 rng(seed);
  std::vector<ev> out;
  out.reserve(n);
  std::int64_t clock = 1'000'000;
  for (std::size_t i = 0; i < n; ++i) {
    clock += static_cast<std::int64_t>(rng() % 7);
    std::int64_t behind = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(max_disorder + 1));
    if (excess > 0 && rng() % excess == 0) {
      behind = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(8 * max_disorder + 51));
    }
    // Drawn one statement at a time: the order of a call's arguments is the compiler's choice.
    const auto key = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(keys));
    const auto value = static_cast<std::int64_t>(rng() % 1000) - 100;
    out.push_back(at(clock - behind, key, value));
  }
  return out;
}

// ---- the flows -------------------------------------------------------------------------------

inline auto count_and_sum() {
  return sluice::aggregate(sluice::count{}, sluice::sum(&ev::v));
}

inline auto tumbling_flow(std::chrono::milliseconds size) {
  return sluice::flow<ev>() | sluice::event_time(&ev::t) | sluice::key_by(&ev::k) |
         sluice::window(sluice::tumbling(size)) | count_and_sum();
}
inline auto sliding_flow(std::chrono::milliseconds size, std::chrono::milliseconds slide) {
  return sluice::flow<ev>() | sluice::event_time(&ev::t) | sluice::key_by(&ev::k) |
         sluice::window(sluice::sliding(size, slide)) | count_and_sum();
}
inline auto session_flow(std::chrono::milliseconds gap) {
  return sluice::flow<ev>() | sluice::event_time(&ev::t) | sluice::key_by(&ev::k) |
         sluice::window(sluice::session(gap)) | count_and_sum();
}
inline auto count_window_flow(std::int64_t n) {
  return sluice::flow<ev>() | sluice::key_by(&ev::k) | sluice::window(sluice::count_of(n)) | count_and_sum();
}
inline auto plain_flow() {
  return sluice::flow<ev>() | sluice::key_by(&ev::k) | count_and_sum();
}

// ---- results as maps -------------------------------------------------------------------------

/// (key, window start, window end) -> (count, sum). An unwindowed key has window (0, 0); a
/// count window (index, -1).
using row_key = std::tuple<std::int64_t, std::int64_t, std::int64_t>;
using row_map = std::map<row_key, std::pair<std::int64_t, std::int64_t>>;

template <class Key>
row_key flat_key(const Key& k) {
  if constexpr (std::is_same_v<Key, std::int64_t>) {
    return {k, 0, 0};
  } else if constexpr (std::is_same_v<std::remove_cvref_t<decltype(k.window)>, sluice::time_window>) {
    return {k.key, k.window.start.count(), k.window.end.count()};
  } else {
    return {k.key, k.window.index, -1};
  }
}

template <class Value>
std::pair<std::int64_t, std::int64_t> flat_value(const Value& v) {
  if constexpr (std::is_integral_v<Value>) {
    return {v, 0};
  } else {
    return {std::get<0>(v), std::get<1>(v)};
  }
}

/// A keyed_state (a partial's fired rows, a combiner's input) as a row_map.
template <class State>
row_map rows_of(const State& state) {
  row_map out;
  for (const auto& e : state) {
    out[flat_key(e.key)] = flat_value(state.monoid().result(e.value));
  }
  return out;
}

/// A result_store (what run_batch returns and a stream sink receives) as a row_map.
template <class Store>
row_map store_rows(const Store& store) {
  row_map out;
  for (const auto& row : store.scan()) {
    out[flat_key(row.key)] = flat_value(row.value);
  }
  return out;
}

/// Fold `more` into `into` by adding counts and sums (what merging deltas of a window does).
inline void add_rows(row_map& into, const row_map& more) {
  for (const auto& [key, value] : more) {
    into[key].first += value.first;
    into[key].second += value.second;
  }
}

}  // namespace stream_test
