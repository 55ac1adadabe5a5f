// test_driver: a flow run by hand, for unit tests of one's own flows (what Kafka Streams users
// have in TopologyTestDriver and Flink users in the operator test harnesses). No threads, no
// sockets, no clock: the test pushes events, moves the watermark and the processing time
// itself, and reads what the flow emitted so far, what was late, and the counters.
//
//   sluice::test_driver d(flow);                     // the flow run_stream would run
//   d.push(click{at(1'000), "alice"});
//   d.push(click{at(61'000), "bob"});
//   d.advance_watermark(sluice::millis{60'000});     // fires the windows that ended by then
//   CHECK(d.rows().size() == 1);                     // (key, answer) rows, in the order fired
//   d.finish();                                      // the final watermark fires the rest
//
// It drives the flow's partial exactly as a stream worker does (the fused chain, advance(w) as
// the watermark moves, processing-time timers by the time it is given), with one worker: what
// run_stream gives with threads = 1 for the same events, watermarks and clock. Rows of an
// aggregate come out as keyed_row{key, value}, each firing's rows ordered by key (the
// partial's own order is a hash table's), through the stream combiner (with allowed lateness a
// window a late event updated comes out again, whole); a process function's or collect()'s
// rows come out as they were emitted.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/core/time.hpp"
#include "sluice/ops/aggregate.hpp"
#include "sluice/ops/process.hpp"
#include "sluice/run/stream.hpp"

namespace sluice {

/// One fired (key, answer) row of an aggregate.
template <class Key, class Value>
struct keyed_row {
  Key key;
  Value value;
  friend bool operator==(const keyed_row&, const keyed_row&) = default;
};

/// An event the flow dropped as late, copied, with the input it was pushed to.
template <class Event>
struct late_record {
  std::string input;
  Event event;
  millis time;          // its event time
  bool partly = false;  // a sliding-window event that still reached some of its windows
};

struct test_driver_options {
  std::int64_t allowed_lateness_ms = 0;  // as stream_options::allowed_lateness
  millis processing_time{0};             // the processing clock's start
};

template <class Flow>
class test_driver {
 public:
  using event_type = typename Flow::input_type;
  using partial_type = decltype(std::declval<const Flow&>().make_partial());
  using fired_type = decltype(std::declval<partial_type&>().advance(millis{}));

 private:
  static constexpr bool emits_rows = is_emitted_rows_v<fired_type>;
  template <class F>
  struct row_of {
    using type = keyed_row<typename F::key_type, typename F::result_type>;
  };
  template <class Out>
  struct row_of<emitted_rows<Out>> {
    using type = Out;
  };

 public:
  using row_type = typename row_of<fired_type>::type;

  explicit test_driver(const Flow& flow, test_driver_options opts = {})
      : flow_(flow),
        now_(opts.processing_time),
        partial_(flow_.make_partial()),
        chain_(flow_.bind_into(pusher{this})),
        combiner_(make_combiner(flow_, opts.allowed_lateness_ms)) {
    partial_.set_allowed_lateness(opts.allowed_lateness_ms);
    if constexpr (has_processing_timers) {
      partial_.set_processing_clock([this] { return now_; });
    }
  }
  test_driver(const test_driver&) = delete;
  test_driver& operator=(const test_driver&) = delete;

  /// Runs one event through the flow. Its event time is what the flow's event_time stage gives;
  /// a flow without one sees `time` (as a source's arrival time).
  void push(const event_type& e, millis time = millis{0}) { push_to("input", e, time); }
  /// The same, naming the input it came from (a join's side, a connection) in late().
  void push_to(const std::string& input, const event_type& e, millis time = millis{0}) {
    const detail::add_outcome o = detail::add_counting_late(partial_, [&] { chain_(time, e); });
    ++events_;
    if (o != detail::add_outcome::added) {
      late_.push_back({input, e, last_time_, o == detail::add_outcome::partly_late});
    }
    if constexpr (fires_when_full) {
      take(partial_.advance(watermark_));  // a count window fires as it fills
    }
  }

