// CSV records (RFC 4180 and what real files do): header row, quoted fields with "" escapes and
// embedded newlines, CRLF, empty fields, a UTF-8 byte-order mark. Fields bind by header name to a
// schema; a record that does not fit is a bad record with its line, byte offset and reason.
//
// Performance: one pass over the bytes; unquoted fields are views into the input; a quoted
// field with "" escapes is unescaped into a per-parser scratch buffer reused for every record.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/bounded_input.hpp"
#include "sluice/io/schema.hpp"

namespace sluice {

struct csv_options {
  char delimiter = ',';
  bool header = true;  // the first record names the columns; without it columns bind by position
};

namespace detail {
/// Splits one CSV record into fields. Unquoted fields and quoted fields without "" escapes are
/// views into the input; escaped ones are unescaped into a scratch buffer owned by the tokenizer.
class csv_tokenizer {
 public:
  enum class status {
    ok,
    incomplete,          // the record runs past the available bytes and more may come (streams)
    unterminated_quote,  // end of input inside a quoted field
    bad_quote,           // a closing quote followed by something other than a delimiter or newline
    too_long,            // the record does not end within the max record size
  };

  struct record {
    status st = status::ok;
    const char* next = nullptr;  // first byte after the record (after its newline)
    std::uint64_t lines = 0;     // newlines consumed, embedded ones included
    std::size_t fields = 0;      // number of fields found (field(i) is kept for i < max_fields)
  };

  csv_tokenizer(char delimiter, std::size_t max_fields) : delim_(delimiter), spans_(max_fields) {}

  /// Tokenise the record at p. [p, end) is what is available and `eof` says whether more can
  /// follow; `max_bytes` bounds the record's size.
  record tokenize(const char* p, const char* end, bool eof, std::size_t max_bytes) {
    record r;
    const bool clipped = static_cast<std::size_t>(end - p) > max_bytes;
    const char* const stop = clipped ? p + max_bytes : end;
    used_scratch_ = 0;
    room_ = static_cast<std::size_t>(stop - p);
    std::size_t n = 0;
    while (true) {
      const char* field_end = nullptr;
      if (p < stop && *p == '"') {
        r.st = quoted(p, end, stop, eof, clipped, r.lines, n, field_end);
        if (r.st != status::ok) {
          r.fields = n;
          return r;
        }
      } else {
        field_end = p;
        while (field_end < stop && *field_end != delim_ && *field_end != '\n') {
          ++field_end;
        }
        if (field_end == stop && (clipped || !eof)) {
          r.st = clipped ? status::too_long : status::incomplete;
          r.fields = n;
          return r;
        }
        const char* value_end = field_end;
        if (value_end > p && value_end[-1] == '\r' && (value_end == end || *value_end == '\n')) {
          --value_end;  // CRLF: the CR belongs to the line ending, not to the field
        }
        store(n, std::string_view(p, static_cast<std::size_t>(value_end - p)));
      }
      ++n;
      p = field_end;
      if (p == end) {
        r.next = end;
        break;
      }
      if (*p == '\n') {
        ++r.lines;
        r.next = p + 1;
        break;
      }
      if (*p != delim_) {
        r.st = status::bad_quote;
        r.fields = n;
        return r;
      }
      ++p;
    }
    r.fields = n;
    return r;
  }

  [[nodiscard]] std::string_view field(std::size_t i) const { return spans_[i]; }
  [[nodiscard]] std::size_t max_fields() const { return spans_.size(); }

 private:
  void store(std::size_t i, std::string_view v) {
    if (i < spans_.size()) {
      spans_[i] = v;
    }
  }

