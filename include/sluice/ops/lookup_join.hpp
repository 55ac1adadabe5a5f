// lookup_join(table, key_of, combine): enrich each event with the row of a table that the host
// holds (a product catalogue, a user directory), a stream-table join without event time:
//
//   sluice::lookup_table<std::int64_t, product> catalogue;   // loaded from a file (io/table_file.hpp)
//   flow<sale>() | lookup_join(catalogue, &sale::product_id,
//                              [](const sale& s, const product& p) { return priced{s, p}; })
//
// combine(e, row) gives the event pushed on; an event whose key is not in the table is dropped
// (inner). With combine(e, const row*) every event goes on, nullptr when missing (left join).
//
// The host may replace the table while a stream runs (table.replace(rows), or load it again):
// readers keep the version they hold until they see a new one. Reader and writer share a lock only
// to copy or swap a pointer (once per version per reader), never while a version is built or read.
// Each event meets the version current when it is handled, so unlike the event-time joins
// (join.hpp, temporal_join for a table with versions) the answer depends on when the table
// changed: a lookup join is only mode-equivalent while the table stands still.
//
// Performance: one relaxed atomic load (the table's version) and one hash lookup per event; a
// new version costs each reader one shared_ptr copy.
#pragma once

#include <atomic>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "sluice/core/key.hpp"
#include "sluice/core/time.hpp"
#include "sluice/ops/keyed.hpp"
#include "sluice/ops/process.hpp"

namespace sluice {

/// A keyed table shared by the host (who replaces it) and the flows that read it.
template <class K, class V>
class lookup_table {
 public:
  using map_type = std::unordered_map<K, V, detail::transparent_hash, std::equal_to<>>;

  lookup_table() : current_(std::make_shared<const map_type>()) {}
  explicit lookup_table(map_type rows) : current_(std::make_shared<const map_type>(std::move(rows))) {}
  lookup_table(const lookup_table&) = delete;
  lookup_table& operator=(const lookup_table&) = delete;

  /// Publish a new version; readers switch to it at their next event.
  void replace(map_type rows) {
    auto next = std::make_shared<const map_type>(std::move(rows));
    {
      const std::lock_guard lock(mutex_);
      current_ = std::move(next);
    }
    version_.fetch_add(1, std::memory_order_release);
  }

  [[nodiscard]] std::shared_ptr<const map_type> snapshot() const {
    const std::lock_guard lock(mutex_);
    return current_;
  }
  [[nodiscard]] std::uint64_t version() const { return version_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mutex_;  // held only to copy or swap the pointer
  std::shared_ptr<const map_type> current_;
  std::atomic<std::uint64_t> version_{0};
};

/// A reader's view of a lookup_table: the version it holds, refreshed when the table moves on.
template <class K, class V>
class table_reader {
 public:
  explicit table_reader(const lookup_table<K, V>& table) : table_(&table) {}

  template <class Key>
  const V* find(const Key& key) {
    const std::uint64_t v = table_->version();
    if (!rows_ || v != seen_) {
      seen_ = v;  // read before the snapshot: a replace in between is picked up next time
      rows_ = table_->snapshot();
    }
    const auto it = rows_->find(key);
    return it == rows_->end() ? nullptr : &it->second;
  }

 private:
  const lookup_table<K, V>* table_;
  std::shared_ptr<const typename lookup_table<K, V>::map_type> rows_;
  std::uint64_t seen_ = 0;
};

namespace detail {
/// What a lookup join pushes on: combine(e, row), or combine(e, row-or-nullptr) for a left join.
template <class Combine, class T, class V>
struct lookup_output {
  using type = std::remove_cvref_t<std::invoke_result_t<const Combine&, const T&, const V&>>;
};
template <class Combine, class T, class V>
requires std::is_invocable_v<const Combine&, const T&, const V*>
struct lookup_output<Combine, T, V> {
  using type = std::remove_cvref_t<std::invoke_result_t<const Combine&, const T&, const V*>>;
};
}  // namespace detail

template <class K, class V, class KeyOf, class Combine, class Next>
struct lookup_join_pusher {
  table_reader<K, V> reader;
  KeyOf key_of;
  Combine combine;
  Next next;
  template <class E>
  void operator()(millis t, const E& e) {
    const auto& value = detail::value_of<E>::get(e);
    const V* row = reader.find(std::invoke(key_of, value));
    if constexpr (std::is_invocable_v<const Combine&, decltype(value), const V*>) {
      detail::push_like(next, t, e, std::invoke(combine, value, row));
    } else if (row != nullptr) {
      detail::push_like(next, t, e, std::invoke(combine, value, *row));
    }
  }
  void finish() { next.finish(); }
};

template <class K, class V, class KeyOf, class Combine>
struct lookup_join_stage {
  const lookup_table<K, V>* table;
  KeyOf key_of;
  Combine combine;

  template <class E>
  static constexpr bool accepts = std::invocable<const KeyOf&, const detail::value_of_t<E>&> &&
                                  (std::is_invocable_v<const Combine&, const detail::value_of_t<E>&, const V&> ||
                                   std::is_invocable_v<const Combine&, const detail::value_of_t<E>&, const V*>);

  template <class E>
  using output = detail::rewrap_t<E, typename detail::lookup_output<Combine, detail::value_of_t<E>, V>::type>;

  template <class E, class Next>
  auto bind(Next next) const {
    return lookup_join_pusher<K, V, KeyOf, Combine, Next>{table_reader<K, V>(*table), key_of, combine, std::move(next)};
  }
};

/// Enrich each event with its row in `table` (see the top of this header). The table must
/// outlive the runs of the flow.
template <class K, class V, class KeyOf, class Combine>
lookup_join_stage<K, V, std::decay_t<KeyOf>, std::decay_t<Combine>> lookup_join(const lookup_table<K, V>& table,
                                                                                KeyOf&& key_of, Combine&& combine) {
  return {&table, std::forward<KeyOf>(key_of), std::forward<Combine>(combine)};
}

}  // namespace sluice
