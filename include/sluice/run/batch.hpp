// run_batch: a flow over a bounded source on every core. The input is cut into one chunk per
// thread; each thread runs the fused chain into its own partial state; partials merge with the
// monoid at the end and windows fire once, at end of input. Memory is the partials (O(keys)),
// never the input: a file is mapped and parsed in place.
//
// Chunk boundaries are guesses (a line start near an even split). A chunk checks its start
// against where its predecessor really stopped and, if a quoted newline fooled the guess,
// parses again from the right place. Bad records are reported in input order with absolute
// line numbers: a chunk buffers them until its predecessor is done (at most `max_buffered_bad`,
// then it waits), so memory stays bounded however bad the input is.
//
// Each chunk is parsed a slice (8 MiB of input by default) at a time and publishes how far it
// got after each, so that a progress callback can be told how much of the input is done without any
// per-record cost.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/bounded_input.hpp"
#include "sluice/run/progress.hpp"
#include "sluice/store/result_store.hpp"

namespace sluice {

struct batch_options {
  unsigned threads = 0;                                 // 0: one per hardware thread
  std::size_t min_chunk_units = std::size_t{1} << 20U;  // bytes (units for a memory range): less is not worth a thread
  std::size_t max_buffered_bad = 4096;                  // per chunk, before it waits its turn
  /// Called on run_batch's own thread about every `progress_interval` while the input is read
  /// (never more often), then once more with `finished` set when all of it was. Throwing from it
  /// cancels the run: the workers stop at their next slice and run_batch rethrows the exception.
  std::function<void(const run_progress&)> on_progress{};
  std::chrono::milliseconds progress_interval{250};
  /// Input a worker parses between publishing its progress (and looking for a cancellation).
  std::size_t slice_bytes = std::size_t{8} << 20U;
};

struct batch_stats {
  std::uint64_t records = 0;      // good records that entered the flow
  std::uint64_t bad_records = 0;  // malformed records (dead-lettered under skip)
  std::uint64_t lines = 0;        // input lines consumed (header excluded)
  std::size_t chunks = 0;
  std::size_t reparsed_chunks = 0;  // chunks whose guessed start was wrong (quoted newlines)
  double seconds = 0;
};

namespace detail {
/// Thrown inside a worker when the run was cancelled (by the progress callback); never escapes.
struct batch_cancelled {};

/// A batch run's progress over all of its inputs: what earlier inputs did, the input being read,
/// and when the callback is due. Used from the caller's thread only.
class progress_meter {
 public:
  progress_meter(const batch_options& opts, progress_unit unit, std::uint64_t total)
      : opts_(&opts), clock_(opts.progress_interval) {
    progress_.unit = unit;
    progress_.total = total;
  }
  [[nodiscard]] bool wanted() const { return static_cast<bool>(opts_->on_progress); }
  [[nodiscard]] std::chrono::milliseconds interval() const { return opts_->progress_interval; }

  /// Report the current input's counts if a report is due (they add to the earlier inputs').
  void tick(std::uint64_t done, std::uint64_t records, std::uint64_t bad) {
    if (wanted() && clock_.due()) {
      report(done, records, bad, false);
    }
  }
  /// An input is finished: its counts become the base of the next input's.
  void input_done(std::uint64_t units, std::uint64_t records, std::uint64_t bad) {
    progress_.done += units;
    progress_.records += records;
    progress_.bad_records += bad;
  }
  /// The last report: everything read.
  void finish() {
    if (wanted()) {
      report(progress_.total, 0, 0, true);
    }
  }

 private:
  void report(std::uint64_t done, std::uint64_t records, std::uint64_t bad, bool finished) {
    run_progress p = progress_;
    p.done = std::min(p.total, p.done + done);
    p.records += records;
    p.bad_records += bad;
    p.elapsed = clock_.elapsed();
    p.finished = finished;
    opts_->on_progress(p);
  }

