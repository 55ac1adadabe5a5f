// aggregate(m...): folds each key's events (or each key's window's events) with commutative
// monoids. The last stage of a flow: its state is what a run produces.
//
//   (k1,x) (k2,y) (k1,z)  --aggregate(sum(f))-->  { k1: f(x)+f(z), k2: f(y) }
//
// Without key_by the whole stream is one key (unit_key). After window(spec) the result is
// keyed by (key, window). Several monoids aggregate(count{}, sum(f)) give a tuple result.
// Performance: one hash lookup per event (per window for sliding), then the monoid's add.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/core/detail/flat_table.hpp"
#include "sluice/core/key.hpp"
#include "sluice/core/monoid.hpp"
#include "sluice/core/window.hpp"
#include "sluice/ops/keyed.hpp"
#include "sluice/ops/keyed_state.hpp"
#include "sluice/ops/window.hpp"

namespace sluice {

namespace detail {
/// The borrowed key and the value of an element reaching an aggregate.
template <class E>
struct aggregate_input {
  using key = unit_key;
  using value = E;
  static key key_of(const E& /*e*/) { return {}; }
  static const E& value_of(const E& e) { return e; }
};
template <class K, class V>
struct aggregate_input<keyed<K, V>> {
  using key = K;
  using value = V;
  static const K& key_of(const keyed<K, V>& e) { return e.key; }
  static const V& value_of(const keyed<K, V>& e) { return e.value; }
};

/// Pushes each element into a partial through its `add(time, key, value)`.
template <class Partial>
struct partial_pusher {
  Partial* partial;
  template <class E>
  void operator()(millis t, const E& e) {
    using in = aggregate_input<E>;
    partial->add(t, in::key_of(e), in::value_of(e));
  }
  /// A temporary (a map's or flat_map's new value) into a partial that keeps values as they are
  /// (collect): moved, not copied.
  template <class E>
  requires(!std::is_lvalue_reference_v<E> && requires(Partial& p, E&& v) { p.take(millis{}, std::move(v)); })
  void operator()(millis t, E&& e) {
    partial->take(t, std::move(e));
  }
  void finish() {}
};

// ---- partials: one per kind of window -----------------------------------------------------
//
// Batch mode adds every event and takes the result at the end. Stream mode also calls
// advance(watermark) as the watermark moves: windows that end at or before it are
// complete and are returned; from then on an event whose windows all ended at least the
// allowed lateness before the watermark is late: it is counted and not added.

/// The watermark a partial has fired up to, its allowed lateness and its count of late events.
class window_firing {
 public:
  void set_allowed_lateness(std::int64_t ms) {
    if (ms < 0) {
      throw std::invalid_argument("sluice: allowed lateness cannot be negative");
    }
    lateness_ = static_cast<std::uint64_t>(ms);
  }
  /// Events that reached none of their windows (all had fired and passed their lateness).
  [[nodiscard]] std::uint64_t late_events() const { return late_; }
  /// Sliding-window events that missed some of their windows but reached others.
  [[nodiscard]] std::uint64_t partly_late_events() const { return partly_late_; }
  [[nodiscard]] millis watermark() const { return watermark_; }

  /// A window ending at `end` takes no more events once the watermark is `lateness` past it.
  [[nodiscard]] bool closed_for_good(millis end) const {
    return watermark_ >= end &&
           static_cast<std::uint64_t>(watermark_.count()) - static_cast<std::uint64_t>(end.count()) >= lateness_;
  }

 protected:
  void count_late() { ++late_; }
  void count_partly_late() { ++partly_late_; }
  void set_watermark(millis w) { watermark_ = std::max(watermark_, w); }
  [[nodiscard]] std::uint64_t lateness() const { return lateness_; }

  /// A checkpoint of a partial: the watermark fired up to and the late counts (not the allowed
  /// lateness, which is the flow's configuration, not its state), then its keyed state.
  template <class State>
  void save_state(byte_writer& out, const State& state) const {
    encode(out, watermark_);
    encode(out, late_);
    encode(out, partly_late_);
    state.save(out);
  }
  /// Its restore, all or nothing: the firing fields are applied once the state decoded.
  template <class State>
  void load_state(byte_reader& in, State& state) {
    millis watermark{};
    std::uint64_t late = 0;
    std::uint64_t partly_late = 0;
    decode(in, watermark);
    decode(in, late);
    decode(in, partly_late);
    state.load(in);
    watermark_ = watermark;
    late_ = late;
    partly_late_ = partly_late;
  }

