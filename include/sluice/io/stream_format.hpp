// Record formats over unbounded byte streams. Bytes arrive in arbitrary pieces (socket reads,
// file appends); a format keeps, per input, the start of a record whose end has not arrived, and
// parses everything else in place. Two framings:
//
//   csv_lines(schema, header)       newline-delimited CSV (quoted newlines allowed); a line equal
//                                   to `header` at the start of an input is skipped
//   length_prefixed<T, Decode>(decode)  [u32 little-endian length][payload] -> decode -> T
//
// Bad records (malformed, over-long, cut off by a disconnect) go to the dead-letter sink with
// the input's name, line (or frame) number and byte offset; the input goes on with the next
// record. Memory per input is bounded by the max record size (on an input's first line, which
// may be the header, by the header's size if that is larger).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/csv.hpp"

namespace sluice {

/// Where an input stands: its name and the stream offset and line of the next unparsed byte.
struct stream_position {
  std::string name;
  std::uint64_t offset = 0;  // bytes of the input consumed (parsed or skipped)
  std::uint64_t line = 1;    // line (csv) or frame (binary) number at `offset`
};

namespace detail {
inline void report_bad(const input_options& opts, bool& keep_going, const stream_position& at,
                       std::uint64_t offset, std::uint64_t line, std::string_view reason, std::string_view text,
                       auto&& report) {
  keep_going = report(bad_record{at.name, line, offset, reason, text.substr(0, opts.max_record_bytes)}) && keep_going;
}

/// A fresh per-input state of a format, positioned at the start of the input called `name`.
template <class Input>
Input input_named(std::string name) {
  Input in;
  in.at.name = std::move(name);
  return in;
}
}  // namespace detail

template <class Schema>
class csv_lines {
 public:
  using value_type = typename Schema::record_type;

  /// Per-input state: the carried partial record and the position.
  struct input {
    stream_position at;
    std::string carry;      // a record's first bytes; its end has not arrived yet
    bool at_start = true;   // the first line may be a header
    bool skipping = false;  // dropping the rest of a line already reported as bad
  };

  /// `header` names the columns in order ("ts,region,qty"); an input may start with it.
  /// An empty `header` binds the schema's columns by position.
  csv_lines(Schema schema, std::string header, input_options options = {}, csv_options csv = {})
      : format_(std::move(schema), with_header(csv, !header.empty())),
        header_(std::move(header)),
        options_(std::move(options)) {
    format_.bind_header(header_, "stream header");
  }

  [[nodiscard]] const input_options& options() const { return options_; }
  [[nodiscard]] input new_input(std::string name) const { return detail::input_named<input>(std::move(name)); }
  /// Bytes of `in` consumed whole, where a reader resumes without losing or repeating a record
  /// (the start of the record still cut off); nullopt while a bad line is being dropped.
  [[nodiscard]] static std::optional<std::uint64_t> resume_offset(const input& in) {
    return in.skipping ? std::nullopt : std::optional<std::uint64_t>(in.at.offset);
  }

  /// Whether the value parsed from `raw` views nothing but `raw`: a record without quotes (an
  /// unescaped "" field is a view of the parser's scratch space, valid only while it parses).
  [[nodiscard]] static bool views_only_raw(std::string_view raw) { return raw.find('"') == std::string_view::npos; }

  /// Parse the bytes that arrived on `in`. emit(value, raw_text, offset) for each record (offset:
  /// of its first byte in the input); report(bad_record) returns false to stop (policy fail).
  /// Returns false once stopped. However the input is cut into pieces, the records and bad
  /// records (positions, reasons, texts) are those of the whole input in one piece.
  template <class Emit, class Report>
  bool feed(input& in, std::string_view bytes, Emit&& emit, Report&& report) const {
    typename csv_format<Schema>::parser parser(format_);
    bool keep_going = true;
    while (keep_going) {
      if (in.skipping) {
        const std::size_t nl = bytes.find('\n');
        const std::size_t skipped = nl == std::string_view::npos ? bytes.size() : nl + 1;
        in.at.offset += skipped;
        bytes.remove_prefix(skipped);
        if (nl == std::string_view::npos) {
          return true;
        }
        ++in.at.line;
        in.skipping = false;
      }
      if (!in.carry.empty()) {
        // Complete the carried record a line at a time (a quoted field may span lines), carrying
        // at most one byte past the carry limit.
        const std::size_t limit = carry_limit(in);
        if (in.carry.size() <= limit) {
          const std::size_t nl = bytes.find('\n');
          const std::size_t line = nl == std::string_view::npos ? bytes.size() : nl + 1;
          const std::size_t take = std::min(line, limit + 1 - in.carry.size());
          in.carry.append(bytes.substr(0, take));
          bytes.remove_prefix(take);
          if (nl == std::string_view::npos && in.carry.size() <= limit) {
            return true;  // the record's end has not arrived yet
          }
        }
        // Only whole lines are parsed: a broken record is then dropped to its newline, whole.
        const std::size_t last_nl = in.carry.rfind('\n');
        const std::string_view lines(in.carry.data(), last_nl == std::string_view::npos ? 0 : last_nl + 1);
        std::size_t used = parse(parser, in, lines, false, keep_going, emit, report);
        if (used == 0 && in.carry.size() > limit) {
          // Over the limit, its end not in sight: the record is rejected (up to its first
          // newline, or the rest of its line is dropped as it arrives), as it is in one piece.
          used = parse(parser, in, in.carry, false, keep_going, emit, report, true);
        }
        in.carry.erase(0, used);
        continue;
      }
      if (bytes.empty()) {
        break;
      }
      // The complete lines are parsed in place; from the first record they do not finish, up to
      // a byte past the carry limit is carried (the loop goes on with the rest).
      const std::size_t last_nl = bytes.rfind('\n');
      const std::size_t complete = last_nl == std::string_view::npos ? 0 : last_nl + 1;
      const std::size_t used = parse(parser, in, bytes.substr(0, complete), false, keep_going, emit, report);
      const std::size_t take = std::min(bytes.size() - used, carry_limit(in) + 1);
      in.carry.assign(bytes.substr(used, take));
      bytes.remove_prefix(used + take);
    }
    return keep_going;
  }