  const batch_options* opts_;
  run_progress progress_;
  progress_clock clock_;
};

/// How an opened input counts for progress: bytes (files, logs at their average record size) or
/// records (an in-memory range, whose inputs say so).
template <class Input>
constexpr progress_unit progress_unit_of() {
  if constexpr (requires { Input::units_are_records; }) {
    return Input::units_are_records ? progress_unit::records : progress_unit::bytes;
  } else {
    return progress_unit::bytes;
  }
}

/// Bytes an input unit stands for: 1 for files, a log record's average size for logs.
template <class Input>
std::size_t unit_bytes(const Input& input) {
  if constexpr (requires { input.bytes_per_unit(); }) {
    return std::max<std::size_t>(1, input.bytes_per_unit());
  } else {
    return 1;
  }
}

template <class Input>
std::uint64_t progress_units(const Input& input) {
  const std::uint64_t units = input.end() - input.begin();
  return progress_unit_of<Input>() == progress_unit::bytes ? units * unit_bytes(input) : units;
}

template <class Input, class Flow>
class batch_run {
 public:
  using partial_type = decltype(std::declval<const Flow&>().make_partial());

  batch_run(const Input& input, const Flow& flow, const batch_options& opts, progress_meter& meter)
      : input_(input), flow_(flow), opts_(opts), meter_(meter), unit_bytes_(unit_bytes(input)) {
    if constexpr (progress_unit_of<Input>() == progress_unit::bytes) {
      progress_scale_ = unit_bytes_;
    }
  }

  void run(std::size_t chunk_count) {
    const std::size_t begin = input_.begin();
    const std::size_t end = input_.end();
    chunks_.resize(chunk_count);
    counters_ = std::make_unique<chunk_counters[]>(chunk_count);
    for (std::size_t i = 0; i < chunk_count; ++i) {
      const std::size_t nominal = begin + (end - begin) * i / chunk_count;
      chunks_[i].stop = begin + (end - begin) * (i + 1) / chunk_count;
      chunks_[i].start = i == 0 ? begin : input_.align(nominal);
    }
    if (chunk_count == 1) {
      work(0);
    } else {
      std::vector<std::thread> threads;
      threads.reserve(chunk_count);
      for (std::size_t i = 0; i < chunk_count; ++i) {
        threads.emplace_back([this, i] {
          try {
            work(i);
          } catch (...) {
            abandon(i, std::current_exception());  // a source that cannot be read (a corrupt log)
          }
        });
      }
      if (meter_.wanted()) {
        report_progress_until_done();
      }
      for (auto& t : threads) {
        t.join();
      }
      if (error_) {
        std::rethrow_exception(error_);
      }
    }
  }

  /// Merge the partials (in chunk order, though the monoid makes order irrelevant).
  partial_type merged() {
    partial_type result = std::move(*chunks_[0].partial);
    for (std::size_t i = 1; i < chunks_.size(); ++i) {
      result.merge(*chunks_[i].partial);
      chunks_[i].partial.reset();
    }
    return result;
  }

  /// Add this run's counts to `stats` (a run over several inputs sums them) and to the meter.
  void add_counts(batch_stats& stats) const {
    std::uint64_t records = 0;
    std::uint64_t bad = 0;
    for (const auto& c : chunks_) {
      records += c.outcome.records;
      bad += c.outcome.bad;
    }
    meter_.input_done(progress_units(input_), records, bad);
    stats.chunks += chunks_.size();
    for (const auto& c : chunks_) {
      stats.records += c.outcome.records;
      stats.bad_records += c.outcome.bad;
      stats.lines += c.outcome.lines;
      stats.reparsed_chunks += c.reparsed ? 1 : 0;
    }
  }

  [[nodiscard]] const std::optional<std::string>& failure() const { return failure_; }

 private:
  struct chunk {
    std::size_t start = 0;  // where parsing begins (a guess, until checked)
    std::size_t stop = 0;   // records starting before this belong to the chunk
    std::optional<partial_type> partial;
    chunk_outcome outcome;
    std::vector<chunk_bad_record> pending;
    bool reparsed = false;
    // Set once the chunk is final: its records are counted and its bad records reported.
    bool finalized = false;
    std::uint64_t first_line = 0;  // absolute line of `start`, known once the predecessor is final
    bool failed = false;           // stopped on a bad record under policy `fail`
  };

  /// How far a chunk got, written by its worker after each slice, read for progress reports.
  struct chunk_counters {
    std::atomic<std::uint64_t> units{0};  // from the chunk's start
    std::atomic<std::uint64_t> records{0};
    std::atomic<std::uint64_t> bad{0};
  };

