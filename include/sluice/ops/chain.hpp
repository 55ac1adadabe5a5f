// Chained stages: the rows an aggregate emits feed more stages (DESIGN §4a).
//
//   flow<bid>() | event_time(&bid::ts) | key_by(&bid::auction)
//               | window(tumbling(10s)) | aggregate(count{})               // rows: window_row{auction, window, count}
//               | key_by([](const auto& r) { return r.window; })           // per window...
//               | aggregate(max([](const auto& r) { return r.value; }))    // ...the hottest auction's bid count
//
// After aggregate(...), `|` starts a second flow over the aggregate's rows:
//   - a windowed aggregate emits window_row{key, window, value} for each window when it fires,
//     with event time window.end - 1 ms (Flink's window max timestamp), so the next stages may
//     window again or run a process function; its rows are final.
//   - an aggregate without a window (a running aggregate) emits key_row{key, value}. In stream mode
//     its rows change: each time the watermark moves, every key that changed emits a changelog,
//     a retraction of its old row and its new row. The next aggregate (which must be one without
//     a window: changelog_partial) subtracts a retraction where its monoid is a group (count,
//     sum, mean) and keeps a multiset where it is not (min, max, top_k). Batch mode emits final
//     rows only. Both end in the same state.
//   - under allowed lateness a window that fires again after late events emits a retraction of
//     its old row and its new one, which again only an aggregate without a window can take.
//
// After process(...) or a join (a process function), `|` starts a flow over the rows it emits:
//
//   ... | key_by(&bid::auction) | process<winner, auction_state>(on_event, on_timer)
//       | key_by(&winner::category) | aggregate(mean(&winner::price))
//
//   - a row's event time is the time it was emitted at: the event's or the timer's (as Flink's
//     process functions stamp their output), so the next stages may window by it or run another
//     process function without an event_time stage; one may still set another time, if it is
//     not behind the watermark the row was emitted under (else the row is late for them).
//   - rows are final, as a window's are; a row a processing-time timer emits gets the last
//     watermark as its event time (a processing-time timer has no event time of its own).
//
// Stream mode runs a chained flow on one worker: a window's row is final only when every event
// of it has met in one place. Lambda views refuse chained flows (a window's rows straddle
// epochs); Kappa views run them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/core/key.hpp"
#include "sluice/core/monoid.hpp"
#include "sluice/core/retract.hpp"
#include "sluice/core/time.hpp"
#include "sluice/core/window.hpp"
#include "sluice/ops/aggregate.hpp"
#include "sluice/ops/event_time.hpp"
#include "sluice/ops/flow.hpp"
#include "sluice/ops/keyed_state.hpp"
#include "sluice/ops/process.hpp"

namespace sluice {

/// A windowed aggregate's row: its key, its window and the aggregate's result.
template <class K, class W, class R>
struct window_row {
  K key;
  W window;
  R value;
  friend bool operator==(const window_row&, const window_row&) = default;
  friend auto operator<=>(const window_row&, const window_row&) = default;
};

/// A running aggregate's row: its key and the aggregate's result so far.
template <class K, class R>
struct key_row {
  K key;
  R value;
  friend bool operator==(const key_row&, const key_row&) = default;
  friend auto operator<=>(const key_row&, const key_row&) = default;
};

namespace detail {
/// The row type of an aggregate whose fired state is `State`, and how to make one.
template <class State>
struct row_for;
template <class K, class M>
struct row_for<keyed_state<K, M>> {
  using type = key_row<K, typename keyed_state<K, M>::result_type>;
  static constexpr bool windowed = false;
  static constexpr bool changes = true;  // a running aggregate's row is replaced by its next one
};
template <class K, class W, class M>
struct row_for<keyed_state<windowed_key<K, W>, M>> {
  using type = window_row<K, W, typename keyed_state<windowed_key<K, W>, M>::result_type>;
  static constexpr bool windowed = true;
  static constexpr bool changes = false;
};
template <class Out>
struct row_for<emitted_rows<Out>> {  // a process function's rows, each at the time it was emitted
  using type = Out;
  static constexpr bool windowed = false;
  static constexpr bool changes = false;
};

/// The event time a process function's row was emitted at, kept as the next flow's event time:
/// the stage that gives a chained flow over such rows its event time.
struct emitted_time_stage {
  static constexpr bool assigns_event_time = true;
  template <class E>
  static constexpr bool accepts = true;
  template <class E>
  using output = E;
  template <class E, class Next>
  Next bind(Next next) const {
    return next;  // the chain pushes each row with its emission time already
  }
};

/// A window row's event time: the last millisecond of its window.
struct window_row_time {
  template <class K, class R>
  millis operator()(const window_row<K, time_window, R>& r) const {
    return millis{r.window.end.count() - 1};
  }
};

/// The flow the rows of type Row start: with event time when they have a time window or were
/// emitted at one (`timed`: a process function's rows).
template <class Row, bool timed>
auto start_chain() {
  if constexpr (timed) {
    return flow<Row>() | emitted_time_stage{};
  } else if constexpr (requires(const Row& r) { window_row_time{}(r); }) {
    return flow<Row>() | event_time(window_row_time{});
  } else {
    return flow<Row>();
  }
}

/// Pushes into a partial's retract(time, key, value) what partial_pusher would add.
template <class Partial>
struct retract_pusher {
  Partial* partial;
  template <class E>
  void operator()(millis t, const E& e) {
    using in = aggregate_input<E>;
    partial->retract(t, in::key_of(e), in::value_of(e));
  }
  void finish() {}
};

/// An aggregate without a window fed by a changelog: adds inserted rows, takes retracted ones
/// out (retractable_t), and drops a key once all its rows are retracted. Like plain_partial it
/// fires at the final watermark.
template <class K, class M, class V>
class changelog_partial : public window_firing {
 public:
  using monoid_type = counted_monoid<retractable_t<M, V>>;
  using result_type = keyed_state<owned_key_t<K>, monoid_type>;
  explicit changelog_partial(M m) : state_(monoid_type{make_retractable<M, V>(std::move(m))}) {}

