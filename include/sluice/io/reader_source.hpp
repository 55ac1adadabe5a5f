// Byte sources that read on the runner's thread with blocking reads: standard input (or any
// pipe) and a tailed file. A full worker queue blocks the read loop (backpressure).
//
// A tailed file is one input named by its path, whose state and watermark go on across
// rotations and truncations; a line cut off at the old file's end ends there and is never glued
// to the new file's first line. Its chunks carry their byte offsets in the file, so that with
// checkpoints (stream_options::checkpoints) a stopped or killed run resumes exactly: the path's
// checkpoint holds the state, which file it was reading (device and inode) and the offset of
// the first record not in the state. Stopping hands the input off (its state is saved, not
// fired). A restart whose checkpoint was reading a file rotated away since finds it in the
// path's directory by its inode, reads its rest, then the path's file. It refuses a checkpoint
// of a file no longer there, or of more bytes than the file holds now: what it had not read is
// gone.
//
//   auto src = sluice::tail_source(sluice::csv_lines(schema, header), "/var/log/sales.csv");
//   sluice::run_stream(src, flow, sink, opts, stop);   // follows appends until stopped
#pragma once

#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>

#include "sluice/io/byte_feed.hpp"
#include "sluice/io/fd_reader.hpp"
#include "sluice/io/tail_file.hpp"

namespace sluice {

template <class Format, class Reader>
class reader_source {
 public:
  using value_type = typename Format::value_type;

  reader_source(Format format, Reader reader, std::string name)
      : format_(std::move(format)), reader_(std::move(reader)), name_(std::move(name)) {}

  [[nodiscard]] const Format& format() const { return format_; }
  /// A file or pipe may end without a final newline: the last record still counts.
  [[nodiscard]] static constexpr bool needs_final_newline() { return false; }
  /// Bytes read from the current file (for a checkpoint); see also generation().
  [[nodiscard]] std::uint64_t position() const { return reader_.position(); }
  [[nodiscard]] std::uint64_t generation() const { return generation_of(reader_); }

  /// Read until the end of input (a pipe) or until `stop` (a tailed file never ends).
  void run(byte_feed& feed, std::stop_token stop) {
    if constexpr (follows_files) {
      if (!reader_.wait_until_open(stop)) {
        return;
      }
    }
    std::uint64_t generation = generation_of(reader_);
    byte_feed::input_handle input = open(feed);
    std::string chunk;
    while (true) {
      chunk.resize(read_bytes);
      const std::size_t n = reader_.read_some(chunk.data(), chunk.size(), stop);
      if (n == 0) {
        break;
      }
      chunk.resize(n);
      if constexpr (follows_files) {
        if (reader_.generation() != generation) {  // these bytes come from the new file
          generation = reader_.generation();
          input = feed.reopen_input(input, input_name(generation), origin());
        }
        if (!feed.push_at(input, std::move(chunk), {.next = offset(reader_.position()), .in_bytes = true})) {
          break;
        }
      } else if (!feed.push(input, std::move(chunk))) {
        break;
      }
    }
    if constexpr (follows_files) {
      feed.hand_off_input(input);  // stopped, not ended: with checkpoints the state waits for a restart
    } else {
      feed.close_input(input);
    }
  }

 private:
  static constexpr std::size_t read_bytes = std::size_t{64} << 10U;
  /// A file followed by name (tail_file): positions are byte offsets in the file open now.
  static constexpr bool follows_files = requires(Reader& r) {
    r.origin();
    r.resume_at(std::uint64_t{});
  };

  static std::int64_t offset(std::uint64_t at) { return static_cast<std::int64_t>(at); }
  [[nodiscard]] input_origin origin() const { return {reader_.origin(), offset(reader_.size())}; }

  /// The file open now, and the way back to a rotated one a checkpoint was reading.
  input_origin origin_to_resume() {
    input_origin o = origin();
    o.find = [this](std::uint64_t saved) -> std::optional<std::int64_t> {
      if (const std::optional<std::uint64_t> size = reader_.open_rotated(saved)) {
        return offset(*size);
      }
      return std::nullopt;
    };
    return o;
  }

  /// The input, opened (a tailed file: from its checkpoint, if it has one, and at its offset).
  byte_feed::input_handle open(byte_feed& feed) {
    if constexpr (follows_files) {
      const byte_feed::input_handle input = feed.open_input_in(name_, origin_to_resume());
      if (const std::optional<std::int64_t> at = feed.restored_position(input)) {
        reader_.resume_at(static_cast<std::uint64_t>(*at));
      }
      return input;
    } else {
      return feed.open_input(name_);
    }
  }

  static std::uint64_t generation_of(const Reader& r) {
    if constexpr (requires { r.generation(); }) {
      return r.generation();
    } else {
      return 0;
    }
  }
  [[nodiscard]] std::string input_name(std::uint64_t generation) const {
    return generation == 0 ? name_ : name_ + " (reopened " + std::to_string(generation) + ")";
  }

  Format format_;
  Reader reader_;
  std::string name_;
};

/// Records from standard input until it ends.
template <class Format>
reader_source<Format, fd_reader> stdin_source(Format format) {
  return {std::move(format), fd_reader(0, "stdin"), "stdin"};
}

/// Records appended to the file at `path`, followed like `tail -F` until stopped.
template <class Format>
reader_source<Format, tail_file> tail_source(Format format, std::string path, tail_options opts = {}) {
  tail_file reader(path, opts);
  return {std::move(format), std::move(reader), std::move(path)};
}

}  // namespace sluice
