// monitor: server monitoring alerts, and the embedding API of stream mode. The host program owns
// everything: the event queue, the engine thread, the producer threads and the shutdown.
//
//   producer 0 (hosts 0, 2, 4, ...) --push_batch--+
//                                                 +--> event_queue<sample> --> engine thread:
//   producer 1 (hosts 1, 3, 5, ...) --push_batch--+    (bounded: a full        run_stream(flow)
//                                                       queue blocks the       --> sink: ALERT lines
//                                                       producers)                 as windows fire
//
// A simulated fleet (fleet.hpp) sends one CPU sample per host per --interval of event time, up to
// --jitter out of order; a few hosts run hot for a few minutes. The flow keeps, per host and
// sliding 1-minute window (every 10 s), the sample count, the cpu sum and the cpu and load
// maxima; as the watermark (latest event time - --max-delay) passes a window's end, the window
// fires and the sink prints an ALERT for each host whose average cpu over it is above
// --threshold (in a window holding at least --min-samples samples):
//
//   ALERT host=api-05 window=[2024-03-01T12:01:30Z,2024-03-01T12:02:30Z) avg_cpu=95.59 max_cpu=97.4 ...
//
// and, on the same line, max_load=8.20 samples=60 (the highest load average, the window's samples).
//
// Counts go to stderr. SIGINT or SIGTERM stops gracefully: the queue closes, the producers stop,
// the engine drains what was pushed and fires the last windows, and the program exits 0.
//
// Deterministic output. Event time is simulated and generated as fast as possible; the producers
// move through it in lockstep, one second at a time (a std::barrier), so the one queue never
// holds a sample more than --jitter + 1 s older than the newest one: with --max-delay at least
// that (5 s against 2 s + 1 s by default) no sample is late, every window fires once, complete,
// and the alerts do not depend on thread timing. Which sink call a window arrives in does
// depend on timing (a call carries the windows that ended since the previous watermark), so
// each call's alerts are sorted by (window, host) before printing; since the calls come in
// watermark order, stdout is the same for any --producers and any interleaving.
//
//   monitor [--hosts H] [--producers P] [--duration D] [--threshold PCT] [--seed S] ...
#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iterator>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "../common/cli.hpp"
#include "fleet.hpp"
#include "sluice/io/event_queue.hpp"
#include "sluice/io/iso8601.hpp"
#include "sluice/io/signals.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/sluice.hpp"

