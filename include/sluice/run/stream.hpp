// run_stream: the same flow as run_batch, over an unbounded source.
//
//   source (I/O thread: sockets, files)         worker threads                      sink
//   conn 0 --bytes--> [bounded queue 0] --> parse, fused chain, partial --fired--+
//   conn 1 --bytes--> [bounded queue 1] --> parse, fused chain, partial --fired--+-> combiner -> sink(rows)
//   conn 2 --bytes--> [bounded queue 0] ...                                       |   (when every worker
//                                                                                 |    passed the window)
// Each input (connection, file, queue) goes to one worker, so its records stay in order and
// its parse state and watermark live in one place. Workers aggregate what they see, like batch
// chunks do, and fire windows as the stream's watermark passes them; the combiner merges the
// parts of a window once all workers have fired it (monoids make this exact) and calls the sink.
// A full queue makes the source stop reading (TCP flow control then slows the sender), so
// memory is bounded by queue sizes, max record size and state, never by the input rate.
//
// The run ends when the source ends (all connections of a scripted run closed, end of a queue)
// or when `stop` is requested: the source stops taking input, everything already received is
// processed, the final watermark fires every window, and run_stream returns its stats.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/byte_feed.hpp"
#include "sluice/io/event_queue.hpp"
#include "sluice/ops/aggregate.hpp"
#include "sluice/ops/process.hpp"
#include "sluice/run/periodic.hpp"
#include "sluice/run/stream_combiner.hpp"
#include "sluice/run/watermarks.hpp"
#include "sluice/store/checkpoint.hpp"
#include "sluice/store/result_store.hpp"

namespace sluice {

/// An event that arrived after its windows had fired and their allowed lateness had passed.
struct late_event {
  std::string_view source;   // input name ("tcp 127.0.0.1:40312", "queue")
  std::uint64_t offset = 0;  // of the record's first byte in its input; 0 for queue events
  millis event_time;
  std::string_view text;  // the record's raw bytes (a CSV line, a binary payload); empty for queues
  bool partly = false;    // a sliding-window event that still reached some of its windows
};
using late_sink = std::function<void(const late_event&)>;

/// Counters of a running stream, readable from any thread at any time.
struct stream_metrics {
  std::atomic<std::uint64_t> events{0};              // records that entered the flow
  std::atomic<std::uint64_t> bad_records{0};         // dead-lettered (or the one that failed the run)
  std::atomic<std::uint64_t> late_events{0};         // sent to the late output
  std::atomic<std::uint64_t> partly_late_events{0};  // sliding: missed some windows (also reported)
  std::atomic<std::uint64_t> bytes{0};               // bytes received from byte sources
  std::atomic<std::uint64_t> inputs_opened{0};
  std::atomic<std::int64_t> inputs_open{0};
  std::atomic<std::int64_t> queued{0};  // chunks (or events, for a queue source) waiting for a worker
  std::atomic<std::uint64_t> rows_emitted{0};
  std::atomic<std::int64_t> watermark{millis::min().count()};
  std::atomic<std::int64_t> latest_event_time{millis::min().count()};