 private:
  millis watermark_ = millis::min();
  std::uint64_t lateness_ = 0;
  std::uint64_t late_ = 0;
  std::uint64_t partly_late_ = 0;
};

/// What became of an event run into a partial.
enum class add_outcome : std::uint8_t {
  added,
  partly_late,  // a sliding-window event that missed some of its windows (they had fired)
  late,         // it missed all of them: it reached no state
};

/// run() (which adds an event to `partial`), judged by the partial's late counters.
template <class Partial, class Run>
add_outcome add_counting_late(const Partial& partial, Run&& run) {
  const std::uint64_t late_before = partial.late_events();
  const std::uint64_t partly_before = partial.partly_late_events();
  run();
  if (partial.late_events() != late_before) {
    return add_outcome::late;
  }
  return partial.partly_late_events() != partly_before ? add_outcome::partly_late : add_outcome::added;
}

/// No window: key -> state.
template <class K, class M>
class plain_partial : public window_firing {
 public:
  using result_type = keyed_state<owned_key_t<K>, M>;
  explicit plain_partial(M m) : state_(std::move(m)) {}
  template <class V>
  void add(millis /*t*/, const K& key, const V& value) {
    state_.add(key, value);
  }
  void merge(const plain_partial& o) { state_.merge(o.state_); }
  /// A checkpoint of what is held (sluice/core/codec.hpp), and its restore (all or nothing).
  void save(byte_writer& out) const { save_state(out, state_); }
  void load(byte_reader& in) { load_state(in, state_); }
  /// Without a window, everything is one global window: it fires at the final watermark.
  result_type advance(millis w) {
    set_watermark(w);
    result_type fired(state_.monoid());
    if (w == millis::max()) {
      std::swap(fired, state_);
    }
    return fired;
  }
  result_type into_result() && { return std::move(state_); }
  /// What is held and not yet fired (all of it, until the final watermark): a live view's rows.
  [[nodiscard]] const result_type& held() const { return state_; }
  /// What was added since the last call (for a chained flow: the keys whose rows changed).
  result_type take_held() {
    result_type taken(state_.monoid());
    std::swap(taken, state_);
    return taken;
  }

 private:
  result_type state_;
};

/// Tumbling and sliding windows: (key, window) -> state; windows are assigned per event.
template <class K, class M, class W>
class assigned_window_partial : public window_firing {
 public:
  using result_type = keyed_state<windowed_key<owned_key_t<K>>, M>;
  assigned_window_partial(M m, W spec) : state_(std::move(m)), spec_(spec) {}
  template <class V>
  void add(millis t, const K& key, const V& value) {
    if constexpr (std::is_same_v<W, tumbling_window>) {
      // Event times are nearly ordered: the last window usually holds the next event too, and
      // checking that is cheaper than the division that assigns a window from scratch.
      if (!last_.contains(t)) {
        spec_.assign(t, [&](time_window w) { last_ = w; });
        if (closed_for_good(last_.end)) {
          keep_dropped(key, last_, value);
          last_ = no_window;
          count_late();
          return;
        }
        earliest_end_ = std::min(earliest_end_, last_.end);
      }
      state_.add(windowed_key<K>{key, last_}, value);
    } else {
      bool added = false;
      bool missed = false;
      spec_.assign(t, [&](time_window w) {
        if (closed_for_good(w.end)) {
          keep_dropped(key, w, value);
          missed = true;
        } else {
          state_.add(windowed_key<K>{key, w}, value);
          earliest_end_ = std::min(earliest_end_, w.end);
          added = true;
        }
      });
      if (!added) {
        count_late();
      } else if (missed) {
        count_partly_late();  // reported too: it is missing from some windows' answers
      }
    }
  }
  void merge(const assigned_window_partial& o) { state_.merge(o.state_); }
  /// A checkpoint of the open windows (sluice/core/codec.hpp), and its restore (all or nothing).
  /// What keep_dropped() kept is not in it: that is a Lambda speed epoch's, never checkpointed.
  void save(byte_writer& out) const { save_state(out, state_); }
  void load(byte_reader& in) {
    load_state(in, state_);
    last_ = no_window;
    earliest_end_ = millis::max();
    for (const auto& e : state_) {
      earliest_end_ = std::min(earliest_end_, e.key.window.end);
    }
  }
  result_type into_result() && { return std::move(state_); }
  /// The windows held and not yet fired, with their aggregates so far (a live view's open rows).
  [[nodiscard]] const result_type& held() const { return state_; }

  /// From now on keep what is dropped as late, per window (dropped()), instead of discarding it:
  /// a Lambda speed epoch hands it to the batch view, which must count every event.
  void keep_dropped() {
    if (!dropped_) {
      dropped_.emplace(state_.monoid());
    }
  }
  /// What was dropped as late since keep_dropped(), by window; null if not kept.
  [[nodiscard]] const result_type* dropped() const { return dropped_ ? &*dropped_ : nullptr; }

