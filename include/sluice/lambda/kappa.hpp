// Kappa (DESIGN.md section 9): no batch layer. Replay the log through the stream-mode flow into
// a fresh store while the current store keeps serving; when the replay reaches the log's head,
// swap the serving pointer and keep tailing the log.
//
//   log --log_tail--> generation n+1 (catching up)      readers --> generation n (serving)
//                     ... reaches the head  ==>  readers --> generation n+1, which keeps tailing
//
// While a replay catches up, its input is bounded (the log up to the head it started at), so
// it runs like batch mode: no watermark, nothing dropped as late, and the store it swaps in
// equals batch mode over the same records. From then on it is a live stream: the watermark
// trails the latest event time by max_delay and late events are dropped and reported.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>

#include "sluice/io/log_source.hpp"
#include "sluice/run/progress.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/store/event_log.hpp"
#include "sluice/store/result_store.hpp"

namespace sluice {

struct kappa_options {
  std::chrono::milliseconds max_delay{0};         // once caught up: bounded out-of-orderness of the log
  std::chrono::milliseconds allowed_lateness{0};  // once caught up: fired windows stay updatable this long
  std::chrono::milliseconds poll_every{10};       // how often a caught-up replay looks for new records
  late_sink on_late{};                            // events dropped as late once caught up (offset: log offset)
  /// replay_to_head: called on its thread about every progress_interval with the offsets read
  /// (unit records) and once at the end (finished).
  std::function<void(const run_progress&)> on_progress{};
  std::chrono::milliseconds progress_interval{250};
};

struct kappa_status {
  std::uint64_t serving_generation = 0;    // 0: nothing caught up yet
  std::uint64_t replaying_generation = 0;  // 0: no replay catching up
  std::uint64_t replay_position = 0;       // the next offset the catching-up replay reads
  std::uint64_t replay_target = 0;         // the head it must reach to swap
  std::uint64_t serving_position = 0;      // the next offset the serving generation reads
  std::uint64_t events = 0;                // records the serving generation processed
  std::uint64_t late = 0;                  // ... and dropped as late
  std::uint64_t bad_records = 0;           // payloads that did not decode
};

/// How far a replay from offset `from` is, in records (offsets), by `status`: total is the
/// offsets from `from` to the head it must reach (replay_target), done those it has read
/// (replay_position), all of them once `finished`. The caller fills in records and elapsed.
/// Shared by replay_to_head and whoever follows a kappa_view's catch-up through status().
inline run_progress replay_progress(const kappa_status& status, std::uint64_t from, bool finished = false) {
  run_progress p;
  p.unit = progress_unit::records;
  p.total = status.replay_target - std::min(from, status.replay_target);
  p.done = finished ? p.total : std::min(p.total, status.replay_position - std::min(from, status.replay_position));
  p.finished = finished;
  return p;
}

namespace detail {

/// What a Kappa generation replays into: the flow's partial as stream mode runs it on one worker,
/// and what it has emitted so far. Any flow runs here (process functions, joins and chained
/// aggregates too: one partial sees every event, so nothing needs merging across epochs or
/// workers). The answer is what has fired (rows emitted, for a process stage or a join) plus,
/// for aggregates, the windows still open.
template <class Flow>
class replay_state {
 public:
  using partial_type = decltype(std::declval<const Flow&>().make_partial());
  using state_type = decltype(std::declval<partial_type&>().advance(millis{}));
  using outcome = add_outcome;

  replay_state(const Flow& flow, std::int64_t allowed_lateness_ms)
      : flow_(&flow), partial_(make_open(flow, allowed_lateness_ms)), chain_(flow.bind_into(pusher{this})) {}
  // The chain points back at this state.
  replay_state(const replay_state&) = delete;
  replay_state& operator=(const replay_state&) = delete;

  template <class T>
  outcome add(const T& value) {
    return add_counting_late(partial_, [&] { chain_(millis{0}, value); });
  }
  [[nodiscard]] millis event_time() const { return last_time_; }
  millis take_latest() { return std::exchange(latest_, millis::min()); }

  void advance(millis watermark) { keep(partial_.advance(watermark)); }

  /// out (+)= what fired and, for aggregates, the open windows so far.
  void merge_into(state_type& out) const {
    if constexpr (is_emitted_rows_v<state_type>) {
      out.rows.insert(out.rows.end(), fired_.rows.begin(), fired_.rows.end());
    } else {
      out.merge(fired_);
      if constexpr (requires { partial_.held(); }) {
        out.merge(partial_.held());
      }
    }
  }
  [[nodiscard]] state_type empty_state() const { return flow_->make_partial().advance(millis::min()); }

