// lambda_engine: the Lambda architecture in one object (DESIGN.md section 8).
//
//   ingest --append, commit--> event log (immutable) --sealed epochs [0, E)--> batch layer --> V_E
//          \--then------------> speed layer (epoch_store, the same flow in stream mode) --> speed[e]
//   snapshot() = V_E (+) sum over e >= E of speed[e]      (open windows included, so far)
//
// An epoch is a log segment. The batch layer runs the flow in batch mode over the sealed
// epochs it has not covered yet (incrementally, V_E' = V_E (+) batch([E, E')), or from scratch)
// and publishes V_E' together with E' and the retirement of speed epochs < E', under one lock:
// a reader sees either (V_E, speed[>= E]) or (V_E', speed[>= E']), never a mix. Every record is
// in exactly one of them: its epoch is either below the horizon (in V) or not (in speed).
//
// Why that holds even while batches run: a segment is sealed only by the ingest path, after
// every record appended to it went to the speed layer; so a batch run over sealed segments
// reads exactly the records the speed layer holds for those epochs (plus the late ones the
// speed layer dropped: those become visible when the horizon passes their epoch).
//
// One log can feed several views (flows): each record is decoded once and goes to every
// view's speed layer; a batch step runs every flow over the same epochs and publishes all the
// views together, so answers of different views read at once agree on the horizon.
//
// Both layers decode the log's payload bytes with the same decoder, so they see the same
// values. A restart seals the log's last segment and rebuilds V from the whole log before the
// engine takes input or answers: nothing that reached the log is lost or counted twice.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/io/log_source.hpp"
#include "sluice/lambda/batch_view.hpp"
#include "sluice/lambda/epoch_store.hpp"
#include "sluice/lambda/view_snapshot.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/run/periodic.hpp"
#include "sluice/run/progress.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/run/watermarks.hpp"
#include "sluice/store/event_log.hpp"
#include "sluice/store/result_store.hpp"

