// window(spec): groups a keyed stream into windows before aggregate. Specs:
//   tumbling(size)          [k*size, (k+1)*size)                         one window per event
//   sliding(size, slide)    [k*slide, k*slide + size)                    size/slide windows per event
//   session(gap)            events closer than gap merge into one window [first, last + gap)
//   count_window(n)         every n events of a key, in arrival order    (order-sensitive)
//
//   (k, x@t) --window(tumbling(1min))--> (k, [t - t%60000, +60000), x)
//
// window(...) must be followed by aggregate(...); the two fuse into one stateful stage.
#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>

#include "sluice/core/time.hpp"
#include "sluice/core/window.hpp"

namespace sluice {

namespace detail {
/// floor(a / b) for b > 0, correct for negative event times too.
constexpr std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

inline std::int64_t positive_millis(std::int64_t ms, const char* what) {
  if (ms <= 0) {
    throw std::invalid_argument(what);
  }
  return ms;
}
}  // namespace detail

/// Fixed-size, non-overlapping windows.
struct tumbling_window {
  std::int64_t size_ms;
  static constexpr bool merging = false;
  static constexpr bool order_sensitive = false;
  template <class Fn>
  void assign(millis t, Fn&& fn) const {
    const std::int64_t start = detail::floor_div(t.count(), size_ms) * size_ms;
    fn(time_window{millis{start}, millis{start + size_ms}});
  }
};

/// Fixed-size windows starting every `slide`: an event belongs to size/slide of them.
struct sliding_window {
  std::int64_t size_ms;
  std::int64_t slide_ms;
  static constexpr bool merging = false;
  static constexpr bool order_sensitive = false;
  template <class Fn>
  void assign(millis t, Fn&& fn) const {
    const std::int64_t last_start = detail::floor_div(t.count(), slide_ms) * slide_ms;
    for (std::int64_t start = last_start; start > t.count() - size_ms; start -= slide_ms) {
      fn(time_window{millis{start}, millis{start + size_ms}});
    }
  }
};

/// Activity sessions: a window closes after `gap` without events of its key.
struct session_window {
  std::int64_t gap_ms;
  static constexpr bool merging = true;
  static constexpr bool order_sensitive = false;
};

/// Every n events of a key, in arrival order. Batch mode runs such flows on one thread.
struct count_window {
  std::int64_t n;
  static constexpr bool merging = false;
  static constexpr bool order_sensitive = true;
};

template <class Rep, class Period>
tumbling_window tumbling(std::chrono::duration<Rep, Period> size) {
  return {detail::positive_millis(to_millis(size), "sluice::tumbling: size must be at least 1 ms")};
}

template <class R1, class P1, class R2, class P2>
sliding_window sliding(std::chrono::duration<R1, P1> size, std::chrono::duration<R2, P2> slide) {
  const auto size_ms = detail::positive_millis(to_millis(size), "sluice::sliding: size must be at least 1 ms");
  const auto slide_ms = detail::positive_millis(to_millis(slide), "sluice::sliding: slide must be at least 1 ms");
  if (slide_ms > size_ms) {
    throw std::invalid_argument("sluice::sliding: slide larger than size would drop events between windows");
  }
  return {size_ms, slide_ms};
}

template <class Rep, class Period>
session_window session(std::chrono::duration<Rep, Period> gap) {
  return {detail::positive_millis(to_millis(gap), "sluice::session: gap must be at least 1 ms")};
}

inline count_window count_of(std::int64_t n) {
  return {detail::positive_millis(n, "sluice::count_of: a count window holds at least 1 event")};
}

template <class W>
concept window_spec = requires {
  { W::merging } -> std::convertible_to<bool>;
  { W::order_sensitive } -> std::convertible_to<bool>;
};

/// The marker stage that window(spec) puts in a flow; aggregate(...) after it fuses with it.
template <window_spec W>
struct window_stage {
  W spec;
};

template <window_spec W>
window_stage<W> window(W spec) {
  return {spec};
}

}  // namespace sluice