  void work(std::size_t i) {
    chunk& c = chunks_[i];
    bool in_order = i == 0;  // true once the predecessor is final: line numbers are known
    if (in_order) {
      c.first_line = input_.first_line();
    }
    while (true) {
      c.partial.emplace(flow_.make_partial());
      c.pending.clear();
      c.failed = false;
      bool restart = false;
      auto chain = flow_.bind(*c.partial);
      auto emit = [&chain](const auto& value) { chain(millis{0}, value); };
      auto report = [&](chunk_bad_record bad) {
        if (input_.options().on_bad_record == bad_record_policy::fail) {
          c.pending.push_back(std::move(bad));
          c.failed = true;
          return false;
        }
        c.pending.push_back(std::move(bad));
        if (in_order) {
          flush(c);
        } else if (c.pending.size() >= opts_.max_buffered_bad) {
          in_order = true;
          if (!wait_for_predecessor(i)) {
            restart = true;  // wrong start: the records seen so far belong to the predecessor
            return false;
          }
          flush(c);
        }
        return true;
      };
      c.outcome = parse_in_slices(i, emit, report);
      if (restart) {
        continue;
      }
      if (!in_order) {
        in_order = true;
        if (!wait_for_predecessor(i)) {
          continue;
        }
      }
      break;
    }
    finalize(i);
  }

  /// Parse chunk i's records a slice at a time (the same records as one call would, since every
  /// slice starts where the previous one's last record ended), publishing its counts after each.
  template <class Emit, class Report>
  chunk_outcome parse_in_slices(std::size_t i, Emit& emit, Report& report) {
    const chunk& c = chunks_[i];
    chunk_outcome total{c.start, 0, 0, 0, false};
    const std::size_t slice = std::max<std::size_t>(1, opts_.slice_bytes / unit_bytes_);
    std::size_t pos = c.start;
    while (pos < c.stop) {
      const std::size_t slice_stop = c.stop - pos > slice ? pos + slice : c.stop;
      auto report_in_chunk = [&](chunk_bad_record bad) {
        bad.local_line += total.lines;  // the input counts lines from the slice's start
        return report(std::move(bad));
      };
      const chunk_outcome o = input_.parse(pos, slice_stop, emit, report_in_chunk);
      total.lines += o.lines;
      total.records += o.records;
      total.bad += o.bad;
      total.next = o.next;
      total.stopped = o.stopped;
      publish(i, total);
      if (o.stopped || o.next >= c.stop) {
        break;
      }
      pos = o.next;
      if (cancelled_.load(std::memory_order_relaxed)) {
        throw batch_cancelled{};
      }
      if (chunks_.size() == 1) {
        meter_.tick((total.next - c.start) * progress_scale_, total.records, total.bad);  // on the caller's thread
      }
    }
    return total;
  }

  void publish(std::size_t i, const chunk_outcome& so_far) {
    chunk_counters& k = counters_[i];
    k.units.store(so_far.next - chunks_[i].start, std::memory_order_relaxed);
    k.records.store(so_far.records, std::memory_order_relaxed);
    k.bad.store(so_far.bad, std::memory_order_relaxed);
  }

  /// On the caller's thread while the workers run: report progress every interval until every
  /// chunk is final. If the callback throws, the workers are cancelled and the run rethrows it.
  void report_progress_until_done() {
    std::unique_lock lock(mutex_);
    auto all_final = [&] {
      return std::all_of(chunks_.begin(), chunks_.end(), [](const chunk& c) { return c.finalized; });
    };
    while (!cv_.wait_for(lock, meter_.interval(), all_final)) {
      lock.unlock();
      try {
        std::uint64_t units = 0;
        std::uint64_t records = 0;
        std::uint64_t bad = 0;
        for (std::size_t i = 0; i < chunks_.size(); ++i) {
          units += counters_[i].units.load(std::memory_order_relaxed);
          records += counters_[i].records.load(std::memory_order_relaxed);
          bad += counters_[i].bad.load(std::memory_order_relaxed);
        }
        meter_.tick(units * progress_scale_, records, bad);
      } catch (...) {
        lock.lock();
        if (!error_) {
          error_ = std::current_exception();
        }
        cancelled_.store(true, std::memory_order_relaxed);
        return;
      }
      lock.lock();
    }
  }