namespace sluice {

struct lambda_options {
  log_options log;                                // segment size and age, fsync policy
  std::chrono::milliseconds max_delay{0};         // speed layer: bounded out-of-orderness per input
  std::chrono::milliseconds allowed_lateness{0};  // speed layer: fired windows stay updatable this long
  std::chrono::milliseconds idle_timeout{0};      // speed layer: a silent input stops holding the watermark
  std::chrono::milliseconds batch_every{0};       // batch layer: at most this often; 0: whenever an epoch seals
  bool incremental = true;                        // V_E' = V_E (+) batch([E, E')); false: recompute from offset 0
  // Incremental only: an epoch whose every record reached the speed layer is published from the
  // speed layer's state for it, plus what its windows dropped as late (kept aside for this, out
  // of the speed layer's answers), instead of being read and aggregated again (stream mode's
  // answer is batch mode's over the events it took: DESIGN section 3).
  bool promote_clean_epochs = true;
  unsigned batch_threads = 0;  // 0: all cores
  // Windowed views: windows that ended more than this before the watermark are no longer
  // served and leave the batch view at its next publish; the speed layer frees them with their
  // epoch (0: keep every window). The windows kept stay exact.
  std::chrono::milliseconds retain{0};
  late_sink on_late{};  // events the speed layer dropped (offset: their log offset)
  // The constructor's catch-up (the batch views built over the whole log it opens): called on
  // the constructing thread about every progress_interval with the log offsets covered so far
  // (unit records), and once at the end (finished).
  std::function<void(const run_progress&)> on_catch_up{};
  std::chrono::milliseconds progress_interval{250};
};

/// One record to ingest: its bytes as the log keeps them and its event time.
struct ingest_record {
  std::string_view payload;
  millis event_time;
};

/// What /status reports.
/// Upper bounds (seconds) of the buckets lambda_status counts batch runs' durations in; a last
/// bucket holds the runs above the last bound.
inline constexpr std::array<double, 10> lambda_batch_seconds_bounds{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60};

struct lambda_status {
  std::uint64_t log_head = 0;               // the next log offset
  std::uint64_t log_bytes = 0;              // the log's segment files (the active one: as written so far)
  std::uint64_t sealed_epochs = 0;          // log segments sealed
  std::uint64_t horizon_epoch = 0;          // the batch view covers epochs [0, horizon_epoch)
  std::uint64_t horizon_offset = 0;         // ... i.e. log offsets [0, horizon_offset)
  std::vector<std::uint64_t> speed_epochs;  // epochs the speed layer holds
  std::uint64_t ingested = 0;               // records accepted into the log by this process
  std::uint64_t late = 0;                   // dropped by the speed layer (to the late output)
  std::uint64_t late_not_covered = 0;       // ... of epochs the batch view does not cover yet
  std::uint64_t partly_late = 0;            // sliding-window events the speed layer missed some windows of
  std::uint64_t bad_records = 0;            // dead-lettered at ingest
  std::uint64_t batch_runs = 0;
  std::uint64_t promoted_epochs = 0;  // epochs published from the speed layer's state (no re-read)
  double last_batch_seconds = 0;
  std::uint64_t last_batch_records = 0;
  // Batch runs by duration (lambda_batch_seconds_bounds; not cumulative) and their total seconds.
  std::array<std::uint64_t, lambda_batch_seconds_bounds.size() + 1> batch_seconds_counts{};
  double batch_seconds_sum = 0;
  std::int64_t watermark = millis::min().count();
  std::int64_t retention_horizon = millis::min().count();  // windows ending at or before it are dropped
  std::uint64_t batch_entries = 0;                         // (key[, window]) entries of the batch view
  std::uint64_t batch_table_bytes = 0;                     // ... and the bytes of their tables
  std::uint64_t speed_entries = 0;  // entries the speed layer holds (all its epochs, open and fired)
  std::uint64_t speed_table_bytes = 0;
  std::optional<log_recovery> recovery;  // what opening the log cut from a torn tail
};

namespace detail {
/// One flow's side of the combinator: its speed layer and its published batch view.
template <class Flow>
struct lambda_view {
  using state_type = typename epoch_store<Flow>::state_type;
  using view_type = batch_view<typename state_type::key_type, typename state_type::monoid_type>;
  using snapshot_type = view_snapshot<typename state_type::key_type, typename state_type::monoid_type>;

  lambda_view(const Flow& f, std::int64_t lateness_ms)
      : flow(std::make_unique<const Flow>(f)),
        speed(std::make_unique<epoch_store<Flow>>(*flow, lateness_ms)),
        view(std::make_shared<const view_type>(speed->empty_state().monoid())) {}

  // The view's own copy of the flow (a flow is a small value), at a stable address the speed
  // layer refers to: the caller's flow may be a temporary.
  std::unique_ptr<const Flow> flow;
  std::unique_ptr<epoch_store<Flow>> speed;
  std::shared_ptr<const view_type> view;  // V_E: published versions share what did not change
  std::uint64_t late = 0;                 // events its speed layer dropped
  std::uint64_t partly_late = 0;          // sliding-window events that missed some windows there
};
}  // namespace detail

template <class Payloads, class... Flows>
class lambda_engine {
  static_assert(sizeof...(Flows) >= 1, "sluice::lambda_engine needs at least one flow");

 public:
  template <std::size_t I>
  using view_type = detail::lambda_view<std::tuple_element_t<I, std::tuple<Flows...>>>;
  /// What the payload decoder makes of a record: the value the speed layers take.
  using value_type = typename Payloads::value_type;
  template <std::size_t I = 0>
  using snapshot_type = typename view_type<I>::snapshot_type;

  /// An answer and the batch horizon it was read at.
  template <class Store>
  struct snapshot_of {
    Store store;
    std::uint64_t horizon_epoch = 0;
    std::uint64_t horizon_offset = 0;
  };

