// Writing CSV text: one field per RFC 4180, so that what sluice writes reads back (in sluice, in
// Python's csv module, in DuckDB, in a spreadsheet) as the same values.
#pragma once

#include <string>
#include <string_view>

namespace sluice {

/// Append `s` to `out` between quotes, each quote doubled: a CSV field that reads back as `s`
/// whatever it holds.
inline void append_quoted_csv_field(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    out += c;
    if (c == '"') {
      out += '"';
    }
  }
  out += '"';
}

/// Append `s` to `out` as one CSV field: as it is, or, when it holds the delimiter, a quote, CR
/// or LF, quoted ("toys, games ""kids""").
inline void append_csv_field(std::string& out, std::string_view s, char delimiter = ',') {
  const bool plain = s.find_first_of("\"\r\n") == std::string_view::npos && s.find(delimiter) == std::string_view::npos;
  if (plain) {
    out += s;
  } else {
    append_quoted_csv_field(out, s);
  }
}

}  // namespace sluice