  /// Wait until chunk i-1 is final; then fix chunk i's start and first line. Returns false if the
  /// guessed start was wrong and the chunk must be parsed again from the corrected start.
  bool wait_for_predecessor(std::size_t i) {
    chunk& c = chunks_[i];
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return chunks_[i - 1].finalized; });
    const chunk& prev = chunks_[i - 1];
    c.first_line = prev.first_line + prev.outcome.lines;
    if (prev.failed || prev.outcome.next == c.start) {
      return true;
    }
    c.start = prev.outcome.next;  // a record straddled the guessed boundary
    c.reparsed = true;
    return false;
  }

  /// Chunk i threw: keep the first error and mark the chunk failed and final, so that its
  /// successors stop waiting for it (and discard their own results).
  void abandon(std::size_t i, std::exception_ptr error) {
    {
      std::lock_guard lock(mutex_);
      if (!error_) {
        error_ = std::move(error);
      }
      chunks_[i].failed = true;
      chunks_[i].finalized = true;
    }
    cv_.notify_all();
  }

  void finalize(std::size_t i) {
    chunk& c = chunks_[i];
    const bool predecessor_failed = i > 0 && chunks_[i - 1].failed;
    if (predecessor_failed) {
      c.failed = true;  // an earlier record already failed the run; this chunk's verdicts are moot
      c.pending.clear();
    } else if (c.failed && !failure_) {
      const auto& bad = c.pending.front();
      failure_ = describe(absolute(c, bad));
      c.pending.clear();
    } else {
      flush(c);
    }
    {
      std::lock_guard lock(mutex_);
      c.finalized = true;
    }
    cv_.notify_all();
  }

  bad_record absolute(const chunk& c, const chunk_bad_record& bad) const {
    return absolute_bad_record(input_, c.first_line, bad);
  }

  void flush(chunk& c) {
    const auto& sink = input_.options().dead_letters;
    if (sink) {
      std::lock_guard lock(flush_mutex_);
      for (const auto& bad : c.pending) {
        sink(absolute(c, bad));
      }
    }
    c.pending.clear();
  }

  const Input& input_;
  const Flow& flow_;
  const batch_options& opts_;
  progress_meter& meter_;
  std::size_t unit_bytes_;
  std::size_t progress_scale_ = 1;  // progress units per input unit
  std::vector<chunk> chunks_;
  std::unique_ptr<chunk_counters[]> counters_;
  std::atomic<bool> cancelled_{false};
  std::mutex mutex_;
  std::condition_variable cv_;
  std::mutex flush_mutex_;
  std::optional<std::string> failure_;
  std::exception_ptr error_;
};
}  // namespace detail

namespace detail {
/// The merged partial's result; a partial that can use threads for it (process functions, whose
/// work is at the end) gets the run's.
template <class Partial>
auto final_result(Partial&& partial, unsigned threads) {
  if constexpr (requires { std::move(partial).into_result(threads); }) {
    return std::move(partial).into_result(threads);
  } else {
    return std::move(partial).into_result();
  }
}
}  // namespace detail