  result_type advance(millis w) {
    set_watermark(w);
    last_ = no_window;  // the cached window may have fired
    result_type fired(state_.monoid());
    if (w < earliest_end_) {
      return fired;
    }
    earliest_end_ = millis::max();
    // Fired windows arrive in state_'s slot order: size the table for them first (not like
    // state_, most of which stays open: a Lambda speed epoch keeps what fired for a while).
    std::size_t firing = 0;
    for (const auto& e : state_) {
      firing += e.key.window.end <= w ? 1 : 0;
    }
    fired.reserve(firing);
    state_.retain_if([&](const auto& key, auto& st) {
      if (key.window.end <= w) {
        fired.monoid().merge(fired.slot(key), st);
        return false;
      }
      earliest_end_ = std::min(earliest_end_, key.window.end);
      return true;
    });
    return fired;
  }

 private:
  template <class V>
  void keep_dropped(const K& key, time_window w, const V& value) {
    if (dropped_) {
      dropped_->add(windowed_key<K>{key, w}, value);
    }
  }

  static constexpr time_window no_window{millis{0}, millis{0}};  // empty: contains nothing
  result_type state_;
  std::optional<result_type> dropped_;  // see keep_dropped()
  W spec_;
  time_window last_ = no_window;
  millis earliest_end_ = millis::max();  // no window ends before this: advance has nothing to do
};

/// Session windows: per key, disjoint sessions sorted by start; an event or a partial's session
/// that comes within `gap` of a session merges with it (and may bridge two).
template <class K, class M>
class session_partial : public window_firing {
 public:
  using result_type = keyed_state<windowed_key<owned_key_t<K>>, M>;
  session_partial(M m, session_window spec) : monoid_(std::move(m)), gap_(spec.gap_ms) {}

  void set_allowed_lateness(std::int64_t ms) {
    if (ms != 0) {
      // A late event could reopen a fired session and bridge it to another: the fired rows
      // would have to be retracted, which result rows cannot express yet.
      throw std::invalid_argument("sluice: session windows do not support allowed lateness yet");
    }
  }

  template <class V>
  void add(millis t, const K& key, const V& value) {
    if (closed_for_good(millis{t.count() + gap_}) && (!joins_open_session(key, t) || reaches_fired_session(key, t))) {
      count_late();  // its own session has ended, and it joins no open session or would reopen a fired one
      return;
    }
    session s{t, t, monoid_.identity()};
    monoid_.add(s.state, value);
    insert(sessions_.find_or_insert(key, [] { return std::vector<session>{}; }), std::move(s));
  }

  void merge(const session_partial& o) {
    for (const auto& e : o.sessions_) {
      auto& mine = sessions_.find_or_insert(e.key, [] { return std::vector<session>{}; });
      for (const session& s : e.value) {
        insert(mine, s);
      }
    }
  }

  result_type into_result() && {
    result_type out(monoid_);
    for (const auto& e : sessions_) {
      for (const session& s : e.value) {
        monoid_.merge(out.slot(windowed_key<owned_key_t<K>>{e.key, window_of(s)}), s.state);
      }
    }
    return out;
  }

  /// Sessions that no event can extend any more (last + gap <= watermark) fire.
  result_type advance(millis w) {
    set_watermark(w);
    result_type fired(monoid_);
    sessions_.retain_if([&](auto& e) {
      auto& list = e.value;
      // Sessions are sorted by start and disjoint, so the complete ones are a prefix.
      auto open = list.begin();
      while (open != list.end() && window_of(*open).end <= w) {
        monoid_.merge(fired.slot(windowed_key<owned_key_t<K>>{e.key, window_of(*open)}), open->state);
        fired_until_.find_or_insert(e.key, [] { return millis::min(); }) = window_of(*open).end;
        ++open;
      }
      list.erase(list.begin(), open);
      return !list.empty();
    });
    return fired;
  }

 private:
  struct session {
    millis first;
    millis last;
    typename M::state state;
  };
  [[nodiscard]] time_window window_of(const session& s) const { return {s.first, millis{s.last.count() + gap_}}; }

  // Every session still held has not fired (advance drops what it fires).
  [[nodiscard]] bool joins_open_session(const K& key, millis t) const {
    const auto* list = sessions_.find(key);
    return list != nullptr && std::any_of(list->begin(), list->end(), [&](const session& s) {
             return s.first.count() < t.count() + gap_ && t.count() < s.last.count() + gap_;
           });
  }
  // A fired row cannot be retracted: an event before the end of its key's last fired session
  // that also joins an open one would merge the two.
  [[nodiscard]] bool reaches_fired_session(const K& key, millis t) const {
    const millis* until = fired_until_.find(key);
    return until != nullptr && t < *until;
  }

