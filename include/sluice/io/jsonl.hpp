// JSON lines records (one JSON object per line), parsed with simdjson's On Demand API. Object
// keys bind to a schema's column names and feed the same field parsers as CSV: a string value
// passes its unescaped text, a number its raw token (so fixed_point<2> reads 12.34 exactly, never
// through a double), true/false pass "true"/"false", null passes "" (an optional becomes nullopt).
// A number is passed verbatim, so 1e2 into a fixed_point or 1.0 into an integer is rejected by
// the field parser, not rounded. Keys the schema does not name are skipped; a repeated key's
// last value wins. Blank lines are skipped. A record that does not fit is a bad record with its
// line, byte offset and reason, exactly as in CSV: "missing field 'qty'", "field 'qty':
// expected a scalar", "field 'qty': not an integer: 'x'", "expected a JSON object", "record
// exceeds the max record size (N bytes)", or "invalid JSON: " and simdjson's message.
//
//   auto src = sluice::jsonl_file("sales.jsonl", schema);   // link with -lsimdjson
//
// This is the only sluice header that includes <simdjson.h>.
//
// Performance and lifetimes: each parser (one per chunk, so one per thread) owns one
// simdjson::ondemand::parser, reused for every line. Values are not materialised: a field's
// text is its raw token, viewed in place, so a string without escapes and a number are views
// into the input (the memory map: valid for the whole run, like unquoted CSV fields). Only a
// string with backslash escapes is unescaped, into the simdjson parser's string buffer: that
// view is valid while the record is being processed (until the next line is parsed), like a CSV
// field with "" escapes. Values of keys the schema does not bind are skipped, not validated
// (On Demand validates only what it reads), apart from simdjson's whole-line UTF-8, string and
// structure checks.
//
// Padding: simdjson reads up to SIMDJSON_PADDING bytes past the end of its input (their content
// does not affect the result, but they must be readable). A memory-mapped file guarantees
// nothing past its last byte: when the file size is a multiple of the page size, the next byte
// is unmapped and reading it faults. So a line is parsed in place only when at least
// SIMDJSON_PADDING bytes of the input follow its end (the next lines serve as padding); the
// last lines of the input, within SIMDJSON_PADDING bytes of its end, are copied into a reusable
// padded buffer owned by the parser. Nearly every line thus costs no copy, and no byte past the
// caller's `end` is ever read (the 16-byte key comparison below relies on the same padding).
// Raw-token views taken from the copy are translated back into the input, so lifetimes do not
// depend on which path a line took.
#pragma once

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/bounded_input.hpp"
#include "sluice/io/file_source.hpp"
#include "sluice/io/schema.hpp"

namespace sluice {

namespace detail {
inline bool json_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/// True if `s` is exactly one JSON number (RFC 8259): -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
inline bool valid_json_number(std::string_view s) {
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  std::size_t i = 0;
  const std::size_t n = s.size();
  if (i < n && s[i] == '-') {
    ++i;
  }
  if (i == n || !digit(s[i])) {
    return false;
  }
  if (s[i] == '0') {
    ++i;
  } else {
    while (i < n && digit(s[i])) {
      ++i;
    }
  }
  if (i < n && s[i] == '.') {
    const std::size_t first = ++i;
    while (i < n && digit(s[i])) {
      ++i;
    }
    if (i == first) {
      return false;
    }
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
      ++i;
    }
    const std::size_t first = i;
    while (i < n && digit(s[i])) {
      ++i;
    }
    if (i == first) {
      return false;
    }
  }
  return i == n;
}
}  // namespace detail

/// How a schema's columns map onto the keys of JSON objects, one object per line.
template <class Schema>
class jsonl_format {
 public:
  using value_type = typename Schema::record_type;

  explicit jsonl_format(Schema schema) : schema_(std::move(schema)) {
    schema_.for_each_column([&](auto i, const auto& col) {
      names_[i] = col.name;
      required_[i] = col.required;
      // A name with a quote, a backslash or a control character can only appear escaped in
      // JSON, and a raw comparison must not read past simdjson's padding: other names are
      // compared only against whole (unescaped) keys, off the fast path.
      const bool plain =
          col.name.size() <= simdjson::SIMDJSON_PADDING && std::none_of(col.name.begin(), col.name.end(), [](char c) {
            return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20;
          });
      keys_[i] = raw_key(col.name, plain);
    });
  }