  /// Opens (or creates) the log in `dir`, recovers it, and builds the batch views over all of it.
  lambda_engine(std::string dir, Payloads payloads, lambda_options opts, const Flows&... flows)
      : payloads_(std::move(payloads)),
        opts_(std::move(opts)),
        log_(std::move(dir), opts_.log),
        tracker_(watermark_options{opts_.max_delay, opts_.idle_timeout, 0}),
        decoder_(payloads_),
        views_(view_type_for<Flows>(flows, opts_.allowed_lateness.count())...) {
    log_.seal();  // records of a previous run's last segment reach no speed layer: the batch view takes them
    catch_up_meter meter(opts_, status().log_head);
    if (opts_.on_catch_up) {
      // Within a run too: a run of a few 64 MiB segments takes seconds.
      catch_up_read_ = [&](std::uint64_t read_in_run) { meter.report(horizon_offset_.load() + read_in_run, false); };
    }
    // A few segments a run: a run's partials are the size of what it reads, and a view with
    // retention drops old windows after each run, so rebuilding a long log never holds all of it.
    while (run_batch_layer(opts_.incremental ? rebuild_epochs_per_run : 0)) {
      meter.report(horizon_offset_.load(), false);
    }
    catch_up_read_ = nullptr;
    meter.report(horizon_offset_.load(), true);
  }
  lambda_engine(const lambda_engine&) = delete;
  lambda_engine& operator=(const lambda_engine&) = delete;
  ~lambda_engine() {
    try {
      stop_batch_layer();
    } catch (...) {  // a failed batch run was the host's to ask about (batch_error()); never throw here
    }
  }

  // ---- ingest (the speed layer's input) ----------------------------------------------------

  /// A new input (a connection): it holds the speed layer's watermark back until it closes.
  input_id open_input() {
    std::lock_guard state(state_mutex_);
    metrics_.inputs_opened.fetch_add(1, std::memory_order_relaxed);
    metrics_.inputs_open.fetch_add(1, std::memory_order_relaxed);
    return tracker_.open(std::chrono::steady_clock::now());
  }
  void close_input(input_id input) {
    std::lock_guard state(state_mutex_);
    tracker_.close(input);
    metrics_.inputs_open.fetch_sub(1, std::memory_order_relaxed);
    advance_watermark();
  }

  /// Append `records` to the log and commit them (fsync as the policy says), then add them to
  /// the speed layers: from the moment this returns they count in every answer. Then seal the
  /// segment if it is due (which wakes the batch layer).
  template <class Records>
  void ingest(input_id input, const Records& records) {
    log_batch batch;
    for (const ingest_record& r : records) {
      encode(batch, r.event_time, r.payload);
    }
    ingest(input, batch);
  }

  /// One record into `batch` as the log keeps it (with its CRC), for ingest(input, batch).
  /// Any thread, no lock: a host's ingest threads encode side by side. A payload over the log's
  /// max_record_bytes is a std::length_error and leaves `batch` as it was.
  void encode(log_batch& batch, millis event_time, std::string_view payload) const {
    log_.encode(batch, event_time, payload);
  }

  /// ingest(input, records) for records encode() put in `batch`.
  ///
  /// Any number of threads may ingest at once (one per group of inputs, say). A batch is written
  /// in one step under the writer's lock and synced outside every lock: one fdatasync covers
  /// the records every thread wrote before it began (group commit); under the policy always,
  /// before the records reach the speed layer. Readers and the speed layer never wait for a
  /// disk. A segment seals only once every record written to it has reached the speed layer.
  void ingest(input_id input, const log_batch& batch) { ingest(input, batch, nullptr); }

