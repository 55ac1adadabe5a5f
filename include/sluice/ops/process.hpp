// process<Out, State>(on_event[, on_timer]): a keyed process function with state, event-time
// and processing-time timers (Flink's KeyedProcessFunction). The last stage of a flow, after key_by:
//
//   flow<txn>() | event_time(&txn::ts) | key_by(&txn::card)
//               | process<alert, card_state>(on_event, on_timer)
//
//   on_event(ctx, const V& value)   for each event of ctx.key(), in event-time order
//   on_timer(ctx)                   when the watermark reaches a timer set with ctx.timer_at(t),
//                                   or the wall clock one set with ctx.processing_timer_at(t)
//                                   (ctx.domain() says which; batch mode fires those at the end)
//
// ctx.state() is the key's State (any default-constructible type: a value, a list, a map, a
// struct of them); ctx.emit(row) outputs a row; ctx.clear() drops the key's state and timers.
//
// Ordered processing, the same in both modes: each key sees its events in event-time order
// (equal times in arrival order) with its timers interleaved (a timer at T fires before an event
// at T). Stream mode holds an event until the watermark passes it, then processes what the
// watermark released; batch mode holds all of them and processes them at end of input, the keys
// split by hash across threads (keys are independent; rows merged back by time). So for
// any input with no late event the rows are the same in both modes, whatever the arrival order
// and max delay (DESIGN §3, §4a). The price is latency: a row is emitted one max delay after its
// event, as with Flink's CEP. An event behind the watermark is late: counted and sent to the
// late output, never processed out of order.
//
// Held events are copies: a value type with string_view members must be mapped to one that owns
// its strings first (a view into the input would outlive its buffer).
//
// Performance: buffered events are sorted once per watermark step (the sorted part is kept and
// only the new tail is sorted, then merged); one hash lookup per event and per timer.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "sluice/core/detail/flat_table.hpp"
#include "sluice/core/hash.hpp"
#include "sluice/core/key.hpp"
#include "sluice/core/time.hpp"
#include "sluice/ops/aggregate.hpp"

namespace sluice {

namespace detail {
template <class K, class V, class State, class Out, class OnEvent, class OnTimer>
class process_partial;

/// No bound on held events unless the stage sets one (max_held_events).
inline constexpr std::size_t max_held = static_cast<std::size_t>(-1);

/// A stage that handles each key's events in event-time order (process): one worker in stream mode.
template <class S>
concept in_order_stage = requires {
  requires S::processes_in_order;
};
}  // namespace detail

/// Which clock a timer belongs to (process_context::domain()).
enum class time_domain : std::uint8_t { event_time, processing_time };

/// The wall clock processing-time timers follow: milliseconds since the Unix epoch.
inline millis system_processing_time() {
  return millis{std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                    .count()};
}

/// What a process function sees of its key, its state and the operator's clocks.
template <class K, class State, class Out>
class process_context {
 public:
  [[nodiscard]] const K& key() const { return *key_; }
  [[nodiscard]] State& state() { return *state_; }
  /// The time of the event or timer being handled.
  [[nodiscard]] millis time() const { return time_; }
  /// The operator's event-time clock: every event and timer before it has been handled. In
  /// ordered processing it is the time of the event or timer being handled.
  [[nodiscard]] millis watermark() const { return time_; }

  /// An event-time timer for this key at `t` (once per key and time; a time already passed fires
  /// next, after the current call).
  void timer_at(millis t) {
    auto& timers = *timers_;
    const auto at = std::lower_bound(timers.begin(), timers.end(), t);
    if (at == timers.end() || *at != t) {
      timers.insert(at, t);
    }
  }
  void cancel_timer(millis t) {
    auto& timers = *timers_;
    const auto at = std::lower_bound(timers.begin(), timers.end(), t);
    if (at != timers.end() && *at == t) {
      timers.erase(at);
    }
  }
  /// A processing-time timer for this key at wall-clock time `t` (once per key and time). Stream
  /// mode fires it when the clock reaches it (within about 10 ms); batch mode, which has no
  /// wall clock to follow, fires every pending one at the end of the input, after the key's events
  /// (as Flink's batch mode does). on_timer then sees domain() == processing_time.
  void processing_timer_at(millis t) {
    auto& timers = *processing_timers_;
    const auto at = std::lower_bound(timers.begin(), timers.end(), t);
    if (at == timers.end() || *at != t) {
      timers.insert(at, t);
      new_processing_timers_->push_back(t);
    }
  }
  void cancel_processing_timer(millis t) {
    auto& timers = *processing_timers_;
    const auto at = std::lower_bound(timers.begin(), timers.end(), t);
    if (at != timers.end() && *at == t) {
      timers.erase(at);
    }
  }
  /// The wall clock now (stream_options::processing_clock in stream mode; the system clock
  /// otherwise).
  [[nodiscard]] millis processing_time() const { return (*clock_)(); }
  /// In on_timer: which kind of timer fired (event_time in on_event).
  [[nodiscard]] time_domain domain() const { return domain_; }