  /// Moves the watermark to `w` (never back): windows that ended at or before it fire, event
  /// timers due by it fire; from now on events behind it (and the allowed lateness) are late.
  void advance_watermark(millis w) {
    watermark_ = std::max(watermark_, w);
    take(partial_.advance(watermark_));
  }
  /// Moves the processing clock to `now` (never back) and fires the processing-time timers due.
  void advance_processing_time(millis now) {
    now_ = std::max(now_, now);
    if constexpr (has_processing_timers) {
      take(partial_.fire_processing_timers(now_));
    }
  }
  /// The end of the input: the final watermark fires every window and timer left.
  void finish() { advance_watermark(millis::max()); }

  /// Everything emitted so far, in the order it fired.
  [[nodiscard]] const std::vector<row_type>& rows() const { return rows_; }
  /// Takes the rows emitted since the last call (so a test can check one step at a time).
  std::vector<row_type> take_rows() {
    std::vector<row_type> out(rows_.begin() + static_cast<std::ptrdiff_t>(taken_), rows_.end());
    taken_ = rows_.size();
    return out;
  }
  [[nodiscard]] const std::vector<late_record<event_type>>& late() const { return late_; }

  [[nodiscard]] std::uint64_t events() const { return events_; }
  [[nodiscard]] std::uint64_t late_events() const { return partial_.late_events(); }
  [[nodiscard]] std::uint64_t partly_late_events() const { return partial_.partly_late_events(); }
  [[nodiscard]] std::uint64_t rows_emitted() const { return rows_.size(); }
  [[nodiscard]] millis watermark() const { return watermark_; }
  [[nodiscard]] millis processing_time() const { return now_; }
  /// The partial itself, for what the driver does not show (held(), a checkpoint's save()).
  [[nodiscard]] partial_type& partial() { return partial_; }

 private:
  static constexpr bool has_processing_timers = requires(partial_type& p) { p.fire_processing_timers(millis{}); };
  static constexpr bool fires_when_full = requires { partial_type::fires_when_full; };

  struct pusher {
    test_driver* d;
    template <class E>
    void operator()(millis t, const E& e) {
      using in = detail::aggregate_input<E>;
      d->last_time_ = t;
      d->partial_.add(t, in::key_of(e), in::value_of(e));
    }
    void finish() {}
  };
  using chain_type = decltype(std::declval<const Flow&>().bind_into(std::declval<pusher>()));

  // Fired rows go through run_stream's combiner for one worker: an aggregate's windows through
  // the monoid combiner (with allowed lateness it emits a window a late event updated again,
  // whole), a process function's rows through the forwarder.
  using combiner_type = typename detail::combiner_for<fired_type>::type;
  static combiner_type make_combiner(const Flow& flow, std::int64_t lateness_ms) {
    if constexpr (emits_rows) {
      return combiner_type{};
    } else {
      auto probe = flow.make_partial();  // as run_stream does: the monoid, from an empty firing
      return combiner_type(probe.advance(millis::min()).monoid(), 1, lateness_ms);
    }
  }

  void take(fired_type fired) {
    const auto sink = [this](const auto& out) {
      if constexpr (emits_rows) {
        rows_.insert(rows_.end(), out.begin(), out.end());
      } else {
        for (const auto& row : out.scan()) {  // ordered by key
          rows_.push_back(row_type{row.key, row.value});
        }
      }
    };
    combiner_.ship(0, std::move(fired), watermark_, sink);
  }

  Flow flow_;
  millis watermark_ = millis::min();
  millis now_;
  millis last_time_ = millis::min();
  partial_type partial_;
  chain_type chain_;
  combiner_type combiner_;
  std::vector<row_type> rows_;
  std::size_t taken_ = 0;
  std::vector<late_record<event_type>> late_;
  std::uint64_t events_ = 0;
};

}  // namespace sluice
