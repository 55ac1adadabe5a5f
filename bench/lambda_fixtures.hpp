// What the Lambda benchmarks share: generated sales rows held as event-log payloads (CSV lines
// without a line ending, as a CSV ingest keeps them) with their event times, and a scratch
// directory under the system temp directory that is removed with everything in it.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "sales_rows.hpp"
#include "sluice/lambda/lambda_engine.hpp"

namespace bench {

/// A directory for one benchmark's logs and files; removed (with its contents) on destruction.
class scratch_dir {
 public:
  explicit scratch_dir(const std::string& name)
      : path_(std::filesystem::temp_directory_path() /
              ("sluice_bench_" + name + "_" + std::to_string(::getpid()) + "_" + std::to_string(next_id()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  ~scratch_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  [[nodiscard]] std::string path(const std::string& child = {}) const {
    return child.empty() ? path_.string() : (path_ / child).string();
  }

 private:
  static unsigned next_id() {
    static unsigned id = 0;
    return ++id;
  }
  std::filesystem::path path_;
};

/// `n` sales rows (sales::row_generator's, seed 42) as log payloads and event times.
class sales_rows {
 public:
  explicit sales_rows(std::size_t n) {
    sales::row_generator generate;
    starts_.reserve(n + 1);
    times_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      starts_.push_back(bytes_.size());
      times_.push_back(generate.append(bytes_));
    }
    starts_.push_back(bytes_.size());
  }

  [[nodiscard]] std::size_t size() const { return times_.size(); }
  [[nodiscard]] std::string_view payload(std::size_t i) const {
    return std::string_view(bytes_).substr(starts_[i], starts_[i + 1] - starts_[i]);
  }
  [[nodiscard]] sluice::millis event_time(std::size_t i) const { return sluice::millis{times_[i]}; }
  /// Payload bytes of rows [from, from + n).
  [[nodiscard]] std::uint64_t bytes(std::size_t from, std::size_t n) const { return starts_[from + n] - starts_[from]; }

  /// Rows [from, from + n) as ingest records (views into this object, valid until shift()).
  [[nodiscard]] std::vector<sluice::ingest_record> batch(std::size_t from, std::size_t n) const {
    std::vector<sluice::ingest_record> out;
    out.reserve(n);
    for (std::size_t i = from; i < from + n; ++i) {
      out.push_back(sluice::ingest_record{payload(i), event_time(i)});
    }
    return out;
  }

  /// Rows [from, from + n) as the text of a sales CSV file (header, one row a line).
  [[nodiscard]] std::string csv(std::size_t from, std::size_t n) const {
    std::string out = sales::csv_header;
    out += '\n';
    out.reserve(out.size() + bytes(from, n) + n);
    for (std::size_t i = from; i < from + n; ++i) {
      out += payload(i);
      out += '\n';
    }
    return out;
  }

  /// Moves every row `ms` later in event time, in its payload's ts field too, so that the same
  /// rows can be ingested again as new events (the field keeps its 13 digits).
  void shift(std::int64_t ms) {
    for (std::size_t i = 0; i < size(); ++i) {
      times_[i] += ms;
      char* ts = bytes_.data() + starts_[i];
      const auto written = std::to_chars(ts, ts + ts_digits, times_[i]);
      if (written.ec != std::errc{} || written.ptr != ts + ts_digits) {
        throw std::logic_error("sales_rows::shift: an event time no longer has 13 digits");
      }
    }
  }
  /// The event time the rows span: after shift(span_ms()) every row is later than every row was.
  [[nodiscard]] std::int64_t span_ms() const {
    if (times_.empty()) {
      return 0;
    }
    const auto [lo, hi] = std::minmax_element(times_.begin(), times_.end());
    return *hi - *lo + 1;
  }

 private:
  static constexpr std::ptrdiff_t ts_digits = 13;  // milliseconds since 1970, from 2001 to 2286
  std::string bytes_;
  std::vector<std::size_t> starts_;
  std::vector<std::int64_t> times_;
};

}  // namespace bench
