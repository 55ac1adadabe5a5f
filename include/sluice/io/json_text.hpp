// Writing JSON text without a JSON library: string escaping for sinks and dead-letter files.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace sluice::detail {

/// Append `s` to `out` as a JSON string literal (quotes included). Bytes that are not valid
/// UTF-8 text are still written as-is apart from control characters, which are escaped.
inline void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
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