  void emit(Out row) { out_->push_back(std::move(row)); }
  /// Drop this key's state and timers once the current call returns (how state is bounded).
  void clear() { *cleared_ = true; }

 private:
  template <class, class, class, class, class, class>
  friend class detail::process_partial;

  const K* key_ = nullptr;
  State* state_ = nullptr;
  std::vector<millis>* timers_ = nullptr;
  std::vector<millis>* processing_timers_ = nullptr;
  std::vector<millis>* new_processing_timers_ = nullptr;
  const std::function<millis()>* clock_ = nullptr;
  std::vector<Out>* out_ = nullptr;
  bool* cleared_ = nullptr;
  millis time_{};
  time_domain domain_ = time_domain::event_time;
};

/// The rows a process stage emitted since the last step (stream mode) or in the whole run.
template <class Out>
struct emitted_rows {
  std::vector<Out> rows;
  [[nodiscard]] std::size_t size() const { return rows.size(); }
};

template <class T>
inline constexpr bool is_emitted_rows_v = false;
template <class Out>
inline constexpr bool is_emitted_rows_v<emitted_rows<Out>> = true;

/// on_timer for a process function that sets no timers.
struct no_timers {
  template <class Ctx>
  void operator()(Ctx& /*ctx*/) const {}
};

namespace detail {
template <class K, class V, class State, class Out, class OnEvent, class OnTimer>
class process_partial {
 public:
  using key_type = owned_key_t<K>;
  using result_type = emitted_rows<Out>;
  using context = process_context<key_type, State, Out>;

  process_partial(OnEvent on_event, OnTimer on_timer, std::size_t held_limit = max_held)
      : on_event_(std::move(on_event)), on_timer_(std::move(on_timer)), held_limit_(held_limit) {}

  void set_allowed_lateness(std::int64_t /*ms*/) {}  // rows are final when emitted: nothing to update
  [[nodiscard]] std::uint64_t late_events() const { return late_; }
  [[nodiscard]] std::uint64_t partly_late_events() const { return 0; }

  void add(millis t, const K& key, const V& value) {
    if (t < released_) {
      ++late_;  // the events before it were handled without it
      return;
    }
    check_held(held_.size() + 1);
    held_.push_back(held_event{t, to_owned(key), value});
  }

  /// Batch mode: take another chunk's events (chunks merge in input order, so equal times keep
  /// their input order).
  void merge(process_partial& other) {
    check_held(held_.size() + other.held_.size());
    held_.insert(held_.end(), std::make_move_iterator(other.held_.begin()), std::make_move_iterator(other.held_.end()));
    other.held_.clear();
  }

  /// Handle, in event-time order, every held event before `w` and every timer at or before it;
  /// return the rows they emitted.
  result_type advance(millis w) { return advance(w, nullptr); }

  /// advance(w), also recording in `times` (if given) the time each row was emitted at.
  result_type advance(millis w, std::vector<millis>* times) {
    result_type fired;
    if (w <= released_) {
      return fired;  // nothing new is released: the timers up to released_ fired with it
    }
    sort_held();
    std::size_t next = 0;
    while (true) {
      const bool event_due = next < held_.size() && held_[next].time < w;
      const bool timer_due =
          !timers_.empty() && timers_.front().time <= w && (!event_due || timers_.front().time <= held_[next].time);
      if (timer_due) {
        std::pop_heap(timers_.begin(), timers_.end(), later_timer{});
        pending_timer timer = std::move(timers_.back());
        timers_.pop_back();
        fire_timer(timer, fired.rows);
        note_times(times, fired.rows.size(), timer.time);
      } else if (event_due) {
        held_event& e = held_[next++];
        handle_event(e, fired.rows);
        note_times(times, fired.rows.size(), e.time);
      } else {
        break;
      }
    }
    held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(next));
    sorted_ = held_.size();
    released_ = std::max(released_, w);
    if (w == millis::max()) {
      end_of_input_processing_timers(fired.rows, times);
    }
    drop_cleared_keys();
    return fired;
  }