  /// How far the watermark trails the latest event time (the max delay plus any input holding
  /// it back), in milliseconds; 0 before both are known.
  [[nodiscard]] std::int64_t watermark_lag_ms() const {
    const std::int64_t w = watermark.load();
    const std::int64_t t = latest_event_time.load();
    return w == millis::min().count() || t == millis::min().count() || w == millis::max().count() ? 0 : t - w;
  }
};

/// Checkpoints of each positioned input of a byte source (a Kafka partition, a tailed file, the
/// event log followed by follow_log; DESIGN §10): its own partial state and the source position
/// after the last record in it, saved together by the input's worker once `every` has passed
/// since its last checkpoint (after a chunk, or while the input is idle) and when the input
/// closes or is handed off (before the final watermark fires anything). An input that opens with the name of a saved one gets its state back and the
/// source seeks to its position: state is exactly-once whatever stops the process. Rows already
/// sent to the sink are not part of it: a window that fired after the last checkpoint fires again
/// after a restore, with the same value (at-least-once output, as an upsert). For flows whose
/// partials save and load (global, tumbling and sliding aggregates); run_stream throws
/// std::invalid_argument for others.
///
/// With `keep_fired`, each input also keeps what its windows fired, and its checkpoint holds it:
/// an input's checkpoint is then its whole share of the answer, open windows and fired ones, and
/// the latest checkpoint of every input held here is `published()` for a query to merge with
/// other processes' (partition_answer): one answer from any instance of a consumer group.
/// Checkpoints go to a checkpoint_store: a local directory (checkpoint_dir), a compacted Kafka
/// topic (kafka_checkpoint_store), or none: an empty directory keeps them in memory only
/// (published, never written).
struct stream_checkpoints {
  std::shared_ptr<const checkpoint_store> store;
  std::chrono::milliseconds every{10'000};
  std::string flow_name{};  // added to the flow's fingerprint (a query's name): checkpoints of
                            // another flow are refused, never restored
  bool keep_fired = false;  // checkpoints hold the rows each input fired too (see above)
  std::chrono::milliseconds retain{0};  // with keep_fired, > 0: fired windows that ended more than
                                        // this before the input's watermark are dropped (bounded state)
  std::atomic<std::uint64_t> saved{0};     // checkpoints written
  std::atomic<std::uint64_t> restored{0};  // inputs that opened from a checkpoint

  explicit stream_checkpoints(const std::string& directory,
                              std::chrono::milliseconds interval = std::chrono::seconds(10), std::string name = {})
      : every(interval), flow_name(std::move(name)) {
    if (!directory.empty()) {
      store = std::make_shared<checkpoint_dir>(directory);
    }
  }
  explicit stream_checkpoints(std::shared_ptr<const checkpoint_store> where,
                              std::chrono::milliseconds interval = std::chrono::seconds(10), std::string name = {})
      : store(std::move(where)), every(interval), flow_name(std::move(name)) {}

  /// An input's saved state (its partial's bytes, and with keep_fired what it fired) and the
  /// source position it covers; for inputs opened with an origin (open_input_in), what the
  /// position is in.
  struct saved_input {
    std::int64_t position = 0;
    std::string state;
    std::string fired;
    std::uint64_t origin = 0;
    auto fields() { return std::tie(position, state, fired, origin); }  // its codec (partition_answer's wire form)
    auto fields() const { return std::tie(position, state, fired, origin); }
  };
  /// The latest checkpoint of an input held by this process, for queries.
  struct published_input {
    std::string input;
    saved_input saved;
    std::int64_t saved_at_ms = 0;  // system clock, ms since the epoch
    auto fields() { return std::tie(input, saved, saved_at_ms); }
    auto fields() const { return std::tie(input, saved, saved_at_ms); }
  };

  /// Saves input `input`'s checkpoint for the flow `flow` (durably: it returns once the store
  /// holds it) and publishes it.
  void save(std::string_view input, std::uint64_t flow, saved_input s) {
    if (store) {
      std::string at;
      byte_writer w(at);
      encode(w, s.position);
      checkpoint c;
      c.flow = flow;
      c.add("position", std::move(at));
      c.add("state", s.state);
      if (keep_fired) {
        c.add("fired", s.fired);
      }
      if (s.origin != 0) {  // parts a reader of an older build ignores: the format stays version 1
        std::string origin;
        byte_writer o(origin);
        encode(o, s.origin);
        c.add("origin", std::move(origin));
      }
      store->save(input, c);
    }
    saved.fetch_add(1, std::memory_order_relaxed);
    publish(input, std::move(s));
  }

  /// Input `input`'s checkpoint, or nullopt if none was saved. One that cannot be used (damaged,
  /// of a newer format, another flow's, without its parts) is a checkpoint_error.
  std::optional<saved_input> load(std::string_view input, std::uint64_t flow) {
    const auto c = store ? store->load(input, flow) : std::nullopt;
    if (!c) {
      return std::nullopt;
    }
    const std::string* position = c->find("position");
    const std::string* state = c->find("state");
    const std::string* fired = c->find("fired");
    if (position == nullptr || state == nullptr) {
      throw unusable(input, "no position or no state in it");
    }
    if (keep_fired && fired == nullptr) {
      throw unusable(input, "it does not hold the rows its input fired (saved without keep_fired)");
    }
    saved_input s{0, *state, fired != nullptr ? *fired : std::string()};
    try {
      byte_reader r(*position);
      decode(r, s.position);
      if (const std::string* origin = c->find("origin")) {
        byte_reader o(*origin);
        decode(o, s.origin);
      }
    } catch (const codec_error& e) {
      throw unusable(input, std::string("its position does not decode: ") + e.what());
    }
    restored.fetch_add(1, std::memory_order_relaxed);
    return s;
  }

  /// Makes `s` input `input`'s latest published checkpoint (at every save, and when an input
  /// opens, so that an input without records yet is known to be held here).
  void publish(std::string_view input, saved_input s) {
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    std::lock_guard lock(published_mutex_);
    published_.insert_or_assign(std::string(input), published_input{std::string(input), std::move(s), now.count()});
  }
  /// Input `input` left this process (handed off, or closed): it is no longer published here.
  void withdraw(std::string_view input) {
    std::lock_guard lock(published_mutex_);
    published_.erase(std::string(input));
  }
  /// The latest checkpoint of every input this process holds, by name.
  [[nodiscard]] std::vector<published_input> published() const {
    std::lock_guard lock(published_mutex_);
    std::vector<published_input> all;
    all.reserve(published_.size());
    for (const auto& [name, p] : published_) {
      all.push_back(p);
    }
    return all;
  }

  /// The error for input `input`'s checkpoint, with `why`.
  [[nodiscard]] checkpoint_error unusable(std::string_view input, const std::string& why) const {
    return checkpoint_error("checkpoint " + (store ? store->where(input) : std::string(input)) + ": " + why);
  }

 private:
  mutable std::mutex published_mutex_;
  std::map<std::string, published_input> published_;
};

struct stream_options {
  unsigned threads = 1;                           // workers (sessions and count windows use one)
  std::chrono::milliseconds max_delay{0};         // bounded out-of-orderness of each input
  std::chrono::milliseconds allowed_lateness{0};  // fired windows stay updatable this long
  std::chrono::milliseconds idle_timeout{0};      // a silent input stops holding the watermark
  std::size_t expected_inputs = 0;                // the watermark waits until this many opened
  std::size_t queue_chunks = 16;                  // per worker: read chunks in flight
  std::size_t queue_events = 65536;               // events per batch taken from an event_queue
  late_sink on_late{};                            // empty: late events are only counted
  stream_metrics* metrics = nullptr;              // optional live counters
  std::function<millis()> processing_clock{};     // processing-time timers' clock; empty: the system clock
  stream_checkpoints* checkpoints = nullptr;      // byte sources with positions: see stream_checkpoints
};

struct stream_stats {
  std::uint64_t events = 0;
  std::uint64_t bad_records = 0;
  std::uint64_t late_events = 0;
  std::uint64_t partly_late_events = 0;
  std::uint64_t bytes = 0;
  std::uint64_t inputs = 0;
  std::uint64_t rows_emitted = 0;
  double seconds = 0;
};

/// An event_queue as a stream source: run_stream pops it on the calling thread until it is
/// closed and drained.
template <class T>
struct queue_source {
  event_queue<T>* queue;
};
template <class T>
queue_source<T> from_queue(event_queue<T>& q) {
  return {&q};
}

namespace detail {

template <class Flow>
void check_streamable() {
  static_assert(Flow::is_aggregating, "sluice::run_stream: the flow must end in aggregate(...)");
  static_assert(
      requires(decltype(std::declval<const Flow&>().make_partial())& p) { p.advance(millis{}); },
      "sluice::run_stream: this flow runs in batch mode only (fan_out has no stream mode yet)");
}

template <class Flow>
constexpr bool needs_one_worker() {
  using last = typename Flow::last_stage;
  if constexpr (in_order_stage<last>) {
    return true;  // each key's events must meet in one place, in event-time order
  } else if constexpr (requires { last::chained; }) {
    return true;  // a window's row goes on only when all its events have met in one place
  } else if constexpr (requires { last::spec; }) {
    return Flow::order_sensitive || decltype(last::spec)::merging;
  } else {
    return Flow::order_sensitive;
  }
}

/// Rows need no combining (a process stage runs on one worker; collect()'s rows are final where
/// they are made): they go to the sink as they are emitted, one worker's at a time.
template <class Out>
class row_forwarder {
 public:
  template <class Sink>
  void ship(std::size_t /*worker*/, emitted_rows<Out> fired, millis /*watermark*/, Sink& sink) {
    if (fired.size() > 0) {
      rows_emitted_.fetch_add(fired.size(), std::memory_order_relaxed);
      const std::lock_guard one_at_a_time(sink_mutex_);
      sink(std::as_const(fired.rows));
    }
  }
  [[nodiscard]] std::uint64_t rows_emitted() const { return rows_emitted_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> rows_emitted_{0};
  std::mutex sink_mutex_;
};

/// What merges the workers' fired state: a monoid combiner for aggregates, a forwarder for rows.
template <class Fired>
struct combiner_for {
  using type = stream_combiner<typename Fired::key_type, typename Fired::monoid_type>;
};
template <class Out>
struct combiner_for<emitted_rows<Out>> {
  using type = row_forwarder<Out>;
};

/// Fulfils its promise when it is destroyed: with the last copy of a chunk that holds it, once
/// its worker is done with the chunk (processed it, or dropped it as the run failed or ended).
struct chunk_done {
  std::promise<void> done;
  chunk_done() = default;
  chunk_done(const chunk_done&) = delete;
  chunk_done& operator=(const chunk_done&) = delete;
  ~chunk_done() { done.set_value(); }
};

/// A chunk of an input's bytes on its way to the input's worker, or the input's start or end.
struct stream_chunk {
  enum class kind : std::uint8_t { opened, data, reopened, closed };
  input_id input = 0;
  kind what = kind::data;
  std::string bytes;           // data, or the input's name when opened or reopened
  std::int64_t position = -1;  // data: the source position after these bytes (-1: none)
  millis time{0};              // data: the time the source gives them (event_time(source_time))
  bool position_in_bytes = false;  // data: `position` is a byte offset (source_position::in_bytes)
  std::optional<stream_checkpoints::saved_input> restored{};  // opened: its checkpoint (if restored)
  std::uint64_t origin = 0;    // opened, reopened: what its positions are in (input_origin::id)
  bool handed_off = false;     // closed: the input moved to another process with its checkpoint
  std::shared_ptr<chunk_done> done{};  // closed and handed off: what the source waits on
};

/// What the workers share: watermarks, the combiner, the sink and the counters.
template <class Flow, class Sink>
class stream_engine {
 public:
  using partial_type = decltype(std::declval<const Flow&>().make_partial());
  using fired_type = decltype(std::declval<partial_type&>().advance(millis{}));
  using combiner_type = typename combiner_for<fired_type>::type;
  using clock = std::chrono::steady_clock;
  /// A process stage: its processing-time timers fire by the wall clock, not the watermark.
  static constexpr bool has_processing_timers = requires(partial_type& p) { p.fire_processing_timers(millis{}); };
  /// Partials that save and load (stream_checkpoints), over keys and states with codecs.
  static constexpr bool checkpointable = [] {
    if constexpr (requires(partial_type& p, const partial_type& c, byte_writer& w, byte_reader& r) {
                    c.save(w);
                    p.load(r);
                    typename fired_type::state_type;
                  }) {
      return encodable<typename fired_type::key_type> && encodable<typename fired_type::state_type>;
    } else {
      return false;
    }
  }();

