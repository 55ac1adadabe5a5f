// result_store: the keyed view a run produces: point get, ordered scan, top-k. It keeps monoid
// states (not just answers) so two stores merge exactly, which is what the lambda layer needs.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <optional>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/ops/keyed_state.hpp"
#include "sluice/ops/process.hpp"

namespace sluice {

namespace detail {
/// The k best rows offered: the largest rank(value) first, ties to the smaller key, so the
/// answer never depends on the order rows come in. Row is {const Key& key; value}; the keys
/// offered must outlive the rows taken.
template <class Row, class Rank>
class top_k_heap {
 public:
  using value_type = decltype(std::declval<Row&>().value);
  using key_type = std::remove_cvref_t<decltype(std::declval<Row&>().key)>;

  top_k_heap(std::size_t k, Rank rank) : k_(k), rank_(std::move(rank)) { best_.reserve(std::min<std::size_t>(k, 1024) + 1); }

  void offer(const key_type& key, value_type v) {
    ranked c{std::invoke(rank_, std::as_const(v)), &key, std::move(v)};
    if (best_.size() < k_) {
      best_.push_back(std::move(c));
      std::push_heap(best_.begin(), best_.end(), better);
    } else if (k_ > 0 && better(c, best_.front())) {
      std::pop_heap(best_.begin(), best_.end(), better);
      best_.back() = std::move(c);
      std::push_heap(best_.begin(), best_.end(), better);
    }
  }

  /// The rows, best first.
  std::vector<Row> take() && {
    std::sort(best_.begin(), best_.end(), better);
    std::vector<Row> out;
    out.reserve(best_.size());
    for (auto& b : best_) {
      out.push_back(Row{*b.key, std::move(b.value)});
    }
    return out;
  }

 private:
  using rank_t = std::remove_cvref_t<std::invoke_result_t<Rank&, const value_type&>>;
  struct ranked {
    rank_t r;
    const key_type* key;
    value_type value;
  };
  static bool better(const ranked& a, const ranked& b) { return a.r != b.r ? a.r > b.r : *a.key < *b.key; }

  std::size_t k_;
  Rank rank_;
  std::vector<ranked> best_;  // a min-heap of the k best so far
};

/// Every row of `rows(emit)` (which calls emit(key, value) for every row), ordered by key.
/// `expected`: about how many there are.
template <class Row, class Rows>
std::vector<Row> rows_by_key(std::size_t expected, Rows&& rows) {
  using value_type = decltype(std::declval<Row&>().value);
  using key_type = std::remove_cvref_t<decltype(std::declval<Row&>().key)>;
  struct unsorted {  // a Row refers to its key, so it cannot be assigned: sort these
    const key_type* key;
    value_type value;
  };
  std::vector<unsorted> all;
  all.reserve(expected);
  rows([&](const key_type& key, value_type value) { all.push_back(unsorted{&key, std::move(value)}); });
  std::sort(all.begin(), all.end(), [](const unsorted& a, const unsorted& b) { return *a.key < *b.key; });
  std::vector<Row> out;
  out.reserve(all.size());
  for (unsorted& u : all) {
    out.push_back(Row{*u.key, std::move(u.value)});
  }
  return out;
}

/// top_k over `rows(emit)`, which calls emit(key, value) for every row.
template <class Row, class Rank, class Rows>
std::vector<Row> top_k_rows(std::size_t k, Rank rank, Rows&& rows) {
  top_k_heap<Row, Rank> heap(k, std::move(rank));
  rows([&](const auto& key, auto value) { heap.offer(key, std::move(value)); });
  return std::move(heap).take();
}
}  // namespace detail

template <class Key, class Monoid>
class result_store {
 public:
  using key_type = Key;
  using state_type = typename Monoid::state;
  using value_type = typename keyed_state<Key, Monoid>::result_type;

  /// One row of a scan: the key and the monoid's answer for it.
  struct row {
    const Key& key;
    value_type value;
  };

  explicit result_store(Monoid m = Monoid{}) : state_(std::move(m)) {}
  explicit result_store(keyed_state<Key, Monoid> state) : state_(std::move(state)) {}

  /// The answer for `key`, or nullopt when no event had that key. `key` may be borrowed
  /// (a string_view or a string literal for a std::string key).
  template <class K>
  [[nodiscard]] std::optional<value_type> get(const K& key) const {
    if constexpr (std::is_convertible_v<const K&, const char*>) {
      return get(std::string_view(key));  // a literal would hash ambiguously (string or string_view?)
    } else if (const state_type* s = state_.find(key)) {
      return state_.monoid().result(*s);
    }
    return std::nullopt;
  }

  /// Every row, ordered by key (byte order for strings; key, then window start for windows).
  [[nodiscard]] std::vector<row> scan() const& {
    return detail::rows_by_key<row>(state_.size(), [&](auto&& emit) { for_each(emit); });
  }

  /// The k rows with the largest `rank(value)`, largest first; ties go to the smaller key, so
  /// the answer never depends on insertion order.
  template <class Rank>
  [[nodiscard]] std::vector<row> top_k(std::size_t k, Rank rank) const& {
    return detail::top_k_rows<row>(k, rank, [&](auto&& emit) { for_each(emit); });
  }

  /// fn(key, value) for every row, in no particular order.
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (const auto& e : state_) {
      fn(static_cast<const Key&>(e.key), state_.monoid().result(e.value));
    }
  }

  // Rows refer to keys inside the store: reading them from a temporary store would dangle, so
  // run_batch(...).scan() does not compile; keep the store in a variable.
  std::vector<row> scan() const&& = delete;
  template <class Rank>
  std::vector<row> top_k(std::size_t k, Rank rank) const&& = delete;

  /// Fold another store (or partial) of the same flow into this one.
  void merge(const result_store& other) { state_.merge(other.state_); }

  [[nodiscard]] std::size_t size() const { return state_.size(); }
  [[nodiscard]] const keyed_state<Key, Monoid>& state() const& { return state_; }
  /// The state itself, taken out of a store that is done with (no copy).
  [[nodiscard]] keyed_state<Key, Monoid> state() && { return std::move(state_); }

 private:
  keyed_state<Key, Monoid> state_;
};

/// The result store of a run: built from the merged partial of a flow's terminal stage.
template <class Key, class Monoid>
result_store<Key, Monoid> make_result_store(keyed_state<Key, Monoid> state) {
  return result_store<Key, Monoid>(std::move(state));
}

/// The result stores of a fan_out run, one per flow.
/// A process stage's result is its rows, as they were emitted.
template <class Out>
std::vector<Out> make_result_store(emitted_rows<Out> emitted) {
  return std::move(emitted.rows);
}

template <class... States>
auto make_result_store(std::tuple<States...> states) {
  return std::apply([](auto&... s) { return std::make_tuple(make_result_store(std::move(s))...); }, states);
}

}  // namespace sluice