  /// ingest(input, batch), where decoded[i], when not null, is record i's value as the payload
  /// decoder would make it (the source's format parsed it at the edge with the same schema): the
  /// speed layers take it as it is instead of decoding the payload again. It must stay valid
  /// until this returns.
  void ingest(input_id input, const log_batch& batch, const std::vector<const value_type*>* decoded) {
    std::uint64_t epoch = 0;
    std::uint64_t first = 0;
    {
      std::lock_guard lock(ingest_mutex_);
      epoch = log_.active_segment();
      first = log_.write(batch);
      take_off();
    }
    std::vector<late_event> late;
    {
      const landing land(*this);  // also if a sync throws: a waiting seal must not wait forever
      if (opts_.log.fsync.what == fsync_policy::kind::always) {
        log_.sync_if_due();  // on disk before the records count anywhere
      }
      std::lock_guard state(state_mutex_);
      std::uint64_t offset = first;
      batch.for_each([&](millis event_time, std::string_view payload) {
        const value_type* value = decoded != nullptr ? (*decoded)[offset - first] : nullptr;
        if (value != nullptr) {
          add_value_to_speed(epoch, offset, *value, ingest_record{payload, event_time}, late);
        } else {
          add_to_speed(epoch, offset, ingest_record{payload, event_time}, late);
        }
        ++offset;
      });
      metrics_.events.fetch_add(offset - first, std::memory_order_relaxed);
      millis latest = millis::min();
      for_each_view([&](auto& v) { latest = std::max(latest, v.speed->take_latest()); });
      tracker_.observe(input, latest, std::chrono::steady_clock::now());
      advance_watermark();
    }
    if (!clock_running_.load(std::memory_order_relaxed)) {
      log_.sync_if_due();  // the policy interval's sync, when it is due (else the clock's)
    }
    seal_when_due(std::chrono::steady_clock::now());
    for (const late_event& e : late) {
      opts_.on_late(e);  // outside the locks; payload views are the batch's
    }
  }

  /// Time passes: seal an old segment, sync the log on its interval, let idle inputs go. While
  /// the clock of start_batch_layer calls this, it does the interval's syncs: an ingest thread
  /// then never waits for the disk under the policy interval.
  void tick(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) {
    seal_when_due(now);
    log_.sync_if_due();  // on the real clock: `now` may be a test's
    std::lock_guard state(state_mutex_);
    advance_watermark();
  }

  /// Seal the active segment now (tests; a host that wants the batch view to catch up).
  void seal() {
    std::lock_guard lock(ingest_mutex_);
    wait_until_landed();
    log_.seal();
    batch_wanted_.notify_all();
  }

  void count_bad_record() { metrics_.bad_records.fetch_add(1, std::memory_order_relaxed); }
  stream_metrics& metrics() { return metrics_; }

  // ---- the batch layer -------------------------------------------------------------------

  /// One batch step: if epochs sealed past the horizon, run every flow over them (or over
  /// everything), publish the new views and retire the speed epochs they cover. Returns
  /// whether it published. Runs one at a time. `max_epochs` (0: no limit) bounds the epochs one
  /// run covers.
  bool run_batch_layer(std::uint64_t max_epochs = 0) {
    std::lock_guard batch(batch_mutex_);
    const std::uint64_t sealed =
        max_epochs == 0 ? log_.sealed_count() : std::min(log_.sealed_count(), horizon_epoch_.load() + max_epochs);
    if (sealed <= horizon_epoch_.load()) {
      return false;
    }
    const auto started = std::chrono::steady_clock::now();
    std::vector<log_segment> segments = log_.segments();
    segments.resize(std::min<std::size_t>(segments.size(), sealed));
    const std::uint64_t to = segments.empty() ? 0 : segments.back().end_offset;
    const std::uint64_t from = opts_.incremental ? horizon_offset_.load() : 0;
    std::vector<log_segment> to_read;     // the epochs the batch layer reads and aggregates
    std::vector<std::uint64_t> promoted;  // the epochs the speed layer saw whole
    millis horizon = millis::min();       // retention: windows ending at or before it are left out
    {
      std::lock_guard state(state_mutex_);
      horizon = retention_now();
      for (log_segment& seg : segments) {
        if (seg.end_offset <= from) {
          continue;
        }
        const std::uint64_t records = seg.end_offset - seg.base_offset;
        bool clean = opts_.incremental && opts_.promote_clean_epochs;
        for_each_view([&](auto& v) { clean = clean && v.speed->saw_all(seg.index, records); });
        if (clean) {
          promoted.push_back(seg.index);
        } else {
          to_read.push_back(std::move(seg));
        }
      }
    }
    std::optional<log_source<Payloads>> source;
    if (!to_read.empty()) {
      const std::uint64_t read_from = std::max(from, to_read.front().base_offset);
      const std::uint64_t read_to = to_read.back().end_offset;
      source.emplace(std::move(to_read), read_from, read_to, payloads_);  // the gaps between them read nothing
    }
    batch_stats stats;
    auto next = std::apply(
        [&](auto&... v) { return std::make_tuple(next_view(v, source, promoted, stats, horizon)...); }, views_);
    // After a restart the speed layer has no watermark yet: the views vouch for a horizon.
    if (const millis vouched = std::apply([&](auto&... n) { return std::max({horizon_from(*n)...}); }, next);
        vouched > horizon) {
      horizon = vouched;
      std::apply(
          [&](auto&... n) { ((n = std::make_shared<std::remove_cvref_t<decltype(*n)>>(n->retained(horizon))), ...); },
          next);
    }
    {
      std::lock_guard state(state_mutex_);
      retention_horizon_ = std::max(retention_horizon_, horizon);
      publish(next, std::index_sequence_for<Flows...>{});
      horizon_epoch_ = sealed;
      horizon_offset_ = to;
      for_each_view([&](auto& v) { v.speed->retire_below(sealed); });
      ++batch_runs_;
      promoted_epochs_ += promoted.size();
      last_batch_records_ = stats.records + stats.bad_records;
      last_batch_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      batch_seconds_sum_ += last_batch_seconds_;
      ++batch_seconds_counts_[static_cast<std::size_t>(
          std::ranges::lower_bound(lambda_batch_seconds_bounds, last_batch_seconds_) -
          lambda_batch_seconds_bounds.begin())];
    }
    return true;
  }