  /// One worker's partial state and the chain feeding it.
  class worker {
   public:
    worker(stream_engine& engine, std::size_t index)
        : engine_(&engine),
          index_(index),
          partial_(engine.flow_.make_partial()),
          chain_(engine.flow_.bind_into(pusher{this})) {
      partial_.set_allowed_lateness(engine.opts_.allowed_lateness.count());
      if constexpr (has_processing_timers) {
        partial_.set_processing_clock(engine.processing_clock());
      }
    }
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;

    /// Run one record through the chain; a record whose events were all late goes to the late
    /// output with its position.
    template <class T>
    void process(const T& value, std::string_view raw, std::string_view source, std::uint64_t offset) {
      const add_outcome o = add_counting_late(*current_, [&] { chain_(source_time_, value); });
      ++events_;
      if (o != add_outcome::added) {
        engine_->report_late(late_event{source, offset, last_time_, raw, o == add_outcome::partly_late});
      }
    }

    /// The time the source gives the records processed next (event_time(source_time) takes it).
    void set_source_time(millis t) { source_time_ = t; }

    /// The latest event time since the last call, then reset (for the input's watermark).
    millis take_latest() { return std::exchange(latest_, millis::min()); }
    std::uint64_t take_events() { return std::exchange(events_, 0); }

    [[nodiscard]] bool fire_due() const {
      if constexpr (has_processing_timers) {
        const auto next = partial_.next_processing_timer();
        if (next && *next <= engine_->processing_clock()()) {
          return true;
        }
      }
      return engine_->tracker_.current() > fired_up_to_ || checkpoint_due();
    }

    /// Fire what the watermark has passed and ship it to the combiner.
    void fire(millis watermark) {
      if (watermark <= fired_up_to_ && !fires_when_full) {
        return;
      }
      fired_up_to_ = std::max(fired_up_to_, watermark);
      auto fired = partial_.advance(watermark);
      if constexpr (checkpointable) {
        for (auto& [id, t] : tasks_) {
          auto part = t->partial.advance(watermark);
          if (engine_->opts_.checkpoints->keep_fired && part.size() > 0) {
            t->kept.merge(part);
            forget_old_windows(*t);
          }
          fired.merge(part);
        }
      }
      engine_->combiner_.ship(index_, std::move(fired), watermark, engine_->sink_);
      engine_->metrics_->rows_emitted.store(engine_->combiner_.rows_emitted(), std::memory_order_relaxed);
      report_late_counts();
    }

    // ---- checkpoints (stream_checkpoints): with them, each input has its own partial ----------

