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
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/bounded_input.hpp"
#include "sluice/store/result_store.hpp"

namespace sluice {

struct batch_options {
  unsigned threads = 0;                                 // 0: one per hardware thread
  std::size_t min_chunk_units = std::size_t{1} << 20U;  // bytes (units for a memory range): less is not worth a thread
  std::size_t max_buffered_bad = 4096;                  // per chunk, before it waits its turn
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
template <class Input, class Flow>
class batch_run {
 public:
  using partial_type = decltype(std::declval<const Flow&>().make_partial());

  batch_run(const Input& input, const Flow& flow, const batch_options& opts)
      : input_(input), flow_(flow), opts_(opts) {}

  void run(std::size_t chunk_count) {
    const std::size_t begin = input_.begin();
    const std::size_t end = input_.end();
    chunks_.resize(chunk_count);
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

  /// Add this run's counts to `stats` (a run over several inputs sums them).
  void add_counts(batch_stats& stats) const {
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
      c.outcome =
          c.start >= c.stop ? chunk_outcome{c.start, 0, 0, 0, false} : input_.parse(c.start, c.stop, emit, report);
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
  std::vector<chunk> chunks_;
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
auto run_input(const Input& input, const Flow& flow, const batch_options& opts, unsigned requested,
               batch_stats& stats) {
  // Sources whose units are records rather than bytes (a log) say how big a unit is.
  std::size_t unit_bytes = 1;
  if constexpr (requires { input.bytes_per_unit(); }) {
    unit_bytes = std::max<std::size_t>(1, input.bytes_per_unit());
  }
  const std::size_t units = input.end() - input.begin();
  std::size_t threads = std::min<std::size_t>(
      requested, std::max<std::size_t>(1, units * unit_bytes / std::max<std::size_t>(1, opts.min_chunk_units)));
  if constexpr (Flow::order_sensitive) {
    threads = 1;  // count windows follow arrival order: one chunk, in order
  }
  batch_run<Input, Flow> run(input, flow, opts);
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
template <class Source, class Flow>
auto run_batch(const Source& source, const Flow& flow, batch_options opts = {}, batch_stats* stats = nullptr) {
  static_assert(Flow::is_aggregating, "sluice::run_batch: the flow must end in aggregate(...) to produce a store");
  const auto started = std::chrono::steady_clock::now();
  const unsigned requested = opts.threads == 0 ? std::max(1U, std::thread::hardware_concurrency()) : opts.threads;
  batch_stats counted;
  auto finish = [&](auto&& partial) {
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
    auto run_one = [&](const auto& input) {
      return detail::run_input(detail::variant_input<std::remove_cvref_t<decltype(input)>, variant>(input), flow, opts,
                               requested, counted);
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
    return finish(std::move(partial));
  } else {
    auto input = source.open();
    return finish(detail::run_input(input, flow, opts, requested, counted));
  }
}

}  // namespace sluice
