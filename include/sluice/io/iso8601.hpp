// ISO-8601 UTC timestamps as event time: a column parser (2024-03-01T12:34:56Z, optional
// fraction of 1 to 3 digits, 'T' or ' ' between date and time) and a formatter. Calendar
// arithmetic after Howard Hinnant's days_from_civil / civil_from_days.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "sluice/core/time.hpp"

namespace sluice {

namespace detail {
/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

/// A custom column parser: ISO-8601 UTC timestamps, 2024-03-01T12:34:56Z with an optional
/// fraction of 1 to 3 digits, into event time. Like the built-in parsers it returns nullptr or
/// a static reason, which the CSV source turns into a bad record with the line and column.
}  // namespace detail

/// Column parser: column("ts", &hit::ts, sluice::iso8601_utc{}).
struct iso8601_utc {
  static const char* parse(std::string_view s, millis& out) {
    constexpr const char* bad = "not an ISO-8601 UTC time (YYYY-MM-DDTHH:MM:SS[.fff]Z)";
    auto digits = [&](std::size_t at, std::size_t n, int& v) {
      v = 0;
      for (std::size_t i = at; i < at + n; ++i) {
        if (i >= s.size() || s[i] < '0' || s[i] > '9') {
          return false;
        }
        v = v * 10 + (s[i] - '0');
      }
      return true;
    };
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    if (s.size() < 20 || !digits(0, 4, y) || s[4] != '-' || !digits(5, 2, mo) || s[7] != '-' || !digits(8, 2, d) ||
        (s[10] != 'T' && s[10] != ' ') || !digits(11, 2, h) || s[13] != ':' || !digits(14, 2, mi) || s[16] != ':' ||
        !digits(17, 2, sec) || s.back() != 'Z') {
      return bad;
    }
    int frac = 0;
    const std::size_t frac_digits = s.size() == 20 ? 0 : s.size() - 21;
    if (frac_digits > 0) {
      if (s[19] != '.' || frac_digits > 3 || !digits(20, frac_digits, frac)) {
        return bad;
      }
      for (std::size_t i = frac_digits; i < 3; ++i) {
        frac *= 10;
      }
    } else if (s.size() != 20) {
      return bad;
    }
    static constexpr int month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > month_days[mo - 1] || (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 ||
        sec > 59) {
      return "date or time out of range";
    }
    const std::int64_t days = detail::days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
    out = millis{((days * 24 + h) * 60 + mi) * 60'000 + std::int64_t{sec} * 1000 + frac};
    return nullptr;
  }
};

/// "2024-03-01T12:34:56Z", or with milliseconds "2024-03-01T12:34:56.789Z".
inline std::string format_iso8601(millis t, bool with_millis = false) {
  constexpr std::int64_t day_ms = 86'400'000;
  std::int64_t days = t.count() / day_ms;
  std::int64_t rest = t.count() % day_ms;
  if (rest < 0) {
    rest += day_ms;
    --days;
  }
  const std::int64_t z = days + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
  char buf[40];
  const auto ms = static_cast<int>(rest % 1000);
  const auto secs = static_cast<int>(rest / 1000);
  const int n = with_millis ? std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ",
                                            static_cast<long long>(y), m, d, secs / 3600, secs / 60 % 60, secs % 60, ms)
                            : std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02dZ",
                                            static_cast<long long>(y), m, d, secs / 3600, secs / 60 % 60, secs % 60);
  return std::string(buf, static_cast<std::size_t>(n));
}

}  // namespace sluice
