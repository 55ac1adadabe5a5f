// Keyed aggregate state: key -> monoid state in one flat hash table. The partial a worker
// builds, the merged result of a batch run and the data of a result store are all this.
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include "sluice/core/codec.hpp"
#include "sluice/core/detail/flat_table.hpp"
#include "sluice/core/key.hpp"
#include "sluice/core/monoid.hpp"

namespace sluice {

template <class Key, class Monoid>
class keyed_state {
 public:
  using key_type = Key;
  using monoid_type = Monoid;
  using state_type = typename Monoid::state;
  using result_type = decltype(std::declval<const Monoid&>().result(std::declval<const state_type&>()));

  explicit keyed_state(Monoid m = Monoid{}) : monoid_(std::move(m)) {}

  /// Fold one input into the state of `key` (a borrowed key: no allocation unless it is new).
  template <class BorrowedKey, class Input>
  void add(const BorrowedKey& key, const Input& input) {
    monoid_.add(slot(key), input);
  }

  /// The state of `key`, created as the monoid's identity if absent.
  template <class BorrowedKey>
  state_type& slot(const BorrowedKey& key) {
    return table_.find_or_insert(key, [this] { return monoid_.identity(); });
  }

  /// Fold another partial into this one with the monoid's merge.
  void merge(const keyed_state& other) {
    // other's slot order piles up in a smaller table, and in one that grows while it comes in
    // (two chunks' windows are mostly disjoint: merging 0.8M sliding-window entries took 23 s).
    table_.reserve_slots(other.table_.slot_count());
    table_.reserve(size() + other.size());
    for (const auto& e : other.table_) {
      monoid_.merge(slot(e.key), e.value);
    }
  }

  /// Overwrite this state's entries with `other`'s (keys absent from `other` are kept): how a
  /// window that fires again after a late event replaces its earlier answer.
  void replace(const keyed_state& other) {
    table_.reserve_slots(other.table_.slot_count());
    for (const auto& e : other.table_) {
      slot(e.key) = e.value;
    }
  }

  /// Keep the entries for which keep(key, state&) is true; keep may move a dropped state out.
  template <class Keep>
  void retain_if(Keep&& keep) {
    table_.retain_if([&](auto& e) { return keep(static_cast<const Key&>(e.key), e.value); });
  }

  /// Make room for `entries` entries (before inserting a part of another state in its order).
  void reserve(std::size_t entries) { table_.reserve(entries); }

  template <class BorrowedKey>
  [[nodiscard]] const state_type* find(const BorrowedKey& key) const {
    return table_.find(key);
  }
  template <class BorrowedKey>
  [[nodiscard]] state_type* find(const BorrowedKey& key) {
    return table_.find(key);
  }

  /// Writes every entry, key then state, for a checkpoint (sluice/core/codec.hpp).
  void save(byte_writer& out) const {
    out.put_varint(size());
    for (const auto& e : table_) {
      encode(out, e.key);
      encode(out, e.value);
    }
  }

  /// Replaces the entries with what save() wrote, all or nothing: bytes that do not decode, a
  /// key that appears twice or a state the monoid calls invalid (when it has valid(state)) are
  /// a codec_error and leave this state as it was.
  void load(byte_reader& in) {
    keyed_state loaded(monoid_);
    const std::size_t n = in.get_count();
    loaded.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      Key key{};
      decode(in, key);
      state_type st = monoid_.identity();
      decode(in, st);
      if constexpr (requires { monoid_.valid(st); }) {
        if (!monoid_.valid(st)) {
          in.fail("entry " + std::to_string(i) + " holds a state this aggregate cannot hold");
        }
      }
      if (loaded.find(key) != nullptr) {
        in.fail("entry " + std::to_string(i) + " repeats a key");
      }
      loaded.slot(key) = std::move(st);
    }
    table_ = std::move(loaded.table_);
  }

  [[nodiscard]] std::size_t size() const { return table_.size(); }
  /// Bytes of the table itself (its slots and control bytes; not what owned keys or states allocate).
  [[nodiscard]] std::size_t table_bytes() const { return table_.table_bytes(); }
  [[nodiscard]] const Monoid& monoid() const { return monoid_; }

  // Entries (key, state) in slot order: arbitrary, but the same for the same insertions.
  [[nodiscard]] auto begin() const { return table_.begin(); }
  [[nodiscard]] auto end() const { return table_.end(); }

 private:
  Monoid monoid_;
  detail::flat_table<Key, state_type> table_;
};

}  // namespace sluice
