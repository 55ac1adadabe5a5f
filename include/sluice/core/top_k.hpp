// top_k(k, f): the k largest f(x), kept as a short sorted list so that partials merge exactly
// and the answer does not depend on input or merge order.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/core/key.hpp"
#include "sluice/core/monoid.hpp"

namespace sluice {

namespace detail {
/// A and B can be ranked against each other directly (a string_view from the input against a
/// kept std::string), so a losing input is rejected before it is copied into an owned value.
template <class C, class A, class B>
concept ranks_with = std::predicate<const C&, const A&, const B&> && std::predicate<const C&, const B&, const A&> &&
    std::totally_ordered_with<A, B>;
}  // namespace detail

// Performance: per event one projection and one comparison against the current k-th best;
// only an input that enters the list costs a binary search and a shift of up to k values.
// No allocation once k values are held (a borrowed string is copied only if it enters).
template <class F, class V, class Compare>
struct top_k_monoid {
  F project;
  std::size_t k = 0;
  Compare compare;

  using state = std::vector<V>;  // best first, at most k values

  /// Whether `s` is a state of this monoid (a restored checkpoint's): at most k values.
  [[nodiscard]] bool valid(const state& s) const { return s.size() <= k; }
  [[nodiscard]] state identity() const { return {}; }

  /// a ranks before b: better under compare; among equivalent values the larger one by V's own
  /// ordering first. That is a total order, so which k values are kept never depends on the order
  /// they arrived in (values equal under == are interchangeable).
  template <class A, class B>
  [[nodiscard]] bool before(const A& a, const B& b) const {
    if (std::invoke(compare, a, b)) {
      return true;
    }
    if (std::invoke(compare, b, a)) {
      return false;
    }
    return b < a;
  }

  template <class T>
  void add(state& s, const T& x) const {
    if (k == 0) {
      return;
    }
    decltype(auto) v = std::invoke(project, x);
    using R = std::remove_cvref_t<decltype(v)>;
    if constexpr (std::is_same_v<R, V> || detail::ranks_with<Compare, R, V>) {
      offer(s, std::forward<decltype(v)>(v));
    } else {
      offer(s, V(to_owned(v)));
    }
  }

  void merge(state& s, const state& o) const {
    if (o.empty() || (s.size() == k && !before(o.front(), s.back()))) {
      return;
    }
    if (s.empty()) {
      s = o;
      return;
    }
    if (&s == &o) {  // values are moved out of s below, so never read them through o as well
      const state copy = o;
      merge(s, copy);
      return;
    }
    // Both lists are sorted best first under the same total order: a two-way merge, cut at k.
    state out;
    out.reserve(std::min(k, s.size() + o.size()));
    auto a = s.begin();
    auto b = o.begin();
    while (out.size() < k && (a != s.end() || b != o.end())) {
      if (b == o.end() || (a != s.end() && !before(*b, *a))) {
        out.push_back(std::move(*a++));
      } else {
        out.push_back(*b++);
      }
    }
    s = std::move(out);
  }

  [[nodiscard]] std::vector<V> result(const state& s) const { return s; }

 private:
  template <class U>
  void offer(state& s, U&& v) const {
    if (s.size() == k && !before(v, s.back())) {
      return;
    }
    // After any equal values already held: equal values are interchangeable anyway.
    const auto at = static_cast<std::size_t>(
        std::upper_bound(s.begin(), s.end(), v, [this](const auto& a, const V& b) { return this->before(a, b); }) -
        s.begin());
    if (s.size() == k) {
      s.pop_back();  // makes room first, so a full list never reallocates
    }
    const auto pos = s.begin() + static_cast<std::ptrdiff_t>(at);
    if constexpr (std::is_same_v<std::remove_cvref_t<U>, V>) {
      s.insert(pos, std::forward<U>(v));
    } else {
      s.insert(pos, V(to_owned(v)));
    }
  }
};

/// top_k(k, f) / top_k(k, f, compare): the k best f(x), best first. By default the largest;
/// compare(a, b) == true means a is better than b (a strict weak order, e.g. std::less<> for the
/// k smallest). Ties under compare go to the larger value by V's own ordering, which is why f(x)
/// must be std::totally_ordered (floating NaN breaks that and must not be fed in). To keep the k
/// best events rather than scores, project to a tuple such as {score, id}. A borrowed
/// std::string_view result is kept as an owned std::string.
template <class F, class C = std::greater<>>
struct top_k {
  std::size_t k;
  F project;
  C compare;

  constexpr explicit top_k(std::size_t keep, F f, C c = C{}) : k(keep), project(std::move(f)), compare(std::move(c)) {}

  template <class T>
  [[nodiscard]] auto bind() const {
    static_assert(detail::projection_for<F, T>, "sluice::top_k(k, f): f must be callable with the event type");
    using V = owned_key_t<detail::projected_t<F, T>>;
    static_assert(std::totally_ordered<V>, "sluice::top_k(k, f): f(x) must be totally ordered");
    static_assert(std::predicate<const C&, const V&, const V&>,
                  "sluice::top_k(k, f, compare): compare must take two values of f's result type");
    return top_k_monoid<F, V, C>{project, k, compare};
  }
};

namespace detail {
/// The event itself, as top_n ranks whole events.
struct whole_event {
  template <class T>
  const T& operator()(const T& x) const {
    return x;
  }
};
}  // namespace detail

/// top_n(n, better): the n best events per key (and window), best first: Flink SQL's
/// ROW_NUMBER() OVER (PARTITION BY key ORDER BY ...) <= n. better(a, b) == true means a ranks
/// before b; spell the tie-breaks into it (price, then earlier time, then smaller id). Events
/// that better() leaves tied go to the larger event by its own ordering, so the n kept never
/// depend on arrival or merge order; the event type must be std::totally_ordered. Events are
/// kept by value: map one with string_view members to one that owns its strings first.
template <class C>
top_k<detail::whole_event, C> top_n(std::size_t n, C better) {
  return top_k<detail::whole_event, C>(n, detail::whole_event{}, std::move(better));
}

}  // namespace sluice