  // The quoted field at p (p[0] is '"'), stored as field n; field_end is set past the closing quote.
  status quoted(const char* p, const char* end, const char* stop, bool eof, bool clipped, std::uint64_t& lines,
                std::size_t n, const char*& field_end) {
    const char* const start = p + 1;
    const char* q = start;
    bool escaped = false;
    while (true) {
      const char* close = find_quote(q, end);
      if (close == nullptr || close >= stop) {
        if (clipped) {
          return status::too_long;
        }
        return eof ? status::unterminated_quote : status::incomplete;
      }
      if (close + 1 < stop && close[1] == '"') {
        escaped = true;
        q = close + 2;
        continue;
      }
      if (close + 1 == stop && !eof && !clipped) {
        return status::incomplete;  // the next byte decides whether this quote closes the field
      }
      lines += static_cast<std::uint64_t>(std::count(start, close, '\n'));
      field_end = close + 1;
      if (field_end + 1 < end && field_end[0] == '\r' && field_end[1] == '\n') {
        ++field_end;  // CRLF after a closing quote
      }
      const std::string_view raw(start, static_cast<std::size_t>(close - start));
      store(n, escaped ? unescape(raw) : raw);
      return status::ok;
    }
  }

  // The next '"' at or after `from`, remembering the answer: a run of broken records that each
  // open a quote that never closes costs one scan in all, not one scan each.
  const char* find_quote(const char* from, const char* end) {
    if (end == quote_search_end_ && from >= quote_search_from_ && from <= quote_found_) {
      return quote_found_ == end ? nullptr : quote_found_;
    }
    const void* hit = std::memchr(from, '"', static_cast<std::size_t>(end - from));
    quote_search_from_ = from;
    quote_search_end_ = end;
    quote_found_ = hit == nullptr ? end : static_cast<const char*>(hit);
    return hit == nullptr ? nullptr : quote_found_;
  }

  std::string_view unescape(std::string_view raw) {
    // Unescaped fields of one record never exceed the record's bytes (room_), so sizing the
    // buffer to that once keeps every earlier view of the same record valid.
    if (scratch_.size() < room_) {
      scratch_.resize(room_);
    }
    char* out = scratch_.data() + used_scratch_;
    std::size_t k = 0;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      out[k++] = raw[i];
      if (raw[i] == '"') {
        ++i;  // the second quote of ""
      }
    }
    used_scratch_ += k;
    return {out, k};
  }

  char delim_;
  std::vector<std::string_view> spans_;
  std::string scratch_;
  std::size_t used_scratch_ = 0;
  std::size_t room_ = 0;
  const char* quote_search_from_ = nullptr;
  const char* quote_search_end_ = nullptr;
  const char* quote_found_ = nullptr;
};
}  // namespace detail

}  // namespace sluice

namespace sluice {

/// How a schema's columns map onto the fields of a CSV file, once its header has been read.
template <class Schema>
class csv_format {
 public:
  using value_type = typename Schema::record_type;

  csv_format(Schema schema, csv_options options) : schema_(std::move(schema)), options_(options) {}

  [[nodiscard]] const csv_options& options() const { return options_; }

  /// Reads the header (if any) at the start of `text`, binds columns by name, and returns how
  /// many bytes and lines it took. Throws bad_input_error naming what is missing.
  struct header_info {
    std::size_t bytes = 0;
    std::uint64_t lines = 0;
  };
  header_info bind_header(std::string_view text, std::string_view source_name) {
    header_info info;
    if (text.substr(0, 3) == "\xEF\xBB\xBF") {
      info.bytes = 3;  // UTF-8 byte-order mark
    }
    if (!options_.header) {
      expected_fields_ = Schema::size;
      schema_.for_each_column([&](auto i, const auto& /*col*/) { index_[i] = i; });
      return info;
    }
    const std::size_t max_header_fields = 4096;
    detail::csv_tokenizer tok(options_.delimiter, max_header_fields);
    const char* begin = text.data() + info.bytes;
    auto rec = tok.tokenize(begin, text.data() + text.size(), true, std::size_t{1} << 20U);
    if (text.size() == info.bytes) {
      throw bad_input_error(std::string(source_name) + ": empty input, expected a header row");
    }
    if (rec.st != detail::csv_tokenizer::status::ok) {
      throw bad_input_error(std::string(source_name) + ":1: cannot read the header row");
    }
    expected_fields_ = std::min(rec.fields, max_header_fields);
    schema_.for_each_column([&](auto i, const auto& col) {
      std::size_t found = expected_fields_;
      for (std::size_t f = 0; f < expected_fields_; ++f) {
        if (tok.field(f) == col.name) {
          found = f;
          break;
        }
      }
      if (found == expected_fields_) {
        std::string names;
        for (std::size_t f = 0; f < expected_fields_; ++f) {
          names += (f == 0 ? "" : ",");
          names += tok.field(f);
        }
        throw bad_input_error(std::string(source_name) + ":1: header has no column '" + std::string(col.name) +
                              "' (header: " + names + ")");
      }
      index_[i] = found;
    });
    info.bytes = static_cast<std::size_t>(rec.next - text.data());
    info.lines = rec.lines;
    return info;
  }

