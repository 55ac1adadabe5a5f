// batch_view: the Lambda batch layer's published view V_E, as immutable versions that share
// what did not change. Publishing V_E' = V_E (+) batch([E, E')) costs in proportion to what the
// new epochs touch, not to |V|; a reader holds a version by a shared_ptr (O(1)) and never copies it.
//
//   V = sorted shards, each an immutable keyed_state behind a shared_ptr:
//     windowed views (key, time window): one shard per window; new epochs touch the few
//       windows around the present, so a publish rebuilds those and shares every other one;
//     other views: shards by bits of the key's hash, each split in two once they average
//       `max_shard_entries`, so a publish copies the shards the delta's keys fall in.
//   merged(delta, horizon): a new version; touched shards are copied and merged, the others
//     shared; windows that ended before the retention horizon are left out.
//
// A shard is copied whole when touched (copy-on-write, into a table sized for it), so the cost
// of a publish is the size of the touched shards: for windowed views, the windows the new
// events fall in; for the others, at most min(|V|, touched keys x shard size).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/core/time.hpp"
#include "sluice/core/window.hpp"
#include "sluice/ops/keyed_state.hpp"

namespace sluice {

namespace detail {
template <class Key>
struct time_windowed : std::false_type {};
template <class K>
struct time_windowed<windowed_key<K, time_window>> : std::true_type {};
}  // namespace detail

template <class Key, class Monoid>
class batch_view {
 public:
  using state_type = keyed_state<Key, Monoid>;
  /// Results under `Key` belong to event-time windows (and so can be retained by time).
  static constexpr bool by_window = detail::time_windowed<Key>::value;
  /// A shard's id: its window (windowed views) or its keys' hash bits (the others).
  using shard_id = std::conditional_t<by_window, time_window, std::uint64_t>;
  using shard_ptr = std::shared_ptr<const state_type>;
  struct shard {
    shard_id id;
    shard_ptr entries;
  };

  /// Hash shards split in two once they hold this many entries on average (windowed views keep
  /// one shard a window, whatever its size).
  static constexpr std::size_t max_shard_entries = std::size_t{1} << 15;

  explicit batch_view(Monoid m = Monoid{}) : monoid_(std::move(m)) {}

  /// The shard `key` belongs in.
  template <class BorrowedKey>
  [[nodiscard]] shard_id shard_of(const BorrowedKey& key) const {
    return shard_id_at(key, depth_);
  }

  /// The shard with this id, or null.
  [[nodiscard]] const state_type* find_shard(const shard_id& id) const {
    const auto it = std::lower_bound(shards_.begin(), shards_.end(), id, [](const shard& s, const shard_id& i) {
      return s.id < i;
    });
    return it != shards_.end() && it->id == id ? it->entries.get() : nullptr;
  }

  template <class BorrowedKey>
  [[nodiscard]] const typename state_type::state_type* find(const BorrowedKey& key) const {
    const state_type* s = find_shard(shard_of(key));
    return s == nullptr ? nullptr : s->find(key);
  }

  /// The shards, ordered by id (windows by start, then end).
  [[nodiscard]] const std::vector<shard>& shards() const { return shards_; }
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] const Monoid& monoid() const { return monoid_; }
  /// Bytes the shards' tables take (slots and control bytes; not what owned keys allocate).
  [[nodiscard]] std::size_t table_bytes() const {
    std::size_t bytes = 0;
    for (const shard& s : shards_) {
      bytes += s.entries->table_bytes();
    }
    return bytes;
  }

  /// This version (+) `delta`, leaving out windows that end at or before `horizon`: a new
  /// version that shares every shard `delta` does not touch (and this one stays as it was).
  [[nodiscard]] batch_view merged(const state_type& delta, millis horizon = millis::min()) const {
    return merged(std::vector<const state_type*>{&delta}, horizon);
  }

  /// This version (+) every state of `deltas` (read, not copied: a Lambda publish passes the
  /// speed layer's frozen epochs as they are).
  [[nodiscard]] batch_view merged(const std::vector<const state_type*>& deltas, millis horizon = millis::min()) const {
    // The deltas by shard: the only entries copied besides the touched shards.
    std::map<shard_id, state_type> parts = split(deltas, depth_, horizon);
    batch_view next(monoid_);
    next.depth_ = depth_;
    next.shards_.reserve(shards_.size() + parts.size());
    auto part = parts.begin();
    auto add_new = [&](const shard_id& id, state_type&& entries) {
      next.size_ += entries.size();
      next.shards_.push_back(shard{id, std::make_shared<const state_type>(std::move(entries))});
    };
    for (const shard& s : shards_) {
      for (; part != parts.end() && part->first < s.id; ++part) {
        add_new(part->first, std::move(part->second));
      }
      if (!shard_kept(s.id, horizon)) {
        continue;  // parts hold no entry of a shard dropped: split left them out
      }
      if (part != parts.end() && part->first == s.id) {
        add_new(s.id, with_part(*s.entries, part->second));  // copy on write: readers keep this version's
        part->second = state_type(monoid_);  // merged in: its memory goes now, not after the last shard
        ++part;
      } else {
        next.size_ += s.entries->size();
        next.shards_.push_back(s);
      }
    }
    for (; part != parts.end(); ++part) {
      add_new(part->first, std::move(part->second));
    }
    if constexpr (!by_window) {
      next.split_while_too_big();
    }
    return next;
  }

