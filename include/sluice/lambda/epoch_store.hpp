// epoch_store: the speed layer's state. A flow's live aggregate, split by epoch (the log segment
// an event was appended to), so that the Lambda combinator can retire exactly the epochs a batch
// view has come to cover. Kappa uses it with a single epoch.
//
//   event of epoch e --flow--> epochs_[e].open   (windows not yet fired, aggregates so far)
//   advance(watermark)  ---->  epochs_[e].fired  (windows the watermark passed)
//   merge_into(out, E)  ---->  out (+)= fired (+) open, for every epoch >= E
//
// Every epoch's partial sees the same watermark, so an event is late (dropped here, counted,
// reported) exactly when it would be in stream mode; the batch layer still counts it later.
// Not thread-safe: its owner serialises access.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/core/time.hpp"
#include "sluice/ops/aggregate.hpp"
#include "sluice/run/stream.hpp"

namespace sluice {


namespace detail {
/// The stage that keeps a flow out of a Lambda view (one worker in stream mode): its state
/// follows a key across epochs, so epoch results cannot be merged back exactly.
enum class unsplittable : std::uint8_t { none, process, chain, session, count };
template <class Flow>
constexpr unsplittable unsplittable_stage() {
  using last = typename Flow::last_stage;
  if constexpr (!needs_one_worker<Flow>()) {
    return unsplittable::none;
  } else if constexpr (in_order_stage<last>) {
    return unsplittable::process;
  } else if constexpr (requires { last::chained; }) {
    return unsplittable::chain;
  } else if constexpr (requires { last::spec; } && std::is_same_v<decltype(last::spec), session_window>) {
    return unsplittable::session;
  } else {
    return unsplittable::count;
  }
}
}  // namespace detail

template <class Flow>
class epoch_store {
  static_assert(Flow::is_aggregating, "sluice: a live view needs a flow that ends in aggregate(...)");
  // One message naming the stage; each is refused for the same reason: its state cannot be split
  // by epoch and merged back exactly. Lambda views run plain, tumbling and sliding aggregates.
  static constexpr detail::unsplittable refused = detail::unsplittable_stage<Flow>();
  static_assert(refused != detail::unsplittable::process,
                "sluice: a Lambda view cannot run a process function or a join: its state and timers follow each "
                "key across epochs (use a Kappa view, or batch and stream mode)");
  static_assert(refused != detail::unsplittable::chain,
                "sluice: a Lambda view cannot run a chained aggregate: a window's row is final only once every "
                "epoch holding its events has been seen (use a Kappa view, or batch and stream mode)");
  static_assert(refused != detail::unsplittable::session,
                "sluice: a Lambda view cannot run session windows: a session can span epochs and merge across "
                "them (use tumbling or sliding windows, or a Kappa view)");
  static_assert(refused != detail::unsplittable::count,
                "sluice: a Lambda view cannot run count windows: they follow arrival order across epochs (use "
                "time windows, or a Kappa view)");

 public:
  using partial_type = decltype(std::declval<const Flow&>().make_partial());
  using state_type = decltype(std::declval<partial_type&>().advance(millis{}));  // keyed_state<key[, window], M>
  /// Windowed partials can keep what they drop as late (a plain aggregate drops nothing).
  static constexpr bool keeps_dropped = requires(partial_type& p) { p.keep_dropped(); };

  struct epoch_info {
    std::uint64_t epoch = 0;
    std::uint64_t events = 0;
    std::uint64_t late = 0;  // dropped: all their windows had fired (and passed allowed lateness)
    std::uint64_t partly_late = 0;  // sliding-window events that missed some of their windows
  };

  explicit epoch_store(const Flow& flow, std::int64_t allowed_lateness_ms = 0)
      : flow_(&flow), lateness_(allowed_lateness_ms), chain_(flow.bind_into(pusher{this})) {}
  // The chain points back at this store.
  epoch_store(const epoch_store&) = delete;
  epoch_store& operator=(const epoch_store&) = delete;

  using outcome = detail::add_outcome;

  /// Run one value through the flow into `epoch`. When it was (partly) late, event_time() is
  /// its event time.
  template <class T>
  outcome add(std::uint64_t epoch, const T& value) {
    current_ = &at(epoch);
    if (current_->frozen) {
      throw std::logic_error("sluice: an event for epoch " + std::to_string(epoch) + ", which the batch view has taken");
    }
    const outcome o = detail::add_counting_late(current_->open, [&] { chain_(millis{0}, value); });
    ++current_->info.events;
    current_->info.late += o == outcome::late ? 1 : 0;
    current_->info.partly_late += o == outcome::partly_late ? 1 : 0;
    return o;
  }

  /// The event time of the last event that reached the aggregate.
  [[nodiscard]] millis event_time() const { return last_time_; }
  /// The latest event time since the last call, then reset (for the input's watermark).
  millis take_latest() { return std::exchange(latest_, millis::min()); }