    /// An input opened: with checkpoints, its own partial, restored from `restored` if given,
    /// and published at once (an input without records yet is held here too).
    void open(input_id input, const std::string& name, const std::optional<stream_checkpoints::saved_input>& restored,
              std::uint64_t origin) {
      if constexpr (checkpointable) {
        if (engine_->opts_.checkpoints == nullptr) {
          return;
        }
        auto t = std::make_unique<task>(engine_->flow_.make_partial(), name);
        t->origin = origin;
        t->partial.set_allowed_lateness(engine_->opts_.allowed_lateness.count());
        t->saved_at = clock::now();
        if (restored) {
          try {
            byte_reader state(restored->state);
            t->partial.load(state);
            if (engine_->opts_.checkpoints->keep_fired) {
              byte_reader fired(restored->fired);
              t->kept.load(fired);
            }
          } catch (const codec_error& e) {
            throw engine_->opts_.checkpoints->unusable(name, std::string("its state does not decode: ") + e.what());
          }
          t->position = restored->position;
          t->saved_position = restored->position;
          engine_->opts_.checkpoints->publish(name, *restored);
        } else {
          engine_->opts_.checkpoints->publish(name, encoded(*t));
        }
        tasks_.insert_or_assign(input, std::move(t));
      }
    }
    /// `input` goes on in origin `origin` at position 0, its state whole: saved now, so that a
    /// restart never looks for the position in the origin left behind.
    void reopened(input_id input, std::uint64_t origin) {
      if constexpr (checkpointable) {
        const auto it = tasks_.find(input);
        if (it == tasks_.end()) {
          return;
        }
        it->second->origin = origin;
        it->second->position = 0;
        save(*it->second);
      }
    }
    /// The records of `input` go to its own partial from now on (or the worker's, without).
    void select(input_id input) {
      if constexpr (checkpointable) {
        const auto it = tasks_.find(input);
        current_ = it != tasks_.end() ? &it->second->partial : &partial_;
      }
    }
    /// A chunk of `input` ending at source position `position` was processed: checkpoint it if due.
    void after_data(input_id input, std::int64_t position) {
      if constexpr (checkpointable) {
        const auto it = tasks_.find(input);
        if (it == tasks_.end() || position < 0) {
          return;
        }
        it->second->position = position;
        if (clock::now() - it->second->saved_at >= engine_->opts_.checkpoints->every) {
          save(*it->second);
        }
      }
    }
    /// Whether some input has records since its last checkpoint and `every` has passed since:
    /// it went idle (its last message came) and is checkpointed now, not when its next comes.
    [[nodiscard]] bool checkpoint_due() const {
      if constexpr (checkpointable) {
        const auto now = clock::now();
        return std::any_of(tasks_.begin(), tasks_.end(), [&](const auto& entry) { return due(*entry.second, now); });
      }
      return false;
    }
    void save_idle_inputs() {
      if constexpr (checkpointable) {
        const auto now = clock::now();
        for (auto& [id, t] : tasks_) {
          if (due(*t, now)) {
            save(*t);
          }
        }
      }
    }
    /// `input` closed: its last checkpoint. Handed off, its state leaves with it (not fired here).
    void closing(input_id input, bool handed_off) {
      if constexpr (checkpointable) {
        const auto it = tasks_.find(input);
        if (it == tasks_.end()) {
          return;
        }
        if (it->second->position >= 0) {
          save(*it->second);
        }
        if (handed_off) {
          engine_->opts_.checkpoints->withdraw(it->second->input);
          report_late_counts();
          gone_late_ += it->second->partial.late_events();
          gone_partly_late_ += it->second->partial.partly_late_events();
          tasks_.erase(it);
          current_ = &partial_;
        }
      }
    }
    void fire_due_windows() {
      fire(engine_->tracker_.current());
      save_idle_inputs();
      if constexpr (has_processing_timers) {
        engine_->combiner_.ship(index_, partial_.fire_processing_timers(engine_->processing_clock()()), fired_up_to_,
                                engine_->sink_);
        engine_->metrics_->rows_emitted.store(engine_->combiner_.rows_emitted(), std::memory_order_relaxed);
      }
    }

   private:
    static constexpr bool checkpointable = stream_engine::checkpointable;
    struct task {
      partial_type partial;
      fired_type kept;             // with keep_fired: what its windows fired (the rest of its answer)
      std::string input;           // the input's name, which names its checkpoint
      std::int64_t position = -1;  // the source position after its last record processed
      std::int64_t saved_position = -1;
      std::uint64_t origin = 0;    // what its positions are in (input_origin::id)
      clock::time_point saved_at{};
      task(partial_type p, std::string name)
          : partial(std::move(p)), kept(partial.advance(millis::min())), input(std::move(name)) {}
    };

    /// With `retain`, the fired windows kept that ended more than that before the input's
    /// watermark are dropped (unwindowed rows never end: they stay).
    void forget_old_windows(task& t) const {
      const std::chrono::milliseconds retain = engine_->opts_.checkpoints->retain;
      const millis watermark = t.partial.watermark();
      if (retain.count() <= 0 || watermark == millis::min() || watermark == millis::max()) {
        return;
      }
      detail::drop_windows_ended_by(t.kept, watermark - retain);
    }

    /// Records since its last checkpoint, which is `every` old (tasks_ exist only with checkpoints).
    [[nodiscard]] bool due(const task& t, clock::time_point now) const {
      return t.position != t.saved_position && now - t.saved_at >= engine_->opts_.checkpoints->every;
    }

    [[nodiscard]] stream_checkpoints::saved_input encoded(const task& t) const {
      stream_checkpoints::saved_input s{t.position, {}, {}, t.origin};
      byte_writer w(s.state);
      t.partial.save(w);
      if (engine_->opts_.checkpoints->keep_fired) {
        byte_writer f(s.fired);
        t.kept.save(f);
      }
      return s;
    }
    void save(task& t) {
      engine_->opts_.checkpoints->save(t.input, engine_->fingerprint(), encoded(t));
      t.saved_at = clock::now();
      t.saved_position = t.position;
    }

    /// Late counts of every partial here, and of those handed off, to the engine's counters.
    void report_late_counts() {
      std::uint64_t late = partial_.late_events() + gone_late_;
      std::uint64_t partly = partial_.partly_late_events() + gone_partly_late_;
      if constexpr (checkpointable) {
        for (const auto& [id, t] : tasks_) {
          late += t->partial.late_events();
          partly += t->partial.partly_late_events();
        }
      }
      engine_->count_late(late - late_reported_, partly - partly_late_reported_);
      late_reported_ = late;
      partly_late_reported_ = partly;
    }

    // Partials whose windows complete by count, not by time, fire after every batch even when
    // the watermark (which they do not move) stands still.
    static constexpr bool fires_when_full = requires { partial_type::fires_when_full; };
    static constexpr bool has_processing_timers = stream_engine::has_processing_timers;
    struct pusher {
      worker* w;
      template <class E>
      void operator()(millis t, const E& e) {
        using in = aggregate_input<E>;
        w->latest_ = std::max(w->latest_, t);
        w->last_time_ = t;
        w->current_->add(t, in::key_of(e), in::value_of(e));
      }
      void finish() {}
    };
    using chain_type = decltype(std::declval<const Flow&>().bind_into(std::declval<pusher>()));

    stream_engine* engine_;
    std::size_t index_;
    partial_type partial_;
    partial_type* current_ = &partial_;  // where the chain adds: partial_, or the input's own (checkpoints)
    std::unordered_map<input_id, std::unique_ptr<task>> tasks_;  // checkpoints: each input's partial
    chain_type chain_;
    millis latest_ = millis::min();
    millis last_time_ = millis::min();
    millis source_time_{0};
    millis fired_up_to_ = millis::min();
    std::uint64_t events_ = 0;
    std::uint64_t late_reported_ = 0;
    std::uint64_t partly_late_reported_ = 0;
    std::uint64_t gone_late_ = 0;  // late counts of partials handed off with their inputs
    std::uint64_t gone_partly_late_ = 0;
  };

