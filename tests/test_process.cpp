// The keyed process function: per-key state and event-time timers, handled in event-time order.
// Against an independent per-key model: batch mode (1 and 4 threads), stream mode with disorder
// within the max delay (any arrival order gives the same rows), and stream mode with late events
// (exactly the events behind the watermark they met are late, and the rest equal the model).
// Dedupe (first_by, last_by) and top_n against a model, in any input order and split across
// threads.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <compare>
#include <cstdint>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "sluice/io/memory_source.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/sluice.hpp"
#include "stream_fixtures.hpp"

using stream_test::ev;

namespace {

enum class row_kind : std::uint8_t { big, flush, cancelled };

struct out_row {
  std::int64_t key = 0;
  std::int64_t time = 0;
  row_kind kind = row_kind::big;
  std::int64_t value = 0;
  auto operator<=>(const out_row&) const = default;
};

struct burst_state {
  std::int64_t count = 0;
  std::int64_t sum = 0;
  std::int64_t first = 0;
};

constexpr std::int64_t burst_span = 50;

// A burst opens at a key's first event and closes with a timer `burst_span` later, emitting its
// count and sum. A value over 800 is reported at once. A negative value in a burst of 3 or more
// cancels the burst's timer, reports it and clears the key. Every path through the state and
// the timers (set, fire, cancel, clear) changes the rows if it runs in the wrong order.
auto burst_detector() {
  return sluice::process<out_row, burst_state>(
      [](auto& ctx, const ev& e) {
        auto& s = ctx.state();
        if (s.count == 0) {
          s.first = e.t.count();
          ctx.timer_at(sluice::millis{s.first + burst_span});
        }
        ++s.count;
        s.sum += e.v;
        if (e.v > 800) {
          ctx.emit(out_row{ctx.key(), ctx.time().count(), row_kind::big, e.v});
        }
        if (e.v < 0 && s.count >= 3) {
          ctx.cancel_timer(sluice::millis{s.first + burst_span});
          ctx.emit(out_row{ctx.key(), ctx.time().count(), row_kind::cancelled, s.count});
          ctx.clear();
        }
      },
      [](auto& ctx) {
        const auto& s = ctx.state();
        ctx.emit(out_row{ctx.key(), ctx.time().count(), row_kind::flush, s.sum * 1000 + s.count});
        ctx.clear();
      });
}

auto burst_flow() {
  return sluice::flow<ev>() | sluice::event_time(&ev::t) | sluice::key_by(&ev::k) | burst_detector();
}

/// The same rules, written directly: each key on its own, its events stably sorted by time, its
/// one pending timer fired before any event at or after its time.
std::vector<out_row> model_rows(const std::vector<ev>& events) {
  std::map<std::int64_t, std::vector<ev>> by_key;
  for (const ev& e : events) {
    by_key[e.k].push_back(e);
  }
  std::vector<out_row> out;
  for (auto& entry : by_key) {
    const std::int64_t key = entry.first;  // not a structured binding: clang 14 cannot capture one
    auto& list = entry.second;
    std::stable_sort(list.begin(), list.end(), [](const ev& a, const ev& b) { return a.t < b.t; });
    burst_state s;
    bool timer = false;
    auto fire_until = [&](std::int64_t t) {
      if (timer && s.first + burst_span <= t) {
        out.push_back(out_row{key, s.first + burst_span, row_kind::flush, s.sum * 1000 + s.count});
        s = {};
        timer = false;
      }
    };
    for (const ev& e : list) {
      fire_until(e.t.count());
      if (s.count == 0) {
        s.first = e.t.count();
        timer = true;
      }
      ++s.count;
      s.sum += e.v;
      if (e.v > 800) {
        out.push_back(out_row{key, e.t.count(), row_kind::big, e.v});
      }
      if (e.v < 0 && s.count >= 3) {
        out.push_back(out_row{key, e.t.count(), row_kind::cancelled, s.count});
        s = {};
        timer = false;
      }
    }
    fire_until(INT64_MAX);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<out_row> sorted(std::vector<out_row> rows) {
  std::sort(rows.begin(), rows.end());
  return rows;
}

struct stream_run {
  std::vector<out_row> rows;
  std::size_t sink_calls = 0;
  std::vector<std::int64_t> late_times;
  sluice::stream_stats stats;
};

/// Runs the flow over `events` pushed by another thread into a small queue.
template <class Flow>
stream_run run_over_queue(const Flow& f, const std::vector<ev>& events, sluice::stream_options opts) {
  sluice::event_queue<ev> q(64);
  stream_run out;
  opts.on_late = [&out](const sluice::late_event& late) { out.late_times.push_back(late.event_time.count()); };
  std::thread producer([&q, &events] {
    for (const ev& e : events) {
      q.push(e);  // false once a failed run has closed the queue: the loop just runs out
    }
    q.close();
  });
  struct join_on_exit {  // also when run_stream throws
    std::thread& t;
    ~join_on_exit() { t.join(); }
  } joiner{producer};
  out.stats = sluice::run_stream(
      sluice::from_queue(q), f,
      [&out](const std::vector<out_row>& rows) {
        ++out.sink_calls;
        out.rows.insert(out.rows.end(), rows.begin(), rows.end());
      },
      opts);
  return out;
}

}  // namespace

TEST_CASE("process: batch mode equals the per-key model, on one thread and on four") {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    CAPTURE(seed);
    const auto events = stream_test::random_events(seed, 4000, 7, 200);
    const auto model = model_rows(events);
    REQUIRE(std::count_if(model.begin(), model.end(), [](const out_row& r) { return r.kind == row_kind::cancelled; }) >
            5);
    REQUIRE(std::count_if(model.begin(), model.end(), [](const out_row& r) { return r.kind == row_kind::flush; }) > 5);
    for (const unsigned threads : {1U, 4U}) {
      CAPTURE(threads);
      const auto rows = sluice::run_batch(sluice::from_range(events), burst_flow(),
                                          sluice::batch_options{.threads = threads, .min_chunk_units = 1});
      CHECK(sorted(rows) == model);
    }
  }
}

TEST_CASE(
    "process: batch mode on 4 threads splits the keys across threads and gives the rows of 1 thread, in time order") {
  // 70k events: 4 parts of at least 16 384 (fewer are not worth a thread to the process function).
  const auto events = stream_test::random_events(5, 70'000, 997, 200);
  std::mutex mutex;
  std::set<std::thread::id> threads_seen;
  const auto counting = sluice::flow<ev>() | sluice::event_time(&ev::t) | sluice::key_by(&ev::k) |
                        sluice::process<out_row, burst_state>(
                            [&](auto& ctx, const ev& e) {
                              if (ctx.state().count == 0) {
                                const std::lock_guard lock(mutex);
                                threads_seen.insert(std::this_thread::get_id());
                              }
                              burst_detector().on_event(ctx, e);
                            },
                            [](auto& ctx) { burst_detector().on_timer(ctx); });
  const auto one = sluice::run_batch(sluice::from_range(events), counting, sluice::batch_options{.threads = 1});
  REQUIRE(threads_seen.size() == 1);
  threads_seen.clear();
  const auto four = sluice::run_batch(sluice::from_range(events), counting, sluice::batch_options{.threads = 4});
  CHECK(threads_seen.size() == 4);
  auto by_time = [](const out_row& a, const out_row& b) { return a.time < b.time; };
  CHECK(std::is_sorted(one.begin(), one.end(), by_time));
  CHECK(std::is_sorted(four.begin(), four.end(), by_time));
  CHECK(sorted(four) == sorted(one));
  CHECK(sorted(one) == model_rows(events));
}

TEST_CASE("process: stream mode with disorder within the max delay equals batch mode, as the run goes") {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    for (const std::size_t queue_events : {std::size_t{1}, std::size_t{13}, std::size_t{65536}}) {
      CAPTURE(seed);
      CAPTURE(queue_events);
      constexpr std::int64_t delay = 60;
      const auto events = stream_test::random_events(seed * 77 + queue_events, 3000, 5, delay);
      sluice::stream_options opts;
      opts.max_delay = std::chrono::milliseconds(delay);
      opts.queue_events = queue_events;
      const stream_run out = run_over_queue(burst_flow(), events, opts);
      CHECK(out.stats.late_events == 0);
      CHECK(out.late_times.empty());
      CHECK(sorted(out.rows) == model_rows(events));
      CHECK(out.stats.rows_emitted == out.rows.size());
      if (queue_events == 1) {
        CHECK(out.sink_calls > 10);  // rows come out as the watermark passes their events
      }
    }
  }
}

TEST_CASE("process: an event behind the watermark it meets is late, and the rest equal the model") {
  // One event per pop: the watermark an event meets is the max of the earlier events' times minus
  // the delay, and the process stage has handled everything before it.
  constexpr std::int64_t delay = 30;
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    CAPTURE(seed);
    const auto events = stream_test::random_events(seed + 90, 3000, 4, delay, 8);
    std::vector<ev> on_time;
    std::vector<std::int64_t> late;
    std::int64_t latest = INT64_MIN;
    for (const ev& e : events) {
      if (latest != INT64_MIN && e.t.count() < latest - delay) {
        late.push_back(e.t.count());
      } else {
        on_time.push_back(e);
      }
      latest = std::max(latest, e.t.count());
    }
    REQUIRE(late.size() > 10);
    sluice::stream_options opts;
    opts.max_delay = std::chrono::milliseconds(delay);
    opts.queue_events = 1;
    const stream_run out = run_over_queue(burst_flow(), events, opts);
    CHECK(out.stats.late_events == late.size());
    CHECK(out.late_times == late);
    CHECK(sorted(out.rows) == model_rows(on_time));
  }
}