  /// Stream mode: the clock processing-time timers follow (by default the system clock).
  void set_processing_clock(std::function<millis()> clock) { clock_ = std::move(clock); }
  /// The earliest pending processing-time timer (it may have been cancelled since).
  [[nodiscard]] std::optional<millis> next_processing_timer() const {
    return processing_queue_.empty() ? std::nullopt : std::optional<millis>(processing_queue_.front().time);
  }
  /// Fire the processing-time timers at or before `now`, in time order; return their rows.
  result_type fire_processing_timers(millis now) {
    result_type fired;
    while (!processing_queue_.empty() && processing_queue_.front().time <= now) {
      std::pop_heap(processing_queue_.begin(), processing_queue_.end(), later_timer{});
      const pending_timer timer = std::move(processing_queue_.back());
      processing_queue_.pop_back();
      fire_processing_timer(timer, fired.rows);
    }
    return fired;
  }

  /// Batch mode: everything, at the final watermark.
  result_type into_result() && { return advance(millis::max()); }

  /// Batch mode on `threads` threads: the held events split by key hash, each part handled on
  /// its own thread (keys are independent), the rows merged back in event-time order. Rows of
  /// equal time from keys in different parts come in part order, so with another thread count
  /// they may come in another order; the rows themselves are the same.
  result_type into_result(unsigned threads) && { return std::move(*this).into_result(threads, nullptr); }

  /// into_result(threads), also recording in `times` (if given) the time each row was emitted at
  /// (a chained flow's event time for it).
  result_type into_result(unsigned threads, std::vector<millis>* times) && {
    constexpr std::size_t min_events_per_part = 16'384;  // fewer are not worth a thread
    const std::size_t parts_wanted = std::min<std::size_t>(threads, held_.size() / min_events_per_part);
    if (parts_wanted <= 1 || !keys_.empty() || !timers_.empty()) {
      return advance(millis::max(), times);
    }
    std::vector<process_partial> parts(parts_wanted, process_partial(on_event_, on_timer_, held_limit_));
    for (auto& part : parts) {
      part.held_.reserve(held_.size() / parts.size() + held_.size() / 16);
    }
    for (held_event& e : held_) {
      parts[hash_value(e.key) % parts.size()].held_.push_back(std::move(e));  // arrival order kept
    }
    std::vector<held_event>().swap(held_);  // its memory, not just its elements
    sorted_ = 0;
    std::vector<result_type> rows(parts.size());
    std::vector<std::vector<millis>> parts_times(parts.size());
    std::vector<std::exception_ptr> errors(parts.size());
    {
      std::vector<std::jthread> workers;
      for (std::size_t i = 0; i < parts.size(); ++i) {
        workers.emplace_back([&, i] {
          try {
            rows[i] = parts[i].advance(millis::max(), &parts_times[i]);
          } catch (...) {
            errors[i] = std::current_exception();  // a throwing user function: rethrown below
          }
        });
      }
    }
    for (auto& e : errors) {
      if (e) {
        std::rethrow_exception(e);
      }
    }
    released_ = millis::max();  // (the parts saw no add(), so they counted nothing late)
    return merge_by_time(rows, parts_times, times);
  }

  /// Keys with state (for tests and metrics).
  [[nodiscard]] std::size_t keys() const { return keys_.size() - cleared_keys_; }
  [[nodiscard]] std::size_t held_events() const { return held_.size(); }

 private:
  struct held_event {
    millis time;
    key_type key;
    V value;
  };
  // The timer queue holds one entry per key with timers, at (or before) its earliest timer, not
  // one per timer: moving a timer later (a cleanup timer pushed back by every event) costs no
  // queue operation. When the entry comes up, the key's earliest timer fires if it is due, and
  // the key is queued again at its next one.
  struct key_entry {
    State state{};
    std::vector<millis> timers;    // sorted, unique: the pending timers of this key
    std::vector<millis> processing_timers;  // sorted, unique: its processing-time timers
    std::optional<millis> queued;  // the time of the key's entry in the queue; others are stale
    bool live = true;              // false once cleared: the entry waits for the key's return or a sweep
  };
  struct pending_timer {
    millis time;
    std::uint64_t seq;  // entries of equal time come up in the order they were queued
    key_type key;
  };
  struct later_timer {
    bool operator()(const pending_timer& a, const pending_timer& b) const {
      return a.time != b.time ? a.time > b.time : a.seq > b.seq;
    }
  };

  /// The stage's bound on held events (max_held_events): past it the run stops with this error
  /// rather than take memory without bound (a batch run over a huge input, a stream whose
  /// watermark is held back by a silent input).
  void check_held(std::size_t n) const {
    if (n > held_limit_) {
      throw std::length_error("sluice: a process stage would hold " + std::to_string(n) +
                              " events, more than its max_held_events(" + std::to_string(held_limit_) +
                              "): batch mode holds every event until the end of the input and stream mode "
                              "until the watermark passes it; filter or project first, raise the limit, or "
                              "check for an input holding the watermark back");
    }
  }