  /// Start the background work: the batch layer on its own thread (whenever an epoch seals, or
  /// at most every `batch_every`) and a clock that seals segments by age, syncs the log on its
  /// interval and lets idle inputs go. A failing batch run (a corrupt sealed segment) is kept
  /// and rethrown by stop_batch_layer(); the speed layer goes on serving meanwhile.
  void start_batch_layer() {
    batch_thread_ = std::jthread([this](std::stop_token stop) { batch_loop(stop); });
    clock_ = run_every(std::chrono::milliseconds(20), [this] { tick(); });
    clock_running_ = true;
  }
  void stop_batch_layer() {
    if (clock_.joinable()) {
      clock_running_ = false;
      clock_.request_stop();
      clock_.join();
    }
    if (batch_thread_.joinable()) {
      batch_thread_.request_stop();
      batch_wanted_.notify_all();
      batch_thread_.join();
    }
    std::lock_guard lock(batch_error_mutex_);
    if (batch_error_) {
      std::rethrow_exception(std::exchange(batch_error_, nullptr));
    }
  }
  [[nodiscard]] std::optional<std::string> batch_error() const {
    std::lock_guard lock(batch_error_mutex_);
    if (!batch_error_) {
      return std::nullopt;
    }
    try {
      std::rethrow_exception(batch_error_);
    } catch (const std::exception& e) {
      return std::string(e.what());
    } catch (...) {
      return std::string("unknown error");
    }
  }

  // ---- serving ---------------------------------------------------------------------------

  /// View I's merged answer now: V_E (+) every speed epoch >= E, open windows included. Safe
  /// from any thread, while ingest and batch runs go on. Takes the published batch version by
  /// reference (never copies it) and a copy of the speed epochs (what came since the horizon).
  template <std::size_t I = 0>
  [[nodiscard]] snapshot_of<snapshot_type<I>> snapshot() const {
    const auto& v = std::get<I>(views_);
    auto speed = v.speed->empty_state();
    std::shared_ptr<const typename view_type<I>::view_type> view;
    std::uint64_t epoch = 0;
    std::uint64_t offset = 0;
    millis retention = millis::min();
    {
      std::lock_guard state(state_mutex_);
      view = v.view;
      epoch = horizon_epoch_;
      offset = horizon_offset_;
      retention = retention_now();
      v.speed->merge_into(speed, epoch);
    }
    return snapshot_of<snapshot_type<I>>{snapshot_type<I>(std::move(view), speed, retention), epoch, offset};
  }