  stream_engine(const Flow& flow, Sink& sink, const stream_options& opts, std::size_t workers)
      : flow_(flow),
        sink_(sink),
        opts_(opts),
        tracker_(watermark_options{opts.max_delay, opts.idle_timeout, opts.expected_inputs}),
        combiner_(make_combiner(flow, workers, opts.allowed_lateness.count())),
        metrics_(opts.metrics != nullptr ? opts.metrics : &own_metrics_),
        processing_clock_(opts.processing_clock ? opts.processing_clock : std::function<millis()>(system_processing_time)) {}

  stream_metrics& metrics() { return *metrics_; }
  [[nodiscard]] stream_checkpoints* checkpoints() const { return opts_.checkpoints; }
  /// What names this flow in its checkpoints (its partial's type and the checkpoints' flow_name).
  [[nodiscard]] std::uint64_t fingerprint() const {
    return flow_fingerprint<partial_type>(opts_.checkpoints != nullptr ? opts_.checkpoints->flow_name : "");
  }

  /// How a worker blocked on its queue is woken when the watermark moves or the run fails (and,
  /// for a process stage, at every tick, to fire processing-time timers that came due).
  void set_wake_all(std::function<void()> fn) { wake_all_ = std::move(fn); }

  /// The runner's ticker: idle inputs stop holding the watermark back; process stages look at
  /// the wall clock for processing-time timers.
  void tick(clock::time_point now) {
    advance(now);
    if (has_processing_timers || opts_.checkpoints != nullptr) {
      if (wake_all_) {
        wake_all_();  // timers, and checkpoints of inputs gone idle, come due by the clock
      }
    }
  }
  [[nodiscard]] const std::function<millis()>& processing_clock() const { return processing_clock_; }
  void set_on_failure(std::function<void()> fn) { on_failure_ = std::move(fn); }

  /// After a worker processed a chunk of `input`: move that input's watermark, and the stream's.
  void after_chunk(worker& w, input_id input) {
    const auto now = clock::now();
    const millis latest = w.take_latest();
    metrics_->events.fetch_add(w.take_events(), std::memory_order_relaxed);
    metrics_->latest_event_time.store(tracker_.observe(input, latest, now).count(), std::memory_order_relaxed);
    advance(now);
  }

  void advance(clock::time_point now) {
    const millis before = tracker_.current();
    const millis after = tracker_.advance(now);
    if (after > before) {
      metrics_->watermark.store(after.count(), std::memory_order_relaxed);
      if (wake_all_) {
        wake_all_();
      }
    }
  }

  /// A new input: it holds the watermark back from now on.
  input_id open_input() {
    metrics_->inputs_opened.fetch_add(1, std::memory_order_relaxed);
    metrics_->inputs_open.fetch_add(1, std::memory_order_relaxed);
    return tracker_.open(clock::now());
  }

  void close_input(input_id input) {
    tracker_.close(input);
    metrics_->inputs_open.fetch_sub(1, std::memory_order_relaxed);
    advance(clock::now());
  }

  /// The dead-letter path shared by the workers: one report at a time. False stops the input
  /// (policy fail); the whole run then stops and run_stream throws.
  bool report_bad(const bad_record& bad, const input_options& input) {
    metrics_->bad_records.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(report_mutex_);
    if (input.on_bad_record == bad_record_policy::fail) {
      if (!failure_) {
        failure_ = describe(bad);
        if (on_failure_) {
          on_failure_();
        }
      }
      return false;
    }
    if (input.dead_letters) {
      input.dead_letters(bad);
    }
    return true;
  }

  void report_late(const late_event& late) {
    if (opts_.on_late) {
      std::lock_guard lock(report_mutex_);
      opts_.on_late(late);
    }
  }
  void count_late(std::uint64_t late, std::uint64_t partly) {
    metrics_->late_events.fetch_add(late, std::memory_order_relaxed);
    metrics_->partly_late_events.fetch_add(partly, std::memory_order_relaxed);
  }

  /// A worker thread ended with an exception (a throwing sink, say): keep the first, stop the run.
  void fail(std::exception_ptr error) {
    {
      std::lock_guard lock(report_mutex_);
      if (error_ || failure_) {
        return;
      }
      error_ = std::move(error);
    }
    if (on_failure_) {
      on_failure_();
    }
  }

  [[nodiscard]] bool failed() const {
    std::lock_guard lock(report_mutex_);
    return failure_.has_value() || error_ != nullptr;
  }
  void throw_if_failed() const {
    std::lock_guard lock(report_mutex_);
    if (error_) {
      std::rethrow_exception(error_);
    }
    if (failure_) {
      throw bad_input_error(*failure_);
    }
  }

  [[nodiscard]] stream_stats stats(clock::time_point started) const {
    stream_stats s;
    s.events = metrics_->events.load();
    s.bad_records = metrics_->bad_records.load();
    s.late_events = metrics_->late_events.load();
    s.partly_late_events = metrics_->partly_late_events.load();
    s.bytes = metrics_->bytes.load();
    s.inputs = metrics_->inputs_opened.load();
    s.rows_emitted = combiner_.rows_emitted();
    s.seconds = std::chrono::duration<double>(clock::now() - started).count();
    return s;
  }

 private:
  static combiner_type make_combiner(const Flow& flow, std::size_t workers, std::int64_t lateness) {
    if constexpr (is_emitted_rows_v<fired_type>) {
      return combiner_type{};
    } else {
      return make_monoid_combiner(flow, workers, lateness);
    }
  }
  static combiner_type make_monoid_combiner(const Flow& flow, std::size_t workers, std::int64_t lateness) {
    auto probe = flow.make_partial();
    return combiner_type(probe.advance(millis::min()).monoid(), workers, lateness);
  }

