// Bad input: what a malformed record is, the policy for it (skip to a dead-letter output, or
// fail the run), and the error a failed run throws. Nothing is dropped silently.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace sluice {

enum class bad_record_policy {
  skip,  // count it, send it to the dead-letter sink with its position and reason, go on
  fail,  // stop the run with the first bad record's position and reason
};

/// A malformed record, as a dead-letter sink sees it.
struct bad_record {
  std::string_view source;   // file name or input name
  std::uint64_t line = 0;    // 1-based physical line where the record starts
  std::uint64_t offset = 0;  // byte offset of the record's first byte
  std::string_view reason;
  std::string_view text;  // the record's raw bytes (clipped to the max record size)
};

/// "sales.csv:17: byte 1042: field 'qty': not an integer: 'x'"
inline std::string describe(const bad_record& r) {
  std::string s(r.source);
  s += ':';
  s += std::to_string(r.line);
  s += ": byte ";
  s += std::to_string(r.offset);
  s += ": ";
  s += r.reason;
  return s;
}

/// Append `s` to `out` with every byte that is not printable ASCII (and the backslash) written
/// as \xNN: what a message shows of input bytes, whatever they are.
inline void append_printable(std::string& out, std::string_view s) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += ch;
    } else {
      constexpr const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4U];
      out += hex[c & 0xFU];
    }
  }
}

/// The reason a field was rejected: "field 'qty' (column 7): not an integer: 'x'" (the column
/// when the format has one). The field's text is shown up to 64 bytes, printable (append_printable).
inline std::string field_rejected(std::string_view name, std::size_t column, std::string_view why,
                                  std::string_view text) {
  std::string r = "field '";
  r += name;
  r += '\'';
  if (column != 0) {
    r += " (column " + std::to_string(column) + ")";
  }
  r += ": ";
  r += why;
  r += ": '";
  constexpr std::size_t shown = 64;
  append_printable(r, text.substr(0, shown));
  r += text.size() > shown ? "...'" : "'";
  return r;
}

/// Thrown by a run under bad_record_policy::fail, and for input that cannot be read at all.
class bad_input_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Where bad records go under bad_record_policy::skip. Called from one thread at a time, in
/// input order.
using dead_letter_sink = std::function<void(const bad_record&)>;

/// Input limits and the bad-record policy of a source.
struct input_options {
  bad_record_policy on_bad_record = bad_record_policy::skip;
  dead_letter_sink dead_letters;                         // empty: bad records are only counted
  std::size_t max_record_bytes = std::size_t{1} << 20U;  // a longer record is a bad record
};

}  // namespace sluice
