// Keyed joins of two event types, L and R, carried by one flow of std::variant<L, R> (see
// tagged.hpp) and keyed by the join key:
//
//   using event = std::variant<person, auction>;
//   flow<event>() | event_time(by_type(&person::ts, &auction::ts))
//                 | key_by(by_type(&person::id, &auction::seller))
//                 | interval_join<person, auction>(0ms, 1h, [](const person& p, const auction& a) {...})
//
//   window_join<L, R>(spec, combine)      a and b in the same tumbling, sliding or session window:
//                                         each window's pairs when the window ends (a session:
//                                         the key's events of both sides, gaps under `gap`)
//   interval_join<L, R>(lo, hi, combine)  b.time in [a.time + lo, a.time + hi]: each pair once the
//                                         later of the two is handled
//   inner_join<L, R>(combine[, ttl])      every pair with equal keys (with a ttl: whose times are at
//                                         most ttl apart); insert-only, so its output needs no
//                                         retractions
//   temporal_join<L, R>(combine)          each a with the latest b at or before a.time: R is a
//                                         table's changelog, versioned by event time
//
// combine(a, b) returns the output row (window_join may also take the window as a third
// argument). Each join is a process function (process.hpp), so it has that stage's semantics:
// each key's events in event-time order in both modes, batch == stream when nothing is late, an
// event behind the watermark late (counted, to the late output), a row emitted once the
// watermark passes the event that completes it. State is kept only as long as a match is still
// possible: a timer per key drops what the watermark has made useless (inner_join without a ttl
// keeps everything, as an unbounded join must). Outer joins are not built yet.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "sluice/core/time.hpp"
#include "sluice/core/window.hpp"
#include "sluice/ops/process.hpp"
#include "sluice/ops/window.hpp"

namespace sluice {

namespace detail {
template <class T>
struct timed {
  millis time;
  T value;
};

/// The first of a time-ordered sequence at or after `t`.
template <class Seq>
auto first_at_or_after(Seq& seq, millis t) {
  return std::partition_point(seq.begin(), seq.end(), [t](const auto& x) { return x.time < t; });
}

/// Move a key's single cleanup timer to `at` when that is later than where it is: one timer per
/// key, not one per event held.
template <class Ctx>
void push_cleanup_timer(Ctx& ctx, std::optional<millis>& current, millis at) {
  if (current && at <= *current) {
    return;
  }
  if (current) {
    ctx.cancel_timer(*current);
  }
  ctx.timer_at(at);
  current = at;
}

/// t + ms, saturated at the ends of time (an unbounded join's bounds are +-INT64_MAX).
inline millis shifted(millis t, std::int64_t ms) {
  std::int64_t out = 0;
  if (__builtin_add_overflow(t.count(), ms, &out)) {
    return ms > 0 ? millis::max() : millis::min();
  }
  return millis{out};
}

template <class L, class R, class Combine>
using join_row_t = std::remove_cvref_t<std::invoke_result_t<const Combine&, const L&, const R&>>;

/// window_join's row: combine(a, b, window) when combine takes the window, else combine(a, b).
template <class L, class R, class Combine>
struct window_join_row {
  using type = join_row_t<L, R, Combine>;
};
template <class L, class R, class Combine>
requires std::is_invocable_v<const Combine&, const L&, const R&, time_window>
struct window_join_row<L, R, Combine> {
  using type = std::remove_cvref_t<std::invoke_result_t<const Combine&, const L&, const R&, time_window>>;
};

template <class L, class R>
struct two_sided_state {
  std::vector<timed<L>> lefts;  // in time order: events are handled in time order
  std::vector<timed<R>> rights;
  std::optional<millis> cleanup;
};

/// Drop the front of a time-ordered sequence up to the first element `keep` accepts (a few
/// elements a key: a vector, shifted, costs less than a deque's block allocations).
template <class T, class Keep>
void drop_front_until(std::vector<timed<T>>& seq, Keep keep) {
  auto first_kept = seq.begin();
  while (first_kept != seq.end() && !keep(first_kept->time)) {
    ++first_kept;
  }
  seq.erase(seq.begin(), first_kept);
}

// ---- interval join ------------------------------------------------------------------------

template <class L, class R, class Combine>
struct interval_join_fn {
  std::int64_t lower = 0;
  std::int64_t upper = 0;
  Combine combine;