  /// This version without the windows that end at or before `horizon` (shares the others).
  [[nodiscard]] batch_view retained(millis horizon) const { return merged(state_type(monoid_), horizon); }

  /// Whether a shard is still served with the retention horizon at `horizon`: a window is
  /// dropped once it ended at or before the horizon; hash shards always stay.
  static bool shard_kept(const shard_id& id, millis horizon) {
    if constexpr (by_window) {
      return id.end > horizon;
    } else {
      return true;
    }
  }
  /// Whether the result under `key` is (shard_kept of its shard).
  template <class K>
  static bool kept(const K& key, millis horizon) {
    if constexpr (by_window) {
      return shard_kept(key.window, horizon);
    } else {
      return true;
    }
  }

 private:

  // Bits 32.. of the hash: the table inside a shard indexes by the low bits and files control
  // bytes by the top 7, so a shard's keys still spread over both.
  static std::uint64_t hash_bits(std::uint64_t h, unsigned depth) {
    return depth == 0 ? 0 : (h >> 32U) & ((std::uint64_t{1} << depth) - 1);
  }

  /// The entries of `states` (windows kept at `horizon`) by shard at `depth`. Each shard's
  /// table is sized before it is filled: entries come in their source's slot order, which piles
  /// up in a table that grows as they come (see flat_table).
  std::map<shard_id, state_type> split(const std::vector<const state_type*>& states, unsigned depth,
                                       millis horizon) const {
    std::map<shard_id, std::size_t> counts;
    for (const state_type* s : states) {
      for (const auto& e : *s) {
        if (kept(e.key, horizon)) {
          ++counts[shard_id_at(e.key, depth)];
        }
      }
    }
    std::map<shard_id, state_type> parts;
    for (const auto& [id, n] : counts) {
      parts.try_emplace(id, monoid_).first->second.reserve(n);
    }
    for (const state_type* s : states) {
      for (const auto& e : *s) {
        if (kept(e.key, horizon)) {
          monoid_.merge(parts.find(shard_id_at(e.key, depth))->second.slot(e.key), e.value);
        }
      }
    }
    return parts;
  }

  /// A copy of `shard` with `part` merged in, its table sized for exactly the entries it gets
  /// (a copy would keep the old table's slack, and a merge grows it by doubling).
  state_type with_part(const state_type& shard, const state_type& part) const {
    std::size_t added = 0;
    for (const auto& e : part) {
      added += shard.find(e.key) == nullptr ? 1 : 0;
    }
    state_type out(monoid_);
    out.reserve(shard.size() + added);
    for (const auto& e : shard) {
      out.slot(e.key) = e.value;
    }
    for (const auto& e : part) {
      monoid_.merge(out.slot(e.key), e.value);
    }
    return out;
  }

  template <class BorrowedKey>
  static shard_id shard_id_at(const BorrowedKey& key, unsigned depth) {
    if constexpr (by_window) {
      return key.window;
    } else {
      return hash_bits(hash_value(key), depth);
    }
  }

  // Amortised like a hash table's growth: each doubling rehashes every entry once.
  void split_while_too_big() {
    constexpr unsigned max_depth = 20;
    while (depth_ < max_depth && size_ > max_shard_entries * (std::size_t{1} << depth_)) {
      ++depth_;
      std::vector<const state_type*> all;
      for (const shard& s : shards_) {
        all.push_back(s.entries.get());
      }
      std::map<shard_id, state_type> parts = split(all, depth_, millis::min());
      shards_.clear();
      for (auto& [id, entries] : parts) {
        shards_.push_back(shard{id, std::make_shared<const state_type>(std::move(entries))});
      }
    }
  }

  Monoid monoid_;
  std::vector<shard> shards_;  // sorted by id
  std::size_t size_ = 0;
  unsigned depth_ = 0;  // hash shards: 2^depth of them
};

}  // namespace sluice