  /// A parser for one thread: it owns the tokenizer's scratch space.
  class parser {
   public:
    explicit parser(const csv_format& fmt)
        : fmt_(&fmt), tok_(fmt.options_.delimiter, fmt.expected_fields_) {}

    /// Parse the records that start in [begin, stop); `end` is the end of the input. Calls
    /// emit(value) for each good record and report(chunk_bad_record) (returning false to stop)
    /// for each bad one. Offsets are relative to `origin`.
    template <class Emit, class Report>
    chunk_outcome parse(const char* origin, const char* begin, const char* stop, const char* end, bool eof,
                        std::size_t max_record_bytes, Emit&& emit, Report&& report) {
      using status = detail::csv_tokenizer::status;
      chunk_outcome out;
      const char* p = begin;
      while (p < stop) {
        auto rec = tok_.tokenize(p, end, eof, max_record_bytes);
        if (rec.st == status::incomplete) {
          break;
        }
        const char* reason_static = nullptr;
        std::string reason;
        const char* next = rec.next;
        std::uint64_t lines = rec.lines;
        if (rec.st == status::ok) {
          if (rec.fields == 1 && tok_.field(0).empty()) {
            out.lines += lines;  // a blank line
            p = next;
            continue;
          }
          if (rec.fields != fmt_->expected_fields_) {
            reason = "expected " + std::to_string(fmt_->expected_fields_) + " fields, found " + std::to_string(rec.fields);
          } else {
            value_type value{};
            if (bind(value, reason)) {
              emit(value);
              ++out.records;
              out.lines += lines;
              p = next;
              continue;
            }
          }
        } else {
          reason_static = rec.st == status::too_long           ? "record exceeds the max record size"
                          : rec.st == status::unterminated_quote ? "unterminated quoted field"
                                                                 : "unexpected character after a closing quote";
          // Resynchronise at the next physical line: the broken record's own end is unknown.
          const void* nl = std::memchr(p, '\n', static_cast<std::size_t>(end - p));
          next = nl == nullptr ? end : static_cast<const char*>(nl) + 1;
          lines = nl == nullptr ? 0 : 1;
          if (rec.st == status::too_long) {
            reason = std::string(reason_static) + " (" + std::to_string(max_record_bytes) + " bytes)";
            reason_static = nullptr;
          }
        }
        ++out.bad;
        chunk_bad_record bad{static_cast<std::uint64_t>(p - origin), static_cast<std::uint64_t>(next - p), out.lines,
                             reason_static != nullptr ? std::string(reason_static) : std::move(reason)};
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
    bool bind(value_type& value, std::string& reason) {
      bool ok = true;
      fmt_->schema_.for_each_column([&](auto i, const auto& col) {
        if (!ok) {
          return;
        }
        const std::size_t f = fmt_->index_[i];
        const std::string_view text = tok_.field(f);
        if (const char* err = col.parse_into(text, value)) {
          ok = false;
          reason = "field '" + std::string(col.name) + "' (column " + std::to_string(f + 1) + "): " + err + ": '" +
                   std::string(text.substr(0, 64)) + (text.size() > 64 ? "...'" : "'");
        }
      });
      return ok;
    }

    const csv_format* fmt_;
    detail::csv_tokenizer tok_;
  };

 private:
  Schema schema_;
  csv_options options_;
  std::size_t expected_fields_ = Schema::size;
  std::array<std::size_t, Schema::size> index_{};
};

}  // namespace sluice
