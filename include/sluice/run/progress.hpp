// Progress of a long run (a batch run over a file, a log replay, a batch layer catching up), as
// counters a host program can draw however it likes, and as the one line sluice's own tools draw.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace sluice {

/// What `done` and `total` count.
enum class progress_unit {
  bytes,    // input bytes (a file; a log's records at their average size on disk)
  records,  // records or log offsets (an in-memory range, a replay)
  epochs,   // sealed log segments (a Lambda batch layer catching up with the log head)
};

struct run_progress {
  progress_unit unit = progress_unit::bytes;
  std::uint64_t done = 0;         // units read so far
  std::uint64_t total = 0;        // units to read; 0: not known
  std::uint64_t records = 0;      // good records so far
  std::uint64_t bad_records = 0;  // malformed records so far
  std::chrono::duration<double> elapsed{};
  bool finished = false;  // the last report of the run: everything was read

  /// Records (good and bad) per second so far.
  [[nodiscard]] double records_per_second() const {
    const double s = elapsed.count();
    return s > 0 ? static_cast<double>(records + bad_records) / s : 0.0;
  }
  /// Seconds left at the rate so far, once there is a rate and a total.
  [[nodiscard]] std::optional<double> eta_seconds() const {
    if (total == 0 || done == 0 || done > total || elapsed.count() <= 0) {
      return std::nullopt;
    }
    return elapsed.count() * static_cast<double>(total - done) / static_cast<double>(done);
  }
};

/// When a progress report is due: at most one an interval (the first one interval after the
/// start), the last one always; and the time since the start for `run_progress::elapsed`.
class progress_clock {
 public:
  explicit progress_clock(std::chrono::milliseconds interval)
      : interval_(interval), started_(std::chrono::steady_clock::now()), next_(started_ + interval) {}

  /// Whether to report now; if so, the next report is due one interval from now.
  bool due(bool finished = false) {
    const auto now = std::chrono::steady_clock::now();
    if (!finished && now < next_) {
      return false;
    }
    next_ = now + interval_;
    return true;
  }
  [[nodiscard]] std::chrono::duration<double> elapsed() const { return std::chrono::steady_clock::now() - started_; }

 private:
  std::chrono::milliseconds interval_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point next_;
};

namespace detail {
/// 1234 -> "1234", 1234567 -> "1.2M", 3.4e9 -> "3.4G"; bytes in binary units ("12.5 MiB").
inline std::string human_count(double v, bool bytes) {
  const char* const units_1000[]{"", "k", "M", "G", "T", "P"};
  const char* const units_1024[]{" B", " KiB", " MiB", " GiB", " TiB", " PiB"};
  const double step = bytes ? 1024.0 : 1000.0;
  int i = 0;
  while (v >= step && i < 5) {
    v /= step;
    ++i;
  }
  char buf[32];
  const char* unit = bytes ? units_1024[i] : units_1000[i];
  if (i == 0) {
    std::snprintf(buf, sizeof buf, "%.0f%s", v, unit);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f%s", v, unit);
  }
  return buf;
}

inline std::string clock_time(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  }
  return buf;
}
}  // namespace detail

/// One line, no newline: "412.0 MiB / 1.1 GiB  37%  5.2M rows  3.1M rows/s  ETA 0:14" (the parts
/// that are not known yet are left out; "done in 0:21" once finished).
inline std::string progress_text(const run_progress& p) {
  const bool bytes = p.unit == progress_unit::bytes;
  const char* noun = p.unit == progress_unit::epochs ? " epochs" : "";
  std::string line = detail::human_count(static_cast<double>(p.done), bytes) + noun;
  if (p.total > 0) {
    line += " / " + detail::human_count(static_cast<double>(p.total), bytes) + noun;
    char pct[16];
    const double ratio = std::min(1.0, static_cast<double>(p.done) / static_cast<double>(p.total));
    std::snprintf(pct, sizeof pct, "  %3.0f%%", 100.0 * ratio);
    line += pct;
  }
  line += "  " + detail::human_count(static_cast<double>(p.records), false) + " rows";
  if (p.bad_records > 0) {
    line += " (" + detail::human_count(static_cast<double>(p.bad_records), false) + " bad)";
  }
  line += "  " + detail::human_count(p.records_per_second(), false) + " rows/s";
  if (p.finished) {
    line += "  done in " + detail::clock_time(p.elapsed.count());
  } else if (const auto eta = p.eta_seconds()) {
    line += "  ETA " + detail::clock_time(*eta);
  }
  return line;
}

}  // namespace sluice
