// Progress reports of batch runs: parsing in slices changes no answer and no dead letter; the
// reports grow monotonically, come on the caller's thread and end with one that says all was
// read; throwing from the callback cancels the run.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "random_sales.hpp"
#include "sales.hpp"
#include "sluice/io/file_source.hpp"
#include "sluice/io/log_source.hpp"
#include "sluice/io/memory_source.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/run/progress.hpp"
#include "sluice/store/event_log.hpp"
#include "temp_dir.hpp"

namespace {

using test_data::random_sales;
using test_data::to_csv;
using test_data::to_map;

/// A random sales CSV with some lines made bad (a field too many), as written to `path`.
std::string write_sales_with_bad_lines(const std::string& path, std::uint64_t seed, std::size_t rows) {
  const std::string csv = to_csv(random_sales(seed, rows), true, seed);
  std::mt19937_64 rng(seed);
  std::string out;
  std::size_t start = 0;
  while (start < csv.size()) {
    const std::size_t nl = csv.find('\n', start);
    const std::string line = csv.substr(start, nl - start + 1);
    out += start > 0 && rng() % 50 == 0 ? "bad," + line : line;
    start = nl + 1;
  }
  std::ofstream(path, std::ios::binary) << out;
  return out;
}

struct recorded_run {
  std::vector<sluice::run_progress> reports;
  std::vector<std::uint64_t> bad_lines;
  std::vector<std::uint64_t> bad_offsets;
  sluice::batch_stats stats;
  bool all_on_caller_thread = true;
};

recorded_run run_recorded(
    const std::string& path, unsigned threads, std::size_t slice_bytes, std::chrono::milliseconds interval,
    decltype(to_map(sluice::run_batch(sluice::csv_file("", sales::csv_schema()), sales::by_category())))* answer) {
  recorded_run r;
  sluice::input_options in;
  in.dead_letters = [&](const sluice::bad_record& b) {
    r.bad_lines.push_back(b.line);
    r.bad_offsets.push_back(b.offset);
  };
  const auto caller = std::this_thread::get_id();
  sluice::batch_options opts{.threads = threads, .min_chunk_units = 1};
  opts.slice_bytes = slice_bytes;
  opts.progress_interval = interval;
  opts.on_progress = [&](const sluice::run_progress& p) {
    r.reports.push_back(p);
    r.all_on_caller_thread = r.all_on_caller_thread && std::this_thread::get_id() == caller;
  };
  *answer =
      to_map(sluice::run_batch(sluice::csv_file(path, sales::csv_schema(), in), sales::by_category(), opts, &r.stats));
  return r;
}

/// Reports never go back, the last one (and only it) is final and counts everything.
void check_reports(const recorded_run& r, std::uint64_t total) {
  REQUIRE(!r.reports.empty());
  CHECK(r.all_on_caller_thread);
  for (std::size_t i = 0; i < r.reports.size(); ++i) {
    const auto& p = r.reports[i];
    CAPTURE(i);
    CHECK(p.unit == sluice::progress_unit::bytes);
    CHECK(p.total == total);
    CHECK(p.done <= p.total);
    CHECK(p.finished == (i + 1 == r.reports.size()));
    if (i > 0) {
      const auto& before = r.reports[i - 1];
      const bool monotone = before.done <= p.done && before.records <= p.records &&
                            before.bad_records <= p.bad_records && before.elapsed <= p.elapsed;
      CHECK(monotone);
    }
  }
  const auto& last = r.reports.back();
  CHECK(last.done == total);
  CHECK(last.records == r.stats.records);
  CHECK(last.bad_records == r.stats.bad_records);
  CHECK(sluice::progress_text(last).find("done in") != std::string::npos);
}

}  // namespace

TEST_CASE("batch progress: slices change no answer or dead letter, and the reports add up") {
  const auto dir = test_support::process_dir().path;
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    CAPTURE(seed);
    const std::string path = (dir / ("progress_" + std::to_string(seed) + ".csv")).string();
    const std::string text = write_sales_with_bad_lines(path, seed, 6000 + seed * 1000);
    const std::uint64_t header = text.find('\n') + 1;
    const std::uint64_t total = text.size() - header;
    for (unsigned threads : {1U, 3U}) {
      CAPTURE(threads);
      decltype(to_map(sluice::run_batch(sluice::csv_file("", sales::csv_schema()), sales::by_category()))) whole;
      decltype(whole) sliced;
      // One slice per chunk against slices of a few hundred bytes, cut anywhere in a line.
      const recorded_run one = run_recorded(path, threads, std::size_t{1} << 30U, std::chrono::milliseconds{0}, &whole);
      const std::size_t slice = 200 + static_cast<std::size_t>(seed) * 37;
      const recorded_run many = run_recorded(path, threads, slice, std::chrono::milliseconds{0}, &sliced);
      CHECK(sliced == whole);
      CHECK(many.bad_lines == one.bad_lines);
      CHECK(many.bad_offsets == one.bad_offsets);
      CHECK(many.stats.records == one.stats.records);
      CHECK(many.stats.bad_records == one.stats.bad_records);
      CHECK(many.stats.lines == one.stats.lines);
      CHECK(!many.bad_lines.empty());
      check_reports(one, total);
      check_reports(many, total);
      if (threads == 1) {
        // On one thread a report is due after every slice: some come part way through.
        const auto part_way = std::count_if(many.reports.begin(), many.reports.end(), [&](const auto& p) {
          return p.done > 0 && p.done < total && p.records > 0;
        });
        CHECK(part_way > 10);
      }
    }
    std::filesystem::remove(path);
  }
}

