// The event log as a source of stream mode: run_stream over the records of a log
// (sluice/store/event_log.hpp) that another thread or process may still be appending to,
// followed until stopped, or read up to the head it had when the run started (a bounded replay).
// Each record's payload is one record of the source's line format: a CSV line without its
// newline, as ingest keeps them (see csv_payloads), or a JSON object.
//
// The log is one input, named "log DIR", whose positions are log offsets. With checkpoints
// (stream_options::checkpoints) a stopped or killed run resumes exactly: the input's checkpoint
// holds the state and the offset of the first record not in it, and the next run reads from
// there. Stopping hands the input off (its state is saved, not fired); a bounded replay that
// reaches its head closes it (everything fires). A checkpoint past the log's head is refused:
// that is another log than the one it was taken of.
//
//   sluice::stream_checkpoints cp("/var/lib/app/ckpt", std::chrono::seconds(10), "by-region");
//   auto src = sluice::follow_log(sluice::csv_lines(schema, ""), "/var/lib/app/log");
//   sluice::run_stream(src, flow, sink, {.checkpoints = &cp}, stop);
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>

#include "sluice/core/hash.hpp"
#include "sluice/io/byte_feed.hpp"
#include "sluice/io/tail_file.hpp"
#include "sluice/store/log_reader.hpp"

namespace sluice {

struct log_follow_options {
  std::chrono::milliseconds poll{10};             // how often to look again when there is nothing new
  bool stop_at_head = false;                      // end at the head the log has as the run starts
  std::size_t chunk_bytes = std::size_t{64} << 10U;  // payload bytes pushed at a time
};

template <class Format>
class log_follow_source {
 public:
  using value_type = typename Format::value_type;

  log_follow_source(Format format, std::string dir, log_follow_options opts = {})
      : format_(std::move(format)), dir_(std::move(dir)), opts_(opts) {}

  [[nodiscard]] const Format& format() const { return format_; }
  /// Every chunk ends with a whole record: a record cut short is a bad one.
  [[nodiscard]] static constexpr bool needs_final_newline() { return true; }
  /// The next log offset to read (after run: where it stopped).
  [[nodiscard]] std::uint64_t position() const { return position_; }
  [[nodiscard]] std::string input_name() const { return "log " + dir_; }

  /// Read the log until `stop` (or, with stop_at_head, until the head it has now). A missing
  /// directory or corrupt record is a log_error.
  void run(byte_feed& feed, std::stop_token stop) {
    const auto segments = list_segments(dir_);
    const std::uint64_t head = segments.empty() ? 0 : segments.back().end_offset;
    const byte_feed::input_handle input =
        feed.open_input_in(input_name(), {log_origin(), static_cast<std::int64_t>(head)});
    position_ = static_cast<std::uint64_t>(feed.restored_position(input).value_or(0));
    log_tail tail(dir_, position_);
    std::string chunk;
    while (!stop.stop_requested()) {
      if (opts_.stop_at_head && tail.position() >= head) {
        feed.close_input(input);
        return;
      }
      tail.poll([&](const log_record& r) {
        chunk.append(r.payload);
        chunk += '\n';
        return chunk.size() < opts_.chunk_bytes && !(opts_.stop_at_head && r.offset + 1 >= head);
      });
      if (chunk.empty()) {
        detail::sleep_unless_stopped(stop, opts_.poll);
        continue;
      }
      if (!feed.push_at(input, std::move(chunk), {.next = static_cast<std::int64_t>(tail.position())})) {
        break;
      }
      position_ = tail.position();
      chunk.clear();
    }
    feed.hand_off_input(input);  // stopped, not ended: with checkpoints the state waits for a restart
  }

 private:
  /// What a log input's positions are in: log offsets (its name says which log).
  static std::uint64_t log_origin() { return detail::mix64(hash_value(std::string_view("sluice event log offsets"))); }

  Format format_;
  std::string dir_;
  log_follow_options opts_;
  std::uint64_t position_ = 0;
};

/// Records of the event log in `dir`, in `format`, followed until stopped (see log_follow_source).
template <class Format>
log_follow_source<Format> follow_log(Format format, std::string dir, log_follow_options opts = {}) {
  return {std::move(format), std::move(dir), opts};
}

}  // namespace sluice
