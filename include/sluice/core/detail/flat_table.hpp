// An open-addressing hash table for keyed state: one probe sequence, no node allocation,
// lookups by a borrowed key (a string_view into the input) without building the owned key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "sluice/core/hash.hpp"
#include "sluice/core/key.hpp"

namespace sluice::detail {

template <class Key, class Value>
class flat_table {
 public:
  struct entry {
    Key key;
    Value value;
  };

  flat_table() = default;

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }

  /// The value for `borrowed`, inserted as `make_value()` when absent.
  /// `Borrowed` must hash like `Key` and compare equal to it with ==.
  template <class Borrowed, class MakeValue>
  Value& find_or_insert(const Borrowed& borrowed, MakeValue&& make_value) {
    if ((size_ + 1) * 4 > slots_.size() * 3) {
      grow();
    }
    const std::uint64_t h = tag(hash_value(borrowed));
    std::size_t i = slot_of(h, mask_);
    while (true) {
      slot& s = slots_[i];
      if (s.tag == 0) {
        s.tag = h;
        s.index = static_cast<std::uint32_t>(entries_.size());
        entries_.push_back(entry{to_owned(borrowed), make_value()});
        ++size_;
        return entries_.back().value;
      }
      if (s.tag == h && entries_[s.index].key == borrowed) {
        return entries_[s.index].value;
      }
      i = (i + 1) & mask_;
    }
  }

  template <class Borrowed>
  [[nodiscard]] const Value* find(const Borrowed& borrowed) const {
    if (slots_.empty()) {
      return nullptr;
    }
    const std::uint64_t h = tag(hash_value(borrowed));
    for (std::size_t i = slot_of(h, mask_);; i = (i + 1) & mask_) {
      const slot& s = slots_[i];
      if (s.tag == 0) {
        return nullptr;
      }
      if (s.tag == h && entries_[s.index].key == borrowed) {
        return &entries_[s.index].value;
      }
    }
  }

  // Entries in insertion order; stable across lookups, invalidated by inserts.
  [[nodiscard]] auto begin() const { return entries_.begin(); }
  [[nodiscard]] auto end() const { return entries_.end(); }
  [[nodiscard]] auto begin() { return entries_.begin(); }
  [[nodiscard]] auto end() { return entries_.end(); }

  void clear() {
    slots_.clear();
    entries_.clear();
    size_ = 0;
    mask_ = 0;
  }

 private:
  struct slot {
    std::uint64_t tag = 0;  // 0 marks an empty slot; otherwise the key's hash with the low bit set
    std::uint32_t index = 0;
  };

  static std::uint64_t tag(std::uint64_t h) { return h | 1U; }
  // The low bit is the occupied flag, so the slot index comes from the bits above it.
  static std::size_t slot_of(std::uint64_t tag, std::size_t mask) { return static_cast<std::size_t>(tag >> 1U) & mask; }

  void grow() {
    const std::size_t capacity = slots_.empty() ? 16 : slots_.size() * 2;
    std::vector<slot> fresh(capacity);
    const std::size_t mask = capacity - 1;
    for (const slot& s : slots_) {
      if (s.tag == 0) {
        continue;
      }
      std::size_t i = slot_of(s.tag, mask);
      while (fresh[i].tag != 0) {
        i = (i + 1) & mask;
      }
      fresh[i] = s;
    }
    slots_ = std::move(fresh);
    mask_ = mask;
    entries_.reserve(capacity * 3 / 4);
  }

  std::vector<slot> slots_;
  std::vector<entry> entries_;
  std::size_t size_ = 0;
  std::size_t mask_ = 0;
};

}  // namespace sluice::detail