  /// The engine's counters; `late` and `late_not_covered` are view I's.
  template <std::size_t I = 0>
  [[nodiscard]] lambda_status status() const {
    lambda_status s;
    {
      std::lock_guard state(state_mutex_);
      s.horizon_epoch = horizon_epoch_;
      s.horizon_offset = horizon_offset_;
      for (const auto& e : std::get<I>(views_).speed->epochs()) {
        s.speed_epochs.push_back(e.epoch);
        s.late_not_covered += e.late;
      }
      s.late = std::get<I>(views_).late;
      s.partly_late = std::get<I>(views_).partly_late;
      s.batch_runs = batch_runs_;
      s.promoted_epochs = promoted_epochs_;
      s.retention_horizon = retention_now().count();
      const auto& v = std::get<I>(views_);
      s.batch_entries = v.view->size();
      s.batch_table_bytes = v.view->table_bytes();
      s.speed_entries = v.speed->entries();
      s.speed_table_bytes = v.speed->table_bytes();
      s.last_batch_seconds = last_batch_seconds_;
      s.last_batch_records = last_batch_records_;
      s.batch_seconds_counts = batch_seconds_counts_;
      s.batch_seconds_sum = batch_seconds_sum_;
    }
    const auto segments = log_.segments();
    s.log_head = segments.empty() ? 0 : segments.back().end_offset;
    for (const auto& segment : segments) {
      s.log_bytes += segment.bytes;
    }
    s.sealed_epochs = log_.sealed_count();
    s.ingested = metrics_.events.load();
    s.bad_records = metrics_.bad_records.load();
    s.watermark = metrics_.watermark.load();
    s.recovery = log_.recovery();
    return s;
  }

  [[nodiscard]] const std::string& dir() const { return log_.dir(); }

 private:
  static constexpr std::uint64_t rebuild_epochs_per_run = 8;

  template <class Flow>
  static detail::lambda_view<Flow> view_type_for(const Flow& flow, std::int64_t lateness) {
    return detail::lambda_view<Flow>(flow, lateness);
  }

  template <class Fn>
  void for_each_view(Fn&& fn) {
    std::apply([&](auto&... v) { (fn(v), ...); }, views_);
  }

  void add_to_speed(std::uint64_t epoch, std::uint64_t offset, const ingest_record& r, std::vector<late_event>& late) {
    const std::string reason =
        decoder_.decode(r.payload, [&](const value_type& value) { add_value_to_speed(epoch, offset, value, r, late); });
    if (!reason.empty()) {
      metrics_.bad_records.fetch_add(1, std::memory_order_relaxed);  // the batch layer will dead-letter it too
    }
  }

  void add_value_to_speed(std::uint64_t epoch, std::uint64_t offset, const value_type& value, const ingest_record& r,
                          std::vector<late_event>& late) {
    bool dropped = false;
    bool partly = false;
    millis event_time = r.event_time;
    for_each_view([&](auto& v) {
      using outcome = typename std::remove_reference_t<decltype(*v.speed)>::outcome;
      const outcome o = v.speed->add(epoch, value);
      if (o == outcome::late) {
        ++v.late;
        dropped = true;
      } else if (o == outcome::partly_late) {
        ++v.partly_late;
        partly = true;
      }
      if (o != outcome::added) {
        event_time = v.speed->event_time();
      }
    });
    if (dropped || partly) {
      (dropped ? metrics_.late_events : metrics_.partly_late_events).fetch_add(1, std::memory_order_relaxed);
      if (opts_.on_late) {
        late.push_back(late_event{"log", offset, event_time, r.payload, !dropped});
      }
    }
  }

  // Under state_mutex_.
  void advance_watermark() {
    const millis w = tracker_.advance(std::chrono::steady_clock::now());
    if (w > watermark_) {
      watermark_ = w;
      for_each_view([&](auto& v) { v.speed->advance(w); });
      metrics_.watermark.store(w.count(), std::memory_order_relaxed);
    }
  }