  void insert(std::vector<session>& list, session s) {
    // Sessions are disjoint and sorted, so `last` is sorted too: find the first that reaches s.
    auto it = std::lower_bound(list.begin(), list.end(), s.first,
                               [&](const session& x, millis t) { return x.last.count() + gap_ <= t.count(); });
    auto stop = it;
    while (stop != list.end() && stop->first.count() < s.last.count() + gap_) {
      s.first = std::min(s.first, stop->first);
      s.last = std::max(s.last, stop->last);
      monoid_.merge(s.state, stop->state);
      ++stop;
    }
    it = list.erase(it, stop);
    list.insert(it, std::move(s));
  }

  M monoid_;
  std::int64_t gap_;
  flat_table<owned_key_t<K>, std::vector<session>> sessions_;
  flat_table<owned_key_t<K>, millis> fired_until_;  // per key: the end of its last fired session
};

/// Count windows: every n events of a key in arrival order. Needs the events in order, so a
/// batch run keeps such a flow on one thread; the last, incomplete window fires at end of input.
template <class K, class M>
class count_partial : public window_firing {
 public:
  static constexpr bool fires_when_full = true;  // a full window fires at once, whatever the watermark
  using result_type = keyed_state<windowed_key<owned_key_t<K>, count_window_index>, M>;
  count_partial(M m, count_window spec) : monoid_(m), n_(spec.n), done_(std::move(m)) {}

  template <class V>
  void add(millis /*t*/, const K& key, const V& value) {
    open_window& w = open_.find_or_insert(key, [this] { return open_window{0, 0, monoid_.identity()}; });
    monoid_.add(w.state, value);
    if (++w.filled == n_) {
      close(key, w);
    }
  }

  void merge(const count_partial& o) {
    if (o.open_.size() != 0) {
      throw std::logic_error("sluice: count windows depend on arrival order and cannot merge parallel partials");
    }
  }

  result_type into_result() && {
    close_open();
    return std::move(done_);
  }

  /// Full count windows fire at once; the incomplete ones at the final watermark.
  result_type advance(millis w) {
    set_watermark(w);
    if (w == millis::max()) {
      close_open();
    }
    result_type fired(monoid_);
    std::swap(fired, done_);
    return fired;
  }

 private:
  struct open_window {
    std::int64_t index;
    std::int64_t filled;
    typename M::state state;
  };
  void close_open() {
    for (auto& e : open_) {
      if (e.value.filled > 0) {
        close(e.key, e.value);
      }
    }
  }
  template <class Key>
  void close(const Key& key, open_window& w) {
    monoid_.merge(done_.slot(windowed_key<Key, count_window_index>{key, count_window_index{w.index}}), w.state);
    ++w.index;
    w.filled = 0;
    w.state = monoid_.identity();
  }

  M monoid_;
  std::int64_t n_;
  flat_table<owned_key_t<K>, open_window> open_;
  result_type done_;
};
}  // namespace detail

/// The terminal stage: aggregate without a window.
template <class A>
struct aggregate_stage {
  A aggregator;
  static constexpr bool terminal = true;
  static constexpr bool needs_event_time = false;
  static constexpr bool order_sensitive = false;

  template <class E>
  static constexpr bool accepts = aggregator_for<A, typename detail::aggregate_input<E>::value>;

  template <class E>
  auto make_partial() const {
    using in = detail::aggregate_input<E>;
    using monoid = monoid_for_t<typename in::value, A>;
    return detail::plain_partial<typename in::key, monoid>(bind_monoid<typename in::value>(aggregator));
  }
};

/// The terminal stage: window(spec) fused with aggregate(...).
template <class W, class A>
struct windowed_aggregate_stage {
  W spec;
  A aggregator;
  static constexpr bool terminal = true;
  static constexpr bool needs_event_time = !std::is_same_v<W, count_window>;
  static constexpr bool order_sensitive = W::order_sensitive;

  template <class E>
  static constexpr bool accepts = aggregator_for<A, typename detail::aggregate_input<E>::value>;

  template <class E>
  auto make_partial() const {
    using in = detail::aggregate_input<E>;
    using monoid = monoid_for_t<typename in::value, A>;
    auto m = bind_monoid<typename in::value>(aggregator);
    if constexpr (std::is_same_v<W, session_window>) {
      return detail::session_partial<typename in::key, monoid>(std::move(m), spec);
    } else if constexpr (std::is_same_v<W, count_window>) {
      return detail::count_partial<typename in::key, monoid>(std::move(m), spec);
    } else {
      return detail::assigned_window_partial<typename in::key, monoid, W>(std::move(m), spec);
    }
  }
};

/// aggregate(m) or aggregate(m1, m2, ...): the monoids to fold each key (and window) with.
template <class... As>
requires(sizeof...(As) >= 1) auto aggregate(As... aggregators) {
  if constexpr (sizeof...(As) == 1) {
    return aggregate_stage<As...>{aggregators...};
  } else {
    return aggregate_stage<product_aggregator<As...>>{product_aggregator<As...>{{aggregators...}}};
  }
}

}  // namespace sluice
