// clickstream: users' clicks on a shop's site, the seed's "clickstream" use case. Two flows over
// the same clicks: each user's sessions (a session ends after 30 minutes without a click) with
// their clicks and distinct pages, and the pages clicked most in sliding 5-minute windows ("what
// is popular now"). The program runs both flows twice, in batch mode over the file (every core)
// and in stream mode over an in-process sluice::event_queue fed with the file's rows in file
// order, and checks that the two give the same rows: exit 1 if not.
//
//   clickstream generate ROWS FILE [--seed S] [--users N]
//   clickstream --input FILE [--gap D] [--threads N] [--max-delay D] [--show N]
//
// Clicks are CSV `ts,user,page` (ts in ms since the Unix epoch). Prints a report on stdout: the
// number of sessions, the first --show sessions, how many clicks sessions have, and the top 3
// pages of the last two 5-minute windows that ended before the last click. Counts go to stderr.
#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <queue>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include <fmt/core.h>

#include "common/cli.hpp"
#include "common/splitmix64.hpp"
#include "sluice/io/event_queue.hpp"
#include "sluice/io/file_source.hpp"
#include "sluice/io/iso8601.hpp"
#include "sluice/ops/collect.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/sluice.hpp"
#include "sluice/store/window_top_k.hpp"

namespace {

using namespace std::chrono_literals;

constexpr const char* usage =
    "usage: clickstream generate ROWS FILE [--seed S] [--users N]\n"
    "       clickstream --input FILE [--gap D] [--threads N] [--max-delay D] [--show N]\n"
    "  Sessions per user and popular pages over clicks (CSV ts,user,page; ts in ms), in batch\n"
    "  mode over FILE and in stream mode over an in-process event queue fed with FILE's rows;\n"
    "  exits 1 if the two answers differ.\n"
    "  generate      write ROWS synthetic clicks of --users users (default 10000) to FILE\n"
    "  --gap D       a session ends after D without a click of its user (default 30min)\n"
    "  --threads N   batch mode's threads (default every core)\n"
    "  --max-delay D stream mode: how far out of order clicks may arrive (default 5s)\n"
    "  --show N      print the first N sessions (default 5)\n";

constexpr const char* csv_header = "ts,user,page";
constexpr auto popular_size = 5min;
constexpr auto popular_slide = 1min;
constexpr std::size_t popular_top = 3;

/// A click. `page` borrows: from the file's bytes in batch mode, from the host's copy of the rows
/// in stream mode (a queued event outlives the call that pushed it).
struct click {
  sluice::millis ts;
  std::int64_t user = 0;
  std::string_view page;
};

auto click_schema() {
  return sluice::schema<click>(sluice::column("ts", &click::ts), sluice::column("user", &click::user),
                               sluice::column("page", &click::page));
}

// ---- the two flows ------------------------------------------------------------------------------

/// Per user and session: (clicks, distinct pages).
auto sessions_flow(std::chrono::milliseconds gap) {
  return sluice::flow<click>() | sluice::event_time(&click::ts) | sluice::key_by(&click::user) |
         sluice::window(sluice::session(gap)) |
         sluice::aggregate(sluice::count{}, sluice::exact_distinct_count(&click::page));
}

/// Per page and sliding 5-minute window (a new one every minute): clicks.
auto popular_flow() {
  return sluice::flow<click>() | sluice::event_time(&click::ts) | sluice::key_by(&click::page) |
         sluice::window(sluice::sliding(popular_size, popular_slide)) | sluice::aggregate(sluice::count{});
}

// ---- the two modes ------------------------------------------------------------------------------

/// Every row of a store as text, in scan order (key, then window): the comparison of the modes.
template <class Store>
std::string rows_text(const Store& store) {
  std::string out;
  for (const auto& row : store.scan()) {
    fmt::format_to(std::back_inserter(out), "{},{},{}", row.key.key, row.key.window.start.count(),
                   row.key.window.end.count());
    if constexpr (requires { std::tuple_size<std::remove_cvref_t<decltype(row.value)>>::value; }) {
      std::apply([&](const auto&... v) { (fmt::format_to(std::back_inserter(out), ",{}", v), ...); }, row.value);
    } else {
      fmt::format_to(std::back_inserter(out), ",{}", row.value);
    }
    out += '\n';
  }
  return out;
}

/// Stream mode over an event queue: an engine thread runs the flow while this thread pushes the
/// clicks in their order, then closes the queue. The rows fired along the way are merged into
/// one store, which (no late event) equals batch mode's.
template <class Store, class Flow>
sluice::stream_stats stream_over_queue(const std::vector<click>& clicks, const Flow& flow, std::optional<Store>& all,
                                       std::chrono::milliseconds max_delay) {
  sluice::event_queue<click> queue(4096);
  sluice::stream_options opts;
  opts.max_delay = max_delay;
  // The engine takes at most this many clicks a step and moves the watermark after each: small, as
  // for a collector that pushes clicks as they come, so that a click behind it would be late.
  opts.queue_events = 64;
  sluice::stream_stats stats;
  std::exception_ptr failure;
  // Each call brings the windows that just fired: fold them into one store.
  auto keep = [&](const Store& fired) { all ? all->merge(fired) : void(all.emplace(fired)); };
  std::jthread engine([&](std::stop_token stop) {
    try {
      stats = sluice::run_stream(sluice::from_queue(queue), flow, keep, opts, stop);
    } catch (...) {
      failure = std::current_exception();
      queue.close();  // unblock the pushes below
    }
  });
  constexpr std::size_t batch = 64;
  for (std::size_t i = 0; i < clicks.size(); i += batch) {
    const auto first = clicks.begin() + static_cast<std::ptrdiff_t>(i);
    const auto last = clicks.begin() + static_cast<std::ptrdiff_t>(std::min(clicks.size(), i + batch));
    if (queue.push_batch(first, last) < static_cast<std::size_t>(last - first)) {
      break;  // closed: the engine failed
    }
  }
  queue.close();
  engine.join();
  if (failure) {
    std::rethrow_exception(failure);
  }
  return stats;
}

/// The rows of FILE in file order, owned (collect() on one thread keeps the input order).
struct owned_click {
  sluice::millis ts;
  std::int64_t user = 0;
  std::string page;
};

std::vector<owned_click> read_in_order(const std::string& path) {
  const auto owned = sluice::flow<click>() | sluice::map([](const click& c) {
                       return owned_click{c.ts, c.user, std::string(c.page)};
                     }) |
                     sluice::collect();
  return sluice::run_batch(sluice::csv_file(path, click_schema()), owned, sluice::batch_options{.threads = 1});
}

// ---- the report ---------------------------------------------------------------------------------

std::string iso(sluice::millis t) {
  return sluice::format_iso8601(t).substr(11, 8);  // the clock time: the generated data spans hours
}

template <class Sessions, class Popular>
void print_report(const Sessions& sessions, const Popular& popular, sluice::millis last_click, std::size_t show) {
  std::string out;
  std::map<std::uint64_t, std::size_t> by_clicks;  // clicks in a session, rounded down to a power of 2 -> sessions
  std::int64_t users = 0;
  std::optional<std::int64_t> previous_user;
  for (const auto& row : sessions.scan()) {
    by_clicks[std::bit_floor(static_cast<std::uint64_t>(std::get<0>(row.value)))] += 1;
    users += previous_user != row.key.key ? 1 : 0;
    previous_user = row.key.key;
  }
  fmt::format_to(std::back_inserter(out), "{} sessions of {} users\n", sessions.size(), users);
  fmt::format_to(std::back_inserter(out), "# the first {} sessions\nuser,start,end,clicks,distinct_pages\n", show);
  for (const auto& row : sessions.scan()) {
    if (show-- == 0) {
      break;
    }
    const auto& [clicks, pages] = row.value;
    fmt::format_to(std::back_inserter(out), "{},{},{},{},{}\n", row.key.key, iso(row.key.window.start),
                   iso(row.key.window.end), clicks, pages);
  }
  out += "# clicks per session\nclicks,sessions\n";
  for (const auto& [low, n] : by_clicks) {
    fmt::format_to(std::back_inserter(out), "{},{}\n", low == 1 ? "1" : fmt::format("{}-{}", low, 2 * low - 1), n);
  }
  // "Now" is the last click: the two latest windows that had ended by then.
  if (sessions.size() == 0) {
    std::fwrite(out.data(), 1, out.size(), stdout);
    return;
  }
  const sluice::millis latest_end{(last_click.count() / std::chrono::milliseconds(popular_slide).count()) *
                                  std::chrono::milliseconds(popular_slide).count()};
  out += "# popular pages: the top 3 of the last two 5-minute windows\nwindow_start,window_end,page,clicks\n";
  const auto clicks = [](std::int64_t n) { return n; };  // the rank: a page-window's clicks
  for (const sluice::millis end : {latest_end - popular_slide, latest_end}) {
    const sluice::millis start = end - popular_size;
    for (const auto& row : sluice::top_k_by_window(popular, popular_top, clicks, start)) {
      fmt::format_to(std::back_inserter(out), "{},{},{},{}\n", iso(start), iso(end), row.key.key, row.value);
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
}

struct options : cli::mode_flags {
  std::chrono::milliseconds gap = 30min;
  std::uint64_t users = 10000;
  std::size_t show = 5;
};

int run(const options& o) {
  const auto sessions = sessions_flow(o.gap);
  const auto popular = popular_flow();

  // Batch mode over the file, every core. A malformed line is skipped, with its position on stderr
  // (reading the lines for stream mode below skips them too, silently).
  sluice::input_options input;
  input.dead_letters = [](const sluice::bad_record& bad) {
    std::fprintf(stderr, "clickstream: skipped %s\n", sluice::describe(bad).c_str());
  };
  const auto source = sluice::csv_file(o.input, click_schema(), input);
  sluice::batch_stats stats;
  // Both flows in one pass over the file (stream mode has no fan_out yet: it runs them one by one).
  const auto [batch_sessions, batch_popular] = sluice::run_batch(source, sluice::fan_out(sessions, popular),
                                                                 sluice::batch_options{.threads = o.threads}, &stats);
  std::fprintf(stderr, "clickstream: batch mode over %s: %llu clicks, %llu bad records, %.3f s\n", o.input.c_str(),
               static_cast<unsigned long long>(stats.records), static_cast<unsigned long long>(stats.bad_records),
               stats.seconds);

  // Stream mode over a queue, fed with the same rows in the file's order.
  const std::vector<owned_click> rows = read_in_order(o.input);
  std::vector<click> clicks;
  clicks.reserve(rows.size());
  sluice::millis last_click{0};
  for (const owned_click& r : rows) {
    clicks.push_back(click{r.ts, r.user, r.page});
    last_click = std::max(last_click, r.ts);
  }
  std::optional<std::remove_cvref_t<decltype(batch_sessions)>> stream_sessions;
  std::optional<std::remove_cvref_t<decltype(batch_popular)>> stream_popular;
  const auto s1 = stream_over_queue(clicks, sessions, stream_sessions, o.max_delay);
  const auto s2 = stream_over_queue(clicks, popular, stream_popular, o.max_delay);

  print_report(batch_sessions, batch_popular, last_click, o.show);

  // A stream that fired nothing (no clicks) has no store: its rows are none.
  auto text = [](const auto& store) { return store ? rows_text(*store) : std::string(); };
  const bool same_sessions = rows_text(batch_sessions) == text(stream_sessions);
  const bool same_popular = rows_text(batch_popular) == text(stream_popular);
  const std::uint64_t late = s1.late_events + s1.partly_late_events + s2.late_events + s2.partly_late_events;
  if (!same_sessions || !same_popular || late != 0) {
    std::fprintf(stderr,
                 "clickstream: MISMATCH: stream mode over the queue gave %s sessions and %s page-windows than batch "
                 "mode; %llu clicks came behind the watermark (--max-delay is %lld ms)\n",
                 same_sessions ? "the same" : "other", same_popular ? "the same" : "other",
                 static_cast<unsigned long long>(late), static_cast<long long>(o.max_delay.count()));
    return 1;
  }
  std::fprintf(stderr,
               "clickstream: stream mode over an event queue == batch mode (%zu sessions, %zu page-windows, 0 late)\n",
               batch_sessions.size(), batch_popular.size());
  return 0;
}

// ---- the generator ----------------------------------------------------------------------------

/// Visits start about a second apart, each by a random user: a landing page, then 0 to 15 more
/// clicks 5 s to 4 min apart. Products are skewed towards low ids, and one product is "trending"
/// for 15 minutes at a time, so what is popular changes. Rows are written up to 2 s out of time
/// order, as a collector would deliver them.
int generate(const cli::args& args, const std::vector<std::string>& positional, const options& o) {
  auto out = args.rows_and_file(positional);
  if (o.users == 0) {
    args.fail("--users must be at least 1");
  }
  constexpr int products = 20;
  static constexpr std::string_view landings[] = {"/", "/search", "/deals"};
  cli::splitmix64 rng{o.seed};
  struct row {
    std::int64_t ts;
    std::uint64_t user;
    std::string page;
    bool operator>(const row& r) const { return ts > r.ts; }
  };
  std::priority_queue<row, std::vector<row>, std::greater<>> due;
  auto product = [&](std::int64_t t) {
    const auto trending = 1 + (t / 900'000) % products;
    const auto id = rng.below(10) < 3 ? trending : 1 + static_cast<std::int64_t>(rng.below(rng.below(products) + 1));
    return fmt::format("/product/{}", id);
  };
  std::int64_t clock = 1'772'442'000'000;  // 2026-03-02T09:00:00Z
  std::string buf = std::string(csv_header) + "\n";
  std::uint64_t written = 0;
  while (written < out.rows) {
    clock += 200 + static_cast<std::int64_t>(rng.below(1600));
    const std::uint64_t user = 1 + rng.below(o.users);
    std::int64_t t = clock;
    due.push(row{t, user, std::string(landings[rng.below(std::size(landings))])});
    const std::uint64_t more = rng.below(4) == 0 ? rng.below(16) : rng.below(5);
    for (std::uint64_t i = 0; i < more; ++i) {
      t += 5'000 + static_cast<std::int64_t>(rng.below(235'000));
      const std::uint64_t pick = rng.below(10);
      due.push(row{t, user, pick < 7 ? product(t) : pick < 9 ? "/cart" : "/checkout"});
    }
    while (!due.empty() && due.top().ts <= clock && written < out.rows) {
      const row r = due.top();
      due.pop();
      const std::int64_t shown = r.ts - static_cast<std::int64_t>(rng.below(2'000));  // delivery disorder
      fmt::format_to(std::back_inserter(buf), "{},{},{}\n", shown, r.user, r.page);
      ++written;
      out.write_if_full(buf);
    }
  }
  return out.finish(buf, "clickstream");
}

}  // namespace

int main(int argc, char** argv) {
  cli::args args("clickstream", usage, argc, argv);
  options o;
  o.max_delay = 5s;
  std::vector<std::string> positional;
  while (args.next()) {
    if (args.current() == "--listen" || args.current() == "--connections") {
      args.unexpected();  // stream mode here is the in-process queue, not TCP
    }
    if (o.take(args)) {
      continue;
    }
    if (args.current() == "--gap") {
      o.gap = args.duration();
      if (o.gap.count() < 1) {
        args.fail("--gap must be at least 1ms");
      }
    } else if (args.current() == "--users") {
      o.users = args.whole_number(args.value(), "--users");
    } else if (args.current() == "--show") {
      o.show = args.whole_number(args.value(), "--show");
    } else {
      args.take_positional(positional, 3);
    }
  }
  try {
    if (!positional.empty() && positional.front() == "generate") {
      positional.erase(positional.begin());
      return generate(args, positional, o);
    }
    if (!positional.empty() || o.input.empty()) {
      args.fail("give generate ROWS FILE or --input FILE");
    }
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "clickstream: %s\n", e.what());
    return 1;
  }
}
