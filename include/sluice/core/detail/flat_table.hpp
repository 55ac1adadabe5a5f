// An open-addressing hash table for keyed state: linear probing over a byte array of control
// bytes (occupied flag + 7 bits of the hash; 1 byte a slot, so it stays in cache when the slots
// do not) beside the slots, which hold key and value inline: a lookup of a large table touches
// one slot's cache line. Lookups take a borrowed key (a string_view into the input) without
// building the owned key.
//
// Every table maps a hash to the same home slot (its low bits), so a table's slot order is the
// home order of any other table: inserting many entries in one table's slot order into a
// smaller table fills one region at a time and the probe runs grow without bound (merging
// 1.4M windows into an empty store took 20 s, not 0.1 s). Bulk inserts reserve_slots() first:
// with at least as many slots, each entry lands where it was. (A per-table hash multiplier
// also fixes it, but costs 5-10% on every lookup.)
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/core/hash.hpp"
#include "sluice/core/key.hpp"

namespace sluice::detail {

template <class Key, class Value>
class flat_table {
  static_assert(std::is_default_constructible_v<Key> && std::is_default_constructible_v<Value>,
                "sluice: keys and aggregate states must be default-constructible");

 public:
  struct entry {
    Key key;
    Value value;
  };

 private:
  template <class Entry>
  class basic_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = entry;
    using difference_type = std::ptrdiff_t;
    using pointer = Entry*;
    using reference = Entry&;

    basic_iterator() = default;
    basic_iterator(const std::uint8_t* ctrl, Entry* at, Entry* end) : ctrl_(ctrl), at_(at), end_(end) { skip_empty(); }
    reference operator*() const { return *at_; }
    pointer operator->() const { return at_; }
    basic_iterator& operator++() {
      ++at_;
      ++ctrl_;
      skip_empty();
      return *this;
    }
    basic_iterator operator++(int) {
      auto old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const basic_iterator& a, const basic_iterator& b) { return a.at_ == b.at_; }

   private:
    void skip_empty() {
      while (at_ != end_ && *ctrl_ == 0) {
        ++at_;
        ++ctrl_;
      }
    }
    const std::uint8_t* ctrl_ = nullptr;
    Entry* at_ = nullptr;
    Entry* end_ = nullptr;
  };

 public:
  using iterator = basic_iterator<entry>;
  using const_iterator = basic_iterator<const entry>;