TEST_CASE("process: a timer at T fires before an event at T; timers set in the past fire next; clear drops timers") {
  struct log_row {
    std::int64_t time = 0;
    char what = ' ';
    auto operator<=>(const log_row&) const = default;
  };
  const auto f = sluice::flow<ev>() | sluice::event_time(&ev::t) | sluice::key_by(&ev::k) |
                 sluice::process<log_row, int>(
                     [](auto& ctx, const ev& e) {
                       ctx.emit(log_row{ctx.time().count(), 'e'});
                       if (e.v == 1) {
                         ctx.timer_at(sluice::millis{20});
                         ctx.timer_at(sluice::millis{20});  // once per key and time
                       } else if (e.v == 2) {
                         ctx.timer_at(sluice::millis{5});  // already passed: fires right after this event
                       } else if (e.v == 3) {
                         ctx.timer_at(sluice::millis{100});
                         ctx.clear();  // and with it the timer
                       }
                     },
                     [](auto& ctx) {
                       ctx.emit(log_row{ctx.time().count(), 't'});
                     });
  const std::vector<ev> events{stream_test::at(30, 1, 2), stream_test::at(10, 1, 1), stream_test::at(20, 1, 0),
                               stream_test::at(40, 1, 3)};
  const auto rows = sluice::run_batch(sluice::from_range(events), f);
  const std::vector<log_row> expected{{10, 'e'}, {20, 't'}, {20, 'e'}, {30, 'e'}, {5, 't'}, {40, 'e'}};
  CHECK(rows == expected);
}