 private:
  static partial_type make_open(const Flow& flow, std::int64_t lateness) {
    partial_type p = flow.make_partial();
    p.set_allowed_lateness(lateness);
    return p;
  }
  void keep(state_type fired) {
    if constexpr (is_emitted_rows_v<state_type>) {
      fired_.rows.insert(fired_.rows.end(), std::make_move_iterator(fired.rows.begin()),
                         std::make_move_iterator(fired.rows.end()));
    } else {
      fired_.merge(fired);  // a window fired again under allowed lateness brings its change
    }
  }
  struct pusher {
    replay_state* s;
    template <class E>
    void operator()(millis t, const E& e) {
      using in = aggregate_input<E>;
      s->last_time_ = t;
      s->latest_ = std::max(s->latest_, t);
      s->partial_.add(t, in::key_of(e), in::value_of(e));
    }
    void finish() {}
  };
  using chain_type = decltype(std::declval<const Flow&>().bind_into(std::declval<pusher>()));

  const Flow* flow_;
  partial_type partial_;
  state_type fired_ = partial_.advance(millis::min());
  millis last_time_ = millis::min();
  millis latest_ = millis::min();
  chain_type chain_;
};

/// One replay of the log into its own store, on its own thread.
template <class Flow, class Payloads>
class kappa_generation {
 public:
  using state_type = typename replay_state<Flow>::state_type;

  kappa_generation(std::uint64_t id, const Flow& flow, const Payloads& payloads, const std::string& dir,
                   std::uint64_t from, const kappa_options& opts)
      : id_(id), opts_(opts), store_(flow, opts.allowed_lateness.count()), decoder_(payloads), tail_(dir, from) {
    const auto segments = list_segments(dir);
    target_ = segments.empty() ? 0 : segments.back().end_offset;
  }

  /// Read what the log has now; returns how many records. Before the target is reached no
  /// watermark moves (bounded input: nothing is late).
  std::size_t poll(std::size_t max = 65536) {
    std::lock_guard lock(mutex_);
    const std::size_t n = tail_.poll(
        [&](const log_record& r) {
          using outcome = typename replay_state<Flow>::outcome;
          outcome o = outcome::added;
          const std::string reason = decoder_.decode(r.payload, [&](const auto& value) { o = store_.add(value); });
          ++events_;
          if (!reason.empty()) {
            ++bad_;
          } else if (o != outcome::added) {
            late_ += o == outcome::late ? 1 : 0;
            if (opts_.on_late) {
              opts_.on_late(late_event{"log", r.offset, store_.event_time(), r.payload, o == outcome::partly_late});
            }
          }
        },
        max);
    latest_ = std::max(latest_, store_.take_latest());
    if (!caught_up_ && tail_.position() >= target_) {
      caught_up_ = true;
    }
    if (caught_up_ && latest_ != millis::min()) {
      store_.advance(millis{latest_.count() - opts_.max_delay.count()});
    }
    return n;
  }

  [[nodiscard]] bool caught_up() const {
    std::lock_guard lock(mutex_);
    return caught_up_;
  }
  /// A bounded replay is over: fire everything still open (what batch mode does at the end).
  void finish() {
    std::lock_guard lock(mutex_);
    store_.advance(millis::max());
  }
  void merge_into(state_type& out) const {
    std::lock_guard lock(mutex_);
    store_.merge_into(out);
  }
  [[nodiscard]] state_type empty_state() const { return store_.empty_state(); }
  void fill(kappa_status& s, bool serving) const {
    std::lock_guard lock(mutex_);
    if (serving) {
      s.serving_generation = id_;
      s.serving_position = tail_.position();
      s.events = events_;
      s.late = late_;
      s.bad_records = bad_;
    } else {
      s.replaying_generation = id_;
      s.replay_position = tail_.position();
      s.replay_target = target_;
    }
  }

  /// Tail the log on a thread until stopped; `on_caught_up` runs once, when the target is reached.
  template <class OnCaughtUp>
  void start(OnCaughtUp on_caught_up) {
    thread_ = std::jthread([this, on_caught_up = std::move(on_caught_up)](std::stop_token stop) mutable {
      bool announced = false;
      std::mutex m;
      std::condition_variable_any cv;
      while (!stop.stop_requested()) {
        const std::size_t n = poll();
        if (!announced && caught_up()) {
          announced = true;
          on_caught_up();
        }
        if (n == 0) {
          std::unique_lock lock(m);
          cv.wait_for(lock, stop, opts_.poll_every, [] { return false; });
        }
      }
    });
  }
  void stop() { thread_.request_stop(); }