  struct header_info {
    std::size_t bytes = 0;
    std::uint64_t lines = 0;
  };

  /// JSON lines have no header: columns bind by key on every line. Skips a UTF-8 byte-order
  /// mark; an empty input is valid (no records).
  header_info bind_header(std::string_view text, std::string_view /*source_name*/) {
    header_info info;
    if (text.substr(0, 3) == "\xEF\xBB\xBF") {
      info.bytes = 3;
    }
    return info;
  }

  /// A parser for one thread: it owns a simdjson parser and the padded copy buffer.
  class parser {
   public:
    explicit parser(const jsonl_format& fmt) : fmt_(&fmt) {
      // Room for typical lines up front; simdjson grows it for a longer line (once).
      const auto err = json_.allocate(std::size_t{16} << 10U);
      (void)err;  // an allocation failure resurfaces, with its reason, on the first iterate()
    }

    /// Parse the records that start in [begin, stop); `end` is the end of the input. Calls
    /// emit(value) for each good record and report(chunk_bad_record) (returning false to stop)
    /// for each bad one. Offsets are relative to `origin`.
    template <class Emit, class Report>
    chunk_outcome parse(const char* origin, const char* begin, const char* stop, const char* end, bool eof,
                        std::size_t max_record_bytes, Emit&& emit, Report&& report) {
      chunk_outcome out;
      const char* p = begin;
      std::string reason;
      while (p < stop) {
        // A record, newline included, must fit in max_record_bytes (as in CSV).
        const auto avail = static_cast<std::size_t>(end - p);
        const void* nl = std::memchr(p, '\n', std::min(avail, max_record_bytes));
        const char* line_end = nullptr;
        const char* next = nullptr;
        std::uint64_t lines = 0;
        bool ok = false;
        reason.clear();
        if (nl != nullptr) {
          line_end = static_cast<const char*>(nl);
          next = line_end + 1;
          lines = 1;
        } else if (avail <= max_record_bytes) {
          if (!eof) {
            break;  // the line may go on in bytes not yet available (streams)
          }
          line_end = end;
          next = end;
        } else {
          // Resynchronise at the next newline; the first max_record_bytes bytes have none.
          const void* later = std::memchr(p + max_record_bytes, '\n', avail - max_record_bytes);
          next = later == nullptr ? end : static_cast<const char*>(later) + 1;
          lines = later == nullptr ? 0 : 1;
          reason = "record exceeds the max record size (" + std::to_string(max_record_bytes) + " bytes)";
        }
        if (line_end != nullptr) {
          const char* first = p;
          while (first < line_end && detail::json_space(*first)) {
            ++first;
          }
          if (first == line_end) {
            out.lines += lines;  // a blank line
            p = next;
            continue;
          }
          value_type value{};
          if (*first != '{') {
            reason = "expected a JSON object";
          } else if (bind(p, line_end, end, value, reason)) {
            ok = true;
            emit(value);
            ++out.records;
          }
        }
        if (!ok) {
          ++out.bad;
          chunk_bad_record bad{static_cast<std::uint64_t>(p - origin), static_cast<std::uint64_t>(next - p), out.lines,
                               std::move(reason)};
          out.lines += lines;
          p = next;
          if (!report(std::move(bad))) {
            out.stopped = true;
            break;
          }
          continue;
        }
        out.lines += lines;
        p = next;
      }
      out.next = static_cast<std::size_t>(p - origin);
      return out;
    }

   private:
    static constexpr std::size_t columns = Schema::size;
    static constexpr std::uint32_t no_column = static_cast<std::uint32_t>(columns);
    static constexpr std::size_t max_guessed_positions = 256;

    static bool invalid(simdjson::error_code err, std::string& reason) {
      reason = "invalid JSON: ";
      reason += simdjson::error_message(err);
      return false;
    }