  // Seals the segment if it is due. Its records go to the disk first, before ingest_mutex_ is
  // taken: the seal syncs the segment under it, and every ingest thread waits meanwhile (with
  // the whole segment to sync there, 64 MiB segments cost a third of the Lambda ingest rate).
  void seal_when_due(std::chrono::steady_clock::time_point now) {
    log_.sync_before_seal(now);
    std::lock_guard lock(ingest_mutex_);
    seal_if_due(now);
  }

  // Under ingest_mutex_ (no record can be written meanwhile): seal once the records written
  // to the segment, all of them, reached the speed layer.
  void seal_if_due(std::chrono::steady_clock::time_point now) {
    if (log_.seal_due(now)) {
      wait_until_landed();
      log_.seal();
      batch_wanted_.notify_all();
    }
  }

  // Batches written to the log and not yet in the speed layer: take_off() when written (under
  // ingest_mutex_), a landing when they are in (or their ingest failed).
  void take_off() {
    std::lock_guard lock(flight_mutex_);
    ++in_flight_;
  }
  struct landing {
    lambda_engine& e;
    explicit landing(lambda_engine& engine) : e(engine) {}
    landing(const landing&) = delete;
    landing& operator=(const landing&) = delete;
    ~landing() {
      std::lock_guard lock(e.flight_mutex_);
      if (--e.in_flight_ == 0) {
        e.landed_.notify_all();
      }
    }
  };
  void wait_until_landed() {
    std::unique_lock lock(flight_mutex_);
    landed_.wait(lock, [&] { return in_flight_ == 0; });
  }

  /// View v's next batch view: V_E (+) the new epochs (sharing what they do not touch), or
  /// everything from scratch; windows ending at or before `horizon` left out. The new epochs are
  /// `source` run in batch mode and the speed layer's state of the `promoted` ones.
  template <class View>
  auto next_view(const View& v, const std::optional<log_source<Payloads>>& source,
                 const std::vector<std::uint64_t>& promoted, batch_stats& stats, millis horizon) {
    using view = typename View::view_type;
    std::optional<typename view::state_type> read;  // the epochs read from the log, aggregated
    std::vector<const typename view::state_type*> deltas;
    if (source) {
      batch_options run_opts{.threads = opts_.batch_threads};
      if (catch_up_read_) {
        run_opts.on_progress = [this](const run_progress& p) { catch_up_read_(p.records + p.bad_records); };
        run_opts.progress_interval = opts_.progress_interval;
      }
      read.emplace(sluice::run_batch(*source, *v.flow, run_opts, &stats).state());
      deltas.push_back(&*read);
    }
    std::shared_ptr<const view> current;
    {
      std::lock_guard state(state_mutex_);
      for (const std::uint64_t epoch : promoted) {
        const auto states = v.speed->freeze(epoch);  // read as they are, unlocked, until retired
        deltas.insert(deltas.end(), states.begin(), states.end());
      }
      if (opts_.incremental) {
        current = v.view;
      }
    }
    if (!current) {
      current = std::make_shared<const view>(v.speed->empty_state().monoid());  // from scratch
    }
    return std::shared_ptr<const view>(std::make_shared<const view>(current->merged(deltas, horizon)));
  }

  /// Under state_mutex_: the retention horizon now, the latest of what the batch views vouched
  /// for and of the speed layer's watermark minus `retain` (min: nothing is dropped).
  [[nodiscard]] millis retention_now() const {
    if (opts_.retain.count() <= 0 || watermark_ == millis::min()) {
      return retention_horizon_;
    }
    return std::max(retention_horizon_, watermark_ - opts_.retain);
  }

  /// The retention horizon a batch view vouches for by itself (after a restart the speed layer
  /// has no watermark yet): its latest window starts at or before the latest event time, so
  /// the watermark is at least that start minus max_delay. Min without retention.
  template <class View>
  [[nodiscard]] millis horizon_from(const View& v) const {
    if constexpr (View::by_window) {
      if (opts_.retain.count() > 0 && !v.shards().empty()) {
        return v.shards().back().id.start - opts_.max_delay - opts_.retain;
      }
    }
    return millis::min();
  }

