// An open-addressing hash table for keyed state: linear probing over one array of slots that
// hold the key and value inline (one cache miss per lookup), and lookups by a borrowed key (a
// string_view into the input) without building the owned key.
#pragma once

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
  struct slot {
    std::uint64_t tag = 0;  // 0 marks an empty slot; otherwise the key's hash with the low bit set
    entry e;
  };

  template <class Slot, class Entry>
  class basic_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = entry;
    using difference_type = std::ptrdiff_t;
    using pointer = Entry*;
    using reference = Entry&;

    basic_iterator() = default;
    basic_iterator(Slot* at, Slot* end) : at_(at), end_(end) { skip_empty(); }
    reference operator*() const { return at_->e; }
    pointer operator->() const { return &at_->e; }
    basic_iterator& operator++() {
      ++at_;
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
      while (at_ != end_ && at_->tag == 0) {
        ++at_;
      }
    }
    Slot* at_ = nullptr;
    Slot* end_ = nullptr;
  };

 public:
  using iterator = basic_iterator<slot, entry>;
  using const_iterator = basic_iterator<const slot, const entry>;

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
    for (std::size_t i = slot_of(h, mask_);; i = (i + 1) & mask_) {
      slot& s = slots_[i];
      if (s.tag == h && key_equal(s.e.key, borrowed)) {
        return s.e.value;
      }
      if (s.tag == 0) {
        s.tag = h;
        s.e.key = to_owned(borrowed);
        s.e.value = make_value();
        ++size_;
        return s.e.value;
      }
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
      if (s.tag == h && key_equal(s.e.key, borrowed)) {
        return &s.e.value;
      }
      if (s.tag == 0) {
        return nullptr;
      }
    }
  }

  // Entries in slot order (arbitrary but deterministic for the same insertions).
  [[nodiscard]] const_iterator begin() const { return {slots_.data(), slots_.data() + slots_.size()}; }
  [[nodiscard]] const_iterator end() const { return {slots_.data() + slots_.size(), slots_.data() + slots_.size()}; }
  [[nodiscard]] iterator begin() { return {slots_.data(), slots_.data() + slots_.size()}; }
  [[nodiscard]] iterator end() { return {slots_.data() + slots_.size(), slots_.data() + slots_.size()}; }

  void clear() {
    slots_.clear();
    size_ = 0;
    mask_ = 0;
  }

 private:
  static std::uint64_t tag(std::uint64_t h) { return h | 1U; }
  // The low bit is the occupied flag, so the slot index comes from the bits above it.
  static std::size_t slot_of(std::uint64_t tag, std::size_t mask) { return static_cast<std::size_t>(tag >> 1U) & mask; }

  void grow() {
    const std::size_t capacity = slots_.empty() ? 16 : slots_.size() * 2;
    std::vector<slot> fresh(capacity);
    const std::size_t mask = capacity - 1;
    for (slot& s : slots_) {
      if (s.tag == 0) {
        continue;
      }
      std::size_t i = slot_of(s.tag, mask);
      while (fresh[i].tag != 0) {
        i = (i + 1) & mask;
      }
      fresh[i] = std::move(s);
    }
    slots_ = std::move(fresh);
    mask_ = mask;
  }

  std::vector<slot> slots_;
  std::size_t size_ = 0;
  std::size_t mask_ = 0;
};

}  // namespace sluice::detail
