// Monoids that take retractions: what an aggregate fed by a changelog keeps (DESIGN §4a).
//
// A changelog says "retract row r" as well as "insert row r". A group (count, sum, mean) takes a
// retraction by subtracting. Other monoids (min, max, top_k, sketches) cannot undo an add, so
// their inputs are kept as a multiset and folded when the result is read: max over {3, 7, 7}
// retracting 7 answers 7, retracting it again answers 3. Either way a count of live rows per
// key says when every row of the key has been retracted, and the key's entry goes.
#pragma once

#include <concepts>
#include <cstdint>
#include <map>
#include <tuple>
#include <utility>

#include "sluice/core/key.hpp"
#include "sluice/core/monoid.hpp"

namespace sluice {

/// M over T's inputs kept as a multiset (value -> multiplicity): add and subtract are O(log n),
/// result folds the multiset with M (in value order, so the answer does not depend on arrival).
template <class M, class T>
struct multiset_monoid {
  static_assert(std::totally_ordered<owned_key_t<T>>,
                "sluice: retracting rows from min/max/top_k/sketches keeps them in a multiset, which needs values "
                "with operator<: map the rows to a number or a tuple first");
  M inner;
  using state = std::map<owned_key_t<T>, std::int64_t, std::less<>>;
  [[nodiscard]] state identity() const { return {}; }
  void add(state& s, const T& x) const { change(s, x, +1); }
  void subtract(state& s, const T& x) const { change(s, x, -1); }
  void merge(state& s, const state& o) const {
    for (const auto& [value, n] : o) {
      change(s, value, n);
    }
  }
  [[nodiscard]] auto result(const state& s) const {
    auto folded = inner.identity();
    for (const auto& [value, n] : s) {
      for (std::int64_t i = 0; i < n; ++i) {
        inner.add(folded, value);
      }
    }
    return inner.result(folded);
  }

 private:
  template <class V>
  static void change(state& s, const V& x, std::int64_t by) {
    auto it = s.find(x);
    if (it == s.end()) {
      it = s.emplace(to_owned(x), 0).first;
    }
    if ((it->second += by) == 0) {
      s.erase(it);
    }
  }
};

/// The monoid a changelog-fed aggregate keeps for M over T: M itself when it is a group, else
/// the multiset of its inputs.
template <class M, class T>
using retractable_t = std::conditional_t<group_for<M, T>, M, multiset_monoid<M, T>>;

template <class M, class T>
retractable_t<M, T> make_retractable(M m) {
  if constexpr (group_for<M, T>) {
    return m;
  } else {
    return multiset_monoid<M, T>{std::move(m)};
  }
}

/// G (a group over T) plus the number of live rows, so that an entry whose rows were all
/// retracted can be dropped instead of answering "count 0".
template <class G>
struct counted_monoid {
  G inner;
  struct state {
    std::int64_t rows = 0;
    typename G::state value;
    auto fields() { return std::tie(rows, value); }
    auto fields() const { return std::tie(rows, value); }
  };
  [[nodiscard]] state identity() const { return {0, inner.identity()}; }
  template <class T>
  void add(state& s, const T& x) const {
    ++s.rows;
    inner.add(s.value, x);
  }
  template <class T>
  void subtract(state& s, const T& x) const {
    --s.rows;
    inner.subtract(s.value, x);
  }
  void merge(state& s, const state& o) const {
    s.rows += o.rows;
    inner.merge(s.value, o.value);
  }
  [[nodiscard]] auto result(const state& s) const { return inner.result(s.value); }
  [[nodiscard]] static bool empty(const state& s) { return s.rows == 0; }
};

}  // namespace sluice
