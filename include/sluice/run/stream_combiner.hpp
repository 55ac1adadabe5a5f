// The stream combiner: where the workers' fired windows meet. Each worker aggregates the
// events of its own inputs (as a batch chunk does) and, as the watermark passes, ships the
// windows it completed together with the watermark it fired up to. A window is complete once
// every worker has fired past its end: the combiner then merges the workers' parts (monoids:
// exact) and emits the window's row. With allowed lateness L it keeps an emitted window until
// the watermark passes end + L; a late part merges into it and the window is emitted again
// with its updated value.
//
//   worker 0: fired [0,60s) at W=61s  -+
//                                      +-> combiner: min(W) = 61s -> emit [0,60s) rows
//   worker 1: fired [0,60s) at W=62s  -+
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "sluice/core/time.hpp"
#include "sluice/core/window.hpp"
#include "sluice/ops/keyed_state.hpp"
#include "sluice/store/result_store.hpp"

namespace sluice {

namespace detail {
/// When a result row is complete: a time window at its end, a count window as soon as it is
/// full, an unwindowed key only at the end of the stream.
template <class Key>
millis completes_at(const Key& /*key*/) {
  return millis::max();
}
template <class K>
millis completes_at(const windowed_key<K, time_window>& key) {
  return key.window.end;
}
template <class K>
millis completes_at(const windowed_key<K, count_window_index>& /*key*/) {
  return millis::min();
}

/// Drops from `state` the windows that ended at or before `horizon` (rows without a time window
/// stay): what a bounded (retained) view forgets, by the rule of the Lambda views' retention
/// (batch_view::kept), so that --retain D keeps the same windows in every mode.
template <class State>
void drop_windows_ended_by(State& state, millis horizon) {
  state.retain_if([&](const auto& key, auto& /*state*/) {
    const millis end = completes_at(key);
    return end == millis::max() || end == millis::min() || end > horizon;
  });
}
}  // namespace detail

template <class Key, class Monoid>
class stream_combiner {
 public:
  using state_type = keyed_state<Key, Monoid>;
  using store_type = result_store<Key, Monoid>;

  stream_combiner(const Monoid& m, std::size_t workers, std::int64_t lateness_ms)
      : monoid_(m),
        waiting_(m),
        emitted_(m),
        fired_up_to_(workers, millis::min()),
        lateness_(static_cast<std::uint64_t>(std::max<std::int64_t>(0, lateness_ms))) {}

  /// Worker `worker` fired everything that ends at or before `watermark`; `fired` is what it
  /// had of those windows. Calls sink(store) with the rows that became complete (or changed).
  template <class Sink>
  void ship(std::size_t worker, state_type fired, millis watermark, Sink& sink) {
    std::lock_guard lock(mutex_);
    if (fired_up_to_.size() == 1 && lateness_ == 0) {
      // One worker, no late updates: what it fired is complete and final as it is.
      fired_up_to_[0] = std::max(fired_up_to_[0], watermark);
      complete_ = fired_up_to_[0];
      emit(std::move(fired), sink);
      return;
    }
    waiting_.merge(fired);
    fired_up_to_[worker] = std::max(fired_up_to_[worker], watermark);
    const millis complete = *std::min_element(fired_up_to_.begin(), fired_up_to_.end());
    if (complete <= complete_ && fired.size() == 0) {
      return;
    }
    complete_ = std::max(complete_, complete);
    state_type ready(monoid_);
    waiting_.retain_if([&](const Key& key, auto& state) {
      if (detail::completes_at(key) > complete_) {
        return true;  // some worker may still hold events of this window
      }
      auto& row = ready.slot(key);
      if (const auto* before = emitted_.find(key)) {
        row = *before;  // a late part: the row is emitted again with its updated value
      }
      monoid_.merge(row, state);
      return false;
    });
    if (lateness_ > 0) {
      emitted_.replace(ready);
      emitted_.retain_if([&](const Key& key, auto& /*state*/) { return !past_lateness(detail::completes_at(key)); });
    }
    emit(std::move(ready), sink);
  }

  [[nodiscard]] std::uint64_t rows_emitted() const {
    std::lock_guard lock(mutex_);
    return rows_emitted_;
  }

 private:
  template <class Sink>
  void emit(state_type rows, Sink& sink) {
    if (rows.size() > 0) {
      rows_emitted_ += rows.size();
      const store_type store(std::move(rows));
      sink(store);
    }
  }

  [[nodiscard]] bool past_lateness(millis end) const {
    return complete_ >= end &&
           static_cast<std::uint64_t>(complete_.count()) - static_cast<std::uint64_t>(end.count()) >= lateness_;
  }

  mutable std::mutex mutex_;
  Monoid monoid_;
  state_type waiting_;  // fired by some workers, not yet by all
  state_type emitted_;  // emitted rows kept for late updates (only with allowed lateness)
  std::vector<millis> fired_up_to_;
  millis complete_ = millis::min();
  std::uint64_t lateness_;
  std::uint64_t rows_emitted_ = 0;
};

}  // namespace sluice
