// Writing JSON text without a JSON library: string escaping for sinks and dead-letter files.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

#include "sluice/io/utf8.hpp"

namespace sluice::detail {

/// Append `s` to `out` as a JSON string literal (RFC 8259, quotes included): quotes, backslashes
/// and control characters escaped; a byte that is not part of valid UTF-8 becomes U+FFFD (the
/// replacement character), so the output is always valid JSON, whatever `s` held.
inline void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char ch = s[i];
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80) {
      const std::size_t n = utf8_sequence_length(s, i);
      if (n == 0) {
        out += "\xEF\xBF\xBD";  // U+FFFD
      } else {
        out.append(s.substr(i, n));
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

}  // namespace sluice::detail
