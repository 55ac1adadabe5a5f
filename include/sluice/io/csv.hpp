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
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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
    bool ascii_without_nul = false;  // known to hold only ASCII bytes, none NUL (false: not checked)
  };

  csv_tokenizer(char delimiter, std::size_t max_fields) : delim_(delimiter), spans_(max_fields) {}

  /// Tokenise the record at p. [p, end) is what is available and `eof` says whether more can
  /// follow; `max_bytes` bounds the record's size.
  record tokenize(const char* p, const char* end, bool eof, std::size_t max_bytes) {
    used_scratch_ = 0;
#if defined(__SSE2__)
    record fast;
    if (tokenize_unquoted(p, end, max_bytes, fast)) {
      return fast;
    }
#endif
    return tokenize_general(p, end, eof, max_bytes);
  }

  [[nodiscard]] std::string_view field(std::size_t i) const {
    return spans_[i];
  }
  [[nodiscard]] std::size_t max_fields() const {
    return spans_.size();
  }
  /// Forget where the last quote search ended: the bytes of a buffer may change between calls
  /// (a stream's carry rewritten at the same address), and the remembered answer with them.
  void new_input() {
    quote_search_from_ = nullptr;
    quote_search_end_ = nullptr;
    quote_found_ = nullptr;
  }

  /// True if some field of the last record was unescaped into the scratch buffer (it is then
  /// not a view into the input).
  [[nodiscard]] bool unescaped() const { return used_scratch_ > 0; }

 private:
#if defined(__SSE2__)
  // The common case, 16 bytes at a time: a record with no quote before its newline, whose
  // newline lies at least 16 bytes before the end of the input (so no load reads past it).
  // Returns false, having decided nothing, for anything else; the general path takes over.
  // On the way it notes whether the record is all ASCII without NUL (then no text field of it
  // needs a UTF-8 check): two more operations per 16 bytes.
  bool tokenize_unquoted(const char* p, const char* end, std::size_t max_bytes, record& r) {
    const __m128i delim = _mm_set1_epi8(delim_);
    const __m128i newline = _mm_set1_epi8('\n');
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i zero = _mm_setzero_si128();
    unsigned not_ascii = 0;  // bytes >= 0x80 or NUL, before the newline
    const char* const record_start = p;
    const char* field_start = p;
    std::size_t n = 0;
    for (const char* block = p; block + 16 <= end; block += 16) {
      if (static_cast<std::size_t>(block - record_start) >= max_bytes) {
        return false;
      }
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block));  // NOLINT: SIMD load
      const auto nl = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, newline)));
      const auto qu = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)));
      const unsigned before_nl = nl == 0 ? 0xFFFFU : ((nl & (0U - nl)) - 1U);
      if ((qu & before_nl) != 0) {
        return false;
      }
      not_ascii |= static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(v, _mm_cmpeq_epi8(v, zero)))) & before_nl;
      unsigned ends =
          (static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, delim))) & before_nl) | (nl & (0U - nl));
      while (ends != 0) {
        const char* pos = block + __builtin_ctz(ends);
        if (*pos == '\n') {
          const char* value_end = (pos > field_start && pos[-1] == '\r') ? pos - 1 : pos;
          store(n++, std::string_view(field_start, static_cast<std::size_t>(value_end - field_start)));
          if (static_cast<std::size_t>(pos - record_start) >= max_bytes) {
            return false;
          }
          r.st = status::ok;
          r.next = pos + 1;
          r.lines = 1;
          r.fields = n;
          r.ascii_without_nul = not_ascii == 0;
          return true;
        }
        store(n++, std::string_view(field_start, static_cast<std::size_t>(pos - field_start)));
        field_start = pos + 1;
        ends &= ends - 1;
      }
    }
    return false;
  }
