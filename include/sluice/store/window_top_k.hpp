// top_k_by_window: the k best rows of every event-time window ("the 10 most popular products of
// each 5-minute window"), ordered by window, then rank; ties go to the smaller key. Works on a
// result_store (a batch run, a fired stream batch, a replay) and on a Lambda view_snapshot, which
// reads one window's shard at a time.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "sluice/core/time.hpp"
#include "sluice/core/window.hpp"
#include "sluice/store/result_store.hpp"

namespace sluice {

/// The k rows with the largest rank(value) in each window (only the window starting at
/// `window_start` when given), ordered by window, then rank.
template <class Store, class Rank>
std::vector<typename Store::row> top_k_by_window(const Store& store, std::size_t k, Rank rank,
                                                 std::optional<millis> window_start = std::nullopt) {
  using row = typename Store::row;
  std::vector<row> out;
  auto append = [&](std::vector<row>&& rows) {
    for (row& r : rows) {
      out.push_back(std::move(r));
    }
  };
  if constexpr (requires { store.windows(); }) {  // sharded by window: one shard at a time
    for (const time_window& w : store.windows()) {
      if (!window_start || w.start == *window_start) {
        append(detail::top_k_rows<row>(k, rank, [&](auto&& emit) { store.for_each_in_window(w, emit); }));
      }
    }
  } else {  // one pass, a heap per window
    std::map<time_window, detail::top_k_heap<row, Rank>> heaps;
    store.for_each([&](const auto& key, auto value) {
      if (!window_start || key.window.start == *window_start) {
        heaps.try_emplace(key.window, k, rank).first->second.offer(key, std::move(value));
      }
    });
    for (auto& [window, heap] : heaps) {
      append(std::move(heap).take());
    }
  }
  return out;
}

}  // namespace sluice
