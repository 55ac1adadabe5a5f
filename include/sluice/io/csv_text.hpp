// Writing CSV text: one field per RFC 4180, so that what sluice writes reads back (in sluice, in
// Python's csv module, in DuckDB, in a spreadsheet) as the same values.
#pragma once

#include <cstddef>
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

/// The first `n` fields of a CSV row as written above (without the comma after them; the whole
/// row if it has no more): a row's key columns, for a message key. A quoted field's delimiters
/// and doubled quotes do not end it.
inline std::string_view leading_csv_fields(std::string_view row, std::size_t n, char delimiter = ',') {
  std::size_t fields = 0;
  bool quoted = false;
  for (std::size_t at = 0; at < row.size(); ++at) {
    if (row[at] == '"') {
      quoted = !quoted;  // a doubled quote flips twice
    } else if (row[at] == delimiter && !quoted && ++fields == n) {
      return row.substr(0, at);
    }
  }
  return row;
}

}  // namespace sluice