  template <class Ctx>
  void operator()(Ctx& ctx, const std::variant<L, R>& v) const {
    auto& s = ctx.state();
    const millis t = ctx.time();
    if (const L* a = std::get_if<0>(&v)) {
      // The rights handled so far are at or before t; later ones meet this left when they come.
      for (auto it = first_at_or_after(s.rights, shifted(t, lower));
           it != s.rights.end() && it->time <= shifted(t, upper); ++it) {
        ctx.emit(combine(*a, it->value));
      }
      s.lefts.push_back({t, *a});
    } else {
      const R& b = std::get<1>(v);
      for (auto it = first_at_or_after(s.lefts, shifted(t, -upper));
           it != s.lefts.end() && it->time <= shifted(t, -lower); ++it) {
        ctx.emit(combine(it->value, b));
      }
      s.rights.push_back({t, b});
    }
    expire(ctx);
  }

  /// The cleanup timer: everything held is past use.
  template <class Ctx>
  void operator()(Ctx& ctx) const {
    ctx.state().cleanup.reset();  // it has just fired
    expire(ctx);
  }

 private:
  // Events still to come are at ctx.time() or later: a left at ta can meet them while
  // ta + upper >= now, a right at tb while tb - lower >= now.
  template <class Ctx>
  void expire(Ctx& ctx) const {
    auto& s = ctx.state();
    const millis now = ctx.time();
    drop_front_until(s.lefts, [&](millis t) { return shifted(t, upper) >= now; });
    drop_front_until(s.rights, [&](millis t) { return shifted(t, -lower) >= now; });
    if (s.lefts.empty() && s.rights.empty()) {
      ctx.clear();
      return;
    }
    millis last_use = millis::min();  // after it, nothing held can meet an event still to come
    if (!s.lefts.empty()) {
      last_use = shifted(s.lefts.back().time, upper);
    }
    if (!s.rights.empty()) {
      last_use = std::max(last_use, shifted(s.rights.back().time, -lower));
    }
    if (last_use != millis::max()) {  // unbounded (inner_join without a ttl): kept for good
      push_cleanup_timer(ctx, s.cleanup, shifted(last_use, 1));
    }
  }
};

// ---- window join --------------------------------------------------------------------------

/// Every pair of a window's lefts and rights: combine(a, b, window) when combine takes the window.
template <class Ctx, class Combine, class L, class R>
void emit_pairs(Ctx& ctx, const Combine& combine, const std::vector<L>& lefts, const std::vector<R>& rights,
                time_window window) {
  for (const L& a : lefts) {
    for (const R& b : rights) {
      if constexpr (std::is_invocable_v<const Combine&, const L&, const R&, time_window>) {
        ctx.emit(combine(a, b, window));
      } else {
        ctx.emit(combine(a, b));
      }
    }
  }
}

template <class L, class R>
struct window_pairs {
  millis end;
  std::vector<L> lefts;
  std::vector<R> rights;
};

template <class L, class R, class W, class Combine>
struct window_join_fn {
  W spec;
  Combine combine;

  template <class Ctx>
  void operator()(Ctx& ctx, const std::variant<L, R>& v) const {
    auto& windows = ctx.state();
    spec.assign(ctx.time(), [&](time_window w) {
      auto [it, fresh] = windows.try_emplace(w.start);
      if (fresh) {
        it->second.end = w.end;
        ctx.timer_at(w.end);
      }
      if (const L* a = std::get_if<0>(&v)) {
        it->second.lefts.push_back(*a);
      } else {
        it->second.rights.push_back(std::get<1>(v));
      }
    });
  }

  /// A window's end: all its events are in; emit its pairs and drop it.
  template <class Ctx>
  void operator()(Ctx& ctx) const {
    auto& windows = ctx.state();
    while (!windows.empty() && windows.begin()->second.end <= ctx.time()) {
      const auto& [start, w] = *windows.begin();
      emit_pairs(ctx, combine, w.lefts, w.rights, time_window{start, w.end});
      windows.erase(windows.begin());
    }
    if (windows.empty()) {
      ctx.clear();
    }
  }
};

// ---- session window join ------------------------------------------------------------------

template <class L, class R>
struct open_session {
  std::optional<time_window> window;  // [first event, last event + gap) while a session is open
  std::vector<L> lefts;
  std::vector<R> rights;
};

/// Sessions of a key's events (both sides): an event less than `gap` after the session's last
/// one extends it. Events come in time order, so a session is complete once the watermark
/// reaches its last event + gap: its timer then emits its pairs.
template <class L, class R, class Combine>
struct session_join_fn {
  std::int64_t gap = 0;
  Combine combine;