  flat_table() = default;

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }

  /// The value for `borrowed`, inserted as `make_value()` when absent.
  /// `Borrowed` must hash like `Key` and compare equal to it with key_equal.
  template <class Borrowed, class MakeValue>
  Value& find_or_insert(const Borrowed& borrowed, MakeValue&& make_value) {
    if (too_full(size_ + 1, slots_.size())) {
      grow();
    }
    const std::uint64_t h = hash_value(borrowed);
    const std::uint8_t c = control_of(h);
    for (std::size_t i = slot_of(h, mask_);; i = (i + 1) & mask_) {
      if (ctrl_[i] == c && key_equal(slots_[i].key, borrowed)) {
        return slots_[i].value;
      }
      if (ctrl_[i] == 0) {
        ctrl_[i] = c;
        slots_[i].key = to_owned(borrowed);
        slots_[i].value = make_value();
        ++size_;
        return slots_[i].value;
      }
    }
  }

  template <class Borrowed>
  [[nodiscard]] const Value* find(const Borrowed& borrowed) const {
    if (slots_.empty()) {
      return nullptr;
    }
    const std::uint64_t h = hash_value(borrowed);
    const std::uint8_t c = control_of(h);
    for (std::size_t i = slot_of(h, mask_);; i = (i + 1) & mask_) {
      if (ctrl_[i] == c && key_equal(slots_[i].key, borrowed)) {
        return &slots_[i].value;
      }
      if (ctrl_[i] == 0) {
        return nullptr;
      }
    }
  }

  template <class Borrowed>
  [[nodiscard]] Value* find(const Borrowed& borrowed) {
    return const_cast<Value*>(std::as_const(*this).find(borrowed));
  }

  // Entries in slot order (arbitrary but deterministic for the same insertions).
  [[nodiscard]] const_iterator begin() const { return {ctrl_.data(), slots_.data(), slots_.data() + slots_.size()}; }
  [[nodiscard]] const_iterator end() const {
    return {ctrl_.data() + ctrl_.size(), slots_.data() + slots_.size(), slots_.data() + slots_.size()};
  }
  [[nodiscard]] iterator begin() { return {ctrl_.data(), slots_.data(), slots_.data() + slots_.size()}; }
  [[nodiscard]] iterator end() {
    return {ctrl_.data() + ctrl_.size(), slots_.data() + slots_.size(), slots_.data() + slots_.size()};
  }

  /// Keep the entries for which keep(entry&) is true; keep may move out of an entry it drops
  /// (stream mode hands fired windows on this way). Rebuilds the table: O(slots).
  template <class Keep>
  void retain_if(Keep&& keep) {
    flat_table kept;
    kept.reserve_slots(slots_.size());  // inserted in this table's slot order: see the top
    for (std::size_t j = 0; j < slots_.size(); ++j) {
      if (ctrl_[j] != 0 && keep(slots_[j])) {
        kept.insert_new(std::move(slots_[j]));
      }
    }
    *this = std::move(kept);
  }

  /// Grow to at least `capacity` slots: before inserting another table's entries in its slot
  /// order (a merge), so that they do not pile up in long probe runs.
  void reserve_slots(std::size_t capacity) {
    if (slots_.size() < capacity) {
      rehash(std::bit_ceil(std::max(capacity, min_slots)));  // one step, not a doubling at a time
    }
  }
  /// Grow so that `entries` entries fit without growing: before inserting a subset of another
  /// table's entries in its slot order (splitting a table), which, inserted into a table that
  /// grows as they come, would pile up like a merge into a smaller one.
  void reserve(std::size_t entries) {
    std::size_t capacity = std::max(slots_.size(), min_slots);
    while (too_full(entries, capacity)) {
      capacity *= 2;
    }
    if (capacity > slots_.size()) {
      rehash(capacity);
    }
  }
  [[nodiscard]] std::size_t slot_count() const { return slots_.size(); }
  [[nodiscard]] std::size_t table_bytes() const { return slots_.size() * (sizeof(entry) + 1); }

  void clear() {
    ctrl_.clear();
    slots_.clear();
    size_ = 0;
    mask_ = 0;
  }

 private:
  // Small tables (all in cache anyway) grow at half full, for the shortest probes; large ones
  // at 4/5 full, so that 100k keys keep 128k slots and more of them stay in cache.
  static constexpr std::size_t min_slots = 16;

  static bool too_full(std::size_t entries, std::size_t slots) {
    const bool small = slots <= 4096;
    return entries * (small ? 2 : 5) > slots * (small ? 1 : 4);
  }

  // Occupied flag (high bit) and 7 hash bits that rarely match a different key's: most probes
  // of other keys' slots are rejected without touching the slot.
  static std::uint8_t control_of(std::uint64_t h) { return static_cast<std::uint8_t>(0x80U | (h >> 57U)); }
  static std::size_t slot_of(std::uint64_t h, std::size_t mask) { return static_cast<std::size_t>(h) & mask; }

  // Insert an entry whose key is known to be absent.
  void insert_new(entry&& e) {
    if ((size_ + 1) * 2 > slots_.size()) {
      grow();
    }
    const std::uint64_t h = hash_value(e.key);
    std::size_t i = slot_of(h, mask_);
    while (ctrl_[i] != 0) {
      i = (i + 1) & mask_;
    }
    ctrl_[i] = control_of(h);
    slots_[i] = std::move(e);
    ++size_;
  }

  void grow() { rehash(slots_.empty() ? min_slots : slots_.size() * 2); }

  // Move every entry into `capacity` (a power of two, at least the entries) fresh slots.
  void rehash(std::size_t capacity) {
    std::vector<std::uint8_t> fresh_ctrl(capacity, 0);
    std::vector<entry> fresh(capacity);
    const std::size_t mask = capacity - 1;
    for (std::size_t j = 0; j < slots_.size(); ++j) {
      if (ctrl_[j] == 0) {
        continue;
      }
      std::size_t i = slot_of(hash_value(slots_[j].key), mask);
      while (fresh_ctrl[i] != 0) {
        i = (i + 1) & mask;
      }
      fresh_ctrl[i] = ctrl_[j];
      fresh[i] = std::move(slots_[j]);
    }
    ctrl_ = std::move(fresh_ctrl);
    slots_ = std::move(fresh);
    mask_ = mask;
  }

  std::vector<std::uint8_t> ctrl_;
  std::vector<entry> slots_;
  std::size_t size_ = 0;
  std::size_t mask_ = 0;
};

}  // namespace sluice::detail