    /// Parse the object on [line, line_end) into `value`; false with a reason if it does not fit.
    bool bind(const char* line, const char* line_end, const char* input_end, value_type& value, std::string& reason) {
      const auto len = static_cast<std::size_t>(line_end - line);
      const char* json = line;
      std::size_t capacity = static_cast<std::size_t>(input_end - line);
      if (static_cast<std::size_t>(input_end - line_end) < simdjson::SIMDJSON_PADDING) {
        // Too close to the end of the input to parse in place: copy (see the header comment).
        if (padded_.size() < len + simdjson::SIMDJSON_PADDING) {
          padded_.resize(len + simdjson::SIMDJSON_PADDING);  // value-initialised: padding is never garbage
        }
        std::memcpy(padded_.data(), line, len);
        // Clear what an earlier, longer line left past this one: on a malformed line simdjson
        // may look at the byte after the document, and a stale '}' there made `{"r":}` whole
        // (found by fuzz_jsonl; in place, that byte is this line's newline).
        std::memset(padded_.data() + len, 0, simdjson::SIMDJSON_PADDING);
        json = padded_.data();
        capacity = padded_.size();
      }
      // Raw tokens are viewed in the input itself, whichever buffer simdjson parsed.
      const auto in_input = [&](std::string_view token) {
        return std::string_view(line + (token.data() - json), token.size());
      };

      simdjson::ondemand::document doc;
      if (auto err = json_.iterate(json, len, capacity).get(doc)) {
        return invalid(err, reason);
      }
      simdjson::ondemand::object obj;
      if (auto err = doc.get_object().get(obj)) {
        return invalid(err, reason);
      }
      found_.fill(false);
      std::size_t position = 0;
      for (auto item : obj) {
        simdjson::ondemand::field field;
        if (auto err = std::move(item).get(field)) {
          return invalid(err, reason);
        }
        std::size_t col = columns;
        if (auto err = lookup(field, position++, col)) {
          return invalid(err, reason);
        }
        if (col == columns) {
          continue;  // a key the schema does not bind: On Demand skips its value
        }
        simdjson::ondemand::value& v = field.value();
        std::string_view token = v.raw_json_token();  // the token and any whitespace after it
        while (!token.empty() && detail::json_space(token.back())) {
          token.remove_suffix(1);
        }
        if (token.empty()) {
          return invalid(simdjson::TAPE_ERROR, reason);
        }
        switch (token.front()) {
          case '"':
            if (std::memchr(token.data(), '\\', token.size()) != nullptr) {
              std::string_view unescaped;
              if (auto err = v.get_string().get(unescaped)) {
                return invalid(err, reason);
              }
              texts_[col] = unescaped;  // in simdjson's string buffer: valid until the next line
            } else {
              // simdjson's first stage already checked the string: quotes, UTF-8, control chars.
              texts_[col] = in_input(token.substr(1, token.size() - 2));
            }
            break;
          case 't':
            if (token != "true") {
              return invalid(simdjson::T_ATOM_ERROR, reason);
            }
            texts_[col] = "true";
            break;
          case 'f':
            if (token != "false") {
              return invalid(simdjson::F_ATOM_ERROR, reason);
            }
            texts_[col] = "false";
            break;
          case 'n':
            if (token != "null") {
              return invalid(simdjson::N_ATOM_ERROR, reason);
            }
            texts_[col] = std::string_view();
            break;
          case '{':
          case '[':
            reason = "field '" + std::string(fmt_->names_[col]) + "': expected a scalar";
            return false;
          default:
            if (!detail::valid_json_number(token)) {
              return invalid(simdjson::NUMBER_ERROR, reason);
            }
            texts_[col] = in_input(token);  // the number as written: no double round trip
            break;
        }
        found_[col] = true;
      }
      // Nothing but whitespace may follow the object: after the loop, raw_json() ends at the
      // next token, which is the end of the line unless something trails the object.
      std::string_view whole;
      if (auto err = obj.raw_json().get(whole)) {
        return invalid(err, reason);
      }
      if (whole.data() + whole.size() != json + len) {
        return invalid(simdjson::TRAILING_CONTENT, reason);
      }
      for (std::size_t i = 0; i < columns; ++i) {
        if (!found_[i] && fmt_->required_[i]) {
          reason = "missing field '" + std::string(fmt_->names_[i]) + "'";
          return false;
        }
      }
      bool ok = true;
      fmt_->schema_.for_each_column([&](auto i, const auto& col) {
        if (!ok) {
          return;
        }
        if (!found_[i]) {
          return;  // an optional column this object lacks: the member keeps its default
        }
        const std::string_view text = texts_[i];
        if (const char* err = col.parse_into(text, value)) {
          ok = false;
          reason = field_rejected(col.name, 0, err, text);
        }
      });
      return ok;
    }