  static void note_times(std::vector<millis>* times, std::size_t rows, millis t) {
    if (times != nullptr) {
      times->resize(rows, t);
    }
  }

  /// The parts' rows as one sequence in emission-time order (a stable k-way merge), their times
  /// into `merged_times` if given.
  static result_type merge_by_time(std::vector<result_type>& rows, const std::vector<std::vector<millis>>& times,
                                   std::vector<millis>* merged_times) {
    result_type out;
    std::size_t total = 0;
    for (const auto& r : rows) {
      total += r.rows.size();
    }
    out.rows.reserve(total);
    std::vector<std::size_t> at(rows.size(), 0);
    while (out.rows.size() < total) {
      std::size_t best = rows.size();
      for (std::size_t i = 0; i < rows.size(); ++i) {
        if (at[i] < rows[i].rows.size() && (best == rows.size() || times[i][at[i]] < times[best][at[best]])) {
          best = i;
        }
      }
      if (merged_times != nullptr) {
        merged_times->push_back(times[best][at[best]]);
      }
      out.rows.push_back(std::move(rows[best].rows[at[best]++]));
    }
    return out;
  }

  /// Held events in time order, equal times in arrival order: the sorted prefix stays, the new
  /// tail is sorted and merged in.
  void sort_held() {
    auto by_time = [](const held_event& a, const held_event& b) { return a.time < b.time; };
    const auto tail = held_.begin() + static_cast<std::ptrdiff_t>(sorted_);
    std::stable_sort(tail, held_.end(), by_time);
    std::inplace_merge(held_.begin(), tail, held_.end(), by_time);
    sorted_ = held_.size();
  }

  void handle_event(held_event& e, std::vector<Out>& out) {
    key_entry& entry = keys_.find_or_insert(e.key, [] { return key_entry{}; });
    if (!entry.live) {
      entry.live = true;  // a cleared key is back: its entry (and the timer list's capacity) is reused
      --cleared_keys_;
    }
    call(e.key, entry, e.time, out, [&](context& ctx) { on_event_(ctx, std::as_const(e.value)); });
  }

  void fire_timer(const pending_timer& timer, std::vector<Out>& out) {
    key_entry* entry = keys_.find(timer.key);
    if (entry == nullptr || entry->queued != timer.time) {
      return;  // stale: the key was cleared (and maybe swept), or queued again earlier
    }
    entry->queued.reset();
    if (entry->timers.empty() || entry->timers.front() != timer.time) {
      queue_earliest(timer.key, *entry);  // the timer was cancelled: wait for the next one
      return;
    }
    entry->timers.erase(entry->timers.begin());
    call(timer.key, *entry, timer.time, out, [&](context& ctx) { on_timer_(ctx); });
  }

  template <class Fn>
  void call(const key_type& key, key_entry& entry, millis t, std::vector<Out>& out, Fn&& fn,
            time_domain domain = time_domain::event_time) {
    bool cleared = false;
    context ctx;
    ctx.key_ = &key;
    ctx.state_ = &entry.state;
    ctx.timers_ = &entry.timers;
    ctx.processing_timers_ = &entry.processing_timers;
    ctx.new_processing_timers_ = &new_processing_timers_;
    ctx.clock_ = &clock_;
    ctx.out_ = &out;
    ctx.cleared_ = &cleared;
    ctx.time_ = t;
    ctx.domain_ = domain;
    new_processing_timers_.clear();
    fn(ctx);
    if (cleared) {
      entry.state = State{};  // its queue entry finds it unqueued and is skipped
      entry.timers.clear();
      entry.processing_timers.clear();  // their queue entries find the key cleared
      entry.queued.reset();
      entry.live = false;
      ++cleared_keys_;
      return;
    }
    for (const millis at : new_processing_timers_) {
      processing_queue_.push_back(pending_timer{at, timer_seq_++, key});
      std::push_heap(processing_queue_.begin(), processing_queue_.end(), later_timer{});
    }
    queue_earliest(key, entry);
  }

  /// Batch mode and the end of a stream: the processing-time timers pending now fire (in time
  /// order), after every event. Timers these set are not fired: each round could set more.
  void end_of_input_processing_timers(std::vector<Out>& out, std::vector<millis>* times) {
    std::vector<pending_timer> pending = std::exchange(processing_queue_, {});
    std::sort(pending.begin(), pending.end(), [](const pending_timer& a, const pending_timer& b) {
      return later_timer{}(b, a);
    });
    for (const pending_timer& timer : pending) {
      fire_processing_timer(timer, out);
    }
    processing_queue_.clear();  // what those set: the input has ended
    note_times(times, out.size(), millis::max());
  }