TEST_CASE("process: a timer set earlier than one already pending fires first, at its own time") {
  const auto f = sluice::flow<ev>() | sluice::event_time(&ev::t) | sluice::key_by(&ev::k) |
                 sluice::process<std::int64_t>(
                     [](auto& ctx, const ev& e) {
                       ctx.emit(ctx.time().count());
                       if (e.v > 0) {
                         ctx.timer_at(sluice::millis{e.v});
                       }
                     },
                     [](auto& ctx) { ctx.emit(-ctx.time().count()); });
  const std::vector<ev> events{stream_test::at(10, 1, 100), stream_test::at(20, 1, 50), stream_test::at(60, 1, 0),
                               stream_test::at(200, 1, 0)};
  CHECK(sluice::run_batch(sluice::from_range(events), f) == std::vector<std::int64_t>{10, 20, -50, 60, -100, 200});
}

namespace {
struct bid_row {
  std::int64_t t = 0;
  std::int64_t bidder = 0;
  std::int64_t price = 0;
  auto operator<=>(const bid_row&) const = default;
};

std::vector<bid_row> random_bids(std::uint64_t seed, std::size_t n) {
  std::mt19937_64 rng(seed);
  std::vector<bid_row> out;
  for (std::size_t i = 0; i < n; ++i) {
    // Few distinct times and prices: ties under the ranking are common, so tie-breaks matter.
    out.push_back(bid_row{static_cast<std::int64_t>(rng() % 50), static_cast<std::int64_t>(rng() % 9),
                          static_cast<std::int64_t>(rng() % 20)});
  }
  return out;
}

template <class Flow>
auto batch_on(const std::vector<bid_row>& rows, const Flow& f, unsigned threads) {
  const auto store =
      sluice::run_batch(sluice::from_range(rows), f, sluice::batch_options{.threads = threads, .min_chunk_units = 1});
  std::map<std::int64_t, std::remove_cvref_t<decltype(store.scan().front().value)>> out;
  for (const auto& row : store.scan()) {
    out.emplace(row.key, row.value);
  }
  return out;
}
}  // namespace