namespace detail {
/// Parse one opened input into `flow`'s partials on up to `requested` threads (fewer for a small
/// input) and return them merged; its counts are added to `stats`.
template <class Input, class Flow>
auto run_input(const Input& input, const Flow& flow, const batch_options& opts, unsigned requested, batch_stats& stats,
               progress_meter& meter) {
  const std::size_t units = input.end() - input.begin();
  std::size_t threads = std::min<std::size_t>(
      requested, std::max<std::size_t>(1, units * unit_bytes(input) / std::max<std::size_t>(1, opts.min_chunk_units)));
  if constexpr (Flow::order_sensitive) {
    threads = 1;  // count windows follow arrival order: one chunk, in order
  }
  batch_run<Input, Flow> run(input, flow, opts, meter);
  run.run(threads);
  if (run.failure()) {
    throw bad_input_error(*run.failure());
  }
  run.add_counts(stats);
  return run.merged();
}

/// An opened input whose records reach the flow as the variant V (one of several inputs).
template <class Input, class V>
class variant_input {
 public:
  explicit variant_input(const Input& input) : input_(&input) {}
  [[nodiscard]] std::size_t begin() const { return input_->begin(); }
  [[nodiscard]] std::size_t end() const { return input_->end(); }
  [[nodiscard]] std::uint64_t first_line() const { return input_->first_line(); }
  [[nodiscard]] std::string_view name() const { return input_->name(); }
  [[nodiscard]] const input_options& options() const { return input_->options(); }
  [[nodiscard]] std::string_view text(std::uint64_t offset, std::uint64_t length) const {
    return input_->text(offset, length);
  }
  [[nodiscard]] std::size_t align(std::size_t pos) const { return input_->align(pos); }
  static constexpr bool units_are_records = progress_unit_of<Input>() == progress_unit::records;
  [[nodiscard]] std::size_t bytes_per_unit() const {
    if constexpr (requires { input_->bytes_per_unit(); }) {
      return input_->bytes_per_unit();
    } else {
      return 1;
    }
  }
  template <class Emit, class Report>
  chunk_outcome parse(std::size_t begin, std::size_t stop, Emit&& emit, Report&& report) const {
    return input_->parse(
        begin, stop, [&emit](const auto& record) { emit(V(record)); }, std::forward<Report>(report));
  }

 private:
  const Input* input_;
};
}  // namespace detail

/// Several bounded sources read by one flow over std::variant<...>: each source's records become
/// the alternative of their type. See run_batch.
template <class... Sources>
struct input_set {
  std::tuple<Sources...> sources;
};
template <class... Sources>
input_set<Sources...> inputs(Sources... sources) {
  return {{std::move(sources)...}};
}

/// Run `flow` over the bounded `source` and return its result store. Under bad_record_policy::fail
/// the first malformed record (in input order) throws bad_input_error with its position.
/// opts.on_progress, if set, hears how far the run got (see batch_options).
template <class Source, class Flow>
auto run_batch(const Source& source, const Flow& flow, batch_options opts = {}, batch_stats* stats = nullptr) {
  static_assert(Flow::is_aggregating, "sluice::run_batch: the flow must end in aggregate(...) to produce a store");
  const auto started = std::chrono::steady_clock::now();
  const unsigned requested = opts.threads == 0 ? std::max(1U, std::thread::hardware_concurrency()) : opts.threads;
  batch_stats counted;
  auto finish = [&](detail::progress_meter& meter, auto&& partial) {
    meter.finish();
    auto store = make_result_store(detail::final_result(std::move(partial), requested));
    if (stats != nullptr) {
      *stats = counted;
      stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    }
    return store;
  };
  if constexpr (requires { source.sources; }) {
    // Every input stays open until the end: held events may point into any of them. Their
    // partials merge in the order the sources were given.
    using variant = typename Flow::input_type;
    auto opened = std::apply([](const auto&... s) { return std::make_tuple(s.open()...); }, source.sources);
    // One unit for the whole run: bytes, unless every input counts records (an in-memory
    // range mixed with files counts a record as a byte).
    const bool records = std::apply(
        [](const auto&... in) {
          return (... && (detail::progress_unit_of<std::remove_cvref_t<decltype(in)>>() == progress_unit::records));
        },
        opened);
    const std::uint64_t total =
        std::apply([](const auto&... in) { return (std::uint64_t{0} + ... + detail::progress_units(in)); }, opened);
    detail::progress_meter meter(opts, records ? progress_unit::records : progress_unit::bytes, total);
    auto run_one = [&](const auto& input) {
      return detail::run_input(detail::variant_input<std::remove_cvref_t<decltype(input)>, variant>(input), flow, opts,
                               requested, counted, meter);
    };
    auto partial = std::apply(
        [&](const auto& first, const auto&... rest) {
          auto merged = run_one(first);
          auto merge_next = [&](const auto& input) {
            auto next = run_one(input);
            merged.merge(next);
          };
          (merge_next(rest), ...);
          return merged;
        },
        opened);
    return finish(meter, std::move(partial));
  } else {
    auto input = source.open();
    using input_type = decltype(input);
    detail::progress_meter meter(opts, detail::progress_unit_of<input_type>(), detail::progress_units(input));
    auto partial = detail::run_input(input, flow, opts, requested, counted, meter);
    return finish(meter, std::move(partial));
  }
}

}  // namespace sluice