  void add(millis /*t*/, const K& key, const V& value) { state_.add(key, value); }
  void retract(millis /*t*/, const K& key, const V& value) {
    auto& s = state_.slot(key);
    state_.monoid().subtract(s, value);
    emptied_ = emptied_ || monoid_type::empty(s);
  }
  void merge(const changelog_partial& o) { state_.merge(o.state_); }

  /// The state so far (a live view's rows), without keys whose rows were all retracted.
  [[nodiscard]] const result_type& held() const {
    drop_retracted();
    return state_;
  }

  result_type advance(millis w) {
    set_watermark(w);
    result_type fired(state_.monoid());
    if (w == millis::max()) {
      drop_retracted();
      std::swap(fired, state_);
    }
    return fired;
  }
  result_type into_result() && {
    drop_retracted();
    return std::move(state_);
  }

 private:
  // Keys are dropped in sweeps, not one by one: the table has no erase, and a key whose rows
  // were retracted often comes back with the new row at once.
  void drop_retracted() const {
    if (emptied_) {
      state_.retain_if([](const auto& /*key*/, const auto& s) { return !monoid_type::empty(s); });
      emptied_ = false;
    }
  }
  mutable result_type state_;  // held() sweeps it
  mutable bool emptied_ = false;  // some key may have no rows left
};

template <class P>
concept takes_retractions = requires { &P::retract; };
}  // namespace detail

namespace detail {
/// The partial of `First` (the aggregate or process function whose rows feed `Next`, the next
/// flow) and of Next's terminal stage. Batch mode: First takes every event, its final rows go to
/// Next at the end. Stream mode: each advance(w) fires First's complete rows (and changes, see
/// above) into Next, then advances Next to the same watermark: rows fired at w have times before
/// w (a process function's: at most w, and Next's stages fire only what ends at or before w),
/// and no later row will have an earlier time, so the watermark holds for them too.
template <class First, class NextFlow, class NextPartial>
class chained_partial {
  using first_state = decltype(std::declval<First&>().advance(millis{}));
  using row = row_for<first_state>;
  static constexpr bool running = row::changes;  // First has no window: its rows change
  static constexpr bool from_process = is_emitted_rows_v<first_state>;

 public:
  using result_type = decltype(std::declval<NextPartial&>().advance(millis{}));

  chained_partial(First first, NextFlow next_flow, NextPartial next)
      : first_(std::move(first)), next_flow_(std::move(next_flow)), next_(std::move(next)) {
    static_assert(!running || takes_retractions<NextPartial>,
                  "sluice: an aggregate without a window emits a changelog (its rows change); only an "
                  "aggregate(...) without a window can follow it");
  }

  void set_allowed_lateness(std::int64_t ms) {
    first_.set_allowed_lateness(ms);
    if (ms > 0 && !running && !from_process) {  // a process function's rows never change
      if constexpr (!takes_retractions<NextPartial>) {
        throw std::invalid_argument(
            "sluice: with allowed lateness a window's row can change; only an aggregate(...) without a window can "
            "follow it (it takes the retraction of the old row)");
      }
      track_ = true;
    }
  }
  [[nodiscard]] std::uint64_t late_events() const { return first_.late_events(); }
  [[nodiscard]] std::uint64_t partly_late_events() const { return first_.partly_late_events(); }