  /// The input ended. A record without its final newline is reported when the input is a
  /// socket (a disconnect cut it: its last field may be truncated) and parsed otherwise.
  template <class Emit, class Report>
  bool close(input& in, bool needs_final_newline, Emit&& emit, Report&& report) const {
    bool keep_going = true;
    if (in.carry.empty() || in.skipping) {
      return true;
    }
    if (needs_final_newline) {
      detail::report_bad(options_, keep_going, in.at, in.at.offset, in.at.line,
                         "input closed in the middle of a record (no final newline)", in.carry, report);
    } else {
      typename csv_format<Schema>::parser parser(format_);
      parse(parser, in, in.carry, true, keep_going, emit, report);
    }
    in.carry.clear();
    return keep_going;
  }

 private:
  // Parse the complete records at the start of `text` (with `first_only`, the first record
  // alone); returns the bytes consumed.
  template <class Parser, class Emit, class Report>
  std::size_t parse(Parser& parser, input& in, std::string_view text, bool eof, bool& keep_going, Emit& emit,
                    Report& report, bool first_only = false) const {
    std::size_t header_bytes = 0;
    if (in.at_start) {
      const std::size_t nl = text.find('\n');
      if (nl == std::string_view::npos && !eof && text.size() <= header_.size() + 4) {
        return 0;  // wait for the whole first line while it may be the header
      }
      in.at_start = false;
      std::string_view first = text.substr(0, nl == std::string_view::npos ? text.size() : nl);
      if (first.substr(0, 3) == "\xEF\xBB\xBF") {
        first.remove_prefix(3);
      }
      if (!first.empty() && first.back() == '\r') {
        first.remove_suffix(1);
      }
      if (!header_.empty() && first == header_) {
        header_bytes = nl == std::string_view::npos ? text.size() : nl + 1;
        in.at.offset += header_bytes;
        in.at.line += nl == std::string_view::npos ? 0 : 1;
        text.remove_prefix(header_bytes);
      }
    }
    const std::uint64_t base_offset = in.at.offset;
    const std::uint64_t base_line = in.at.line;
    auto report_here = [&](chunk_bad_record bad) {
      detail::report_bad(options_, keep_going, in.at, base_offset + bad.offset, base_line + bad.local_line,
                         bad.reason, text.substr(bad.offset, bad.length), report);
      return keep_going;
    };
    const char* begin = text.data();
    const char* end = begin + text.size();
    auto emit_here = [&](const auto& value, std::string_view raw) {
      emit(value, raw, base_offset + static_cast<std::uint64_t>(raw.data() - begin));
    };
    const char* stop = first_only && begin < end ? begin + 1 : end;
    const chunk_outcome out =
        parser.parse(begin, begin, stop, end, eof, options_.max_record_bytes, emit_here, report_here);
    in.at.offset += out.next;
    in.at.line += out.lines;
    // Without eof the parser stops before a record it cannot finish; it only consumes a piece
    // without a newline when it gave up on a broken line: drop the rest of that line too.
    if (!eof && out.next == text.size() && out.next > 0 && text.back() != '\n') {
      in.skipping = true;
    }
    return header_bytes + out.next;
  }

  // How much of a record may be carried while its end has not arrived: the max record size, or
  // on the first line of an input, which may be the header, at least the header (with a UTF-8
  // byte-order mark and a CR), whatever the max record size.
  [[nodiscard]] std::size_t carry_limit(const input& in) const {
    return in.at_start ? std::max(options_.max_record_bytes, header_.size() + 4) : options_.max_record_bytes;
  }