  const Flow& flow_;
  Sink& sink_;
  const stream_options& opts_;
  watermark_tracker tracker_;
  combiner_type combiner_;
  stream_metrics own_metrics_;
  stream_metrics* metrics_;
  std::function<void()> wake_all_;
  std::function<void()> on_failure_;
  mutable std::mutex report_mutex_;
  std::optional<std::string> failure_;
  std::exception_ptr error_;
  std::function<millis()> processing_clock_;
};

/// Wakes the workers now and then so that idle inputs stop holding the watermark back, and every
/// 10 ms for a process stage's processing-time timers, and twice per checkpoint interval so that
/// an input gone idle is checkpointed. The runner keeps it as a local declared after the queues
/// that wake_all pokes, so it stops before they go.
template <class Engine>
std::jthread idle_ticker(Engine& engine, std::chrono::milliseconds idle_timeout,
                         const stream_checkpoints* checkpoints = nullptr) {
  constexpr std::chrono::milliseconds processing_tick{10};
  std::chrono::milliseconds period = std::chrono::milliseconds::max();
  if (idle_timeout.count() > 0) {
    period = std::max(std::chrono::milliseconds{1}, idle_timeout / 4);
  }
  if (checkpoints != nullptr) {
    period = std::min(period, std::max(std::chrono::milliseconds{1}, checkpoints->every / 2));
  }
  if constexpr (Engine::has_processing_timers) {
    period = std::min(period, processing_tick);
  }
  if (period == std::chrono::milliseconds::max()) {
    return {};
  }
  return run_every(period, [&engine] { engine.tick(std::chrono::steady_clock::now()); });
}

/// The byte_feed the runner gives a byte source: inputs go to workers round robin.
template <class Engine>
class worker_feed final : public byte_feed {
  // Engines that keep stream_checkpoints (run_stream's, for flows that can); others (the Lambda
  // ingest) take positions and hand-offs as the plain byte_feed does.
  static constexpr bool checkpoints_possible = requires { requires Engine::checkpointable; };
  [[nodiscard]] stream_checkpoints* checkpoints() const {
    if constexpr (checkpoints_possible) {
      return engine_.checkpoints();
    } else {
      return nullptr;
    }
  }

 public:
  worker_feed(Engine& engine, std::vector<std::unique_ptr<event_queue<stream_chunk>>>& queues)
      : engine_(engine), queues_(queues) {}

  /// With checkpoints, an input whose name has one opens from it (read here, on the source's
  /// thread, so that the state and the position the source seeks to are one snapshot).
  input_handle open_input(std::string name) override { return open(std::move(name), std::nullopt); }

  /// The checkpoint's origin and position are checked before anything opens or is restored.
  input_handle open_input_in(std::string name, const input_origin& origin) override {
    return open(std::move(name), origin);
  }

  input_handle reopen_input(input_handle input, std::string name, const input_origin& origin) override {
    stream_chunk c{input, stream_chunk::kind::reopened, std::move(name)};
    c.origin = origin.id;
    queue_of(input).push_always(std::move(c));
    return input;
  }

  bool try_push(input_handle input, std::string& bytes) override { return try_push_at(input, bytes, {}); }
  bool try_push_at(input_handle input, std::string& bytes, const source_position& at) override {
    stream_chunk c{input, stream_chunk::kind::data, std::move(bytes), at.next, at.time, at.in_bytes};
    const std::size_t n = c.bytes.size();
    if (queue_of(input).try_push(c)) {
      count(n);
      return true;
    }
    bytes = std::move(c.bytes);
    return false;
  }

  bool push(input_handle input, std::string bytes) override { return push_at(input, std::move(bytes), {}); }
  bool push_at(input_handle input, std::string bytes, const source_position& at) override {
    const std::size_t n = bytes.size();
    if (queue_of(input).push(
            stream_chunk{input, stream_chunk::kind::data, std::move(bytes), at.next, at.time, at.in_bytes})) {
      count(n);
      return true;
    }
    return false;
  }

  std::optional<std::int64_t> restored_position(input_handle input) override {
    const auto it = restored_.find(input);
    if (it == restored_.end()) {
      return std::nullopt;
    }
    return it->second;
  }

  void close_input(input_handle input) override { close(input, false); }
  void hand_off_input(input_handle input) override { close(input, checkpoints() != nullptr); }

  void on_space(std::function<void()> fn) override {
    for (auto& q : queues_) {
      q->on_space(fn);
    }
  }

 private:
  event_queue<stream_chunk>& queue_of(input_id id) { return *queues_[id % queues_.size()]; }

  input_handle open(std::string name, const std::optional<input_origin>& origin) {
    std::optional<stream_checkpoints::saved_input> saved;
    if constexpr (checkpoints_possible) {
      stream_checkpoints* cp = checkpoints();
      saved = cp != nullptr ? cp->load(name, engine_.fingerprint()) : std::nullopt;
    }
    std::uint64_t origin_id = origin ? origin->id : 0;
    if (saved && origin) {
      origin_id = resumable_origin(*checkpoints(), name, *saved, *origin);
    }
    const input_id id = engine_.open_input();
    stream_chunk opened{id, stream_chunk::kind::opened, name};
    opened.origin = origin_id;
    if (saved) {
      restored_.insert_or_assign(id, saved->position);
      opened.restored = std::move(saved);
    }
    queue_of(id).push_always(std::move(opened));
    return id;
  }

  /// The origin input `name` resumes from `saved` in (see byte_feed::open_input_in), or a
  /// checkpoint_error if it cannot.
  static std::uint64_t resumable_origin(const stream_checkpoints& cp, const std::string& name,
                                        const stream_checkpoints::saved_input& saved, const input_origin& origin) {
    std::int64_t end = origin.end;
    if (saved.origin != origin.id) {
      if (const std::optional<std::int64_t> found = origin.find ? origin.find(saved.origin) : std::nullopt) {
        end = *found;
      } else {
        throw cp.unusable(name, "it was saved reading another file than the one the input reads now, and that one "
                                "is gone (deleted or moved away while the run was stopped) with its unread rest. "
                                "Remove the checkpoint to read the input afresh");
      }
    }
    if (end >= 0 && saved.position > end) {
      throw cp.unusable(name, "it covers up to position " + std::to_string(saved.position) + ", past the input's end (" +
                                  std::to_string(end) +
                                  "): it was cut short since. Remove the checkpoint to read the input afresh");
    }
    return saved.origin;
  }

  /// A hand-off returns once the input's worker has saved its last checkpoint, so that the next
  /// owner (another process given the partition, a restart) restores everything read here.
  void close(input_handle input, bool handed_off) {
    restored_.erase(input);
    stream_chunk c{input, stream_chunk::kind::closed, {}};
    c.handed_off = handed_off;
    std::future<void> saved;
    if (handed_off) {
      c.done = std::make_shared<chunk_done>();
      saved = c.done->done.get_future();
    }
    queue_of(input).push_always(std::move(c));
    // Not past a failed run: a worker that died may leave the chunk in its queue until the end.
    while (saved.valid() && saved.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready &&
           !run_failed()) {
    }
  }
  [[nodiscard]] bool run_failed() const {
    if constexpr (requires { engine_.failed(); }) {
      return engine_.failed();
    } else {
      return false;  // an engine without checkpoints never waits on a hand-off
    }
  }
  void count(std::size_t n) {
    engine_.metrics().bytes.fetch_add(n, std::memory_order_relaxed);
    engine_.metrics().queued.fetch_add(1, std::memory_order_relaxed);
  }