  template <class Next, std::size_t... I>
  void publish(Next& next, std::index_sequence<I...> /*views*/) {
    ((std::get<I>(views_).view = std::move(std::get<I>(next))), ...);
  }

  void batch_loop(const std::stop_token& stop) {
    auto last_run = std::chrono::steady_clock::now() - opts_.batch_every;
    while (!stop.stop_requested()) {
      {
        std::unique_lock lock(wait_mutex_);
        const auto due = last_run + opts_.batch_every;
        // Wake when an epoch seals (or every 100 ms, to notice seals by age and the schedule).
        batch_wanted_.wait_for(lock, stop, std::chrono::milliseconds(100), [&] {
          return log_.sealed_count() > horizon_epoch_.load() && std::chrono::steady_clock::now() >= due;
        });
      }
      if (stop.stop_requested()) {
        return;  // wait_for returns at once once stop is requested: never loop on it
      }
      if (log_.sealed_count() <= horizon_epoch_.load() ||
          std::chrono::steady_clock::now() < last_run + opts_.batch_every) {
        continue;
      }
      last_run = std::chrono::steady_clock::now();
      try {
        run_batch_layer();
      } catch (...) {
        std::lock_guard lock(batch_error_mutex_);
        batch_error_ = std::current_exception();
        return;
      }
    }
  }

  /// The constructor's catch-up as progress reports: offsets covered out of the head it opened
  /// with, never going back (each view's run reads the same epochs again), at most one report an
  /// interval but the last.
  class catch_up_meter {
   public:
    catch_up_meter(const lambda_options& opts, std::uint64_t head) : opts_(&opts), clock_(opts.progress_interval) {
      progress_.unit = progress_unit::records;
      progress_.total = head;
    }
    void report(std::uint64_t covered, bool finished) {
      progress_.done = std::max(progress_.done, std::min(covered, progress_.total));
      if (!opts_->on_catch_up || !clock_.due(finished)) {
        return;
      }
      progress_.records = progress_.done;
      progress_.elapsed = clock_.elapsed();
      progress_.finished = finished;
      opts_->on_catch_up(progress_);
    }

   private:
    const lambda_options* opts_;
    run_progress progress_;
    progress_clock clock_;
  };

  Payloads payloads_;
  lambda_options opts_;
  event_log log_;
  watermark_tracker tracker_;
  typename Payloads::decoder decoder_;  // the speed layers' (ingest's)
  stream_metrics metrics_;

  std::mutex ingest_mutex_;         // the log writer (its syncs need no lock: see event_log)
  mutable std::mutex state_mutex_;  // the speed stores, the watermark tracker, the published views and their horizon
  std::mutex flight_mutex_;         // in_flight_
  std::condition_variable landed_;  // in_flight_ fell to 0
  std::uint64_t in_flight_ = 0;     // ingest batches written to the log, not yet in the speed layer
  std::tuple<detail::lambda_view<Flows>...> views_;
  std::function<void(std::uint64_t)> catch_up_read_;  // during the constructor's catch-up: records a run read
  millis watermark_ = millis::min();
  millis retention_horizon_ = millis::min();  // the last publish's: windows ending at or before it are gone from V
  std::atomic<std::uint64_t> horizon_epoch_{0};
  std::atomic<std::uint64_t> horizon_offset_{0};
  std::uint64_t batch_runs_ = 0;
  std::uint64_t promoted_epochs_ = 0;
  std::uint64_t last_batch_records_ = 0;
  double last_batch_seconds_ = 0;
  decltype(lambda_status::batch_seconds_counts) batch_seconds_counts_{};
  double batch_seconds_sum_ = 0;

  std::mutex batch_mutex_;  // one batch run at a time
  std::mutex wait_mutex_;
  std::condition_variable_any batch_wanted_;
  mutable std::mutex batch_error_mutex_;
  std::exception_ptr batch_error_;
  std::jthread batch_thread_;
  std::jthread clock_;
  std::atomic<bool> clock_running_{false};  // clock_ syncs the log on the policy's interval
};

}  // namespace sluice
