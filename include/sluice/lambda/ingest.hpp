// run_ingest: a byte source (TCP connections, stdin, a tailed file) into a lambda_engine.
//
//   source (calling thread) --chunks of input i--> [bounded queue i % T] --> ingest thread:
//   frame and validate each record with the source's format, encode it for the log (with its
//   CRC), then engine.ingest(the chunk's accepted records, with the values parsed here, which
//   the speed layers take instead of parsing the records again when the format's values are
//   the payload decoder's: the same schema reads the same text the same way)
//
// T ingest threads (default: one per core), each input on one of them, as stream mode spreads
// inputs over its workers: an input's records reach the log in the order it sent them, and the
// threads' parsing, encoding and checksumming run side by side; the engine orders the writes
// and lets one fdatasync cover what every thread wrote (group commit). A chunk's records are
// written together (one write). Bad records go to the format's dead-letter sink (one at a time)
// and never reach the log. A full queue stops the source reading (TCP flow control slows the
// sender), as in stream mode.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/event_queue.hpp"
#include "sluice/lambda/lambda_engine.hpp"
#include "sluice/run/stream.hpp"

namespace sluice {

namespace detail {

template <class Engine, class Format, class TimeOf, class Report>
void ingest_loop(Engine& engine, event_queue<stream_chunk>& queue, const Format& format, bool needs_final_newline,
                 const TimeOf& time_of, const Report& report) {
  std::unordered_map<input_id, typename Format::input> inputs;
  std::vector<stream_chunk> chunks;
  log_batch accepted;  // encoded as parsed: the raw text is read once more, by the CRC
  // The values parsed here, for the speed layers when they are the payload decoder's type (same
  // schema, same values), so that they need not parse the records again. Only values whose text
  // lies in the chunk: one completed from the carried start of a record views the format's carry,
  // which changes before the records are ingested; that one is decoded from the log batch.
  // A format says which values view nothing but their raw text (views_only_raw): a CSV field
  // with "" escapes views the parser's scratch space instead, gone once the chunk is parsed.
  constexpr bool reuse_values = std::is_same_v<typename Format::value_type, typename Engine::value_type> &&
                                requires(std::string_view raw) { Format::views_only_raw(raw); };
  constexpr std::size_t not_kept = static_cast<std::size_t>(-1);
  std::vector<typename Format::value_type> values;
  std::vector<std::size_t> value_of_record;  // per accepted record: its index in `values`, or not_kept
  std::vector<const typename Engine::value_type*> decoded;
  std::string_view chunk_bytes;
  auto keep = [&](const auto& value, std::string_view raw, std::uint64_t /*offset*/) {
    while (!raw.empty() && (raw.back() == '\n' || raw.back() == '\r')) {
      raw.remove_suffix(1);  // the log keeps a record's text without its line ending
    }
    engine.encode(accepted, time_of(value), raw);
    if constexpr (reuse_values) {
      const bool in_chunk = !chunk_bytes.empty() && raw.data() >= chunk_bytes.data() &&
                            raw.data() + raw.size() <= chunk_bytes.data() + chunk_bytes.size();
      if (in_chunk && Format::views_only_raw(raw)) {
        value_of_record.push_back(values.size());
        values.push_back(value);
      } else {
        value_of_record.push_back(not_kept);
      }
    }
  };
  while (true) {
    chunks.clear();
    const std::size_t n = queue.pop_batch(chunks, 4);
    for (stream_chunk& c : chunks) {
      if (c.what == stream_chunk::kind::opened) {
        inputs.emplace(c.input, format.new_input(std::move(c.bytes)));
        continue;
      }
      if (c.what == stream_chunk::kind::data) {
        engine.metrics().queued.fetch_sub(1, std::memory_order_relaxed);
      }
      auto it = inputs.find(c.input);
      if (it == inputs.end()) {
        continue;
      }
      accepted.clear();
      values.clear();
      value_of_record.clear();
      if (c.what == stream_chunk::kind::data) {
        chunk_bytes = c.bytes;
        format.feed(it->second, c.bytes, keep, report);
      } else {
        chunk_bytes = {};
        format.close(it->second, needs_final_newline, keep, report);
      }
      if (!accepted.empty()) {
        if constexpr (reuse_values) {
          decoded.clear();  // pointers only now: `values` has stopped growing
          for (const std::size_t i : value_of_record) {
            decoded.push_back(i == not_kept ? nullptr : &values[i]);
          }
          engine.ingest(c.input, accepted, &decoded);
        } else {
          engine.ingest(c.input, accepted);
        }
      }
      if (c.what == stream_chunk::kind::closed) {
        inputs.erase(it);
        engine.close_input(c.input);
      }
    }
    if (n == 0 && queue.closed() && queue.size() == 0) {
      return;
    }
  }
}

}  // namespace detail

/// Feed `engine` from the byte `source` (its format frames and validates records; time_of(value)
/// is a record's event time in the log) until the source ends or `stop` is requested. Throws
/// what stopped it: a bad record under policy fail, a log that cannot be written.
/// `threads`: ingest threads (0: one per core).
template <class Source, class Engine, class TimeOf>
void run_ingest(Source& source, Engine& engine, TimeOf time_of, std::stop_token stop = {},
                std::size_t queue_chunks = 16, unsigned threads = 0) {
  const unsigned workers = std::max(1U, threads != 0 ? threads : std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<event_queue<detail::stream_chunk>>> queues;
  for (unsigned i = 0; i < workers; ++i) {
    queues.push_back(std::make_unique<event_queue<detail::stream_chunk>>(std::max<std::size_t>(1, queue_chunks)));
  }
  std::stop_source stopper;
  const std::stop_callback forward(stop, [&stopper] { stopper.request_stop(); });
  std::mutex mutex;  // the first error, the dead-letter sink
  std::exception_ptr error;
  const input_options& input_opts = source.format().options();
  auto report = [&](const bad_record& bad) {
    engine.count_bad_record();
    if (input_opts.on_bad_record == bad_record_policy::fail) {
      throw bad_input_error(describe(bad));
    }
    if (input_opts.dead_letters) {
      const std::lock_guard lock(mutex);
      input_opts.dead_letters(bad);
    }
    return true;
  };
  std::vector<std::thread> pool;
  {
    const detail::worker_shutdown shutdown{queues, pool};
    for (unsigned i = 0; i < workers; ++i) {
      pool.emplace_back([&, i] {
        try {
          detail::ingest_loop(engine, *queues[i], source.format(), source.needs_final_newline(), time_of, report);
        } catch (...) {
          {
            const std::lock_guard lock(mutex);
            if (!error) {
              error = std::current_exception();
            }
          }
          stopper.request_stop();
          for (auto& q : queues) {
            q->close();  // the source must not wait on a queue nobody pops
          }
        }
      });
    }
    detail::worker_feed<Engine> feed(engine, queues);
    source.run(feed, stopper.get_token());
  }
  if (error) {
    std::rethrow_exception(error);
  }
}

}  // namespace sluice