TEST_CASE("first_by, last_by and top_n keep the same events per key in any input order and on any thread count") {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    CAPTURE(seed);
    auto bids = random_bids(seed, 3000);
    // The model: per bidder, the events sorted by the rule and its tie-break.
    std::map<std::int64_t, std::vector<bid_row>> by_bidder;
    for (const auto& b : bids) {
      by_bidder[b.bidder].push_back(b);
    }
    std::map<std::int64_t, std::optional<bid_row>> first;
    std::map<std::int64_t, std::optional<bid_row>> last;
    std::map<std::int64_t, std::vector<bid_row>> top3;
    // Highest price first, then the earlier bid; what is still tied (same price and time) goes to
    // the larger row.
    auto better = [](const bid_row& a, const bid_row& b) { return a.price != b.price ? a.price > b.price : a.t < b.t; };
    for (auto& [bidder, list] : by_bidder) {
      first[bidder] = *std::min_element(
          list.begin(), list.end(), [](const bid_row& a, const bid_row& b) { return a.t != b.t ? a.t < b.t : a < b; });
      last[bidder] = *std::max_element(
          list.begin(), list.end(), [](const bid_row& a, const bid_row& b) { return a.t != b.t ? a.t < b.t : a < b; });
      std::sort(list.begin(), list.end(),
                [&](const bid_row& a, const bid_row& b) { return better(a, b) || (!better(b, a) && b < a); });
      top3[bidder] = std::vector<bid_row>(list.begin(), list.begin() + std::min<std::ptrdiff_t>(3, std::ssize(list)));
    }
    const auto keyed = sluice::flow<bid_row>() | sluice::key_by(&bid_row::bidder);
    for (int order = 0; order < 2; ++order) {
      for (const unsigned threads : {1U, 4U}) {
        CAPTURE(order);
        CAPTURE(threads);
        CHECK(batch_on(bids, keyed | sluice::aggregate(sluice::first_by(&bid_row::t)), threads) == first);
        CHECK(batch_on(bids, keyed | sluice::aggregate(sluice::last_by(&bid_row::t)), threads) == last);
        CHECK(batch_on(bids, keyed | sluice::aggregate(sluice::top_n(3, better)), threads) == top3);
      }
      std::reverse(bids.begin(), bids.end());
    }
  }
}

TEST_CASE("process: max_held_events stops a run that would hold more events, with a clear error, in both modes") {
  const auto events = stream_test::random_events(3, 2000, 5, 50);
  const auto bounded =
      sluice::flow<ev>() | sluice::event_time(&ev::t) | sluice::key_by(&ev::k) | burst_detector().max_held_events(1000);
  for (const unsigned threads : {1U, 4U}) {
    CAPTURE(threads);
    CHECK_THROWS_WITH_AS(sluice::run_batch(sluice::from_range(events), bounded,
                                           sluice::batch_options{.threads = threads, .min_chunk_units = 1}),
                         doctest::Contains("max_held_events(1000)"), std::length_error);
  }
  // Within the bound, the rows are the unbounded stage's.
  const auto roomy =
      sluice::flow<ev>() | sluice::event_time(&ev::t) | sluice::key_by(&ev::k) | burst_detector().max_held_events(2000);
  CHECK(sorted(sluice::run_batch(sluice::from_range(events), roomy)) == model_rows(events));
  // Stream mode: a watermark an hour behind releases nothing, so the events pile up until the bound.
  sluice::stream_options opts;
  opts.max_delay = std::chrono::hours(1);
  CHECK_THROWS_WITH_AS(run_over_queue(bounded, events, opts), doctest::Contains("max_held_events(1000)"),
                       std::length_error);
}

// ---- processing-time timers ------------------------------------------------------------------