    /// The column a field's key names (`columns` if none). Keys usually come in the same order
    /// on every line, so the column found at this position last time is tried first.
    simdjson::error_code lookup(simdjson::ondemand::field& field, std::size_t position, std::size_t& col) {
      const char* const raw = field.key().raw();
      if (position < guess_.size()) {
        const std::uint32_t g = guess_[position];
        if (g != no_column && fmt_->keys_[g].matches(raw)) {
          col = g;
          return simdjson::SUCCESS;
        }
      }
      return lookup_slow(field, raw, position, col);
    }

    simdjson::error_code lookup_slow(simdjson::ondemand::field& field, const char* raw, std::size_t position,
                                     std::size_t& col) {
      col = columns;
      for (std::size_t i = 0; i < columns; ++i) {
        if (fmt_->keys_[i].matches(raw)) {
          col = i;
          break;
        }
      }
      if (col == columns) {
        // Not a plain name of up to 64 bytes: compare the whole key, unescaped if it has escapes
        // ("q\u0074y" names the column qty). The first quote before any backslash closes the key.
        const char* r = raw;
        while (*r != '"' && *r != '\\') {
          ++r;
        }
        std::string_view key(raw, static_cast<std::size_t>(r - raw));
        if (*r == '\\') {
          if (auto err = field.unescaped_key().get(key)) {
            return err;
          }
        }
        for (std::size_t i = 0; i < columns; ++i) {
          if (key == fmt_->names_[i]) {
            col = i;
            break;
          }
        }
      }
      if (position < max_guessed_positions) {
        if (position >= guess_.size()) {
          guess_.resize(position + 1, no_column);
        }
        guess_[position] = static_cast<std::uint32_t>(col);
      }
      return simdjson::SUCCESS;
    }

    const jsonl_format* fmt_;
    simdjson::ondemand::parser json_;
    std::vector<char> padded_;
    std::array<std::string_view, columns> texts_{};
    std::array<bool, columns> found_{};
    std::vector<std::uint32_t> guess_;
  };

 private:
  /// A column name as it appears raw in the input (between the quotes), compared against a raw
  /// key without unescaping. A name of up to 15 bytes is compared as 16 bytes at once: the name
  /// and its closing quote under a mask (the key's bytes are readable that far: simdjson's
  /// padding guarantees it).
  struct raw_key {
    raw_key() = default;
    raw_key(std::string_view name, bool plain) : name(name), plain(plain) {
      if (plain && name.size() < 16) {
        std::array<unsigned char, 16> bytes{};
        std::array<unsigned char, 16> ones{};
        std::memcpy(bytes.data(), name.data(), name.size());
        bytes[name.size()] = '"';
        std::fill_n(ones.begin(), name.size() + 1, static_cast<unsigned char>(0xFF));
        std::memcpy(word.data(), bytes.data(), 16);
        std::memcpy(mask.data(), ones.data(), 16);
        short_name = true;
      }
    }
    /// Whether the raw key at `raw` (just past its opening quote) is this name.
    [[nodiscard]] bool matches(const char* raw) const {
      if (short_name) {
        std::array<std::uint64_t, 2> got{};
        std::memcpy(got.data(), raw, 16);
        return (((got[0] & mask[0]) ^ word[0]) | ((got[1] & mask[1]) ^ word[1])) == 0;  // no branch
      }
      return plain && raw[name.size()] == '"' && std::memcmp(raw, name.data(), name.size()) == 0;
    }
    std::string_view name;
    bool plain = false;
    bool short_name = false;
    std::array<std::uint64_t, 2> word{};
    std::array<std::uint64_t, 2> mask{};
  };

  Schema schema_;
  std::array<std::string_view, Schema::size> names_{};
  std::array<bool, Schema::size> required_{};
  std::array<raw_key, Schema::size> keys_{};
};

/// A JSON lines file bound to `schema` (sluice::schema<T>(sluice::column(...), ...)): one JSON
/// object per line, columns bound by key. Link with simdjson (pkg-config: simdjson).
template <class Schema>
file_source<jsonl_format<Schema>> jsonl_file(std::string path, Schema schema, input_options options = {}) {
  return {std::move(path), jsonl_format<Schema>(std::move(schema)), std::move(options)};
}

}  // namespace sluice