#endif

  record tokenize_general(const char* p, const char* end, bool eof, std::size_t max_bytes) {
    record r;
    const bool clipped = static_cast<std::size_t>(end - p) > max_bytes;
    const char* const stop = clipped ? p + max_bytes : end;
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
      field_end = close + 1;
      if (field_end < end && field_end[0] == '\r') {
        if (field_end + 1 < end && field_end[1] == '\n') {
          ++field_end;  // CRLF after a closing quote
        } else if (field_end + 1 == end && !eof && !clipped) {
          return status::incomplete;  // the next byte decides whether this CR ends the line
        }
      }
      if (clipped && field_end >= stop) {
        return status::too_long;  // what follows the field (its line ending at least) is past the limit
      }
      lines += static_cast<std::uint64_t>(std::count(start, close, '\n'));
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
      if (found == expected_fields_ && !col.required) {
        found = absent;  // an optional column the file does not have: the member keeps its default
      } else if (found == expected_fields_) {
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
    explicit parser(const csv_format& fmt) : fmt_(&fmt), tok_(fmt.options_.delimiter, fmt.expected_fields_) {}

    /// Parse the records that start in [begin, stop); `end` is the end of the input. Calls
    /// emit(value) (or emit(value, raw_text) if it takes that) for each good record and report(chunk_bad_record) (returning false to stop)
    /// for each bad one. Offsets are relative to `origin`.
    template <class Emit, class Report>
    chunk_outcome parse(const char* origin, const char* begin, const char* stop, const char* end, bool eof,
                        std::size_t max_record_bytes, Emit&& emit, Report&& report) {
      using status = detail::csv_tokenizer::status;
      tok_.new_input();  // [begin, end) may hold other bytes than at the last call, at the same address
      chunk_outcome out;
      const char* p = begin;
      while (p < stop) {
        const auto rec = tok_.tokenize(p, end, eof, max_record_bytes);
        if (rec.st == status::ok) {
          // A blank line, even under a one-column schema; a quoted "" is a record with one empty field.
          const bool blank = rec.fields == 1 && tok_.field(0).empty() && *p != '"';
          if (rec.fields == fmt_->expected_fields_ && !blank) {
            value_type value{};
            const bad_field bad = bind(value, field_context{tok_.unescaped() ? nullptr : end, rec.ascii_without_nul});
            if (bad.reason == nullptr) {
              if constexpr (std::is_invocable_v<Emit&, value_type&, std::string_view>) {
                emit(value, std::string_view(p, static_cast<std::size_t>(rec.next - p)));  // with its raw text
              } else {
                emit(value);
              }
              ++out.records;
              out.lines += rec.lines;
              p = rec.next;
              continue;
            }
            if (!reject(origin, p, rec.next, rec.lines, describe(bad), out, report)) {
              break;
            }
          } else if (blank) {
            out.lines += rec.lines;
          } else if (!reject(origin, p, rec.next, rec.lines,
                             "expected " + std::to_string(fmt_->expected_fields_) + " fields, found " +
                                 std::to_string(rec.fields),
                             out, report)) {
            break;
          }
          p = rec.next;
          continue;
        }
        if (rec.st == status::incomplete) {
          break;
        }
        // A broken record's own end is unknown: resynchronise at the next physical line.
        const void* nl = std::memchr(p, '\n', static_cast<std::size_t>(end - p));
        const char* next = nl == nullptr ? end : static_cast<const char*>(nl) + 1;
        const bool go_on =
            reject(origin, p, next, nl == nullptr ? 0 : 1, syntax_error(rec.st, max_record_bytes), out, report);
        p = next;
        if (!go_on) {
          break;
        }
      }
      out.next = static_cast<std::size_t>(p - origin);
      return out;
    }

   private:
    struct bad_field {
      const char* reason = nullptr;  // nullptr: the record bound cleanly
      std::size_t column = 0;
      std::string_view name;
      std::string_view text;
    };

    // Bind the record's fields to a value; on failure say which field and why (no allocation
    // on the good path). `ctx`: what the tokenizer learnt of the record's bytes (its fields may
    // be read up to the end of the input unless some were unescaped into the scratch buffer).
    bad_field bind(value_type& value, const field_context& ctx) const {
      bad_field bad;
      fmt_->schema_.for_each_column([&](auto i, const auto& col) {
        if (bad.reason != nullptr) {
          return;
        }
        const std::size_t f = fmt_->index_[i];
        if (f == absent) {
          return;
        }
        const std::string_view text = tok_.field(f);
        if (const char* err = col.parse_into(text, value, ctx)) {
          bad = bad_field{err, f, col.name, text};
        }
      });
      return bad;
    }

    static std::string describe(const bad_field& bad) {
      return field_rejected(bad.name, bad.column + 1, bad.reason, bad.text);
    }

    static std::string syntax_error(detail::csv_tokenizer::status st, std::size_t max_record_bytes) {
      using status = detail::csv_tokenizer::status;
      switch (st) {
        case status::too_long:
          return "record exceeds the max record size (" + std::to_string(max_record_bytes) + " bytes)";
        case status::unterminated_quote:
          return "unterminated quoted field";
        default:
          return "unexpected character after a closing quote";
      }
    }

    // Report a bad record spanning [p, next); false if the report asks to stop.
    template <class Report>
    static bool reject(const char* origin, const char* p, const char* next, std::uint64_t lines, std::string reason,
                       chunk_outcome& out, Report& report) {
      ++out.bad;
      chunk_bad_record bad{static_cast<std::uint64_t>(p - origin), static_cast<std::uint64_t>(next - p), out.lines,
                           std::move(reason)};
      out.lines += lines;
      if (!report(std::move(bad))) {
        out.stopped = true;
        return false;
      }
      return true;
    }

    const csv_format* fmt_;
    detail::csv_tokenizer tok_;
  };

 private:
  static constexpr std::size_t absent = static_cast<std::size_t>(-1);  // index_ of a missing optional column

  Schema schema_;
  csv_options options_;
  std::size_t expected_fields_ = Schema::size;
  std::array<std::size_t, Schema::size> index_{};
};

}  // namespace sluice