  /// A processing-time timer that came up: on_timer, unless it was cancelled or its key cleared.
  void fire_processing_timer(const pending_timer& timer, std::vector<Out>& out) {
    key_entry* entry = keys_.find(timer.key);
    if (entry == nullptr || !entry->live) {
      return;  // the key was cleared: its timers went with it
    }
    auto& timers = entry->processing_timers;
    const auto at = std::lower_bound(timers.begin(), timers.end(), timer.time);
    if (at == timers.end() || *at != timer.time) {
      return;  // cancelled
    }
    timers.erase(at);
    call(timer.key, *entry, timer.time, out, [&](context& ctx) { on_timer_(ctx); }, time_domain::processing_time);
  }

  /// Queue the key at its earliest timer unless it already is at or before it.
  void queue_earliest(const key_type& key, key_entry& entry) {
    if (entry.timers.empty() || (entry.queued && *entry.queued <= entry.timers.front())) {
      return;
    }
    entry.queued = entry.timers.front();
    timers_.push_back(pending_timer{*entry.queued, timer_seq_++, key});
    std::push_heap(timers_.begin(), timers_.end(), later_timer{});
  }

  /// Cleared entries stay in the table (a key that comes back reuses its slot) until they are
  /// half of it; then one sweep drops them, so memory follows the live keys.
  void drop_cleared_keys() {
    if (cleared_keys_ > 1024 && cleared_keys_ * 2 > keys_.size()) {
      keys_.retain_if([](const auto& e) { return e.value.live; });
      cleared_keys_ = 0;
    }
  }

  OnEvent on_event_;
  OnTimer on_timer_;
  std::vector<held_event> held_;  // arrival order after the first `sorted_`, which are in time order
  std::size_t sorted_ = 0;
  flat_table<key_type, key_entry> keys_;
  std::size_t cleared_keys_ = 0;
  std::vector<pending_timer> timers_;  // a min-heap by (time, seq): see key_entry
  std::vector<pending_timer> processing_queue_;  // a min-heap by (time, seq): one entry per timer set
  std::vector<millis> new_processing_timers_;    // set by the call in progress
  std::function<millis()> clock_ = system_processing_time;
  std::uint64_t timer_seq_ = 0;
  millis released_ = millis::min();
  std::uint64_t late_ = 0;
  std::size_t held_limit_;
};
}  // namespace detail

/// The terminal stage: a keyed process function.
template <class Out, class State, class OnEvent, class OnTimer>
struct process_stage {
  OnEvent on_event;
  OnTimer on_timer;
  std::size_t held_limit = detail::max_held;

  /// The same stage, stopping the run with a clear error rather than hold more than n events.
  [[nodiscard]] process_stage max_held_events(std::size_t n) const {
    process_stage bounded = *this;
    bounded.held_limit = n;
    return bounded;
  }

  static constexpr bool terminal = true;
  static constexpr bool needs_event_time = true;
  static constexpr bool order_sensitive = false;
  /// Each key's events meet in one place, in event-time order: stream mode runs it on one worker.
  static constexpr bool processes_in_order = true;

  template <class E>
  using context_for = process_context<owned_key_t<typename detail::aggregate_input<E>::key>, State, Out>;

  template <class E>
  static constexpr bool accepts =
      std::invocable<OnEvent&, context_for<E>&, const typename detail::aggregate_input<E>::value&>&&
          std::invocable<OnTimer&, context_for<E>&>;

  template <class E>
  auto make_partial() const {
    using in = detail::aggregate_input<E>;
    using value = std::remove_cvref_t<typename in::value>;
    static_assert(!std::is_same_v<value, std::string_view>,
                  "sluice: process(...) holds events until the watermark passes them; map string_view "
                  "values to std::string first");
    return detail::process_partial<typename in::key, value, State, Out, OnEvent, OnTimer>(on_event, on_timer,
                                                                                          held_limit);
  }
};

/// process<Out, State>(on_event[, on_timer]): see the top of this header.
template <class Out, class State = std::monostate, class OnEvent, class OnTimer = no_timers>
process_stage<Out, State, std::decay_t<OnEvent>, std::decay_t<OnTimer>> process(OnEvent&& on_event,
                                                                                OnTimer&& on_timer = {}) {
  return {std::forward<OnEvent>(on_event), std::forward<OnTimer>(on_timer), detail::max_held};
}

}  // namespace sluice