  /// Fire what the watermark passed; from now on events of windows it closed are late.
  void advance(millis watermark) {
    watermark_ = std::max(watermark_, watermark);
    for (auto& [epoch, e] : epochs_) {
      if (!e.frozen) {  // a frozen epoch's states are being read (freeze)
        e.fired.merge(e.open.advance(watermark_));
      }
    }
  }
  [[nodiscard]] millis watermark() const { return watermark_; }

  /// out (+)= everything held for epochs >= `from`: fired windows and open ones so far.
  void merge_into(state_type& out, std::uint64_t from = 0) const {
    for (auto it = epochs_.lower_bound(from); it != epochs_.end(); ++it) {
      out.merge(it->second.fired);
      out.merge(it->second.open.held());
    }
  }

  /// Whether `epoch` holds exactly `records` events: then its state, with what its windows
  /// dropped as late (freeze), is what batch mode computes over those records, and the
  /// batch layer need not read them again.
  [[nodiscard]] bool saw_all(std::uint64_t epoch, std::uint64_t records) const {
    const auto it = epochs_.find(epoch);
    return it != epochs_.end() && it->second.info.events == records;
  }

  /// Freezes `epoch` for the batch view and gives its whole state: its fired windows, its open
  /// ones and the events it dropped as late (which the speed layer's answers leave out). Call it
  /// only once saw_all(epoch, ...) holds: no event can reach the epoch any more, and from now on
  /// the watermark leaves it alone too, so the states stay as they are until retire_below drops
  /// them and the batch layer may read them without the owner's lock. Empty when it has none.
  [[nodiscard]] std::vector<const state_type*> freeze(std::uint64_t epoch) {
    std::vector<const state_type*> states;
    if (const auto it = epochs_.find(epoch); it != epochs_.end()) {
      it->second.frozen = true;
      states = {&it->second.fired, &it->second.open.held()};
      if constexpr (keeps_dropped) {
        states.push_back(it->second.open.dropped());
      }
    }
    return states;
  }

  /// Drop the epochs below `epoch` (a batch view now covers them).
  void retire_below(std::uint64_t epoch) { epochs_.erase(epochs_.begin(), epochs_.lower_bound(epoch)); }

  [[nodiscard]] std::vector<epoch_info> epochs() const {
    std::vector<epoch_info> out;
    for (const auto& [epoch, e] : epochs_) {
      out.push_back(e.info);
    }
    return out;
  }

  /// Entries held over all epochs (open and fired), and the bytes of their tables.
  [[nodiscard]] std::size_t entries() const {
    return sum_over_states([](const state_type& s) { return s.size(); });
  }
  [[nodiscard]] std::size_t table_bytes() const {
    return sum_over_states([](const state_type& s) { return s.table_bytes(); });
  }

  /// An empty state of the flow's result type (with its monoid).
  [[nodiscard]] state_type empty_state() const {
    auto probe = flow_->make_partial();
    return probe.advance(millis::min());
  }

 private:
  template <class Measure>
  [[nodiscard]] std::size_t sum_over_states(Measure measure) const {
    std::size_t n = 0;
    for (const auto& [epoch, e] : epochs_) {
      n += measure(e.open.held()) + measure(e.fired);
      if constexpr (keeps_dropped) {
        n += measure(*e.open.dropped());
      }
    }
    return n;
  }

  struct epoch_state {
    partial_type open;
    state_type fired;
    epoch_info info;
    bool frozen = false;  // see freeze()
  };
  struct pusher {
    epoch_store* s;
    template <class E>
    void operator()(millis t, const E& e) {
      using in = detail::aggregate_input<E>;
      s->last_time_ = t;
      s->latest_ = std::max(s->latest_, t);
      s->current_->open.add(t, in::key_of(e), in::value_of(e));
    }
    void finish() {}
  };
  using chain_type = decltype(std::declval<const Flow&>().bind_into(std::declval<pusher>()));

  epoch_state& at(std::uint64_t epoch) {
    auto it = epochs_.find(epoch);
    if (it == epochs_.end()) {
      partial_type open = flow_->make_partial();
      open.set_allowed_lateness(lateness_);
      if constexpr (keeps_dropped) {
        open.keep_dropped();  // for the batch view: promoting the epoch must count its late events
      }
      state_type fired = open.advance(watermark_);  // a new epoch knows what has already fired
      it = epochs_.emplace(epoch, epoch_state{std::move(open), std::move(fired), epoch_info{epoch, 0, 0, 0}, false}).first;
    }
    return it->second;
  }

  const Flow* flow_;
  std::int64_t lateness_;
  std::map<std::uint64_t, epoch_state> epochs_;
  epoch_state* current_ = nullptr;
  millis watermark_ = millis::min();
  millis last_time_ = millis::min();
  millis latest_ = millis::min();
  chain_type chain_;
};

}  // namespace sluice
