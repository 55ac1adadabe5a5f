// lines_file<T>(path, parse): a bounded file of newline-delimited records, each line turned into
// a T by a function of yours: the batch-mode twin of lines_of (text_lines.hpp), with the same
// parse function, so one flow reads the same lines from a file on every core and from a socket.
//
//   auto parse = [](std::string_view line, event& out) -> const char* { ...; return nullptr; };
//   sluice::run_batch(sluice::lines_file<event>("events.jsonl", parse), flow);
//   sluice::run_stream(sluice::tcp_source(sluice::lines_of<event>(parse), tcp), flow, sink);
//
// A line reaches `parse` without its "\n" (or "\r\n"); blank lines are skipped; a UTF-8
// byte-order mark at the start is skipped. A line longer than the max record size, or one
// `parse` refuses, is a bad record with its line, byte offset and reason. `parse` is called from
// several threads at once (one chunk each), so it must not share mutable state unguarded.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/bounded_input.hpp"
#include "sluice/io/file_source.hpp"

namespace sluice {

template <class T, class Parse>
class lines_format {
 public:
  using value_type = T;

  explicit lines_format(Parse parse) : parse_(std::move(parse)) {}

  struct header_info {
    std::size_t bytes = 0;
    std::uint64_t lines = 0;
  };
  /// No header; a byte-order mark is skipped.
  header_info bind_header(std::string_view text, std::string_view /*source_name*/) const {
    return header_info{text.substr(0, 3) == "\xEF\xBB\xBF" ? std::size_t{3} : std::size_t{0}, 0};
  }

  class parser {
   public:
    explicit parser(const lines_format& fmt) : fmt_(&fmt) {}

    /// emit(value) per good record, report(chunk_bad_record) per bad one (false stops), for the
    /// lines that start in [begin, stop); `end` is the end of the input; offsets from `origin`.
    template <class Emit, class Report>
    chunk_outcome parse(const char* origin, const char* begin, const char* stop, const char* end, bool eof,
                        std::size_t max_record_bytes, Emit&& emit, Report&& report) const {
      chunk_outcome out;
      const char* p = begin;
      while (p < stop) {
        // A record, newline included, must fit in max_record_bytes (as in CSV and JSON lines).
        const auto avail = static_cast<std::size_t>(end - p);
        const void* nl = std::memchr(p, '\n', std::min(avail, max_record_bytes));
        const char* next = nullptr;
        std::uint64_t lines = 0;
        const char* reason = nullptr;
        std::string too_long;
        if (nl != nullptr) {
          next = static_cast<const char*>(nl) + 1;
          lines = 1;
        } else if (avail <= max_record_bytes) {
          if (!eof) {
            break;  // the line may go on in bytes not yet available
          }
          next = end;
        } else {  // resynchronise at the next newline
          const void* later = std::memchr(p + max_record_bytes, '\n', avail - max_record_bytes);
          next = later == nullptr ? end : static_cast<const char*>(later) + 1;
          lines = later == nullptr ? 0 : 1;
          too_long = "record exceeds the max record size (" + std::to_string(max_record_bytes) + " bytes)";
        }
        if (too_long.empty()) {
          std::string_view line(p, static_cast<std::size_t>(next - p) - lines);
          if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
          }
          if (line.empty()) {
            out.lines += lines;
            p = next;
            continue;
          }
          T value{};
          reason = fmt_->parse_(line, value);
          if (reason == nullptr) {
            emit(std::as_const(value));
            ++out.records;
            out.lines += lines;
            p = next;
            continue;
          }
        }
        ++out.bad;
        chunk_bad_record bad{static_cast<std::uint64_t>(p - origin), static_cast<std::uint64_t>(next - p), out.lines,
                             too_long.empty() ? std::string(reason) : std::move(too_long)};
        out.lines += lines;
        p = next;
        if (!report(std::move(bad))) {
          out.stopped = true;
          break;
        }
      }
      out.next = static_cast<std::size_t>(p - origin);
      return out;
    }

   private:
    const lines_format* fmt_;
  };

 private:
  Parse parse_;
};

/// A file of lines, each parsed by `parse(std::string_view line, T& out) -> const char*` (nullptr,
/// or the reason the line is bad); see the top of this header.
template <class T, class Parse>
file_source<lines_format<T, Parse>> lines_file(std::string path, Parse parse, input_options options = {}) {
  return {std::move(path), lines_format<T, Parse>(std::move(parse)), std::move(options)};
}

}  // namespace sluice