namespace {

struct watch_row {
  std::int64_t key = 0;
  bool processing = false;  // from a processing-time timer (else an event-time one)
  std::int64_t value = 0;   // events seen by then
  auto operator<=>(const watch_row&) const = default;
};
struct watch_state {
  std::int64_t events = 0;
  std::optional<sluice::millis> processing_timer;
};

// Per key: a processing-time timer at 1000 + key from its first event (cancelled by an event with
// a value under -95), and an event-time timer 30 ms after its first event.
auto watcher() {
  return sluice::flow<ev>() | sluice::event_time(&ev::t) | sluice::key_by(&ev::k) |
         sluice::process<watch_row, watch_state>(
             [](auto& ctx, const ev& e) {
               auto& s = ctx.state();
               if (ctx.domain() != sluice::time_domain::event_time) {
                 ctx.emit(watch_row{-1, true, -1});  // in no model
               }
               if (s.events++ == 0) {
                 s.processing_timer = sluice::millis{1000 + ctx.key()};
                 ctx.processing_timer_at(*s.processing_timer);
                 ctx.timer_at(sluice::millis{ctx.time().count() + 30});
               }
               if (e.v < -95 && s.processing_timer) {
                 ctx.cancel_processing_timer(*s.processing_timer);
                 s.processing_timer.reset();
               }
             },
             [](auto& ctx) {
               const bool processing = ctx.domain() == sluice::time_domain::processing_time;
               ctx.emit(watch_row{ctx.key(), processing, ctx.state().events});
             });
}

std::vector<watch_row> watcher_model(const std::vector<ev>& events) {
  std::map<std::int64_t, std::vector<ev>> by_key;
  for (const ev& e : events) {
    by_key[e.k].push_back(e);
  }
  std::vector<watch_row> out;
  for (auto& entry : by_key) {
    auto& list = entry.second;
    std::stable_sort(list.begin(), list.end(), [](const ev& a, const ev& b) { return a.t < b.t; });
    const std::int64_t due = list.front().t.count() + 30;
    std::int64_t before_due = 0;
    bool cancelled = false;
    for (const ev& e : list) {
      before_due += e.t.count() < due ? 1 : 0;  // the event-time timer fires before an event at its time
      cancelled = cancelled || e.v < -95;
    }
    out.push_back(watch_row{entry.first, false, before_due});
    if (!cancelled) {
      out.push_back(watch_row{entry.first, true, static_cast<std::int64_t>(list.size())});  // at end of input
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("process: processing-time timers fire at the end of input in batch mode, after the key's events") {
  const auto events = stream_test::random_events(41, 3000, 23, 40);
  const auto model = watcher_model(events);
  REQUIRE(std::count_if(model.begin(), model.end(), [](const watch_row& r) { return r.processing; }) > 5);
  REQUIRE(std::count_if(model.begin(), model.end(), [](const watch_row& r) { return r.processing; }) < 23);
  for (const unsigned threads : {1U, 4U}) {
    auto rows = sluice::run_batch(sluice::from_range(events), watcher(),
                                  sluice::batch_options{.threads = threads, .min_chunk_units = 1});
    std::sort(rows.begin(), rows.end());
    CHECK(rows == model);
  }
  // Stream mode with a clock that never reaches them: they fire when the stream ends, as in batch.
  sluice::stream_options opts;
  opts.max_delay = std::chrono::milliseconds(40);
  opts.processing_clock = [] { return sluice::millis{0}; };
  std::vector<watch_row> stream;
  sluice::event_queue<ev> q(64);
  std::thread producer([&] {
    for (const ev& e : events) {
      q.push(e);
    }
    q.close();
  });
  sluice::run_stream(sluice::from_queue(q), watcher(),
                     [&](const std::vector<watch_row>& rows) { stream.insert(stream.end(), rows.begin(), rows.end()); },
                     opts);
  producer.join();
  std::sort(stream.begin(), stream.end());
  CHECK(stream == model);
}

TEST_CASE("process: in stream mode a processing-time timer fires when the clock reaches it, while the stream runs") {
  std::atomic<std::int64_t> now{0};
  std::atomic<bool> fired{false};
  sluice::stream_options opts;
  opts.processing_clock = [&now] { return sluice::millis{now.load()}; };
  std::vector<watch_row> rows;
  std::mutex rows_mutex;
  sluice::event_queue<ev> q(64);
  std::thread producer([&] {
    q.push(stream_test::at(100, 7));
    q.push(stream_test::at(200, 8));  // moves the watermark past the first: key 7 sets its timer at 1007
    now = 1006;
    q.push(stream_test::at(210, 8));
    now = 1007;  // no event comes: the engine's wake-up finds the timer due
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);  // a hang guard
    while (!fired && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    q.push(stream_test::at(300, 7));
    q.close();
  });
  sluice::run_stream(
      sluice::from_queue(q), watcher(),
      [&](const std::vector<watch_row>& emitted) {
        const std::lock_guard lock(rows_mutex);
        for (const watch_row& r : emitted) {
          rows.push_back(r);
          fired = fired || (r.processing && r.key == 7);
        }
      },
      opts);
  producer.join();
  REQUIRE(fired);
  // Key 7's processing timer fired once, while the stream ran: after its first event, before its
  // second (which was pushed only after the row arrived). Key 8's (at 1008) fired at the end.
  const std::vector<watch_row> processing_rows = [&] {
    std::vector<watch_row> out;
    std::copy_if(rows.begin(), rows.end(), std::back_inserter(out), [](const watch_row& r) { return r.processing; });
    return out;
  }();
  CHECK(processing_rows == std::vector<watch_row>{{7, true, 1}, {8, true, 2}});
}
