// view_snapshot: one Lambda answer, V_E (+) the speed layer's epochs >= E, read without
// materialising the merge. It holds the published batch version by a shared_ptr (taking it is
// O(1); V is never copied) and the speed epochs' merged state, which is small: it holds only
// what arrived since the batch horizon. Every read combines the two key by key.
//
// The query side of result_store (get, scan, top_k, size, for_each) with the same rows, plus
// what windowed views need: the windows and one window's rows, read from that window's shard
// alone. Windows that ended at or before the retention horizon are not served.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/core/time.hpp"
#include "sluice/lambda/batch_view.hpp"
#include "sluice/ops/keyed_state.hpp"
#include "sluice/store/result_store.hpp"

namespace sluice {

template <class Key, class Monoid>
class view_snapshot {
 public:
  using key_type = Key;
  using view_type = batch_view<Key, Monoid>;
  using state_type = typename Monoid::state;
  using value_type = typename keyed_state<Key, Monoid>::result_type;
  using row = typename result_store<Key, Monoid>::row;

  /// `speed`: the speed epochs' merged state; `horizon`: the retention horizon (windows that
  /// ended at or before it are not served).
  view_snapshot(std::shared_ptr<const view_type> batch, const keyed_state<Key, Monoid>& speed,
                millis horizon = millis::min())
      : batch_(std::move(batch)), speed_(view_type(batch_->monoid()).merged(speed, horizon)), horizon_(horizon) {}

  template <class K>
  [[nodiscard]] std::optional<value_type> get(const K& key) const {
    if constexpr (std::is_convertible_v<const K&, const char*>) {
      return get(std::string_view(key));
    } else {
      if (!view_type::kept(key, horizon_)) {
        return std::nullopt;
      }
      const state_type* b = batch_->find(key);
      const state_type* s = speed_.find(key);
      if (b == nullptr && s == nullptr) {
        return std::nullopt;
      }
      return combined(b, s);
    }
  }

  /// fn(key, value) for every row, in no particular order.
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (const auto& shard : batch_->shards()) {
      if (view_type::shard_kept(shard.id, horizon_)) {
        for_each_batch_entry(*shard.entries, fn);
      }
    }
    for (const auto& shard : speed_.shards()) {
      for_each_speed_only(*shard.entries, fn);
    }
  }

  /// Every row, ordered by key (then window).
  [[nodiscard]] std::vector<row> scan() const& {
    return detail::rows_by_key<row>(batch_->size() + speed_.size(), [&](auto&& emit) { for_each(emit); });
  }

  /// The k rows with the largest rank(value), largest first, ties to the smaller key.
  template <class Rank>
  [[nodiscard]] std::vector<row> top_k(std::size_t k, Rank rank) const& {
    return detail::top_k_rows<row>(k, rank, [&](auto&& emit) { for_each(emit); });
  }

  /// The windows served, ordered by start (then end).
  [[nodiscard]] std::vector<time_window> windows() const
    requires view_type::by_window
  {
    std::vector<time_window> out;
    for (const auto* view : {batch_.get(), &speed_}) {
      for (const auto& s : view->shards()) {
        if (view_type::shard_kept(s.id, horizon_)) {
          out.push_back(s.id);
        }
      }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  /// fn(key, value) for the rows of one window: that window's shards only.
  template <class Fn>
  void for_each_in_window(const time_window& w, Fn&& fn) const
    requires view_type::by_window
  {
    if (!view_type::shard_kept(w, horizon_)) {
      return;
    }
    if (const auto* b = batch_->find_shard(w)) {
      for_each_batch_entry(*b, fn);
    }
    if (const auto* s = speed_.find_shard(w)) {
      for_each_speed_only(*s, fn);
    }
  }

  /// Rows: batch rows served, plus speed rows of keys the batch view lacks. Counted, not read.
  [[nodiscard]] std::size_t size() const {
    std::size_t n = 0;
    for (const auto& shard : batch_->shards()) {
      n += view_type::shard_kept(shard.id, horizon_) ? shard.entries->size() : 0;
    }
    for (const auto& shard : speed_.shards()) {
      for (const auto& e : *shard.entries) {
        n += batch_->find(e.key) == nullptr ? 1 : 0;
      }
    }
    return n;
  }

  // Rows refer to keys inside the snapshot: keep it in a variable.
  std::vector<row> scan() const&& = delete;
  template <class Rank>
  std::vector<row> top_k(std::size_t k, Rank rank) const&& = delete;

 private:
  [[nodiscard]] value_type combined(const state_type* b, const state_type* s) const {
    const Monoid& m = batch_->monoid();
    if (b == nullptr || s == nullptr) {
      return m.result(b != nullptr ? *b : *s);
    }
    state_type both = *b;
    m.merge(both, *s);
    return m.result(both);
  }

  // A batch shard's rows, each merged with the speed layer's state of its key.
  template <class Fn>
  void for_each_batch_entry(const keyed_state<Key, Monoid>& shard, Fn& fn) const {
    for (const auto& e : shard) {
      fn(static_cast<const Key&>(e.key), combined(&e.value, speed_.find(e.key)));
    }
  }

  // A speed shard's rows whose keys the batch view lacks (the others came with the batch's).
  template <class Fn>
  void for_each_speed_only(const keyed_state<Key, Monoid>& shard, Fn& fn) const {
    for (const auto& e : shard) {
      if (batch_->find(e.key) == nullptr) {
        fn(static_cast<const Key&>(e.key), batch_->monoid().result(e.value));
      }
    }
  }

  std::shared_ptr<const view_type> batch_;
  view_type speed_;  // the speed epochs' state, sharded like the batch view
  millis horizon_;
};

}  // namespace sluice