namespace {

using namespace std::chrono_literals;
using monitor::sample;

constexpr auto lockstep_slice = 1s;  // how far in event time the producers may drift apart

constexpr const char* usage =
    "usage: monitor [--hosts H] [--producers P] [--interval D] [--duration D] [--jitter D]\n"
    "               [--max-delay D] [--window D] [--slide D] [--threshold PCT] [--min-samples N]\n"
    "               [--hot N] [--seed S] [--queue N]\n"
    "Server monitoring alerts over a simulated fleet, in stream mode: P producer threads push\n"
    "CPU samples into a bounded sluice::event_queue; an engine thread runs sliding windows and\n"
    "prints an ALERT line for each (host, window) whose average cpu is above the threshold.\n"
    "Event time is simulated (generated as fast as possible). Counts go to stderr.\n"
    "Options (durations: 500ms, 5s, 10min, 1h):\n"
    "  --hosts H          hosts in the fleet (default 50)\n"
    "  --producers P      producer threads, each pushing the samples of every P-th host (default 2)\n"
    "  --interval D       one sample per host per D of event time (default 1s)\n"
    "  --duration D       event time simulated (default 10min)\n"
    "  --jitter D         a sample is measured up to D before it is sent: out of order (default 2s)\n"
    "  --max-delay D      watermark = latest event time - D (default 5s; below jitter + 1s some\n"
    "                     samples may be late, and which ones depends on thread timing)\n"
    "  --window D         alert window size (default 1min)\n"
    "  --slide D          a window starts every D (default 10s)\n"
    "  --threshold PCT    alert when the window's average cpu is above PCT, e.g. 90 or 92.5 (default 90)\n"
    "  --min-samples N    ... and it holds at least N samples (default: half of window / interval), so\n"
    "                     the part-filled windows at the edges of the data do not alert on one spike\n"
    "  --hot N            hosts that run hot (~95% cpu) for a few minutes (default hosts/16, at least 1)\n"
    "  --seed S           generator seed (default 1)\n"
    "  --queue N          event queue capacity in samples (default 8192)\n"
    "SIGINT/SIGTERM: stop taking samples, drain, fire the last windows, exit 0.\n";

struct options {
  monitor::fleet_options fleet;
  unsigned producers = 2;
  std::chrono::milliseconds max_delay = 5s;
  std::chrono::milliseconds window = 1min;
  std::chrono::milliseconds slide = 10s;
  std::int64_t threshold_deci = 900;  // tenths of a percent, as the samples
  std::int64_t min_samples = 0;       // 0: half of window / interval
  std::size_t queue = 8192;
};

/// "90" -> 900, "92.5" -> 925: a percentage with at most one decimal, exact like the samples.
std::int64_t parse_percent(const cli::args& args, const std::string& text) {
  const auto dot = text.find('.');
  const std::string whole = text.substr(0, dot);
  const std::string frac = dot == std::string::npos ? "0" : text.substr(dot + 1);
  if (whole.empty() || frac.size() != 1 || frac[0] < '0' || frac[0] > '9' ||
      whole.find_first_not_of("0123456789") != std::string::npos || whole.size() > 3) {
    args.fail("--threshold takes a percentage such as 90 or 92.5, not '" + text + "'");
  }
  const std::int64_t deci = std::stoll(whole) * 10 + (frac[0] - '0');
  if (deci > 1000) {
    args.fail("--threshold is at most 100, not '" + text + "'");
  }
  return deci;
}

options parse_args(int argc, char** argv) {
  options o;
  bool hot_given = false;
  cli::args args("monitor", usage, argc, argv);
  auto positive = [&](std::string_view flag, std::uint64_t max) {
    const std::string v = args.value();
    const std::uint64_t n = args.whole_number(v, flag);
    if (n < 1 || n > max) {
      args.fail(std::string(flag) + " must be a number from 1 to " + std::to_string(max) + ", not '" + v + "'");
    }
    return n;
  };
  auto positive_duration = [&] {
    const std::string flag(args.current());
    const auto d = args.duration();
    if (d.count() < 1) {
      args.fail(flag + " must be at least 1ms");
    }
    return d;
  };
  while (args.next()) {
    const std::string_view a = args.current();
    if (a == "--hosts") {
      o.fleet.hosts = positive(a, 1'000'000);
    } else if (a == "--producers") {
      o.producers = static_cast<unsigned>(positive(a, 256));
    } else if (a == "--interval") {
      o.fleet.interval = positive_duration();
    } else if (a == "--duration") {
      o.fleet.duration = positive_duration();
    } else if (a == "--jitter") {
      o.fleet.jitter = args.duration();
    } else if (a == "--max-delay") {
      o.max_delay = args.duration();
    } else if (a == "--window") {
      o.window = positive_duration();
    } else if (a == "--slide") {
      o.slide = positive_duration();
    } else if (a == "--threshold") {
      o.threshold_deci = parse_percent(args, args.value());
    } else if (a == "--min-samples") {
      o.min_samples = static_cast<std::int64_t>(positive(a, 1'000'000'000));
    } else if (a == "--hot") {
      o.fleet.hot = args.whole_number(args.value(), a);
      hot_given = true;
    } else if (a == "--seed") {
      o.fleet.seed = args.whole_number(args.value(), a);
    } else if (a == "--queue") {
      o.queue = positive(a, std::uint64_t{1} << 30U);
    } else {
      args.unexpected();
    }
  }
  if (o.slide > o.window) {
    args.fail("--slide must not be larger than --window");
  }
  if (o.min_samples == 0) {
    o.min_samples = std::max<std::int64_t>(1, o.window.count() / o.fleet.interval.count() / 2);
  }
  if (!hot_given) {
    o.fleet.hot = std::max<std::size_t>(1, o.fleet.hosts / 16);
  }
  return o;
}

// ---- the flow -------------------------------------------------------------------------------

/// Per host and sliding window: (samples, cpu sum, max cpu, max load). The sum and count give the
/// exact average (mean() would too, as a double); integers keep the threshold test exact.
auto cpu_per_host_window(std::chrono::milliseconds size, std::chrono::milliseconds slide) {
  return sluice::flow<sample>() | sluice::event_time(&sample::ts) | sluice::key_by(&sample::host) |
         sluice::window(sluice::sliding(size, slide)) |
         sluice::aggregate(sluice::count{}, sluice::sum(&sample::cpu_deci), sluice::max(&sample::cpu_deci),
                           sluice::max(&sample::load_centi));
}

// ---- the sink ---------------------------------------------------------------------------------

/// A window bound: 2024-03-01T12:03:10Z (with milliseconds only when it has some).
std::string iso(sluice::millis t) {
  return sluice::format_iso8601(t, t.count() % 1000 != 0);
}

/// 937 -> "93.7" (tenths), or with two decimals 785 -> "7.85" (hundredths).
std::string fixed(std::int64_t v, int decimals) {
  const std::int64_t scale = decimals == 1 ? 10 : 100;
  return fmt::format("{}.{:0{}}", v / scale, v % scale, decimals);
}

/// Called by the engine thread with each batch of completed windows (a result_store whose scan()
/// is ordered by host, then window). Checks every row and prints the alerts of the batch sorted
/// by (window, host): see the header comment for why that makes stdout deterministic.
struct alert_check {
  alert_check(std::int64_t threshold, std::int64_t min) : threshold_deci(threshold), min_samples(min) {}

  std::int64_t threshold_deci;
  std::int64_t min_samples;
  std::uint64_t windows = 0;
  std::uint64_t alerts = 0;

  struct alert {
    sluice::time_window window;
    std::string_view host;
    std::int64_t samples, cpu_sum, max_cpu, max_load;
  };
  std::vector<alert> batch;
  std::string out;

  template <class Rows>
  void operator()(const Rows& rows) {
    batch.clear();
    for (const auto& row : rows.scan()) {
      ++windows;
      const auto& [n, cpu_sum, max_cpu, max_load] = row.value;
      if (n >= min_samples && cpu_sum > threshold_deci * n) {  // average > threshold, without dividing
        batch.push_back({row.key.window, row.key.key, n, cpu_sum, *max_cpu, *max_load});
      }
    }
    std::stable_sort(batch.begin(), batch.end(),
                     [](const alert& a, const alert& b) { return a.window < b.window; });  // hosts stay sorted
    out.clear();
    for (const alert& a : batch) {
      const std::int64_t avg_centi = (20 * a.cpu_sum + a.samples) / (2 * a.samples);  // rounded half up
      fmt::format_to(std::back_inserter(out),
                     "ALERT host={} window=[{},{}) avg_cpu={} max_cpu={} max_load={} samples={}\n", a.host,
                     iso(a.window.start), iso(a.window.end), fixed(avg_centi, 2), fixed(a.max_cpu, 1),
                     fixed(a.max_load, 2), a.samples);
    }
    alerts += batch.size();
    if (!out.empty()) {
      std::fwrite(out.data(), 1, out.size(), stdout);
      std::fflush(stdout);  // an alert is visible the moment its window fires
    }
  }
};

// ---- the producers ----------------------------------------------------------------------------

/// Pushes the samples of hosts first, first + step, ... one second of event time at a time, then
/// waits at `lockstep` for the other producers. Stops early when the queue closes (a signal).
void produce(const monitor::fleet& fleet, std::size_t first, std::size_t step, sluice::event_queue<sample>& queue,
             std::barrier<>& lockstep, const std::stop_token& stop) {
  struct hosted_feed {
    std::size_t host;
    monitor::host_feed feed;
  };
  std::vector<hosted_feed> feeds;
  for (std::size_t i = first; i < fleet.size(); i += step) {
    feeds.push_back({i, fleet.feed(i)});
  }
  struct pending {
    sluice::millis tick;
    std::size_t host;
    sample s;
  };
  std::vector<pending> slice;
  std::vector<sample> batch;
  const sluice::millis end = fleet.options().start + fleet.options().duration;
  for (sluice::millis t = fleet.options().start; t < end && !stop.stop_requested(); t = t + lockstep_slice) {
    slice.clear();
    for (hosted_feed& f : feeds) {
      while (f.feed.next_tick() < t + lockstep_slice) {
        const sluice::millis tick = f.feed.next_tick();
        slice.push_back({tick, f.host, f.feed.take()});
      }
    }
    // In the order the agents would send them: by tick (event times are then up to --jitter off).
    std::sort(slice.begin(), slice.end(),
              [](const pending& a, const pending& b) { return a.tick != b.tick ? a.tick < b.tick : a.host < b.host; });
    batch.clear();
    for (const pending& p : slice) {
      batch.push_back(p.s);
    }
    // One lock per run of free space, not per sample; blocks while the queue is full (backpressure).
    if (queue.push_batch(batch.begin(), batch.end()) < batch.size()) {
      break;  // closed: a stop was requested
    }
    lockstep.arrive_and_wait();
  }
  lockstep.arrive_and_drop();  // the others no longer wait for this producer
}

/// "db-03 2024-03-01T12:05:02Z..12:10:31Z, ..." (the first few), for the start-up line.
std::string hot_hosts(const monitor::fleet& fleet) {
  constexpr std::size_t shown = 5;
  std::string out;
  std::size_t hot = 0;
  for (std::size_t i = 0; i < fleet.size(); ++i) {
    const monitor::host_profile& h = fleet.host(i);
    if (h.hot && ++hot <= shown) {
      const monitor::hot_episode& e = h.episode;
      const sluice::millis from = fleet.options().start + std::chrono::milliseconds{e.from_ms};
      const sluice::millis to = from + std::chrono::milliseconds{e.ramp_up_ms + e.plateau_ms + e.ramp_down_ms};
      fmt::format_to(std::back_inserter(out), "{}{} {}..{}", out.empty() ? "" : ", ", h.name,
                     sluice::format_iso8601(from), sluice::format_iso8601(to).substr(11));
    }
  }
  if (hot > shown) {
    fmt::format_to(std::back_inserter(out), " and {} more", hot - shown);
  }
  return hot == 0 ? "none" : out;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_args(argc, argv);

  // SIGINT/SIGTERM -> stop.request_stop(). Constructed before any other thread, so that every
  // thread inherits the blocked signals and only its waiting thread sees them.
  std::stop_source stop;
  const sluice::stop_on_signals signals(stop);

  const monitor::fleet fleet(o.fleet);
  const auto flow = cpu_per_host_window(o.window, o.slide);
  sluice::event_queue<sample> queue(o.queue);
  alert_check sink(o.threshold_deci, o.min_samples);
  sluice::stream_options opts;
  opts.max_delay = o.max_delay;

  std::fprintf(stderr, "monitor: %zu hosts, %u producers, hot: %s\n", fleet.size(), o.producers,
               hot_hosts(fleet).c_str());
  if (o.max_delay < o.fleet.jitter + lockstep_slice) {
    std::fprintf(stderr,
                 "monitor: --max-delay is below --jitter + 1s: some samples may be late, and which "
                 "ones depends on thread timing\n");
  }

  // The engine thread: run_stream pops the queue until it is closed and drained (or `stop`
  // closes it), firing windows as the watermark passes them; the sink runs on this thread.
  sluice::stream_stats stats;
  std::exception_ptr failure;
  std::jthread engine([&] {
    try {
      stats = sluice::run_stream(sluice::from_queue(queue), flow, sink, opts, stop.get_token());
    } catch (...) {
      failure = std::current_exception();
      queue.close();  // unblock the producers
    }
  });

  {
    std::barrier<> lockstep(static_cast<std::ptrdiff_t>(o.producers));
    std::vector<std::jthread> producers;
    for (unsigned p = 0; p < o.producers; ++p) {
      producers.emplace_back([&, p] { produce(fleet, p, o.producers, queue, lockstep, stop.get_token()); });
    }
    for (auto& t : producers) {
      t.join();
    }
  }
  queue.close();  // end of the stream: the engine drains it, fires the last windows and returns
  engine.join();

  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "monitor: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "monitor: the engine failed\n");
    }
    return 1;
  }
  if (stop.stop_requested()) {
    std::fprintf(stderr, "monitor: stopped by signal; drained the queue and fired the last windows\n");
  }
  const double per_second = stats.seconds > 0 ? static_cast<double>(stats.events) / stats.seconds : 0.0;
  std::fprintf(stderr,
               "monitor: %llu samples, %llu windows checked, %llu alerts, %llu late events (%llu missed only some "
               "windows), %.3f s, %.0f events/s\n",
               static_cast<unsigned long long>(stats.events), static_cast<unsigned long long>(sink.windows),
               static_cast<unsigned long long>(sink.alerts), static_cast<unsigned long long>(stats.late_events),
               static_cast<unsigned long long>(stats.partly_late_events), stats.seconds, per_second);
  return 0;
}
