// log_report: the nightly report over a web-server access log, in batch mode on every core.
// Three flows over the same file, printed as sections of CSV on stdout:
//
//   # per host            host,requests,errors,error_rate,p50_latency_ms,p99_latency_ms,distinct_paths
//   # per 5-minute window window_start,requests,bytes
//   # top 5 paths by bytes path,bytes,requests
//
// errors are responses with status >= 500; p50/p99 come from a mergeable quantile sketch
// (within 1% of the exact value) and distinct_paths from HyperLogLog (about 1.6% error).
// Counts, byte totals and the top paths are exact integers, on any thread count.
//
// With --follow, the same per-window flow runs in stream mode over a log the server is still
// writing (followed like tail -F, through rotations), printing each window as it closes, until
// SIGINT/SIGTERM. With --checkpoint-dir, a restart (after a stop, or kill -9) goes on from the
// last checkpoint: no request counted twice or lost.
//
//   log_report --input FILE [--threads N] [--bad-records skip|fail]
//   log_report --follow FILE [--checkpoint-dir DIR [--checkpoint-every D]] [--max-delay D] [--threads N]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include <fmt/core.h>

#include "../common/cli.hpp"
#include "sluice/io/csv_text.hpp"
#include "sluice/io/file_source.hpp"
#include "sluice/io/iso8601.hpp"
#include "sluice/io/reader_source.hpp"
#include "sluice/io/schema.hpp"
#include "sluice/io/signals.hpp"
#include "sluice/io/stream_format.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/sluice.hpp"