TEST_CASE("batch progress: an exception from the callback cancels the run and comes out of run_batch") {
  const std::string path = (test_support::process_dir().path / "progress_cancel.csv").string();
  write_sales_with_bad_lines(path, 7, 20000);
  struct stop_now : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  for (unsigned threads : {1U, 4U}) {
    CAPTURE(threads);
    // On several threads the first chunk's first bad record waits for the first report, so that
    // the run cannot finish before the callback had its chance to throw.
    std::promise<void> reported;
    const std::shared_future<void> first_report = reported.get_future().share();
    sluice::input_options in;
    if (threads > 1) {
      in.dead_letters = [first_report](const sluice::bad_record&) { first_report.wait(); };
    }
    int calls = 0;
    sluice::batch_options opts{.threads = threads, .min_chunk_units = 1};
    opts.slice_bytes = 512;
    opts.progress_interval = std::chrono::milliseconds{0};
    opts.on_progress = [&](const sluice::run_progress&) {
      if (++calls == 1) {
        reported.set_value();
      }
      throw stop_now("enough");
    };
    bool stopped = false;
    try {
      (void)sluice::run_batch(sluice::csv_file(path, sales::csv_schema(), in), sales::by_category(), opts);
    } catch (const stop_now&) {
      stopped = true;
    }
    CHECK(stopped);
    CHECK(calls == 1);
  }
  std::filesystem::remove(path);
}

TEST_CASE("batch progress: an in-memory range counts records, a log its bytes") {
  const auto rows = random_sales(11, 5000);
  const std::vector<sales::sale> events = test_data::as_events(rows);
  std::vector<sluice::run_progress> seen;
  sluice::batch_options opts{.threads = 2, .min_chunk_units = 1};
  opts.slice_bytes = 100;  // an element counts as a byte here: 100 events a slice
  opts.on_progress = [&](const sluice::run_progress& p) { seen.push_back(p); };
  (void)sluice::run_batch(sluice::from_range(events), sales::by_category(), opts);
  REQUIRE(!seen.empty());
  CHECK(seen.back().unit == sluice::progress_unit::records);
  CHECK(seen.back().total == events.size());
  CHECK(seen.back().records == events.size());
  CHECK(seen.back().finished);

  // A log: bytes at the average record size, all of them at the end.
  const test_support::temp_dir dir;
  auto payloads = sluice::csv_payloads(sales::csv_schema(), sales::csv_header);
  {
    sluice::event_log log(dir.str());
    const std::string csv = to_csv(rows, false, 11);
    std::size_t start = csv.find('\n') + 1;  // no header in a log
    while (start < csv.size()) {
      const std::size_t nl = csv.find('\n', start);
      log.append(sluice::millis{0}, std::string_view(csv).substr(start, nl - start));
      start = nl + 1;
    }
    log.commit();
  }
  seen.clear();
  const auto source = sluice::log_source<decltype(payloads)>::whole(dir.str(), payloads);
  (void)sluice::run_batch(source, sales::by_category(), opts);
  REQUIRE(!seen.empty());
  const auto opened = source.open();
  CHECK(seen.back().unit == sluice::progress_unit::bytes);
  CHECK(seen.back().total == rows.size() * opened.bytes_per_unit());
  CHECK(seen.back().done == seen.back().total);
  CHECK(seen.back().records == rows.size());
}

TEST_CASE("progress_text: the parts that are known, in human units") {
  sluice::run_progress p;
  p.total = std::uint64_t{3} << 30U;
  p.done = p.total / 4;
  p.records = 2'500'000;
  p.elapsed = std::chrono::seconds{10};
  CHECK(sluice::progress_text(p) == "768.0 MiB / 3.0 GiB   25%  2.5M rows  250.0k rows/s  ETA 0:30");
  p.bad_records = 12;
  p.total = 0;  // unknown: no share and no ETA
  CHECK(sluice::progress_text(p) == "768.0 MiB  2.5M rows (12 bad)  250.0k rows/s");
  p.finished = true;
  p.elapsed = std::chrono::seconds{3725};
  CHECK(sluice::progress_text(p).ends_with("done in 1:02:05"));
}