 private:
  std::uint64_t id_;
  const kappa_options& opts_;
  mutable std::mutex mutex_;
  replay_state<Flow> store_;
  typename Payloads::decoder decoder_;
  log_tail tail_;
  std::uint64_t target_ = 0;
  bool caught_up_ = false;
  millis latest_ = millis::min();
  std::uint64_t events_ = 0;
  std::uint64_t late_ = 0;
  std::uint64_t bad_ = 0;
  std::jthread thread_;  // last: stopped and joined before the rest is destroyed
};

}  // namespace detail

template <class Flow, class Payloads>
class kappa_view {
 public:
  using generation = detail::kappa_generation<Flow, Payloads>;
  using state_type = typename generation::state_type;
  /// A result store for aggregates; the rows emitted so far (std::vector) for process and joins.
  using store_type = decltype(make_result_store(std::declval<state_type>()));

  kappa_view(const Flow& flow, Payloads payloads, std::string dir, kappa_options opts = {})
      : flow_(flow), payloads_(std::move(payloads)), dir_(std::move(dir)), opts_(std::move(opts)) {}
  kappa_view(const kappa_view&) = delete;
  kappa_view& operator=(const kappa_view&) = delete;
  ~kappa_view() {
    std::shared_ptr<generation> serving;
    std::shared_ptr<generation> replaying;
    {
      std::lock_guard lock(mutex_);
      serving = std::move(serving_);
      replaying = std::move(replaying_);  // a swap_in racing with this finds nothing to swap
    }
    for (auto* g : {serving.get(), replaying.get()}) {
      if (g != nullptr) {
        g->stop();
      }
    }
  }  // their threads are joined here, while this view's members are still alive

  /// Start replaying the log from `from` into a fresh store; the serving one (if any) keeps
  /// serving until this replay reaches the head it started at, then this one serves. A replay
  /// still catching up is abandoned.
  void replay(std::uint64_t from = 0) {
    std::lock_guard lock(mutex_);
    if (replaying_) {
      replaying_->stop();
    }
    auto next = std::make_shared<generation>(++generations_, flow_, payloads_, dir_, from, opts_);
    replaying_ = next;
    next->start([this, g = next.get()] { swap_in(g); });
  }
  /// Replay from the first record whose event time is at or after `t`.
  void replay_from_time(millis t) { replay(first_offset_at_or_after(list_segments(dir_), t)); }

  /// The serving store now (open windows included); nullopt until a first replay caught up.
  [[nodiscard]] std::optional<store_type> snapshot() const {
    std::shared_ptr<generation> g;
    {
      std::lock_guard lock(mutex_);
      g = serving_;
    }
    if (!g) {
      return std::nullopt;
    }
    state_type state = g->empty_state();
    g->merge_into(state);
    return make_result_store(std::move(state));
  }

  [[nodiscard]] kappa_status status() const {
    kappa_status s;
    std::lock_guard lock(mutex_);
    if (serving_) {
      serving_->fill(s, true);
    }
    if (replaying_) {
      replaying_->fill(s, false);
    }
    return s;
  }

 private:
  void swap_in(generation* g) {
    std::shared_ptr<generation> old;
    {
      std::lock_guard lock(mutex_);
      if (replaying_.get() != g) {
        return;  // abandoned meanwhile
      }
      old = std::exchange(serving_, std::move(replaying_));
    }
    if (old) {
      old->stop();  // its thread ends; it is destroyed with the last reader still holding it
    }
  }

  const Flow& flow_;
  Payloads payloads_;
  std::string dir_;
  kappa_options opts_;
  mutable std::mutex mutex_;
  std::shared_ptr<generation> serving_;
  std::shared_ptr<generation> replaying_;
  std::uint64_t generations_ = 0;
};

/// Replay the log in `dir` (from offset `from`) through `flow`'s stream path up to its head on
/// the calling thread, and return the store: what `sales --replay DIR` prints. Of `opts`, only
/// on_progress and progress_interval apply (the replay runs to a known head: nothing is late).
template <class Flow, class Payloads>
auto replay_to_head(const Flow& flow, const Payloads& payloads, const std::string& dir, std::uint64_t from = 0,
                    kappa_status* status = nullptr, const kappa_options& progress = {}) {
  kappa_options opts;
  detail::kappa_generation<Flow, Payloads> g(1, flow, payloads, dir, from, opts);
  progress_clock clock(progress.progress_interval);
  auto report = [&](bool finished) {
    if (!progress.on_progress || !clock.due(finished)) {
      return;
    }
    kappa_status st;
    g.fill(st, false);
    g.fill(st, true);
    run_progress p = replay_progress(st, from, finished);
    p.records = st.events - st.bad_records;
    p.bad_records = st.bad_records;
    p.elapsed = clock.elapsed();
    progress.on_progress(p);
  };
  while (!g.caught_up()) {
    if (g.poll() == 0 && !g.caught_up()) {
      throw log_error("log " + dir + ": ended before the head it had when the replay started");
    }
    report(false);
  }
  report(true);
  g.finish();
  auto state = g.empty_state();
  g.merge_into(state);
  if (status != nullptr) {
    g.fill(*status, true);
  }
  return make_result_store(std::move(state));
}

}  // namespace sluice