  static csv_options with_header(csv_options csv, bool header) {
    csv.header = header;
    return csv;
  }

  csv_format<Schema> format_;
  std::string header_;
  input_options options_;
};

/// Binary records framed by a 4-byte little-endian length. `decode(payload, T&)` returns nullptr
/// on success or a reason. A frame longer than the max record size is reported and skipped
/// (its length is known, so the stream stays in sync).
template <class T, class Decode>
class length_prefixed {
 public:
  using value_type = T;

  struct input {
    stream_position at;    // `line` counts frames
    std::string carry;     // a frame's first bytes
    std::uint64_t skip = 0;  // bytes of an over-long frame still to drop
  };

  explicit length_prefixed(Decode decode, input_options options = {})
      : decode_(std::move(decode)), options_(std::move(options)) {}

  [[nodiscard]] const input_options& options() const { return options_; }
  [[nodiscard]] input new_input(std::string name) const { return detail::input_named<input>(std::move(name)); }
  /// Bytes of `in` consumed whole, where a reader resumes without losing or repeating a frame;
  /// nullopt while an over-long frame is being dropped.
  [[nodiscard]] static std::optional<std::uint64_t> resume_offset(const input& in) {
    return in.skip > 0 ? std::nullopt : std::optional<std::uint64_t>(in.at.offset);
  }

  template <class Emit, class Report>
  bool feed(input& in, std::string_view bytes, Emit&& emit, Report&& report) const {
    bool keep_going = true;
    while (!bytes.empty() && keep_going) {
      if (in.skip > 0) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(in.skip, bytes.size()));
        in.skip -= n;
        in.at.offset += n;
        bytes.remove_prefix(n);
        continue;
      }
      if (!in.carry.empty() || bytes.size() < 4 || bytes.size() < 4 + length_of(bytes)) {
        // Gather the frame (header first) in the carry; bounded by the max record size + 4.
        const std::size_t want = in.carry.size() < 4 ? 4 - in.carry.size() : 4 + length_of(in.carry) - in.carry.size();
        const std::size_t n = std::min(want, bytes.size());
        in.carry.append(bytes.substr(0, n));
        bytes.remove_prefix(n);
        if (in.carry.size() == 4 && length_of(in.carry) > options_.max_record_bytes) {
          oversized(in, keep_going, report);
        } else if (in.carry.size() >= 4 && in.carry.size() == 4 + length_of(in.carry)) {
          frame(in, in.carry, keep_going, emit, report);
          in.carry.clear();
        }
        continue;
      }
      const std::size_t len = length_of(bytes);
      if (len > options_.max_record_bytes) {
        in.carry.assign(bytes.substr(0, 4));
        bytes.remove_prefix(4);
        oversized(in, keep_going, report);
        continue;
      }
      frame(in, bytes.substr(0, 4 + len), keep_going, emit, report);
      bytes.remove_prefix(4 + len);
    }
    return keep_going;
  }

  template <class Emit, class Report>
  bool close(input& in, bool /*needs_final_newline*/, Emit&& /*emit*/, Report&& report) const {
    bool keep_going = true;
    if (!in.carry.empty()) {
      detail::report_bad(options_, keep_going, in.at, in.at.offset, in.at.line,
                         "input closed in the middle of a frame", in.carry, report);
      in.carry.clear();
    }
    return keep_going;
  }

 private:
  static std::size_t length_of(std::string_view header) {
    const auto* b = reinterpret_cast<const unsigned char*>(header.data());
    return static_cast<std::size_t>(b[0]) | static_cast<std::size_t>(b[1]) << 8U |
           static_cast<std::size_t>(b[2]) << 16U | static_cast<std::size_t>(b[3]) << 24U;
  }

  template <class Emit, class Report>
  void frame(input& in, std::string_view whole, bool& keep_going, Emit& emit, Report& report) const {
    const std::string_view payload = whole.substr(4);
    T value{};
    if (const char* err = decode_(payload, value)) {
      detail::report_bad(options_, keep_going, in.at, in.at.offset, in.at.line, err, payload, report);
    } else {
      emit(value, payload, in.at.offset);
    }
    in.at.offset += whole.size();
    ++in.at.line;
  }

  template <class Report>
  void oversized(input& in, bool& keep_going, Report& report) const {
    const std::size_t len = length_of(in.carry);
    detail::report_bad(options_, keep_going, in.at, in.at.offset, in.at.line,
                       "frame of " + std::to_string(len) + " bytes exceeds the max record size (" +
                           std::to_string(options_.max_record_bytes) + " bytes)",
                       std::string_view{}, report);
    in.at.offset += 4;
    in.skip = len;
    ++in.at.line;
    in.carry.clear();
  }

  Decode decode_;
  input_options options_;
};

}  // namespace sluice