  template <class Ctx>
  void operator()(Ctx& ctx, const std::variant<L, R>& v) const {
    auto& session = ctx.state();
    const millis end = shifted(ctx.time(), gap);
    if (!session.window) {
      session.window = time_window{ctx.time(), end};
    } else {
      ctx.cancel_timer(session.window->end);  // the timer at its end fires before an event at it
      session.window->end = end;
    }
    ctx.timer_at(end);
    if (const L* a = std::get_if<0>(&v)) {
      session.lefts.push_back(*a);
    } else {
      session.rights.push_back(std::get<1>(v));
    }
  }

  template <class Ctx>
  void operator()(Ctx& ctx) const {
    const auto& session = ctx.state();
    emit_pairs(ctx, combine, session.lefts, session.rights, *session.window);
    ctx.clear();
  }
};

// ---- temporal join ------------------------------------------------------------------------

template <class L, class R, class Combine>
struct temporal_join_fn {
  Combine combine;

  template <class Ctx>
  void operator()(Ctx& ctx, const std::variant<L, R>& v) const {
    std::optional<R>& version = ctx.state();
    if (const L* a = std::get_if<0>(&v)) {
      if (version) {
        ctx.emit(combine(*a, *version));
      }
    } else {
      version = std::get<1>(v);  // the table's row as of this time (events come in time order)
    }
  }
};

template <class D>
std::int64_t join_millis(D d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}
}  // namespace detail

/// Pairs (a, b) of equal keys with b.time in [a.time + lower, a.time + upper].
template <class L, class R, class D1, class D2, class Combine>
auto interval_join(D1 lower, D2 upper, Combine combine) {
  const std::int64_t lo = detail::join_millis(lower);
  const std::int64_t hi = detail::join_millis(upper);
  if (lo > hi) {
    throw std::invalid_argument("sluice::interval_join: lower bound after upper bound");
  }
  using fn = detail::interval_join_fn<L, R, Combine>;
  const fn f{lo, hi, std::move(combine)};
  return process<detail::join_row_t<L, R, Combine>, detail::two_sided_state<L, R>>(f, f);
}

/// Pairs (a, b) of equal keys in the same window, emitted when it ends: tumbling, sliding, or a
/// session of the key's events of both sides (window [first, last + gap)).
template <class L, class R, class W, class Combine>
auto window_join(W spec, Combine combine) {
  static_assert(std::is_same_v<W, tumbling_window> || std::is_same_v<W, sliding_window> ||
                    std::is_same_v<W, session_window>,
                "sluice::window_join: tumbling, sliding or session windows");
  using row = typename detail::window_join_row<L, R, Combine>::type;
  if constexpr (std::is_same_v<W, session_window>) {
    using fn = detail::session_join_fn<L, R, Combine>;
    const fn f{spec.gap_ms, std::move(combine)};
    return process<row, detail::open_session<L, R>>(f, f);
  } else {
    using fn = detail::window_join_fn<L, R, W, Combine>;
    const fn f{spec, std::move(combine)};
    return process<row, std::map<millis, detail::window_pairs<L, R>>>(f, f);
  }
}

/// Every pair (a, b) of equal keys: an unbounded join; each pair is emitted once, when the later
/// of the two is handled. It is the interval join with no bounds.
template <class L, class R, class Combine>
auto inner_join(Combine combine) {
  constexpr std::int64_t unbounded = std::numeric_limits<std::int64_t>::max();
  using fn = detail::interval_join_fn<L, R, Combine>;
  const fn f{-unbounded, unbounded, std::move(combine)};
  return process<detail::join_row_t<L, R, Combine>, detail::two_sided_state<L, R>>(f, f);
}

/// Pairs (a, b) of equal keys whose times are at most `ttl` apart: the interval join over
/// [-ttl, +ttl]; state older than that is dropped.
template <class L, class R, class D, class Combine>
auto inner_join(Combine combine, D ttl) {
  const std::int64_t ms = detail::join_millis(ttl);
  if (ms < 0) {
    throw std::invalid_argument("sluice::inner_join: negative ttl");
  }
  return interval_join<L, R>(std::chrono::milliseconds(-ms), std::chrono::milliseconds(ms), std::move(combine));
}

/// Each a with the version of its key's R current at a.time (the latest b at or before it; b
/// at the same time as a counts if it arrived first). No version yet: no row.
template <class L, class R, class Combine>
auto temporal_join(Combine combine) {
  return process<detail::join_row_t<L, R, Combine>, std::optional<R>>(
      detail::temporal_join_fn<L, R, Combine>{std::move(combine)});
}

}  // namespace sluice