  template <class Key, class V>
  void add(millis t, const Key& key, const V& value) {
    first_.add(t, key, value);
  }

  /// Batch mode: another chunk's partial (Next is still empty: it fills at the end).
  void merge(chained_partial& other) { first_.merge(other.first_); }

  result_type advance(millis w) {
    if constexpr (from_process) {
      std::vector<millis> times;
      feed_timed(first_.advance(w, &times), times);
      last_watermark_ = std::max(last_watermark_, w);
    } else if constexpr (running) {
      feed(first_.take_held(), w);  // what changed since the last step
    } else {
      feed(first_.advance(w), w);
      forget_closed();
    }
    return next_.advance(w);
  }

  // Processing-time timers: of a process function after the aggregate, or of the process
  // function First (whose rows then go on at the last watermark) and of any in Next.
  static constexpr bool next_has_clock = requires(NextPartial& p) { p.fire_processing_timers(millis{}); };
  void set_processing_clock(std::function<millis()> clock)
  requires from_process || next_has_clock
  {
    if constexpr (from_process) {
      first_.set_processing_clock(clock);
    }
    if constexpr (next_has_clock) {
      next_.set_processing_clock(std::move(clock));
    }
  }
  [[nodiscard]] std::optional<millis> next_processing_timer() const
  requires from_process || next_has_clock
  {
    std::optional<millis> first;
    std::optional<millis> next;
    if constexpr (from_process) {
      first = first_.next_processing_timer();
    }
    if constexpr (next_has_clock) {
      next = next_.next_processing_timer();
    }
    return first && next ? std::min(*first, *next) : first ? first : next;
  }
  result_type fire_processing_timers(millis now)
  requires from_process || next_has_clock
  {
    if constexpr (from_process) {
      auto fired = first_.fire_processing_timers(now);
      std::vector<millis> times(fired.size(), last_watermark_);
      feed_timed(std::move(fired), times);
      if constexpr (!next_has_clock) {
        return next_.advance(last_watermark_);  // what those rows completed (nothing, mostly)
      }
    }
    if constexpr (next_has_clock) {
      return next_.fire_processing_timers(now);
    }
  }

  /// The next stage's rows so far, where it keeps them (a live view).
  [[nodiscard]] const auto& held() const
  requires requires(const NextPartial& p) { p.held(); }
  {
    return next_.held();
  }

  result_type into_result() && { return std::move(*this).into_result(1); }
  result_type into_result(unsigned threads) && {
    if constexpr (from_process) {
      std::vector<millis> times;
      feed_timed(std::move(first_).into_result(threads, &times), times);  // keys split over the threads
    } else {
      feed(std::move(first_).into_result(), millis::max());
    }
    return final_result(std::move(next_), threads);
  }

 private:
  // A process function's rows, each with the time it was emitted at. The rows of processing-time
  // timers fired at the end of the input (at time max, which no window can hold) get the latest
  // time before them.
  void feed_timed(first_state fired, const std::vector<millis>& times) {
    auto insert = next_flow_.bind(next_);
    for (std::size_t i = 0; i < fired.rows.size(); ++i) {
      if (times[i] != millis::max()) {
        latest_row_time_ = std::max(latest_row_time_, times[i]);
      }
      insert(times[i] == millis::max() ? latest_row_time_ : times[i], std::move(fired.rows[i]));
    }
  }

  void feed(const first_state& fired, millis w) {
    auto insert = next_flow_.bind(next_);
    const auto& m = fired.monoid();
    if (!(running || track_)) {
      for (const auto& e : fired) {
        push(insert, w, e.key, m.result(e.value));
      }
      return;
    }
    if constexpr (takes_retractions<NextPartial>) {
      auto retract = next_flow_.bind_into(retract_pusher<NextPartial>{&next_});
      if (!emitted_) {
        emitted_.emplace(m);
      }
      for (const auto& e : fired) {
        auto* before = emitted_->find(e.key);
        if (before != nullptr) {
          push(retract, w, e.key, m.result(*before));
          m.merge(*before, e.value);
          push(insert, w, e.key, m.result(*before));
        } else {
          m.merge(emitted_->slot(e.key), e.value);
          push(insert, w, e.key, m.result(e.value));
        }
      }
    }
  }

