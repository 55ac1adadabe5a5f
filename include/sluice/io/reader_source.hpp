// Byte sources that read on the runner's thread with blocking reads: standard input (or any
// pipe) and a tailed file. A full worker queue blocks the read loop (backpressure); a rotated
// or truncated file starts a new input, so a line cut off at the old file's end is never glued
// to the new file's first line.
//
//   auto src = sluice::tail_source(sluice::csv_lines(schema, header), "/var/log/sales.csv");
//   sluice::run_stream(src, flow, sink, opts, stop);   // follows appends until stopped
#pragma once

#include <cstdint>
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
    std::uint64_t generation = generation_of(reader_);
    byte_feed::input_handle input = feed.open_input(input_name(generation));
    std::string chunk;
    while (true) {
      chunk.resize(read_bytes);
      const std::size_t n = reader_.read_some(chunk.data(), chunk.size(), stop);
      if (n == 0) {
        break;
      }
      chunk.resize(n);
      if (generation_of(reader_) != generation) {  // these bytes come from the new file
        feed.close_input(input);
        generation = generation_of(reader_);
        input = feed.open_input(input_name(generation));
      }
      if (!feed.push(input, std::move(chunk))) {
        break;
      }
    }
    feed.close_input(input);
  }

 private:
  static constexpr std::size_t read_bytes = std::size_t{64} << 10U;

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