  Engine& engine_;
  std::vector<std::unique_ptr<event_queue<stream_chunk>>>& queues_;
  std::unordered_map<input_id, std::int64_t> restored_;  // open inputs restored from a checkpoint
};

/// The source position a checkpoint of `in` covers after a chunk that ends at byte `end` of the
/// source, `pushed` bytes of the input so far: the first byte the format has not consumed (the
/// start of a record still cut off). -1 (no new position) while the format is inside a record it
/// drops, and for formats that do not say where their records end.
template <class Format>
std::int64_t resume_position(const Format& format, const typename Format::input& in, std::uint64_t pushed,
                             std::int64_t end) {
  if constexpr (requires { format.resume_offset(in); }) {
    if (const std::optional<std::uint64_t> consumed = format.resume_offset(in)) {
      return end - static_cast<std::int64_t>(pushed - *consumed);
    }
  }
  return -1;
}

/// A worker thread of a byte source: parse each input's chunks and run them through the chain.
template <class Engine, class Format>
void byte_worker_loop(Engine& engine, typename Engine::worker& w, event_queue<stream_chunk>& queue,
                      const Format& format, bool needs_final_newline) {
  struct input_state {
    typename Format::input in;
    std::uint64_t pushed = 0;  // bytes of the input so far
    bool in_bytes = false;     // its positions are byte offsets (source_position::in_bytes)
  };
  std::unordered_map<input_id, input_state> inputs;
  std::vector<stream_chunk> batch;
  const input_options& input_opts = format.options();
  auto report = [&](const bad_record& bad) { return engine.report_bad(bad, input_opts); };
  while (true) {
    batch.clear();
    const std::size_t n = queue.pop_batch(batch, 4, [&] { return w.fire_due(); });
    engine.metrics().queued.fetch_sub(
        static_cast<std::int64_t>(std::count_if(
            batch.begin(), batch.end(), [](const stream_chunk& c) { return c.what == stream_chunk::kind::data; })),
        std::memory_order_relaxed);
    for (stream_chunk& c : batch) {
      if (c.what == stream_chunk::kind::opened) {
        w.open(c.input, c.bytes, c.restored, c.origin);
        inputs.emplace(c.input, input_state{format.new_input(std::move(c.bytes))});
        continue;
      }
      auto it = inputs.find(c.input);
      if (it == inputs.end()) {
        continue;
      }
      auto& in = it->second.in;
      auto emit = [&](const auto& value, std::string_view raw, std::uint64_t offset) {
        w.process(value, raw, in.at.name, offset);
      };
      w.select(c.input);
      w.set_source_time(c.time);
      if (c.what == stream_chunk::kind::reopened) {
        if (!engine.failed()) {
          format.close(in, needs_final_newline, emit, report);  // the old origin ended its last record
        }
        engine.after_chunk(w, c.input);
        it->second = input_state{format.new_input(std::move(c.bytes))};
        w.reopened(c.input, c.origin);
      } else if (c.what == stream_chunk::kind::data) {
        if (!engine.failed()) {
          format.feed(in, c.bytes, emit, report);
        }
        it->second.pushed += c.bytes.size();
        it->second.in_bytes = it->second.in_bytes || c.position_in_bytes;
        engine.after_chunk(w, c.input);
        w.after_data(c.input, c.position_in_bytes && c.position >= 0
                                  ? resume_position(format, in, it->second.pushed, c.position)
                                  : c.position);
      } else {
        // A record cut off at a hand-off is not parsed when the checkpoint resumes at its first byte.
        if (!engine.failed() && !(c.handed_off && it->second.in_bytes)) {
          format.close(in, needs_final_newline, emit, report);
        }
        engine.after_chunk(w, c.input);
        w.closing(c.input, c.handed_off);
        c.done.reset();  // the hand-off's checkpoint is saved: the source may go on
        inputs.erase(it);
        engine.close_input(c.input);
      }
    }
    w.fire_due_windows();
    if (n == 0 && queue.closed() && queue.size() == 0) {
      break;
    }
  }
  w.fire(millis::max());
}

/// Closes the worker queues and joins the workers however the run ends (even by an exception).
struct worker_shutdown {
  std::vector<std::unique_ptr<event_queue<stream_chunk>>>& queues;
  std::vector<std::thread>& threads;
  ~worker_shutdown() {
    for (auto& q : queues) {
      q->close();
    }
    for (auto& t : threads) {
      if (t.joinable()) {
        t.join();
      }
    }
  }
};

}  // namespace detail

/// Run `flow` over the event_queue of `source` on the calling thread (one worker, as the queue
/// is one ordered input) until the queue is closed and drained, or `stop` is requested (which
/// closes the queue). sink(rows) receives each batch of completed windows as a result_store.
template <class T, class Flow, class Sink>
stream_stats run_stream(queue_source<T> source, const Flow& flow, Sink&& sink, stream_options opts = {},
                        std::stop_token stop = {}) {
  detail::check_streamable<Flow>();
  const auto started = std::chrono::steady_clock::now();
  using engine_type = detail::stream_engine<Flow, std::remove_reference_t<Sink>>;
  engine_type engine(flow, sink, opts, 1);
  event_queue<T>& queue = *source.queue;
  struct close_on_exit {  // producers must not block on a queue nobody pops any more (a throwing sink)
    event_queue<T>& q;
    ~close_on_exit() { q.close(); }
  } closer{queue};
  typename engine_type::worker w(engine, 0);
  engine.set_wake_all([&queue] { queue.poke(); });
  engine.set_on_failure([&queue] { queue.close(); });
  const std::stop_callback on_stop(stop, [&queue] { queue.close(); });
  const input_id input = engine.open_input();
  auto ticker = detail::idle_ticker(engine, opts.idle_timeout);
  std::vector<T> batch;
  batch.reserve(opts.queue_events);
  while (true) {
    batch.clear();
    const std::size_t n = queue.pop_batch(batch, opts.queue_events, [&] { return w.fire_due(); });
    for (const T& v : batch) {
      w.process(v, std::string_view{}, "queue", 0);
    }
    if (n > 0) {
      engine.after_chunk(w, input);
    }
    w.fire_due_windows();
    if (n == 0 && queue.closed() && queue.size() == 0) {
      break;
    }
  }
  engine.close_input(input);
  w.fire(millis::max());
  return engine.stats(started);
}

/// Several event_queues as one stream source for a flow over std::variant<...>: each queue is an
/// input with its own watermark (the flow's is their minimum), so one type arriving later than
/// another in wall-clock time is not late for it.
template <class... Ts>
struct queues_source {
  std::tuple<event_queue<Ts>*...> queues;
};
template <class... Ts>
queues_source<Ts...> from_queues(event_queue<Ts>&... queues) {
  return {{&queues...}};
}

/// Run `flow` (over a std::variant of the queues' types) over several event_queues until every
/// one is closed and drained, or `stop` is requested (which closes them). One thread per queue
/// moves its events, as the variant, to the calling thread, which runs the flow (one worker).
template <class... Ts, class Flow, class Sink>
stream_stats run_stream(queues_source<Ts...> source, const Flow& flow, Sink&& sink, stream_options opts = {},
                        std::stop_token stop = {}) {
  detail::check_streamable<Flow>();
  using variant = typename Flow::input_type;
  const auto started = std::chrono::steady_clock::now();
  using engine_type = detail::stream_engine<Flow, std::remove_reference_t<Sink>>;
  engine_type engine(flow, sink, opts, 1);
  struct batch {
    input_id input = 0;
    std::vector<variant> events;
    bool closed = false;
  };
  event_queue<batch> merged(2 * sizeof...(Ts));  // small: a slow flow holds the producers back
  auto close_inputs = [&source] { std::apply([](auto*... q) { (q->close(), ...); }, source.queues); };
  auto close_all = [&] {
    close_inputs();
    merged.close();
  };
  typename engine_type::worker w(engine, 0);
  engine.set_wake_all([&merged] { merged.poke(); });
  engine.set_on_failure(close_all);
  // A stop closes the inputs: the feeders still hand over what they hold, then their ends.
  const std::stop_callback on_stop(stop, close_inputs);
  std::vector<std::jthread> feeders;
  const std::size_t batch_size = std::max<std::size_t>(1, opts.queue_events);
  std::apply(
      [&](auto*... queues) {
        auto feed = [&](auto* queue) {
          const input_id input = engine.open_input();
          feeders.emplace_back([&merged, queue, input, batch_size] {
            using T = typename std::remove_pointer_t<decltype(queue)>::value_type;
            std::vector<T> taken;
            while (true) {
              taken.clear();
              if (queue->pop_batch(taken, batch_size) == 0) {
                break;  // closed and drained
              }
              batch b{input, {}, false};
              b.events.reserve(taken.size());
              for (T& v : taken) {
                b.events.emplace_back(std::move(v));
              }
              if (!merged.push(std::move(b))) {
                return;  // the run is over (failed or stopped)
              }
            }
            merged.push_always(batch{input, {}, true});
          });
        };
        (feed(queues), ...);
      },
      source.queues);
  struct close_on_exit {  // producers and feeders must not block on queues nobody pops any more
    decltype(close_all)& close;
    ~close_on_exit() { close(); }
  } closer{close_all};
  auto ticker = detail::idle_ticker(engine, opts.idle_timeout);
  std::size_t open = sizeof...(Ts);
  std::vector<batch> taken;
  while (open > 0) {
    taken.clear();
    const std::size_t n = merged.pop_batch(taken, 4, [&] { return w.fire_due(); });
    for (batch& b : taken) {
      for (const variant& v : b.events) {
        w.process(v, std::string_view{}, "queue", 0);
      }
      engine.after_chunk(w, b.input);
      if (b.closed) {
        engine.close_input(b.input);
        --open;
      }
    }
    w.fire_due_windows();
    if (n == 0 && merged.closed() && merged.size() == 0) {
      break;
    }
  }
  w.fire(millis::max());
  engine.throw_if_failed();
  return engine.stats(started);
}

/// Run `flow` over an unbounded byte source (tcp_source, udp_source, stdin, a tailed file):
/// the source reads on the calling thread, `opts.threads` workers parse and aggregate, and
/// sink(rows) receives each batch of completed windows (with plain aggregates: all rows, once,
/// at the end). Returns when the source ends or `stop` is requested, after the final watermark.
/// Under bad_record_policy::fail the first bad record stops the run and is thrown.
template <class Source, class Flow, class Sink>
stream_stats run_stream(Source& source, const Flow& flow, Sink&& sink, stream_options opts = {},
                        std::stop_token stop = {}) {
  detail::check_streamable<Flow>();
  const auto started = std::chrono::steady_clock::now();
  std::size_t workers = std::max(1U, opts.threads);
  if constexpr (detail::needs_one_worker<Flow>()) {
    workers = 1;  // count windows follow arrival order; sessions of one key must meet in one place
  }
  using engine_type = detail::stream_engine<Flow, std::remove_reference_t<Sink>>;
  if (opts.checkpoints != nullptr && !engine_type::checkpointable) {
    throw std::invalid_argument(
        "sluice::run_stream: checkpoints need a flow whose state saves and loads (a global, tumbling or sliding "
        "aggregate); this one's does not yet");
  }
  engine_type engine(flow, sink, opts, workers);

  std::vector<std::unique_ptr<event_queue<detail::stream_chunk>>> queues;
  for (std::size_t i = 0; i < workers; ++i) {
    queues.push_back(std::make_unique<event_queue<detail::stream_chunk>>(std::max<std::size_t>(1, opts.queue_chunks)));
  }
  std::stop_source stopper;
  const std::stop_callback forward(stop, [&stopper] { stopper.request_stop(); });
  engine.set_wake_all([&queues] {
    for (auto& q : queues) {
      q->poke();
    }
  });
  engine.set_on_failure([&stopper, &queues] {
    stopper.request_stop();
    for (auto& q : queues) {
      q->close();  // a source blocked on a failed worker's full queue must not wait forever
    }
  });

  std::vector<std::unique_ptr<typename engine_type::worker>> states;
  for (std::size_t i = 0; i < workers; ++i) {
    states.push_back(std::make_unique<typename engine_type::worker>(engine, i));
  }
  std::vector<std::thread> threads;
  {
    const detail::worker_shutdown shutdown{queues, threads};
    for (std::size_t i = 0; i < workers; ++i) {
      threads.emplace_back([&, i] {
        try {
          detail::byte_worker_loop(engine, *states[i], *queues[i], source.format(), source.needs_final_newline());
        } catch (...) {
          engine.fail(std::current_exception());  // rethrown by run_stream once the run has stopped
        }
      });
    }
    auto ticker = detail::idle_ticker(engine, opts.idle_timeout, opts.checkpoints);
    detail::worker_feed<engine_type> feed(engine, queues);
    source.run(feed, stopper.get_token());
  }
  engine.throw_if_failed();
  return engine.stats(started);
}

}  // namespace sluice