  template <class Chain, class Key, class R>
  static void push(Chain& chain, millis w, const Key& key, R result) {
    if constexpr (row::windowed) {
      chain(w, typename row::type{key.key, key.window, std::move(result)});
    } else {
      chain(w, typename row::type{key, std::move(result)});
    }
  }

  // A window's row can change only while late events may still reach it (as the first stage,
  // just advanced, judges them).
  void forget_closed() {
    if constexpr (!running) {
      if (track_ && emitted_) {
        emitted_->retain_if(
            [&](const auto& key, const auto& /*state*/) { return !first_.closed_for_good(key.window.end); });
      }
    }
  }

  First first_;
  NextFlow next_flow_;
  NextPartial next_;
  bool track_ = running;           // rows may change: remember what was emitted
  millis last_watermark_ = millis::min();  // from_process: the time a processing-time timer's rows get
  millis latest_row_time_ = millis::min();  // from_process: the latest finite time a row was emitted at
  std::optional<first_state> emitted_;  // the rows emitted so far (as states), while they may change
};

template <class S>
inline constexpr bool is_chain_stage_v = false;
template <class First, class Next>
inline constexpr bool is_chain_stage_v<chain_stage<First, Next>> = true;
}  // namespace detail

/// The terminal stage of a chained flow: the aggregate `first` and the flow `next` over its rows.
template <class First, class Next>
struct chain_stage {
  First first;
  Next next;

  static constexpr bool terminal = true;
  static constexpr bool chained = true;  // rows meet in one place: one worker in stream mode
  static constexpr bool needs_event_time = First::needs_event_time;
  static constexpr bool order_sensitive = First::order_sensitive || Next::order_sensitive;

  template <class E>
  static constexpr bool accepts = First::template accepts<E>;

  template <class E>
  auto make_partial() const {
    auto head = first.template make_partial<E>();
    using next_last = typename Next::last_stage;
    using head_rows = decltype(head.advance(millis{}));
    if constexpr (detail::is_aggregate_stage_v<next_last> && !is_emitted_rows_v<head_rows>) {
      // An aggregate without a window takes retractions (a changelog_partial, not a plain one):
      // an aggregate's rows may change (a process function's never do).
      using in = detail::aggregate_input<typename Next::element_type>;
      using value = typename in::value;
      using monoid = monoid_for_t<value, decltype(next_last::aggregator)>;
      const auto& last = std::get<std::tuple_size_v<std::remove_cvref_t<decltype(next.stages())>> - 1>(next.stages());
      return make(std::move(head),
                  detail::changelog_partial<typename in::key, monoid, value>(bind_monoid<value>(last.aggregator)));
    } else {
      return make(std::move(head), next.make_partial());
    }
  }

 private:
  template <class Head, class Tail>
  auto make(Head head, Tail tail) const {
    return detail::chained_partial<Head, Next, Tail>(std::move(head), next, std::move(tail));
  }
};

namespace detail {
/// flow | stage where flow ends in an aggregate: the stage starts (or extends) the flow over
/// the aggregate's rows.
template <class Row>
inline constexpr bool is_changelog_row_v = false;  // a running aggregate's rows change
template <class K, class R>
inline constexpr bool is_changelog_row_v<key_row<K, R>> = true;

template <class Element, class Last>
struct rows_of {
  using type = typename row_for<decltype(std::declval<const Last&>().template make_partial<Element>().advance(
      millis{}))>::type;
};
template <class Element, class First, class Next>
struct rows_of<Element, chain_stage<First, Next>> {
  using type = typename Next::input_type;
};

template <class Element, class Last, class Stage>
auto chain_after(const Last& last, Stage stage) {
  if constexpr (is_changelog_row_v<typename rows_of<Element, Last>::type> &&
                (in_order_stage<Stage> || is_window_stage_v<Stage>)) {
    static_assert(!is_changelog_row_v<typename rows_of<Element, Last>::type>,
                  "sluice: an aggregate without a window emits a changelog (its rows change); only an "
                  "aggregate(...) without a window can follow it");
    return last;
  } else if constexpr (is_chain_stage_v<Last>) {
    auto next = last.next | std::move(stage);
    return chain_stage<decltype(last.first), decltype(next)>{last.first, std::move(next)};
  } else {
    using first_rows = decltype(std::declval<const Last&>().template make_partial<Element>().advance(millis{}));
    auto next = start_chain<typename rows_of<Element, Last>::type, is_emitted_rows_v<first_rows>>() | std::move(stage);
    return chain_stage<Last, decltype(next)>{last, std::move(next)};
  }
}
}  // namespace detail

}  // namespace sluice
