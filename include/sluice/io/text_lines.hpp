// lines_of<T>(parse): newline-delimited records over an unbounded byte stream, each line turned
// into a T by a function of yours. For line formats that are not CSV: a JSON object per line
// parsed by simdjson, "key=value" logs, or several event types in one stream, where T is a
// std::variant and the line says which alternative it is:
//
//   auto format = sluice::lines_of<event>([](std::string_view line, event& out) -> const char* {
//     ... fill `out` from `line` ...
//     return nullptr;               // or the reason the line is bad: "unknown type 'x'"
//   });
//   sluice::run_stream(sluice::tcp_source(endpoint, format, 2), flow, sink);
//
// A line reaches `parse` without its "\n" (or "\r\n"); blank lines are skipped. A line longer
// than the max record size is reported and dropped as it arrives (memory per input stays
// bounded by that size), and the input goes on with the next line. A bad line goes to the dead
// letters with the input's name, its line number, byte offset and the reason.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/stream_format.hpp"

namespace sluice {

template <class T, class Parse>
class text_lines {
 public:
  using value_type = T;

  struct input {
    stream_position at;
    std::string carry;      // a line whose end has not arrived yet
    bool skipping = false;  // dropping the rest of an over-long line already reported
  };

  explicit text_lines(Parse parse, input_options options = {})
      : parse_(std::move(parse)), options_(std::move(options)) {}

  [[nodiscard]] const input_options& options() const { return options_; }
  [[nodiscard]] input new_input(std::string name) const { return detail::input_named<input>(std::move(name)); }
  /// Bytes of `in` consumed whole, where a reader resumes without losing or repeating a line
  /// (the start of the line still cut off); nullopt while an over-long line is being dropped.
  [[nodiscard]] static std::optional<std::uint64_t> resume_offset(const input& in) {
    return in.skipping ? std::nullopt : std::optional<std::uint64_t>(in.at.offset);
  }

  /// Parse the bytes that arrived on `in`: emit(value, raw_line, offset) per record,
  /// report(bad_record) per bad one (false stops: policy fail). However the input is cut into
  /// pieces, the records and bad records are those of the input in one piece.
  template <class Emit, class Report>
  bool feed(input& in, std::string_view bytes, Emit&& emit, Report&& report) const {
    bool keep_going = true;
    while (!bytes.empty() && keep_going) {
      const std::size_t nl = bytes.find('\n');
      const std::string_view piece = bytes.substr(0, nl == std::string_view::npos ? bytes.size() : nl);
      if (in.skipping) {
        in.at.offset += piece.size();
      } else if (in.carry.size() + piece.size() > options_.max_record_bytes) {
        const std::size_t carried = in.carry.size();
        std::string start = std::move(in.carry);
        start.append(piece.substr(0, options_.max_record_bytes - std::min(options_.max_record_bytes, start.size())));
        detail::report_bad(options_, keep_going, in.at, in.at.offset, in.at.line,
                           "record exceeds the max record size (" + std::to_string(options_.max_record_bytes) +
                               " bytes)",
                           start, report);
        in.at.offset += carried + piece.size();
        in.carry.clear();
        in.skipping = true;  // the rest of the line is dropped as it arrives
      } else if (nl == std::string_view::npos) {
        in.carry.append(piece);  // its end has not arrived yet
      } else if (in.carry.empty()) {
        handle(in, piece, keep_going, emit, report);  // in place
      } else {
        in.carry.append(piece);
        const std::string line = std::move(in.carry);
        in.carry.clear();
        handle(in, line, keep_going, emit, report);
      }
      if (nl == std::string_view::npos) {
        break;
      }
      ++in.at.offset;  // the newline
      ++in.at.line;
      in.skipping = false;
      bytes.remove_prefix(nl + 1);
    }
    return keep_going;
  }

  /// The input ended. A last line without its newline is reported when the input is a socket (a
  /// disconnect may have cut it) and parsed otherwise.
  template <class Emit, class Report>
  bool close(input& in, bool needs_final_newline, Emit&& emit, Report&& report) const {
    bool keep_going = true;
    if (!in.carry.empty()) {
      const std::string line = std::move(in.carry);
      in.carry.clear();
      if (needs_final_newline) {
        detail::report_bad(options_, keep_going, in.at, in.at.offset, in.at.line,
                           "input closed in the middle of a record (no final newline)", line, report);
        in.at.offset += line.size();
      } else {
        handle(in, line, keep_going, emit, report);
      }
    }
    in.skipping = false;
    return keep_going;
  }

 private:
  // `line` (without its newline) starts at in.at.offset, which moves to its end.
  template <class Emit, class Report>
  void handle(input& in, std::string_view line, bool& keep_going, Emit& emit, Report& report) const {
    const std::uint64_t offset = in.at.offset;
    in.at.offset += line.size();
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.empty()) {
      return;
    }
    T value{};
    if (const char* reason = parse_(line, value); reason != nullptr) {
      detail::report_bad(options_, keep_going, in.at, offset, in.at.line, reason, line, report);
      return;
    }
    emit(std::as_const(value), line, offset);
  }

  Parse parse_;
  input_options options_;
};

/// lines_of<T>(parse[, options]): a text_lines format; see the top of this header.
template <class T, class Parse>
text_lines<T, Parse> lines_of(Parse parse, input_options options = {}) {
  return text_lines<T, Parse>(std::move(parse), std::move(options));
}

}  // namespace sluice
