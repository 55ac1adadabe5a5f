// Fuzz target: ISO-8601 UTC timestamps (sluice/io/iso8601.hpp). The parser is checked against
// the standard library's calendar (std::chrono::year_month_day): it accepts exactly the valid
// dates and times of the documented shape, with the same instant; what it accepts formats back
// to the same instant; and format_iso8601 of any instant in years 0000-9999 parses back to it.
//
// Input: the text to parse; its first 8 bytes also make an instant for the formatter.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "sluice/io/iso8601.hpp"

namespace {

/// The reference: the documented shape read by hand, the calendar by std::chrono.
bool reference_parse(std::string_view s, std::int64_t& ms) {
  const auto digits = [&](std::size_t at, std::size_t n, int& v) {
    v = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (i >= s.size() || s[i] < '0' || s[i] > '9') {
        return false;
      }
      v = v * 10 + (s[i] - '0');
    }
    return true;
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, frac = 0;
  if (s.size() < 20 || s.size() == 21 || s.size() > 24) {
    return false;
  }
  if (!digits(0, 4, y) || s[4] != '-' || !digits(5, 2, mo) || s[7] != '-' || !digits(8, 2, d) ||
      (s[10] != 'T' && s[10] != ' ') || !digits(11, 2, h) || s[13] != ':' || !digits(14, 2, mi) || s[16] != ':' ||
      !digits(17, 2, sec) || s.back() != 'Z') {
    return false;
  }
  if (s.size() > 20) {
    const std::size_t n = s.size() - 21;
    if (s[19] != '.' || !digits(20, n, frac)) {
      return false;
    }
    for (std::size_t i = n; i < 3; ++i) {
      frac *= 10;
    }
  }
  using namespace std::chrono;
  const year_month_day date{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!date.ok() || h > 23 || mi > 59 || sec > 59) {
    return false;
  }
  const auto t = sys_days(date) + hours{h} + minutes{mi} + seconds{sec} + milliseconds{frac};
  ms = t.time_since_epoch().count();
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  sluice::millis got{-12345};
  const char* err = sluice::iso8601_utc::parse(text, got);
  std::int64_t want = 0;
  const bool valid = reference_parse(text, want);
  FUZZ_CHECK((err == nullptr) == valid);
  if (err != nullptr) {
    FUZZ_CHECK(got == sluice::millis{-12345});  // a rejected field leaves the member alone
    FUZZ_CHECK(std::strlen(err) > 0);
  } else {
    FUZZ_CHECK(got.count() == want);
    for (const bool with_millis : {false, true}) {
      const std::string back = sluice::format_iso8601(got, with_millis);
      sluice::millis again{};
      FUZZ_CHECK(sluice::iso8601_utc::parse(back, again) == nullptr);
      const std::int64_t whole_seconds = got.count() - (((got.count() % 1000) + 1000) % 1000);
      FUZZ_CHECK(again.count() == (with_millis ? got.count() : whole_seconds));
    }
  }

  // The formatter over any instant: total, and the inverse of the parser on years 0000-9999.
  if (size >= 8) {
    std::int64_t ms = 0;
    std::memcpy(&ms, data, sizeof ms);
    for (const bool with_millis : {false, true}) {
      const std::string s = sluice::format_iso8601(sluice::millis{ms}, with_millis);
      FUZZ_CHECK(!s.empty() && s.back() == 'Z');
      constexpr std::int64_t year_0 = -62167219200000;      // 0000-01-01T00:00:00Z
      constexpr std::int64_t year_10000 = 253402300800000;  // 10000-01-01T00:00:00Z
      sluice::millis back{};
      const char* e = sluice::iso8601_utc::parse(s, back);
      if (ms >= year_0 && ms < year_10000) {
        FUZZ_CHECK(e == nullptr);
        const std::int64_t whole_seconds = ms - (((ms % 1000) + 1000) % 1000);
        FUZZ_CHECK(back.count() == (with_millis ? ms : whole_seconds));
      } else {
        FUZZ_CHECK(e != nullptr);
      }
    }
  }
  return 0;
}