namespace {

// ---- the event and its schema ----------------------------------------------------------------

struct hit {
  sluice::millis ts;
  std::string_view host;
  std::string_view method;
  std::string_view path;
  std::int64_t status = 0;
  std::int64_t bytes = 0;
  std::int64_t latency_ms = 0;
  std::string_view user_agent;  // quoted in the file, commas and "" inside; bound to show it parses
};

constexpr const char* csv_header = "ts,host,method,path,status,bytes,latency_ms,user_agent";

auto csv_schema() {
  using sluice::column;
  return sluice::schema<hit>(column("ts", &hit::ts, sluice::iso8601_utc{}), column("host", &hit::host),
                             column("method", &hit::method), column("path", &hit::path), column("status", &hit::status),
                             column("bytes", &hit::bytes), column("latency_ms", &hit::latency_ms),
                             column("user_agent", &hit::user_agent));
}

// ---- the three flows ------------------------------------------------------------------------

/// Per host: (requests, errors, latency sketch, distinct paths).
auto per_host() {
  return sluice::flow<hit>() | sluice::key_by(&hit::host) |
         sluice::aggregate(sluice::count{}, sluice::sum([](const hit& h) { return std::int64_t{h.status >= 500}; }),
                           sluice::quantiles([](const hit& h) { return h.latency_ms; }),
                           sluice::distinct_count(&hit::path));
}

/// Per 5-minute event-time window over the whole fleet: (requests, bytes).
auto per_window() {
  using namespace std::chrono_literals;
  return sluice::flow<hit>() | sluice::event_time(&hit::ts) | sluice::window(sluice::tumbling(5min)) |
         sluice::aggregate(sluice::count{}, sluice::sum(&hit::bytes));
}

/// Per path: (bytes, requests); the top 5 by bytes are read from the store.
auto per_path() {
  return sluice::flow<hit>() | sluice::key_by(&hit::path) |
         sluice::aggregate(sluice::sum(&hit::bytes), sluice::count{});
}

// ---- output ---------------------------------------------------------------------------------

/// A window start for humans: 2024-03-01T12:35:00Z.
std::string iso(sluice::millis t) {
  return sluice::format_iso8601(t, t.count() % 1000 != 0);
}

constexpr const char* usage =
    "usage: log_report --input FILE [--threads N] [--bad-records skip|fail]\n"
    "       log_report --follow FILE [--checkpoint-dir DIR [--checkpoint-every D]] [--max-delay D]\n"
    "                  [--threads N] [--bad-records skip|fail]\n"
    "The nightly report over a web-server access log, as sections of CSV:\n"
    "  # per host              host,requests,errors,error_rate,p50_latency_ms,p99_latency_ms,distinct_paths\n"
    "  # per 5-minute window   window_start,requests,bytes\n"
    "  # top 5 paths by bytes  path,bytes,requests\n"
    "errors: status >= 500. p50/p99 are within 1% (quantile sketch), distinct_paths within a few %\n"
    "(HyperLogLog); every count and byte total is exact.\n"
    "Options:\n"
    "  --input FILE          access log CSV (header ts,host,method,path,status,bytes,latency_ms,user_agent;\n"
    "                        ts is ISO-8601 UTC, e.g. 2024-03-01T00:00:00.123Z)\n"
    "  --threads N           worker threads (default: all cores)\n"
    "  --bad-records POLICY  skip (default: count, report on stderr, go on) or fail (stop at the first)\n"
    "Live (stream mode over a log still being written):\n"
    "  --follow FILE         follow FILE like tail -F (appends, rotations) until SIGINT/SIGTERM, printing\n"
    "                        window_start,requests,bytes for each 5-minute window as it closes\n"
    "  --max-delay D         how far out of time order requests may be logged (default 5s)\n"
    "  --checkpoint-dir DIR  keep the open windows' state with the file and offset reached in DIR,\n"
    "                        every --checkpoint-every D (default 10s) and at a stop: a restart (even\n"
    "                        after kill -9) goes on from there, counting each request once. A window\n"
    "                        that closed after the last checkpoint is printed again, with the same numbers\n";

struct options {
  std::string input;
  std::string follow;
  std::string checkpoint_dir;
  std::chrono::milliseconds checkpoint_every{10'000};
  std::chrono::milliseconds max_delay{5'000};
  unsigned threads = 0;
  sluice::bad_record_policy policy = sluice::bad_record_policy::skip;
};

options parse_args(int argc, char** argv) {
  options o;
  cli::args args("log_report", usage, argc, argv);
  while (args.next()) {
    const std::string_view a = args.current();
    if (a == "--input") {
      o.input = args.value();
    } else if (a == "--follow") {
      o.follow = args.value();
    } else if (a == "--checkpoint-dir") {
      o.checkpoint_dir = args.value();
    } else if (a == "--checkpoint-every") {
      o.checkpoint_every = args.duration();
    } else if (a == "--max-delay") {
      o.max_delay = args.duration();
    } else if (a == "--threads") {
      o.threads = args.threads();
    } else if (a == "--bad-records") {
      o.policy = args.policy();
    } else {
      args.unexpected();
    }
  }
  if (o.input.empty() == o.follow.empty()) {
    args.fail("give --input FILE (the report) or --follow FILE (live windows)");
  }
  if (o.follow.empty() && !o.checkpoint_dir.empty()) {
    args.fail("--checkpoint-dir is for --follow");
  }
  return o;
}

/// --follow: the per-window flow over the followed file, each window printed as it closes.
int follow(const options& o, const sluice::input_options& input) {
  std::stop_source stop;
  const sluice::stop_on_signals signals(stop);  // before any other thread starts
  std::optional<sluice::stream_checkpoints> checkpoints;
  if (!o.checkpoint_dir.empty()) {
    checkpoints.emplace(o.checkpoint_dir, o.checkpoint_every, "log_report per-window");
  }
  sluice::stream_options opts{.threads = o.threads != 0 ? o.threads : std::max(1U, std::thread::hardware_concurrency())};
  opts.max_delay = o.max_delay;
  opts.checkpoints = checkpoints ? &*checkpoints : nullptr;
  auto source = sluice::tail_source(sluice::csv_lines(csv_schema(), csv_header, input), o.follow);
  std::fprintf(stderr, "log_report: following %s\n", o.follow.c_str());
  std::fflush(stderr);
  std::fputs("window_start,requests,bytes\n", stdout);
  std::fflush(stdout);
  std::uint64_t windows = 0;
  std::string out;
  const sluice::stream_stats stats = sluice::run_stream(
      source, per_window(),
      [&](const auto& fired) {
        out.clear();
        for (const auto& row : fired.scan()) {
          const auto& [requests, bytes] = row.value;
          fmt::format_to(std::back_inserter(out), "{},{},{}\n", iso(row.key.window.start), requests, bytes);
          ++windows;
        }
        std::fwrite(out.data(), 1, out.size(), stdout);
        std::fflush(stdout);  // a closed window is visible at once
      },
      opts, stop.get_token());
  std::string summary = fmt::format("log_report: {} rows read ({} bytes), {} bad records, {} windows closed, {:.3f} s",
                                    stats.events, stats.bytes, stats.bad_records, windows, stats.seconds);
  if (checkpoints) {
    summary += fmt::format("; {} restored from a checkpoint, {} checkpoints written", checkpoints->restored.load(),
                           checkpoints->saved.load());
  }
  std::fprintf(stderr, "%s\n", summary.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_args(argc, argv);

  std::uint64_t bad_seen = 0;
  sluice::input_options input;
  input.on_bad_record = o.policy;
  input.dead_letters = [&](const sluice::bad_record& r) {
    if (++bad_seen <= 10) {
      std::fprintf(stderr, "log_report: bad record: %s\n", sluice::describe(r).c_str());
    }
  };
  const sluice::batch_options batch{.threads = o.threads};

  try {
    if (!o.follow.empty()) {
      return follow(o, input);
    }
    std::string out;
    auto put = std::back_inserter(out);

    // Three reports, one pass over the file: fan_out feeds every event to the three flows.
    sluice::batch_stats stats;
    const auto [hosts, windows, paths] =
        sluice::run_batch(sluice::csv_file(o.input, csv_schema(), input),
                          sluice::fan_out(per_host(), per_window(), per_path()), batch, &stats);
    out += "# per host\nhost,requests,errors,error_rate,p50_latency_ms,p99_latency_ms,distinct_paths\n";
    for (const auto& row : hosts.scan()) {
      const auto& [requests, errors, latency, paths] = row.value;
      sluice::append_csv_field(out, row.key);
      fmt::format_to(put, ",{},{},{:.4f},{:.1f},{:.1f},{}\n", requests, errors,
                     static_cast<double>(errors) / static_cast<double>(requests), latency.quantile(0.5),
                     latency.quantile(0.99), paths);
    }

    out += "\n# per 5-minute window\nwindow_start,requests,bytes\n";
    for (const auto& row : windows.scan()) {
      const auto& [requests, bytes] = row.value;
      fmt::format_to(put, "{},{},{}\n", iso(row.key.window.start), requests, bytes);
    }

    out += "\n# top 5 paths by bytes\npath,bytes,requests\n";
    for (const auto& row : paths.top_k(5, [](const auto& v) { return std::get<0>(v); })) {
      const auto& [bytes, requests] = row.value;
      sluice::append_csv_field(out, row.key);
      fmt::format_to(put, ",{},{}\n", bytes, requests);
    }

    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fprintf(stderr, "log_report: %llu rows read, %llu bad records, %zu hosts, %zu windows, %.3f s, %zu threads\n",
                 static_cast<unsigned long long>(stats.records), static_cast<unsigned long long>(stats.bad_records),
                 hosts.size(), windows.size(), stats.seconds, stats.chunks);
    if (bad_seen > 10) {
      std::fprintf(stderr, "log_report: (%llu more bad records not shown)\n",
                   static_cast<unsigned long long>(bad_seen - 10));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "log_report: %s\n", e.what());
    return 1;
  }
  return 0;
}
