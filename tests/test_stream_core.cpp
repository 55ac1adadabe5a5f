// Stream mode's standard-library core, without sockets: the bounded event queue, watermarks,
// window firing and lateness in the partials, the combiner, run_stream over an event_queue
// against run_batch over the same events, and the csv_lines / length_prefixed framings over
// bytes cut into arbitrary pieces. Property tests use fixed seeds; threads are checked by
// invariants, never by timing.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/io/event_queue.hpp"
#include "sluice/io/memory_source.hpp"
#include "sluice/io/stream_format.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/run/stream_combiner.hpp"
#include "sluice/run/watermarks.hpp"
#include "sluice/sluice.hpp"
#include "stream_fixtures.hpp"

using namespace std::chrono_literals;
using stream_test::add_rows;
using stream_test::at;
using stream_test::ev;
using stream_test::row_key;
using stream_test::row_map;
using stream_test::rows_of;
using stream_test::store_rows;

namespace doctest {
// Failed comparisons of result rows print the rows.
template <>
struct StringMaker<row_map> {
  static String convert(const row_map& rows) {
    std::string s = "{";
    for (const auto& [key, value] : rows) {
      s += " (k" + std::to_string(std::get<0>(key)) + " [" + std::to_string(std::get<1>(key)) + "," +
           std::to_string(std::get<2>(key)) + ")):" + std::to_string(value.first) + "/" + std::to_string(value.second);
    }
    s += rows.size() > 0 ? " }" : "}";
    return String(s.c_str());
  }
};
// ...and vectors their elements (the first 40).
template <class T>
struct StringMaker<std::vector<T>> {
  static String convert(const std::vector<T>& v) {
    String s = "[";
    for (std::size_t i = 0; i < v.size() && i < 40; ++i) {
      s += (i == 0 ? "" : " ");
      s += toString(v[i]);
    }
    s += v.size() > 40 ? " ...]" : "]";
    return s;
  }
};
}  // namespace doctest

namespace {

/// Waits for `f`; if it has not finished after a deadline that only a hang can reach, fails the
/// test and calls `unblock` so that the run goes on. (A guard against lost wake-ups, not a
/// timing assertion: a correct queue returns in microseconds.)
template <class R>
R get_or_unblock(std::future<R>& f, const std::function<void()>& unblock, const char* what) {
  if (f.wait_for(30s) != std::future_status::ready) {
    FAIL_CHECK(what);
    unblock();
  }
  return f.get();
}

/// Gives other threads a chance to run (no assertion depends on how long this takes).
template <class Pred>
void yield_until(Pred&& pred, int rounds = 20000) {
  for (int i = 0; i < rounds && !pred(); ++i) {
    std::this_thread::yield();
  }
}

}  // namespace

// =============================================================================================
// event_queue
// =============================================================================================

TEST_CASE("event_queue pops in FIFO order through ring wrap-around and push_always growth") {
  sluice::event_queue<int> q(5);
  std::mt19937_64 rng(11);
  int next_in = 0;
  int next_out = 0;
  std::vector<int> out;
  for (int round = 0; round < 3000; ++round) {
    const auto pushes = rng() % 7;
    for (std::uint64_t i = 0; i < pushes; ++i) {
      if (rng() % 8 == 0) {
        REQUIRE(q.push_always(next_in));  // never refused, even past capacity (the ring grows)
        ++next_in;
      } else if (q.try_push(next_in)) {
        ++next_in;
      }
    }
    if (q.size() > 0) {
      out.clear();
      const std::size_t max = 1 + rng() % 6;
      const std::size_t n = q.pop_batch(out, max);
      REQUIRE(n == out.size());
      REQUIRE(n >= 1);
      REQUIRE(n <= max);
      for (int v : out) {
        REQUIRE(v == next_out);
        ++next_out;
      }
    }
  }
  q.close();
  out.clear();
  while (q.pop_batch(out, 3) > 0) {
  }
  for (int v : out) {
    REQUIRE(v == next_out);
    ++next_out;
  }
  CHECK(next_out == next_in);
  CHECK(next_in > 3000);
}

TEST_CASE("try_push refuses a full queue and a closed one, leaving the value untouched") {
  sluice::event_queue<std::string> q(2);
  const std::string a(40, 'a');  // long strings: a moved-from one would be left empty
  const std::string b(40, 'b');
  const std::string c(40, 'c');
  CHECK(q.capacity() == 2);
  CHECK(q.try_push(std::string(a)));
  CHECK(q.try_push(std::string(b)));
  std::string v = c;
  CHECK_FALSE(q.try_push(v));
  CHECK(v == c);
  CHECK(q.size() == 2);

  std::vector<std::string> out;
  CHECK(q.pop_batch(out, 1) == 1);
  CHECK(q.try_push(v));  // room again: now it is taken

  q.close();
  CHECK(q.closed());
  std::string w(40, 'w');
  CHECK_FALSE(q.try_push(w));
  CHECK(w == std::string(40, 'w'));
  CHECK_FALSE(q.push(std::string(40, 'x')));
  CHECK_FALSE(q.push_always(std::string(40, 'y')));
  const std::vector<std::string> more = {"p", "q"};
  CHECK(q.push_batch(more.begin(), more.end()) == 0);

  // What went in before close still comes out, in order; then 0.
  CHECK(q.pop_batch(out, 10) == 2);
  CHECK(q.pop_batch(out, 10) == 0);
  CHECK(out == std::vector<std::string>{a, b, c});
}

TEST_CASE("push waits while the queue is full and completes once a pop frees a slot") {
  sluice::event_queue<int> q(2);
  REQUIRE(q.push(1));
  REQUIRE(q.push(2));
  std::atomic<bool> returned{false};
  std::atomic<bool> result{false};
  std::thread producer([&] {
    result = q.push(3);
    returned = true;
  });
  yield_until([&] { return returned.load(); });
  // However long the producer has run, it cannot have pushed into a full queue.
  CHECK_FALSE(returned.load());
  CHECK(q.size() == 2);

  std::vector<int> out;
  CHECK(q.pop_batch(out, 1) == 1);
  auto joined = std::async(std::launch::async, [&] { producer.join(); });
  get_or_unblock(joined, [&] { q.close(); }, "push did not resume after a pop freed space");
  CHECK(returned.load());
  CHECK(result.load());
  CHECK(q.pop_batch(out, 10) == 2);
  CHECK(out == std::vector<int>{1, 2, 3});
}

TEST_CASE("close lets pops drain what was queued, then they return 0; a blocked pop wakes up") {
  sluice::event_queue<int> q(8);
  for (int i = 1; i <= 5; ++i) {
    REQUIRE(q.push(i));
  }
  q.close();
  std::vector<int> out;
  CHECK(q.pop_batch(out, 2) == 2);
  CHECK(q.pop_batch(out, 2) == 2);
  CHECK(q.pop_batch(out, 2) == 1);
  CHECK(q.pop_batch(out, 2) == 0);
  CHECK(q.pop_batch(out, 2) == 0);
  CHECK(out == std::vector<int>{1, 2, 3, 4, 5});

  sluice::event_queue<int> empty(4);
  std::atomic<bool> started{false};
  auto popped = std::async(std::launch::async, [&] {
    std::vector<int> got;
    started = true;
    return empty.pop_batch(got, 4);
  });
  yield_until([&] { return started.load(); });
  empty.close();
  CHECK(get_or_unblock(popped, [&] { empty.push_always(0); }, "close did not wake a waiting pop_batch") == 0);
}

TEST_CASE("several producers: the consumer sees every value once and each producer's values in order") {
  constexpr int producers = 4;
  constexpr std::int64_t per_producer = 4000;
  sluice::event_queue<std::int64_t> q(32);  // small: producers keep waiting for space
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&q, p] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(p) + 100);
      const std::int64_t base = std::int64_t{p} * 1'000'000;
      std::int64_t i = 0;
      while (i < per_producer) {
        switch (p) {
          case 0:  // one at a time, waiting
            q.push(base + i++);
            break;
          case 1: {  // batches of random size
            std::vector<std::int64_t> batch;
            const auto n = std::min<std::int64_t>(per_producer - i, 1 + static_cast<std::int64_t>(rng() % 50));
            for (std::int64_t j = 0; j < n; ++j) {
              batch.push_back(base + i + j);
            }
            const std::size_t pushed = q.push_batch(batch.begin(), batch.end());
            i += static_cast<std::int64_t>(pushed);
            break;
          }
          case 2: {  // never waiting: retry what was refused
            std::int64_t v = base + i;
            if (q.try_push(v)) {
              ++i;
            } else {
              std::this_thread::yield();
            }
            break;
          }
          default:
            q.push_always(base + i++);
            break;
        }
      }
    });
  }
  std::thread closer([&] {
    for (auto& t : threads) {
      t.join();
    }
    q.close();
  });
  std::mt19937_64 rng(5);
  std::vector<std::int64_t> out;
  while (q.pop_batch(out, 1 + rng() % 64) > 0) {
  }
  closer.join();

  REQUIRE(out.size() == static_cast<std::size_t>(producers * per_producer));
  std::vector<std::int64_t> next(producers, 0);
  for (std::int64_t v : out) {
    const auto p = static_cast<std::size_t>(v / 1'000'000);
    REQUIRE(p < next.size());
    REQUIRE(v % 1'000'000 == next[p]);  // in order and none twice
    ++next[p];
  }
  for (std::int64_t n : next) {
    CHECK(n == per_producer);
  }
}

TEST_CASE("push_batch waits for space as it goes and stops at close, returning how many went in") {
  std::vector<int> all(10);
  std::iota(all.begin(), all.end(), 0);
  {
    sluice::event_queue<int> q(3);
    std::atomic<std::size_t> pushed{0};
    std::thread producer([&] { pushed = q.push_batch(all.begin(), all.end()); });
    std::vector<int> got;
    while (got.size() < all.size()) {
      q.pop_batch(got, 2);
    }
    producer.join();
    CHECK(pushed.load() == all.size());
    CHECK(got == all);
  }
  {
    sluice::event_queue<int> q(3);
    std::atomic<std::size_t> pushed{0};
    std::thread producer([&] { pushed = q.push_batch(all.begin(), all.end()); });
    std::vector<int> got;
    CHECK(q.pop_batch(got, 1) == 1);
    CHECK(q.pop_batch(got, 1) == 1);
    q.close();  // capacity 3 plus the 2 slots freed: at most 5 can have gone in
    producer.join();
    while (q.pop_batch(got, 10) > 0) {
    }
    CHECK(pushed.load() >= 2);
    CHECK(pushed.load() <= 5);
    CHECK(got.size() == pushed.load());
    CHECK(std::equal(got.begin(), got.end(), all.begin()));
  }
}

TEST_CASE("poke wakes a waiting pop_batch whose interrupted() became true; it returns 0, queue open") {
  sluice::event_queue<int> q(4);
  std::atomic<bool> interrupt{false};
  std::atomic<int> checks{0};
  auto popped = std::async(std::launch::async, [&] {
    std::vector<int> out;
    return q.pop_batch(out, 8, [&] {
      ++checks;
      return interrupt.load();
    });
  });
  yield_until([&] { return checks.load() > 0; });  // it has looked at least once: likely asleep now
  interrupt = true;
  q.poke();
  CHECK(get_or_unblock(popped, [&] { q.close(); }, "poke did not wake the waiting pop_batch") == 0);
  CHECK_FALSE(q.closed());
  CHECK(q.push(7));
  std::vector<int> out;
  CHECK(q.pop_batch(out, 8) == 1);
  CHECK(out == std::vector<int>{7});
}

TEST_CASE("on_space runs after a failed try_push once a pop frees space, and only then") {
  sluice::event_queue<int> q(2);
  int calls = 0;
  int pending = 3;
  bool resumed = false;
  q.on_space([&] {
    ++calls;
    resumed = q.try_push(pending);  // runs outside the queue's lock: the producer may push again
  });
  REQUIRE(q.push(1));
  REQUIRE(q.try_push(2));
  std::vector<int> out;

  CHECK_FALSE(q.try_push(pending));
  CHECK(calls == 0);
  CHECK(q.pop_batch(out, 1) == 1);
  CHECK(calls == 1);
  CHECK(resumed);
  CHECK(q.size() == 2);

  CHECK(q.pop_batch(out, 1) == 1);  // no try_push failed since: nobody is waiting for space
  CHECK(calls == 1);

  REQUIRE(q.try_push(4));
  q.close();
  int refused = 5;
  CHECK_FALSE(q.try_push(refused));  // refused because closed: waiting for space would be futile
  while (q.pop_batch(out, 10) > 0) {
  }
  CHECK(calls == 1);
  CHECK(out == std::vector<int>{1, 2, 3, 4});
}

TEST_CASE("on_space is called from the popping thread when a producer on another thread was refused") {
  sluice::event_queue<int> q(1);
  std::atomic<int> calls{0};
  q.on_space([&] { ++calls; });
  REQUIRE(q.push(0));
  std::atomic<bool> refused{false};
  std::thread producer([&] {
    int v = 1;
    refused = !q.try_push(v);
  });
  producer.join();
  CHECK(refused.load());
  auto popped = std::async(std::launch::async, [&] {
    std::vector<int> out;
    return q.pop_batch(out, 1);
  });
  CHECK(get_or_unblock(popped, [&] { q.close(); }, "pop_batch on a non-empty queue blocked") == 1);
  CHECK(calls.load() == 1);
}

// =============================================================================================
// watermark_tracker
// =============================================================================================

namespace {
using wm_clock = sluice::watermark_tracker::clock;
const wm_clock::time_point t0{std::chrono::hours(1)};  // explicit time points: no real clock involved
sluice::millis ms(std::int64_t v) {
  return sluice::millis{v};
}
}  // namespace

TEST_CASE("the watermark is the minimum over open inputs of latest - max_delay; closing one releases it") {
  sluice::watermark_tracker wm({.max_delay = 100ms});
  CHECK(wm.current() == sluice::millis::min());
  const auto a = wm.open(t0);
  const auto b = wm.open(t0);
  CHECK(a != b);
  CHECK(wm.open_inputs() == 2);
  CHECK(wm.advance(t0) == sluice::millis::min());  // nothing seen yet

  wm.observe(a, ms(1000), t0);
  CHECK(wm.advance(t0) == sluice::millis::min());  // b has said nothing: it holds the watermark
  wm.observe(b, ms(500), t0);
  CHECK(wm.advance(t0) == ms(400));
  wm.observe(a, ms(700), t0);  // older than a's latest: a's own watermark stays at 900
  CHECK(wm.advance(t0) == ms(400));
  wm.observe(b, ms(2000), t0);
  CHECK(wm.advance(t0) == ms(900));
  CHECK(wm.current() == ms(900));
  CHECK(wm.latest_event_time() == ms(2000));

  wm.close(b);  // a closed input no longer holds it back...
  CHECK(wm.advance(t0) == ms(900));  // ...but b was ahead, so a still decides
  wm.observe(a, ms(1500), t0);
  CHECK(wm.advance(t0) == ms(1400));

  wm.close(a);  // no input left: everything seen so far, minus the delay
  CHECK(wm.open_inputs() == 0);
  CHECK(wm.advance(t0) == ms(1900));
  wm.observe(a, ms(99'999), t0);  // a closed input's reports are ignored
  CHECK(wm.latest_event_time() == ms(2000));
  CHECK(wm.advance(t0) == ms(1900));

  wm.finish();
  CHECK(wm.current() == sluice::millis::max());
}

TEST_CASE("a slow input holds the watermark back; closing it lets it jump to the fast input's") {
  sluice::watermark_tracker wm({.max_delay = 10ms});
  const auto fast = wm.open(t0);
  const auto slow = wm.open(t0);
  wm.observe(slow, ms(100), t0);
  for (std::int64_t t = 200; t <= 5000; t += 200) {
    wm.observe(fast, ms(t), t0);
    CHECK(wm.advance(t0) == ms(90));
  }
  wm.close(slow);
  CHECK(wm.advance(t0) == ms(4990));
}

TEST_CASE("an idle input stops holding the watermark back, and holds it again once it speaks") {
  sluice::watermark_tracker wm({.max_delay = 100ms, .idle_timeout = 50ms});
  const auto a = wm.open(t0);
  const auto b = wm.open(t0);
  wm.observe(a, ms(1000), t0);
  wm.observe(b, ms(300), t0);
  CHECK(wm.advance(t0 + 10ms) == ms(200));
  wm.observe(a, ms(1500), t0 + 40ms);
  CHECK(wm.advance(t0 + 49ms) == ms(200));   // b silent for 49 ms: not idle yet
  CHECK(wm.advance(t0 + 50ms) == ms(1400));  // b idle: a alone decides

  wm.observe(b, ms(400), t0 + 60ms);  // b speaks (behind the watermark, which never goes back)
  wm.observe(a, ms(3000), t0 + 60ms);
  CHECK(wm.advance(t0 + 60ms) == ms(1400));
  wm.observe(a, ms(5000), t0 + 100ms);
  CHECK(wm.advance(t0 + 100ms) == ms(1400));  // b active 40 ms ago: it holds the watermark again
  CHECK(wm.advance(t0 + 110ms) == ms(4900));  // b idle again

  CHECK(wm.advance(t0 + 1h) == ms(4900));  // everyone idle: everything seen, minus the delay
  wm.observe(a, ms(9000), t0 + 1h);
  CHECK(wm.advance(t0 + 1h) == ms(8900));

  sluice::watermark_tracker never_idle({.max_delay = 0ms});
  const auto c = never_idle.open(t0);
  const auto d = never_idle.open(t0);
  never_idle.observe(c, ms(100), t0);
  never_idle.observe(d, ms(5000), t0 + 24h);
  CHECK(never_idle.advance(t0 + 48h) == ms(100));  // idle_timeout 0: silence never releases it
}

TEST_CASE("expected_inputs holds the watermark at its minimum until that many inputs have opened") {
  sluice::watermark_tracker wm({.max_delay = 0ms, .expected_inputs = 2});
  const auto a = wm.open(t0);
  wm.observe(a, ms(1000), t0);
  CHECK(wm.advance(t0) == sluice::millis::min());
  wm.close(a);
  CHECK(wm.advance(t0) == sluice::millis::min());  // no input open, but one is still expected
  const auto b = wm.open(t0);
  CHECK(wm.advance(t0) == sluice::millis::min());  // b has said nothing yet
  wm.observe(b, ms(700), t0);
  CHECK(wm.advance(t0) == ms(700));
}

TEST_CASE("a delay larger than the distance to the minimum time saturates instead of overflowing") {
  sluice::watermark_tracker wm({.max_delay = 1000ms});
  const auto a = wm.open(t0);
  wm.observe(a, sluice::millis{std::numeric_limits<std::int64_t>::min() + 5}, t0);
  CHECK(wm.advance(t0) == sluice::millis::min());
  wm.observe(a, ms(-500), t0);
  CHECK(wm.advance(t0) == ms(-1500));
}

TEST_CASE("property: the watermark follows its definition over random opens, reports, closes and idling") {
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    const auto delay = std::chrono::milliseconds(static_cast<std::int64_t>(rng() % 60));
    const auto idle = std::chrono::milliseconds(seed % 2 == 0 ? 0 : 20 + static_cast<std::int64_t>(rng() % 30));
    const std::size_t expected = rng() % 3;
    sluice::watermark_tracker wm({.max_delay = delay, .idle_timeout = idle, .expected_inputs = expected});

    struct model_input {
      sluice::millis latest = sluice::millis::min();
      wm_clock::time_point last_active;
    };
    std::map<sluice::input_id, model_input> open;
    std::size_t opened = 0;
    sluice::millis seen = sluice::millis::min();
    sluice::millis current = sluice::millis::min();
    auto now = t0;
    std::int64_t event_clock = 10'000;

    for (int step = 0; step < 3000; ++step) {
      now += std::chrono::milliseconds(static_cast<std::int64_t>(rng() % 8));
      const auto op = rng() % 10;
      if (op == 0 || open.empty()) {
        const auto id = wm.open(now);
        REQUIRE(open.count(id) == 0);
        open[id] = {sluice::millis::min(), now};
        ++opened;
      } else if (op == 1 && open.size() > 1) {
        auto it = std::next(open.begin(), static_cast<std::ptrdiff_t>(rng() % open.size()));
        wm.close(it->first);
        open.erase(it);
      } else {
        // An input reports; inputs lag the common clock by different amounts, sometimes going back.
        auto it = std::next(open.begin(), static_cast<std::ptrdiff_t>(rng() % open.size()));
        event_clock += static_cast<std::int64_t>(rng() % 20);
        const sluice::millis t{event_clock - static_cast<std::int64_t>(rng() % 200) -
                               static_cast<std::int64_t>(it->first % 3) * 100};
        wm.observe(it->first, t, now);
        it->second.latest = std::max(it->second.latest, t);
        it->second.last_active = now;
        seen = std::max(seen, t);
      }
      if (rng() % 3 == 0) {
        auto delayed = [&](sluice::millis latest) {
          return latest == sluice::millis::min() ? latest : latest - delay;
        };
        std::optional<sluice::millis> candidate;
        for (const auto& [id, in] : open) {
          if (idle.count() > 0 && now - in.last_active >= idle) {
            continue;
          }
          candidate = std::min(candidate.value_or(sluice::millis::max()), delayed(in.latest));
        }
        sluice::millis c = candidate.value_or(delayed(seen));
        if (opened < expected) {
          c = sluice::millis::min();
        }
        const sluice::millis before = current;
        current = std::max(current, c);
        const sluice::millis got = wm.advance(now);
        REQUIRE(got == current);
        REQUIRE(got >= before);  // never decreases
        REQUIRE(wm.current() == got);
      }
    }
    CHECK(wm.latest_event_time() == seen);
    CHECK(wm.open_inputs() == open.size());
  }
}

// =============================================================================================
// Partials in stream mode: advance(watermark), allowed lateness, late events
// =============================================================================================

namespace {

/// A flow's partial and the fused chain feeding it, driven the way a stream worker drives them.
template <class Flow>
class driven_partial {
 public:
  explicit driven_partial(const Flow& f) : partial_(f.make_partial()), chain_(f.bind(partial_)) {}
  driven_partial(const driven_partial&) = delete;
  driven_partial& operator=(const driven_partial&) = delete;

  void add(std::initializer_list<ev> events) {
    for (const ev& e : events) {
      chain_(sluice::millis{0}, e);
    }
  }
  void add(const ev& e) { chain_(sluice::millis{0}, e); }
  row_map advance(std::int64_t w) { return rows_of(partial_.advance(sluice::millis{w})); }
  row_map advance(sluice::millis w) { return rows_of(partial_.advance(w)); }
  auto& partial() { return partial_; }

 private:
  decltype(std::declval<const Flow&>().make_partial()) partial_;
  decltype(std::declval<const Flow&>().bind(std::declval<decltype(partial_)&>())) chain_;
};

constexpr auto end_of_time = sluice::millis::max();

}  // namespace

TEST_CASE("tumbling: a window comes out once, at the first advance to a watermark at or past its end") {
  const auto f = stream_test::tumbling_flow(100ms);
  driven_partial p(f);
  p.add({at(10, 1, 1), at(50, 1, 2), at(120, 2, 4), at(250, 1, 8), at(199, 2, 16), at(-50, 1, 32)});
  CHECK(p.advance(-1).empty());
  CHECK(p.advance(0) == row_map{{{1, -100, 0}, {1, 32}}});  // negative times floor correctly
  CHECK(p.advance(99).empty());
  CHECK(p.advance(100) == row_map{{{1, 0, 100}, {2, 3}}});
  CHECK(p.advance(100).empty());  // exactly once
  CHECK(p.advance(150).empty());
  CHECK(p.advance(250) == row_map{{{2, 100, 200}, {2, 20}}});
  CHECK(p.advance(end_of_time) == row_map{{{1, 200, 300}, {1, 8}}});
  CHECK(p.advance(end_of_time).empty());
  CHECK(p.partial().late_events() == 0);
  CHECK(p.partial().watermark() == end_of_time);
}

TEST_CASE("tumbling: an event whose window has fired is counted late and not added") {
  const auto f = stream_test::tumbling_flow(100ms);
  driven_partial p(f);
  p.add(at(10, 1));
  CHECK(p.advance(100) == row_map{{{1, 0, 100}, {1, 1}}});
  p.add({at(20, 1, 100), at(99, 2, 100)});  // both in [0, 100), which has fired
  CHECK(p.partial().late_events() == 2);
  p.add({at(100, 1, 5), at(150, 1, 6), at(160, 1, 7)});  // [100, 200): on time
  CHECK(p.advance(200) == row_map{{{1, 100, 200}, {3, 18}}});
  p.add(at(170, 1, 1000));  // the window it shared with the previous events has fired since
  CHECK(p.partial().late_events() == 3);
  CHECK(p.advance(end_of_time).empty());
}

TEST_CASE("tumbling with allowed lateness: a late event within L is added and comes out at the next advance") {
  const auto f = stream_test::tumbling_flow(100ms);
  driven_partial p(f);
  p.partial().set_allowed_lateness(50);
  p.add(at(10, 1, 1));
  CHECK(p.advance(100) == row_map{{{1, 0, 100}, {1, 1}}});
  p.add(at(20, 1, 2));  // watermark 100 = end + 0 < end + L
  CHECK(p.partial().late_events() == 0);
  CHECK(p.advance(120) == row_map{{{1, 0, 100}, {1, 2}}});  // the late part (the combiner merges it)
  CHECK(p.advance(120).empty());
  CHECK(p.advance(149).empty());
  p.add(at(30, 1, 4));  // 149 < end + L: still updatable
  CHECK(p.partial().late_events() == 0);
  CHECK(p.advance(149) == row_map{{{1, 0, 100}, {1, 4}}});
  CHECK(p.advance(150).empty());
  p.add(at(40, 1, 8));  // 150 = end + L: closed for good
  CHECK(p.partial().late_events() == 1);
  CHECK(p.advance(end_of_time).empty());

  CHECK_THROWS_AS(p.partial().set_allowed_lateness(-1), std::invalid_argument);
}

TEST_CASE("sliding: an event is late only if all its windows have fired; otherwise it joins the open ones") {
  const auto f = stream_test::sliding_flow(100ms, 50ms);
  driven_partial p(f);
  p.add(at(120, 1, 1));  // [50, 150) and [100, 200)
  CHECK(p.advance(150) == row_map{{{1, 50, 150}, {1, 1}}});
  p.add(at(130, 1, 2));   // [50, 150) fired, [100, 200) open: joins [100, 200) only
  p.add(at(149, 2, 8));   // likewise
  CHECK(p.partial().late_events() == 0);
  CHECK(p.partial().partly_late_events() == 2);  // not late, but missing from [50, 150)
  p.add(at(90, 1, 4));  // [0, 100) and [50, 150): both fired
  CHECK(p.partial().late_events() == 1);
  CHECK(p.partial().partly_late_events() == 2);
  CHECK(p.advance(199).empty());
  CHECK(p.advance(200) == row_map{{{1, 100, 200}, {2, 3}}, {{2, 100, 200}, {1, 8}}});
  CHECK(p.advance(end_of_time).empty());
}

TEST_CASE("session: a session fires once no event can extend it; an event that could only start a fired one is late") {
  const auto f = stream_test::session_flow(30ms);
  driven_partial p(f);
  p.add({at(0, 1, 1), at(20, 1, 2), at(45, 1, 4), at(10, 2, 8)});  // k1 [0, 75), k2 [10, 40)
  CHECK(p.advance(39).empty());
  CHECK(p.advance(40) == row_map{{{2, 10, 40}, {1, 8}}});
  CHECK(p.advance(74).empty());
  p.add(at(60, 1, 16));  // extends k1's session to [0, 90)
  CHECK(p.advance(75).empty());
  CHECK(p.advance(90) == row_map{{{1, 0, 90}, {4, 23}}});
  p.add(at(50, 1, 32));  // its own session [50, 80) would have fired already
  CHECK(p.partial().late_events() == 1);

  // Out of order: 150, then 100, then 125 which bridges [100, 130) and [150, 180).
  p.add({at(150, 1, 1), at(100, 1, 2), at(125, 1, 4)});
  CHECK(p.advance(179).empty());
  CHECK(p.advance(180) == row_map{{{1, 100, 180}, {3, 7}}});
  CHECK(p.advance(end_of_time).empty());
  CHECK(p.partial().late_events() == 1);

  CHECK_THROWS_AS(p.partial().set_allowed_lateness(10), std::invalid_argument);
  CHECK_NOTHROW(p.partial().set_allowed_lateness(0));
}

TEST_CASE("session: an event behind the watermark that falls inside a session still open is added, not late") {
  // The event's window is the session it joins, [0, 34), which has not fired at watermark 20:
  // by the design's rule (late = its window ended at or before the watermark) it is on time,
  // and batch mode counts it in that session.
  const auto f = stream_test::session_flow(10ms);
  driven_partial p(f);
  p.add({at(0, 1, 1), at(8, 1, 1), at(16, 1, 1), at(24, 1, 1)});  // [0, 34)
  CHECK(p.advance(20).empty());
  p.add(at(5, 1, 100));  // alone it would be [5, 15), ended before 20; but it joins [0, 34)
  CHECK(p.partial().late_events() == 0);
  CHECK(p.advance(end_of_time) == row_map{{{1, 0, 34}, {5, 104}}});
}

TEST_CASE("session: an event that would bridge a fired session and an open one is late (rows cannot be retracted)") {
  const auto f = stream_test::session_flow(10ms);
  driven_partial p(f);
  p.add(at(0, 1, 1));  // [0, 10)
  CHECK(p.advance(11) == row_map{{{1, 0, 10}, {1, 1}}});
  p.add({at(12, 1, 1), at(20, 1, 1), at(28, 1, 1)});  // [12, 38), open
  CHECK(p.advance(20).empty());
  p.add(at(8, 1, 100));  // joins the open [12, 38) and the fired [0, 10): batch has one [0, 38)
  CHECK(p.partial().late_events() == 1);
  CHECK(p.advance(end_of_time) == row_map{{{1, 12, 38}, {3, 3}}});
}

TEST_CASE("count windows fire as soon as they are full, whatever the watermark; the rest at the end") {
  const auto f = stream_test::count_window_flow(3);
  driven_partial p(f);
  p.add({at(500, 1, 1), at(400, 1, 2), at(300, 2, 4), at(200, 1, 8), at(100, 1, 16), at(0, 2, 32)});
  CHECK(p.advance(sluice::millis::min()) == row_map{{{1, 0, -1}, {3, 11}}});
  CHECK(p.advance(1000).empty());
  p.add(at(-5, 1, 64));  // long behind the watermark: count windows know no lateness
  CHECK(p.advance(1000).empty());
  p.add(at(-6, 1, 128));
  CHECK(p.advance(1000) == row_map{{{1, 1, -1}, {3, 208}}});
  CHECK(p.advance(end_of_time) == row_map{{{2, 0, -1}, {2, 36}}});
  CHECK(p.partial().late_events() == 0);
}

TEST_CASE("plain aggregate: one global window per key, emitted once at the final watermark, never late") {
  const auto f = stream_test::plain_flow();
  driven_partial p(f);
  p.add({at(500, 1, 1), at(400, 2, 2)});
  CHECK(p.advance(1000).empty());
  p.add({at(0, 1, 4), at(-100, 3, 8)});
  CHECK(p.advance(2000).empty());
  CHECK(p.advance(end_of_time) == row_map{{{1, 0, 0}, {2, 5}}, {{2, 0, 0}, {1, 2}}, {{3, 0, 0}, {1, 8}}});
  CHECK(p.advance(end_of_time).empty());
  CHECK(p.partial().late_events() == 0);
}

namespace {

/// floor(a / b) for b > 0 (written here, not taken from the library: the reference is independent).
std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/// The windows [start, end) of size `size` starting at multiples of `slide` that contain t.
std::vector<std::pair<std::int64_t, std::int64_t>> windows_containing(std::int64_t t, std::int64_t size,
                                                                      std::int64_t slide) {
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (std::int64_t k = floor_div(t - size, slide) + 1; k <= floor_div(t, slide); ++k) {
    out.emplace_back(k * slide, k * slide + size);
  }
  return out;
}

/// The design's lateness rule: a window takes no more events once the watermark is L past its end.
bool closed_for_good(std::int64_t watermark, std::int64_t end, std::int64_t lateness) {
  return watermark >= end && watermark - end >= lateness;
}

/// A naive model of stream mode over one ordered input with assigned (tumbling or sliding)
/// windows: event i meets the watermark W_i = max(t_0..t_{i-1}) - D; it joins its windows that
/// are not closed for good at W_i and is late when there are none.
struct assigned_window_model {
  row_map rows;                                // every contribution that was added
  std::vector<std::int64_t> late_times;        // the late events' times, in arrival order
  std::vector<std::int64_t> partly_late_times;  // events that missed some windows, reached others
  row_map late_rows;                           // what the late events would have added to their windows

  assigned_window_model(const std::vector<ev>& events, std::int64_t size, std::int64_t slide, std::int64_t delay,
                        std::int64_t lateness) {
    std::optional<std::int64_t> max_seen;
    for (const ev& e : events) {
      const std::int64_t t = e.t.count();
      const std::int64_t w = max_seen ? *max_seen - delay : std::numeric_limits<std::int64_t>::min();
      bool added = false;
      bool missed = false;
      for (const auto& [start, end] : windows_containing(t, size, slide)) {
        auto& target = closed_for_good(w, end, lateness) ? late_rows : rows;
        target[{e.k, start, end}].first += 1;
        target[{e.k, start, end}].second += e.v;
        added = added || !closed_for_good(w, end, lateness);
        missed = missed || closed_for_good(w, end, lateness);
      }
      if (!added) {
        late_times.push_back(t);
      } else if (missed) {
        partly_late_times.push_back(t);
      }
      max_seen = std::max(max_seen.value_or(t), t);
    }
  }
};

template <class Flow>
row_map batch_rows(const Flow& f, const std::vector<ev>& events) {
  const auto store = sluice::run_batch(sluice::from_range(events), f);
  return store_rows(store);
}

}  // namespace

TEST_CASE("property: tumbling and sliding partials fire each window's new part once, at the right advance") {
  // Drive a partial as a worker does (advance to max seen - D every few events) with events
  // further out of order than D, and compare every advance's output with a naive model.
  struct shape {
    std::int64_t size, slide;
  };
  for (const shape sh : {shape{100, 100}, shape{100, 25}, shape{60, 40}}) {
    for (const std::int64_t lateness : {0, 45}) {
      for (std::uint64_t seed = 1; seed <= 3; ++seed) {
        CAPTURE(sh.size);
        CAPTURE(sh.slide);
        CAPTURE(lateness);
        CAPTURE(seed);
        constexpr std::int64_t delay = 30;
        const auto events = stream_test::random_events(seed * 31 + static_cast<std::uint64_t>(sh.slide), 1500, 4,
                                                       delay, 6);
        const auto f = stream_test::sliding_flow(std::chrono::milliseconds(sh.size), std::chrono::milliseconds(sh.slide));
        driven_partial p(f);
        p.partial().set_allowed_lateness(lateness);
        std::mt19937_64 rng(seed);

        row_map pending;  // the model's contributions not yet fired
        row_map all_added;
        std::uint64_t late = 0;
        std::uint64_t partly_late = 0;
        std::int64_t w = std::numeric_limits<std::int64_t>::min();
        std::optional<std::int64_t> max_seen;
        auto fire = [&](std::int64_t to) {
          w = std::max(w, to);
          row_map expected;
          for (auto it = pending.begin(); it != pending.end();) {
            if (std::get<2>(it->first) <= w) {
              expected.insert(*it);
              it = pending.erase(it);
            } else {
              ++it;
            }
          }
          REQUIRE(p.advance(to) == expected);
        };
        for (const ev& e : events) {
          bool added = false;
          bool missed = false;
          for (const auto& [start, end] : windows_containing(e.t.count(), sh.size, sh.slide)) {
            missed = missed || closed_for_good(w, end, lateness);
            if (!closed_for_good(w, end, lateness)) {
              pending[{e.k, start, end}].first += 1;
              pending[{e.k, start, end}].second += e.v;
              all_added[{e.k, start, end}].first += 1;
              all_added[{e.k, start, end}].second += e.v;
              added = true;
            }
          }
          late += added ? 0 : 1;
          partly_late += added && missed ? 1 : 0;
          p.add(e);
          max_seen = std::max(max_seen.value_or(e.t.count()), e.t.count());
          if (rng() % 4 == 0) {
            fire(*max_seen - delay);
          }
        }
        fire(std::numeric_limits<std::int64_t>::max());
        CHECK(pending.empty());
        CHECK(p.partial().late_events() == late);
        CHECK(p.partial().partly_late_events() == partly_late);
        CHECK(late > 0);  // the input really had late events
        CHECK(all_added.size() > 0);
      }
    }
  }
}

TEST_CASE("property: session partials advanced as the watermark moves fire exactly the batch sessions") {
  for (const std::int64_t gap : {5, 15, 40}) {
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      CAPTURE(gap);
      CAPTURE(seed);
      constexpr std::int64_t delay = 25;
      const auto events = stream_test::random_events(seed + 700, 2000, 6, delay);
      const auto f = stream_test::session_flow(std::chrono::milliseconds(gap));
      driven_partial p(f);
      std::mt19937_64 rng(seed);
      row_map fired;
      std::int64_t max_seen = std::numeric_limits<std::int64_t>::min();
      bool twice = false;
      auto fire = [&](sluice::millis to) {
        for (const auto& [key, value] : p.advance(to)) {
          CHECK(sluice::millis{std::get<2>(key)} <= to);  // complete when it comes out
          twice = twice || fired.count(key) > 0;
          fired[key] = value;
        }
      };
      for (const ev& e : events) {
        p.add(e);
        max_seen = std::max(max_seen, e.t.count());
        if (rng() % 3 == 0) {
          fire(sluice::millis{max_seen - delay});
        }
      }
      fire(end_of_time);
      CHECK_FALSE(twice);
      CHECK(p.partial().late_events() == 0);
      CHECK(fired == batch_rows(f, events));
    }
  }
}

// =============================================================================================
// stream_combiner
// =============================================================================================

TEST_CASE("combiner: a window is emitted once every worker has fired past its end, with all parts merged") {
  using key = sluice::windowed_key<std::int64_t>;
  using state = sluice::keyed_state<key, sluice::count>;
  const key w0{1, {sluice::millis{0}, sluice::millis{100}}};
  const key w1{1, {sluice::millis{100}, sluice::millis{200}}};
  sluice::stream_combiner<key, sluice::count> c(sluice::count{}, 2, 0);
  std::vector<row_map> calls;
  auto sink = [&](const auto& rows) { calls.push_back(store_rows(rows)); };

  state part0;
  part0.slot(w0) = 2;
  c.ship(0, part0, sluice::millis{100}, sink);
  CHECK(calls.empty());  // worker 1 may still hold events of [0, 100)
  state part1;
  part1.slot(w0) = 3;
  part1.slot(w1) = 7;  // worker 1 fired further than worker 0
  c.ship(1, part1, sluice::millis{250}, sink);
  REQUIRE(calls.size() == 1);
  CHECK(calls[0] == row_map{{{1, 0, 100}, {5, 0}}});
  c.ship(0, state{}, sluice::millis{199}, sink);
  CHECK(calls.size() == 1);
  c.ship(0, state{}, sluice::millis{200}, sink);
  REQUIRE(calls.size() == 2);
  CHECK(calls[1] == row_map{{{1, 100, 200}, {7, 0}}});
  CHECK(c.rows_emitted() == 2);
}

TEST_CASE("combiner with allowed lateness: a late part re-emits the window with its whole updated value") {
  using key = sluice::windowed_key<std::int64_t>;
  using state = sluice::keyed_state<key, sluice::count>;
  const key w0{1, {sluice::millis{0}, sluice::millis{100}}};
  sluice::stream_combiner<key, sluice::count> c(sluice::count{}, 1, 50);
  std::vector<row_map> calls;
  auto sink = [&](const auto& rows) { calls.push_back(store_rows(rows)); };
  state part;
  part.slot(w0) = 2;
  c.ship(0, part, sluice::millis{100}, sink);
  part.slot(w0) = 1;
  c.ship(0, part, sluice::millis{120}, sink);
  part.slot(w0) = 4;
  c.ship(0, part, sluice::millis{149}, sink);
  REQUIRE(calls.size() == 3);
  CHECK(calls[0] == row_map{{{1, 0, 100}, {2, 0}}});
  CHECK(calls[1] == row_map{{{1, 0, 100}, {3, 0}}});
  CHECK(calls[2] == row_map{{{1, 0, 100}, {7, 0}}});
}

TEST_CASE("combiner: unwindowed rows wait for the end of the stream; count-window rows need no watermark") {
  {
    using state = sluice::keyed_state<std::int64_t, sluice::count>;
    sluice::stream_combiner<std::int64_t, sluice::count> c(sluice::count{}, 2, 0);
    std::vector<row_map> calls;
    auto sink = [&](const auto& rows) { calls.push_back(store_rows(rows)); };
    state a;
    a.slot(std::int64_t{1}) = 2;
    c.ship(0, a, sluice::millis{1'000'000}, sink);
    c.ship(1, a, sluice::millis{1'000'000}, sink);
    CHECK(calls.empty());
    c.ship(0, state{}, sluice::millis::max(), sink);
    CHECK(calls.empty());
    c.ship(1, state{}, sluice::millis::max(), sink);
    REQUIRE(calls.size() == 1);
    CHECK(calls[0] == row_map{{{1, 0, 0}, {4, 0}}});
  }
  {
    using key = sluice::windowed_key<std::int64_t, sluice::count_window_index>;
    using state = sluice::keyed_state<key, sluice::count>;
    sluice::stream_combiner<key, sluice::count> c(sluice::count{}, 1, 0);
    std::vector<row_map> calls;
    auto sink = [&](const auto& rows) { calls.push_back(store_rows(rows)); };
    state a;
    a.slot(key{3, {0}}) = 5;
    c.ship(0, a, sluice::millis::min(), sink);
    REQUIRE(calls.size() == 1);
    CHECK(calls[0] == row_map{{{3, 0, -1}, {5, 0}}});
  }
}

// =============================================================================================
// run_stream over an event_queue against run_batch
// =============================================================================================

namespace {

/// What a stream run delivered: each row's last emitted value, how often each row was emitted,
/// the sink calls, the late events seen by on_late, and the stats.
struct stream_outcome {
  row_map rows;
  std::map<row_key, int> emissions;
  std::size_t sink_calls = 0;
  std::vector<std::int64_t> late_times;         // on_late: events that reached none of their windows
  std::vector<std::int64_t> partly_late_times;  // on_late: sliding events that missed some
  sluice::stream_stats stats;
};

/// Runs `f` over `events` pushed by a producer thread into a small event_queue (so that it
/// keeps waiting for space), by single pushes, push_batch and try_push in a random mix.
template <class Flow>
stream_outcome run_over_queue(const Flow& f, const std::vector<ev>& events, sluice::stream_options opts,
                              std::uint64_t seed) {
  sluice::event_queue<ev> q(64);
  stream_outcome out;
  opts.on_late = [&out](const sluice::late_event& late) {
    CHECK(late.source == "queue");
    CHECK(late.offset == 0);
    CHECK(late.text.empty());
    (late.partly ? out.partly_late_times : out.late_times).push_back(late.event_time.count());
  };
  std::thread producer([&q, &events, seed] {
    std::mt19937_64 rng(seed);
    std::size_t i = 0;
    while (i < events.size()) {
      const auto how = rng() % 4;
      if (how == 0) {
        const std::size_t n = std::min<std::size_t>(events.size() - i, 1 + rng() % 40);
        const auto first = events.begin() + static_cast<std::ptrdiff_t>(i);
        i += q.push_batch(first, first + static_cast<std::ptrdiff_t>(n));
      } else if (how == 1) {
        ev v = events[i];
        if (q.try_push(v)) {
          ++i;
        } else {
          std::this_thread::yield();
        }
      } else {
        q.push(events[i++]);
      }
    }
    q.close();
  });
  struct join_on_exit {
    sluice::event_queue<ev>& q;
    std::thread& t;
    ~join_on_exit() {
      q.close();
      t.join();
    }
  } joiner{q, producer};
  out.stats = sluice::run_stream(
      sluice::from_queue(q), f,
      [&out](const auto& rows) {
        ++out.sink_calls;
        for (const auto& row : rows.scan()) {
          const row_key key = stream_test::flat_key(row.key);
          out.rows[key] = stream_test::flat_value(row.value);  // a re-emitted row replaces its earlier value
          ++out.emissions[key];
        }
      },
      opts);
  return out;
}

/// When a flow's rows reach the sink: all at the end, or as the run goes (whether count
/// windows do is a test of its own).
enum class emits { at_end, during_the_run, unchecked };

template <class Flow>
void check_stream_equals_batch(const Flow& f, const std::string& name, emits when) {
  for (std::uint64_t seed = 1; seed <= 2; ++seed) {
    for (const std::size_t queue_events : {std::size_t{1}, std::size_t{7}, std::size_t{65536}}) {
      CAPTURE(name);
      CAPTURE(seed);
      CAPTURE(queue_events);
      constexpr std::int64_t delay = 40;
      const auto events = stream_test::random_events(seed * 1000 + queue_events, 2500, 5, delay);
      sluice::stream_options opts;
      opts.max_delay = std::chrono::milliseconds(delay);
      opts.queue_events = queue_events;
      const stream_outcome out = run_over_queue(f, events, opts, seed);
      const row_map batch = batch_rows(f, events);
      CHECK(out.rows == batch);
      CHECK(out.stats.events == events.size());
      CHECK(out.stats.late_events == 0);
      CHECK(out.stats.partly_late_events == 0);
      CHECK(out.late_times.empty());
      CHECK(out.partly_late_times.empty());
      CHECK(out.stats.rows_emitted == batch.size());
      for (const auto& [key, times] : out.emissions) {
        CHECK(times == 1);  // no lateness: every row once
      }
      if (when == emits::at_end) {
        CHECK(out.sink_calls == 1);  // unwindowed: all rows together, at the end
      } else if (when == emits::during_the_run) {
        CHECK(out.sink_calls > 1);  // windows come out as the watermark passes them
      }
    }
  }
}

}  // namespace

TEST_CASE("mode equivalence: with disorder within max_delay, run_stream over a queue equals run_batch") {
  check_stream_equals_batch(stream_test::tumbling_flow(100ms), "tumbling", emits::during_the_run);
  check_stream_equals_batch(stream_test::sliding_flow(100ms, 25ms), "sliding", emits::during_the_run);
  check_stream_equals_batch(stream_test::session_flow(15ms), "session", emits::during_the_run);
  check_stream_equals_batch(stream_test::count_window_flow(7), "count window", emits::unchecked);
  check_stream_equals_batch(stream_test::plain_flow(), "plain", emits::at_end);
}

TEST_CASE("run_stream emits each count window as soon as it is full, not only at the end of the stream") {
  // Count windows know no event time, so the watermark never moves for them; they must still
  // come out as they fill ("a count window as soon as it is full"), or an unbounded stream
  // would never emit anything. With one event per pop, window i of key 1 fills at event 2(i+1).
  std::vector<ev> events;
  for (std::int64_t i = 0; i < 10; ++i) {
    events.push_back(at(i, 1, i));
  }
  sluice::event_queue<ev> q(64);
  for (const ev& e : events) {
    REQUIRE(q.push(e));
  }
  q.close();
  sluice::stream_metrics metrics;
  sluice::stream_options opts;
  opts.queue_events = 1;
  opts.metrics = &metrics;
  std::vector<std::uint64_t> events_seen_at_emission;
  row_map rows;
  sluice::run_stream(
      sluice::from_queue(q), stream_test::count_window_flow(2),
      [&](const auto& store) {
        events_seen_at_emission.push_back(metrics.events.load());
        add_rows(rows, store_rows(store));
      },
      opts);
  CHECK(rows == row_map{{{1, 0, -1}, {2, 1}},
                        {{1, 1, -1}, {2, 5}},
                        {{1, 2, -1}, {2, 9}},
                        {{1, 3, -1}, {2, 13}},
                        {{1, 4, -1}, {2, 17}}});
  CHECK(events_seen_at_emission == std::vector<std::uint64_t>{2, 4, 6, 8, 10});
}

TEST_CASE("disorder beyond max_delay: exactly the events the model calls late are counted and reported") {
  // One event per pop (queue_events = 1) makes the watermark each event meets deterministic:
  // the max of the earlier events' times minus D.
  constexpr std::int64_t delay = 30;
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    CAPTURE(seed);
    const auto events = stream_test::random_events(seed + 40, 3000, 4, delay, 8);
    sluice::stream_options opts;
    opts.max_delay = std::chrono::milliseconds(delay);
    opts.queue_events = 1;
    {
      const auto f = stream_test::tumbling_flow(100ms);
      const assigned_window_model model(events, 100, 100, delay, 0);
      const stream_outcome out = run_over_queue(f, events, opts, seed);
      REQUIRE(model.late_times.size() > 10);  // the input really has late events
      CHECK(out.stats.late_events == model.late_times.size());
      CHECK(out.late_times == model.late_times);
      CHECK(out.stats.partly_late_events == 0);  // one window per event: all or nothing
      CHECK(out.partly_late_times.empty());
      CHECK(out.rows == model.rows);
      row_map with_late = out.rows;  // what was counted plus what was late is everything
      add_rows(with_late, model.late_rows);
      CHECK(with_late == batch_rows(f, events));
      CHECK(out.stats.events == events.size());
    }
    {
      const auto f = stream_test::sliding_flow(100ms, 25ms);
      const assigned_window_model model(events, 100, 25, delay, 0);
      const stream_outcome out = run_over_queue(f, events, opts, seed);
      REQUIRE(model.late_times.size() > 0);
      REQUIRE(model.partly_late_times.size() > 0);
      CHECK(out.stats.late_events == model.late_times.size());
      CHECK(out.late_times == model.late_times);
      CHECK(out.stats.partly_late_events == model.partly_late_times.size());
      CHECK(out.partly_late_times == model.partly_late_times);
      CHECK(out.rows == model.rows);
    }
  }
}

TEST_CASE("allowed lateness through run_stream: late updates re-emit windows; the final rows match the model") {
  constexpr std::int64_t delay = 30;
  constexpr std::int64_t lateness = 60;
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    CAPTURE(seed);
    const auto events = stream_test::random_events(seed + 90, 3000, 4, delay, 5);
    sluice::stream_options opts;
    opts.max_delay = std::chrono::milliseconds(delay);
    opts.allowed_lateness = std::chrono::milliseconds(lateness);
    opts.queue_events = 1;
    const auto f = stream_test::tumbling_flow(100ms);
    const assigned_window_model model(events, 100, 100, delay, lateness);
    const stream_outcome out = run_over_queue(f, events, opts, seed);
    CHECK(out.rows == model.rows);
    CHECK(out.stats.late_events == model.late_times.size());
    CHECK(out.late_times == model.late_times);
    const auto reemitted = std::count_if(out.emissions.begin(), out.emissions.end(),
                                         [](const auto& e) { return e.second > 1; });
    CHECK(reemitted > 0);  // some windows really were updated after they fired
    row_map with_late = out.rows;
    add_rows(with_late, model.late_rows);
    CHECK(with_late == batch_rows(f, events));
  }
}

// =============================================================================================
// csv_lines over arbitrary byte pieces
// =============================================================================================

namespace {

struct note_rec {
  std::int64_t id = 0;
  std::int64_t amount = 0;
  std::string note;  // owned: records outlive the bytes they were parsed from
  bool operator==(const note_rec&) const = default;
};

auto note_schema() {
  return sluice::schema<note_rec>(sluice::column("id", &note_rec::id), sluice::column("amount", &note_rec::amount),
                                  sluice::column("note", &note_rec::note));
}
const std::string note_header = "id,amount,note";

struct seen_bad {
  std::uint64_t line = 0;
  std::uint64_t offset = 0;
  std::string reason;
  bool operator==(const seen_bad&) const = default;
};

/// What a format produced from one input: records with their raw text, and bad records.
template <class T>
struct parsed_as {
  std::vector<T> records;
  std::vector<std::string> raws;
  std::vector<std::uint64_t> offsets;  // of each record's first byte in the input
  std::vector<seen_bad> bad;
  bool operator==(const parsed_as&) const = default;
};
using parsed = parsed_as<note_rec>;

/// A CSV input and what parsing it must give.
struct csv_case {
  std::string bytes;
  parsed expected;
};

/// A random CSV stream: quoted fields (with delimiters, "" escapes, embedded LF and CRLF), empty
/// fields, LF and CRLF line ends, blank lines, and bad lines of three kinds, each with its line
/// and offset known.
csv_case random_csv(std::uint64_t seed, std::size_t n, bool header = true) {
  std::mt19937_64 rng(seed);
  csv_case c;
  std::uint64_t line = 1;
  auto eol = [&] { return rng() % 3 == 0 ? std::string("\r\n") : std::string("\n"); };
  if (header) {
    c.bytes += note_header + eol();
    ++line;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t offset = c.bytes.size();
    const auto kind = rng() % 24;
    std::string text;
    if (kind == 0) {
      text = "7,8" + eol();
      c.expected.bad.push_back({line, offset, "expected 3 fields, found 2"});
    } else if (kind == 1) {
      const std::string id = "x" + std::to_string(i);
      text = id + ",5,n" + eol();
      c.expected.bad.push_back({line, offset, "field 'id' (column 1): not an integer: '" + id + "'"});
    } else if (kind == 2) {
      text = "9,9,\"ab\"c" + eol();
      c.expected.bad.push_back({line, offset, "unexpected character after a closing quote"});
    } else if (kind == 3) {
      text = eol();  // a blank line: no record
    } else {
      note_rec r{static_cast<std::int64_t>(i), static_cast<std::int64_t>(rng() % 100'000) - 50'000, {}};
      std::string note_field;
      // Notes whose CSV field needs quotes: a delimiter, newlines (LF, CRLF), "" escapes.
      static const std::pair<const char*, const char*> quoted_notes[] = {
          {"a,b", "\"a,b\""},
          {"line one\nline two", "\"line one\nline two\""},
          {"crlf\r\ninside", "\"crlf\r\ninside\""},
          {"say \"hi\"", "\"say \"\"hi\"\"\""},
          {"\"\n\"", "\"\"\"\n\"\"\""},
      };
      const auto pick = rng() % 8;
      if (pick == 0) {
        r.note = "";
        note_field = rng() % 2 == 0 ? "" : "\"\"";
      } else if (pick <= 5) {
        r.note = quoted_notes[pick - 1].first;
        note_field = quoted_notes[pick - 1].second;
      } else {
        r.note = "n" + std::to_string(i);
        note_field = rng() % 2 == 0 ? r.note : "\"" + r.note + "\"";
      }
      const std::string id = std::to_string(r.id);
      text = (rng() % 5 == 0 ? "\"" + id + "\"" : id) + "," + std::to_string(r.amount) + "," + note_field + eol();
      c.expected.records.push_back(r);
      c.expected.raws.push_back(text);
      c.expected.offsets.push_back(offset);
    }
    line += static_cast<std::uint64_t>(std::count(text.begin(), text.end(), '\n'));
    c.bytes += text;
  }
  return c;
}

enum class cut_mode { whole, single_bytes, small, mixed };

/// `bytes` cut into pieces: all at once, 1 byte each, 1-8 bytes, or 1-300 bytes with some 1s.
std::vector<std::string> cut(std::string_view bytes, cut_mode mode, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> pieces;
  std::size_t at = 0;
  while (at < bytes.size()) {
    std::size_t n = bytes.size();
    switch (mode) {
      case cut_mode::whole:
        break;
      case cut_mode::single_bytes:
        n = 1;
        break;
      case cut_mode::small:
        n = 1 + rng() % 8;
        break;
      case cut_mode::mixed:
        n = rng() % 4 == 0 ? 1 : 1 + rng() % 300;
        break;
    }
    n = std::min(n, bytes.size() - at);
    pieces.emplace_back(bytes.substr(at, n));
    at += n;
  }
  return pieces;
}

const cut_mode all_cut_modes[] = {cut_mode::whole, cut_mode::single_bytes, cut_mode::small, cut_mode::mixed};

/// Feeds the pieces to a fresh input of `fmt` (each piece its own buffer, freed after its feed,
/// so a view kept into one would be caught by ASan), then closes the input.
template <class Format>
parsed_as<typename Format::value_type> feed_pieces(const Format& fmt, const std::vector<std::string>& pieces,
                                                   bool needs_final_newline) {
  parsed_as<typename Format::value_type> out;
  auto in = fmt.new_input("test input");
  auto emit = [&](const auto& value, std::string_view raw, std::uint64_t offset) {
    out.records.push_back(value);
    out.raws.emplace_back(raw);
    out.offsets.push_back(offset);
  };
  auto report = [&](const sluice::bad_record& b) {
    CHECK(b.source == "test input");
    out.bad.push_back({b.line, b.offset, std::string(b.reason)});
    return true;
  };
  bool going = true;
  for (const std::string& piece : pieces) {
    const auto copy = std::make_unique<std::string>(piece);
    going = fmt.feed(in, *copy, emit, report) && going;
  }
  CHECK(going);  // the report never asks to stop
  CHECK(fmt.close(in, needs_final_newline, emit, report));
  return out;
}

sluice::csv_lines<decltype(note_schema())> note_format(std::size_t max_record_bytes = std::size_t{1} << 20U) {
  sluice::input_options opts;
  opts.max_record_bytes = max_record_bytes;
  return sluice::csv_lines(note_schema(), note_header, opts);
}

}  // namespace

namespace doctest {
template <>
struct StringMaker<seen_bad> {
  static String convert(const seen_bad& b) {
    return String(("line " + std::to_string(b.line) + " @" + std::to_string(b.offset) + ": " + b.reason).c_str());
  }
};
template <>
struct StringMaker<note_rec> {
  static String convert(const note_rec& r) {
    return String(("{" + std::to_string(r.id) + "," + std::to_string(r.amount) + ",'" + r.note + "'}").c_str());
  }
};
}  // namespace doctest

TEST_CASE("csv_lines: a stream cut into any pieces yields exactly the records, raw texts and bad records") {
  const auto fmt = note_format();
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    const csv_case c = random_csv(seed, 250);
    for (const cut_mode mode : all_cut_modes) {
      CAPTURE(seed);
      CAPTURE(static_cast<int>(mode));
      const parsed got = feed_pieces(fmt, cut(c.bytes, mode, seed * 7 + 1), true);
      CHECK(got.records == c.expected.records);
      CHECK(got.raws == c.expected.raws);
      CHECK(got.offsets == c.expected.offsets);
      CHECK(got.bad == c.expected.bad);
    }
  }
}

TEST_CASE("csv_lines: a closing quote, CR and LF split across pieces end the record cleanly") {
  // A quoted last field followed by CRLF, cut at every position of the record in turn.
  const auto fmt = note_format();
  const std::string bytes = note_header + "\n1,2,\"quoted note\"\r\n3,4,plain\r\n";
  for (std::size_t split = 1; split < bytes.size(); ++split) {
    CAPTURE(split);
    const parsed got = feed_pieces(fmt, {bytes.substr(0, split), bytes.substr(split)}, true);
    CHECK(got.records == std::vector<note_rec>{{1, 2, "quoted note"}, {3, 4, "plain"}});
    CHECK(got.bad.empty());
  }
}

TEST_CASE("csv_lines: the header is skipped at the start of an input, however it arrives, and nowhere else") {
  const auto fmt = note_format();
  for (const std::string& header_line :
       {note_header + "\n", note_header + "\r\n", "\xEF\xBB\xBF" + note_header + "\n"}) {
    const std::string bytes = header_line + "1,2,a\n" + note_header + "\n3,4,b\n";
    for (const cut_mode mode : all_cut_modes) {
      CAPTURE(static_cast<int>(mode));
      const parsed got = feed_pieces(fmt, cut(bytes, mode, 3), true);
      CHECK(got.records == std::vector<note_rec>{{1, 2, "a"}, {3, 4, "b"}});
      const std::uint64_t second_header_at = header_line.size() + 6;
      CHECK(got.bad == std::vector<seen_bad>{{3, second_header_at, "field 'id' (column 1): not an integer: 'id'"}});
    }
  }
  // No header at all: the first line is data.
  CHECK(feed_pieces(fmt, {"5,6,c\n", "7,8,d\n"}, true).records == std::vector<note_rec>{{5, 6, "c"}, {7, 8, "d"}});
  CHECK(feed_pieces(fmt, {"5", ",6,c\n7,8,d\n"}, true).records == std::vector<note_rec>{{5, 6, "c"}, {7, 8, "d"}});
}

TEST_CASE("csv_lines: after an over-long first line, a header-like second line is a bad record, however cut") {
  // Only the input's first line may be the header; an over-long first line is still its first.
  const auto fmt = note_format(64);
  const std::string bytes = std::string(100, 'z') + "\n" + note_header + "\n1,2,a\n";
  for (const cut_mode mode : all_cut_modes) {
    CAPTURE(static_cast<int>(mode));
    const parsed got = feed_pieces(fmt, cut(bytes, mode, 6), true);
    CHECK(got.records == std::vector<note_rec>{{1, 2, "a"}});
    REQUIRE(got.bad.size() == 2);
    CHECK(got.bad[0].line == 1);
    CHECK(got.bad[1] == seen_bad{2, 101, "field 'id' (column 1): not an integer: 'id'"});
  }
}

TEST_CASE("csv_lines: a line over max_record_bytes is reported once with its position; the next line parses") {
  constexpr std::size_t max = 64;
  const auto fmt = note_format(max);
  const std::string first = note_header + "\n1,1,a\n";
  const std::string long_line = "2,2," + std::string(300, 'x') + "\n";
  const std::string rest = "3,3,b\n4,4\n5,5,c\n";
  const std::string bytes = first + long_line + rest;
  const std::uint64_t long_at = first.size();
  const std::uint64_t malformed_at = first.size() + long_line.size() + 6;
  for (const cut_mode mode : all_cut_modes) {
    for (std::uint64_t seed = 1; seed <= 5; ++seed) {
      CAPTURE(static_cast<int>(mode));
      CAPTURE(seed);
      const parsed got = feed_pieces(fmt, cut(bytes, mode, seed), true);
      CHECK(got.records == std::vector<note_rec>{{1, 1, "a"}, {3, 3, "b"}, {5, 5, "c"}});
      REQUIRE(got.bad.size() == 2);
      CHECK(got.bad[0].line == 3);
      CHECK(got.bad[0].offset == long_at);
      CHECK(got.bad[0].reason.find("max record size (64 bytes)") != std::string::npos);
      CHECK(got.bad[1] == seen_bad{5, malformed_at, "expected 3 fields, found 2"});
    }
  }
  // The long line in one piece, then the rest: the same.
  const parsed split = feed_pieces(fmt, {first, long_line, rest}, true);
  CHECK(split.bad.size() == 2);
  CHECK(split.records.size() == 3);
}

TEST_CASE("csv_lines: an over-long record's dead-letter text is its first max_record_bytes, however cut") {
  // Found by tests/fuzz/fuzz_stream_format: when the record's first bytes had to be carried to
  // the next piece, the text reported was only those carried bytes.
  constexpr std::size_t max = 16;
  const auto fmt = note_format(max);
  const std::string long_line = "2,2," + std::string(40, 'x') + "\n";
  const std::string bytes = note_header + "\n" + long_line + "3,3,b\n";
  for (const cut_mode mode : all_cut_modes) {
    for (std::uint64_t seed = 1; seed <= 5; ++seed) {
      CAPTURE(static_cast<int>(mode));
      CAPTURE(seed);
      auto in = fmt.new_input("cut");
      std::vector<std::string> texts;
      std::vector<note_rec> records;
      auto emit = [&](const note_rec& r, std::string_view /*raw*/, std::uint64_t /*offset*/) { records.push_back(r); };
      auto report = [&](const sluice::bad_record& b) {
        texts.emplace_back(b.text);
        return true;
      };
      for (const std::string& piece : cut(bytes, mode, seed)) {
        fmt.feed(in, piece, emit, report);
      }
      fmt.close(in, true, emit, report);
      CHECK(texts == std::vector<std::string>{long_line.substr(0, max)});
      CHECK(records == std::vector<note_rec>{{3, 3, "b"}});
    }
  }
}

TEST_CASE("csv_lines: an over-long first line is one bad record, a long header is skipped, however cut") {
  // Found by tests/fuzz/fuzz_stream_format: a first line without its newline was carried whole
  // when it came in one piece (and reported at close as cut off), but reported as too long when
  // it came in several; and a header longer than the max record size was skipped or reported
  // depending on the pieces.
  const auto fmt = note_format(8);  // the header, "id,amount,note", is 14 bytes
  for (const cut_mode mode : all_cut_modes) {
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      CAPTURE(static_cast<int>(mode));
      CAPTURE(seed);
      const parsed headed = feed_pieces(fmt, cut(note_header + "\r\n1,2,a\n", mode, seed), true);
      CHECK(headed.records == std::vector<note_rec>{{1, 2, "a"}});
      CHECK(headed.bad.empty());
      const parsed unended = feed_pieces(fmt, cut(std::string(30, 'z'), mode, seed), true);
      CHECK(unended.records.empty());
      CHECK(unended.bad == std::vector<seen_bad>{{1, 0, "record exceeds the max record size (8 bytes)"}});
    }
  }
}

TEST_CASE("csv_lines: however cut, a stream gives the records and dead-letter texts of the stream in one piece") {
  // Found by tests/fuzz/fuzz_stream_format: a broken line cut by a piece boundary was
  // dead-lettered without its rest; an over-long quoted record with newlines, carried, was
  // dropped to the end of the piece instead of to its first newline (as in one piece), which
  // changed the records and bad records after it.
  const auto fmt = note_format(64);
  const std::string bytes = note_header + "\n1,1,a\n1,\"2\"x,3 and the rest of the broken line\n2,2,\"x\n" +
                            std::string(100, 'y') + "\n5,5,\"\n\"\n6,6,f\n" + std::string(100, 'z') + "\n7,7,g\n" +
                            "8,8,\"two\nlines\"\n9,\"9\"x, a broken line after a record with a newline\n";
  const auto run = [&](const std::vector<std::string>& pieces) {
    std::vector<std::string> seen;
    auto in = fmt.new_input("cut");
    auto emit = [&](const note_rec& r, std::string_view raw, std::uint64_t offset) {
      seen.push_back("record @" + std::to_string(offset) + " " + std::to_string(r.id) + " [" + std::string(raw) + "]");
    };
    auto report = [&](const sluice::bad_record& b) {
      seen.push_back("bad " + std::to_string(b.line) + " @" + std::to_string(b.offset) + " " + std::string(b.reason) +
                     " [" + std::string(b.text) + "]");
      return true;
    };
    for (const std::string& piece : pieces) {
      fmt.feed(in, piece, emit, report);
    }
    fmt.close(in, true, emit, report);
    return seen;
  };
  const std::vector<std::string> whole = run({bytes});
  // a, the broken line, the long record to its first newline, the line of y's, 5, f, the z's, g, 8, 9
  CHECK(whole.size() == 10);
  for (const cut_mode mode : all_cut_modes) {
    for (std::uint64_t seed = 1; seed <= 5; ++seed) {
      CAPTURE(static_cast<int>(mode));
      CAPTURE(seed);
      CHECK(run(cut(bytes, mode, seed)) == whole);
    }
  }
}

TEST_CASE("csv_lines: a carried record over the limit is judged on its own bytes, not on what the carry held before") {
  // Found by tests/fuzz/fuzz_stream_format: the carry, refilled to the same size at the same
  // address, was parsed with a parser that remembered where the previous contents had a quote.
  const auto fmt = note_format(32);
  const std::string second = "5,6,\"qqq" + std::string(22, 'Q') + "b\"c,4\n";  // its closing quote is its 32nd byte
  const std::vector<std::string> pieces = {"\"c,4\n5,", second.substr(2) + "7,7,g\n"};
  const parsed got = feed_pieces(fmt, pieces, true);
  CHECK(got.records == std::vector<note_rec>{{7, 7, "g"}});
  CHECK(got.bad == std::vector<seen_bad>{{1, 0, "unexpected character after a closing quote"},
                                         {2, 5, "record exceeds the max record size (32 bytes)"}});
  CHECK(feed_pieces(fmt, {pieces[0] + pieces[1]}, true) == got);
}

TEST_CASE("csv_lines: after a too-long record with embedded newlines, later records keep their line numbers") {
  // A quoted field with newlines that runs past the max record size. Wherever the pieces fall,
  // a malformed line after it is reported at its true line and offset, and good records after
  // it are parsed.
  constexpr std::size_t max = 64;
  const auto fmt = note_format(max);
  const std::string head = note_header + "\n1,1,a\n";
  const std::string long_record = "2,2,\"x\n" + std::string(200, 'y') + "\"\n";  // lines 3 and 4
  const std::string tail = "3,3,b\n4,4\n5,5,c\n";                               // lines 5, 6, 7
  const std::string bytes = head + long_record + tail;
  const seen_bad malformed{6, head.size() + long_record.size() + 6, "expected 3 fields, found 2"};
  for (const cut_mode mode : all_cut_modes) {
    for (std::uint64_t seed = 1; seed <= 5; ++seed) {
      CAPTURE(static_cast<int>(mode));
      CAPTURE(seed);
      const parsed got = feed_pieces(fmt, cut(bytes, mode, seed), true);
      CHECK(std::count(got.bad.begin(), got.bad.end(), malformed) == 1);
      REQUIRE(got.records.size() >= 3);
      CHECK(got.records.front() == note_rec{1, 1, "a"});
      CHECK(got.records[got.records.size() - 2] == note_rec{3, 3, "b"});
      CHECK(got.records.back() == note_rec{5, 5, "c"});
      REQUIRE(!got.bad.empty());
      CHECK(got.bad.front().line == 3);
      CHECK(got.bad.front().offset == head.size());
    }
  }
  // The piece that overflows the carry has no newline, while the carry holds the field's first one.
  const parsed got = feed_pieces(fmt, {head + "2,2,\"x\ny", std::string(199, 'y'), "\"\n" + tail}, true);
  CHECK(std::count(got.bad.begin(), got.bad.end(), malformed) == 1);
}

TEST_CASE("csv_lines: a malformed line is reported with its line and offset, and the next line parses") {
  const auto fmt = note_format();
  const std::string bytes = note_header + "\r\n1,2,a\r\nnot,a,number\r\n3,4,\"b\"\r\n1,\"2\"x,3\r\n5,6,c\r\n";
  for (const cut_mode mode : all_cut_modes) {
    CAPTURE(static_cast<int>(mode));
    const parsed got = feed_pieces(fmt, cut(bytes, mode, 9), true);
    CHECK(got.records == std::vector<note_rec>{{1, 2, "a"}, {3, 4, "b"}, {5, 6, "c"}});
    CHECK(got.bad == std::vector<seen_bad>{{3, 23, "field 'id' (column 1): not an integer: 'not'"},
                                           {5, 46, "unexpected character after a closing quote"}});
  }
}

TEST_CASE("csv_lines close(): an unterminated last record is reported on a socket, parsed otherwise") {
  const auto fmt = note_format(64);
  const std::string bytes = note_header + "\n1,2,a\n3,4,b";
  for (const cut_mode mode : all_cut_modes) {
    CAPTURE(static_cast<int>(mode));
    const parsed socket = feed_pieces(fmt, cut(bytes, mode, 4), true);
    CHECK(socket.records == std::vector<note_rec>{{1, 2, "a"}});
    CHECK(socket.bad ==
          std::vector<seen_bad>{{3, 21, "input closed in the middle of a record (no final newline)"}});
    const parsed file = feed_pieces(fmt, cut(bytes, mode, 4), false);
    CHECK(file.records == std::vector<note_rec>{{1, 2, "a"}, {3, 4, "b"}});
    CHECK(file.bad.empty());
  }
  // An open quote at the end: reported either way, with its position.
  const parsed open_quote = feed_pieces(fmt, {note_header + "\n1,2,\"never", " closed"}, false);
  CHECK(open_quote.records.empty());
  CHECK(open_quote.bad == std::vector<seen_bad>{{2, 15, "unterminated quoted field"}});
  // An over-long last line already reported is not reported again at close.
  const parsed long_tail = feed_pieces(fmt, {note_header + "\n1,2,a\n", std::string(100, 'z')}, true);
  CHECK(long_tail.records == std::vector<note_rec>{{1, 2, "a"}});
  REQUIRE(long_tail.bad.size() == 1);
  CHECK(long_tail.bad[0].line == 3);
  CHECK(long_tail.bad[0].reason.find("max record size") != std::string::npos);
  // Nothing pending: close reports nothing.
  CHECK(feed_pieces(fmt, {note_header + "\n1,2,a\n"}, true).bad.empty());
}

TEST_CASE("csv_lines: two inputs fed interleaved keep their own carries, lines and headers") {
  const auto fmt = note_format();
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    CAPTURE(seed);
    const csv_case a = random_csv(seed * 101, 150);
    const csv_case b = random_csv(seed * 103, 150, seed % 2 == 0);
    const auto pieces_a = cut(a.bytes, cut_mode::mixed, seed);
    const auto pieces_b = cut(b.bytes, cut_mode::small, seed + 1);
    parsed got_a;
    parsed got_b;
    auto in_a = fmt.new_input("a");
    auto in_b = fmt.new_input("b");
    auto emit_to = [](parsed& p) {
      return [&p](const note_rec& r, std::string_view raw, std::uint64_t offset) {
        p.records.push_back(r);
        p.raws.emplace_back(raw);
        p.offsets.push_back(offset);
      };
    };
    auto report_to = [](parsed& p) {
      return [&p](const sluice::bad_record& r) {
        p.bad.push_back({r.line, r.offset, std::string(r.reason)});
        return true;
      };
    };
    std::mt19937_64 rng(seed);
    std::size_t ia = 0;
    std::size_t ib = 0;
    while (ia < pieces_a.size() || ib < pieces_b.size()) {
      if (ib == pieces_b.size() || (ia < pieces_a.size() && rng() % 2 == 0)) {
        fmt.feed(in_a, pieces_a[ia++], emit_to(got_a), report_to(got_a));
      } else {
        fmt.feed(in_b, pieces_b[ib++], emit_to(got_b), report_to(got_b));
      }
    }
    fmt.close(in_a, true, emit_to(got_a), report_to(got_a));
    fmt.close(in_b, true, emit_to(got_b), report_to(got_b));
    CHECK(got_a == a.expected);
    CHECK(got_b == b.expected);
  }
}

TEST_CASE("csv_lines: under policy fail, feed returns false at the first bad record") {
  sluice::input_options opts;
  opts.on_bad_record = sluice::bad_record_policy::fail;
  const auto fmt = sluice::csv_lines(note_schema(), note_header, opts);
  auto in = fmt.new_input("x");
  std::vector<note_rec> records;
  int reports = 0;
  auto emit = [&](const note_rec& r, std::string_view /*raw*/, std::uint64_t /*offset*/) { records.push_back(r); };
  auto report = [&](const sluice::bad_record&) {
    ++reports;
    return false;
  };
  CHECK_FALSE(fmt.feed(in, note_header + "\n1,2,a\n3,4\n5,6,b\n", emit, report));
  CHECK(reports == 1);
  CHECK(records == std::vector<note_rec>{{1, 2, "a"}});
}

// =============================================================================================
// length_prefixed over arbitrary byte pieces
// =============================================================================================

namespace {

struct frame_rec {
  std::string text;
  bool operator==(const frame_rec&) const = default;
};

constexpr auto decode_frame = [](std::string_view payload, frame_rec& out) -> const char* {
  if (!payload.empty() && payload[0] == '!') {
    return "payload starts with '!'";
  }
  out.text.assign(payload);
  return nullptr;
};
using frame_format = sluice::length_prefixed<frame_rec, std::remove_const_t<decltype(decode_frame)>>;

frame_format frames(std::size_t max_record_bytes) {
  sluice::input_options opts;
  opts.max_record_bytes = max_record_bytes;
  return frame_format(decode_frame, opts);
}

/// [u32 little-endian length][payload]; `length` may lie (to write a header alone).
std::string framed(std::string_view payload, std::optional<std::uint32_t> length = std::nullopt) {
  const std::uint32_t n = length.value_or(static_cast<std::uint32_t>(payload.size()));
  std::string s;
  for (int i = 0; i < 4; ++i) {
    s += static_cast<char>((n >> (8 * i)) & 0xFFU);
  }
  s += payload;
  return s;
}

struct frame_case {
  std::string bytes;
  parsed_as<frame_rec> expected;
};

/// Random frames of 0 to 300 bytes of any value, some over the max of 256, some much larger,
/// some that the decoder rejects.
frame_case random_frames(std::uint64_t seed, std::size_t n) {
  std::mt19937_64 rng(seed);
  frame_case c;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t frame_no = i + 1;
    const std::uint64_t offset = c.bytes.size();
    std::size_t len = rng() % 10 == 0 ? 0 : 1 + rng() % 300;
    if (rng() % 40 == 0) {
      len = 3000 + rng() % 5000;
    }
    std::string payload;
    for (std::size_t j = 0; j < len; ++j) {
      payload += static_cast<char>(rng() % 256);
    }
    if (!payload.empty() && payload[0] == '!') {
      payload[0] = '?';
    }
    if (len > 0 && len <= 256 && rng() % 15 == 0) {
      payload[0] = '!';
    }
    if (len > 256) {
      c.expected.bad.push_back({frame_no, offset,
                                "frame of " + std::to_string(len) + " bytes exceeds the max record size (256 bytes)"});
    } else if (!payload.empty() && payload[0] == '!') {
      c.expected.bad.push_back({frame_no, offset, "payload starts with '!'"});
    } else {
      c.expected.records.push_back({payload});
      c.expected.raws.push_back(payload);
      c.expected.offsets.push_back(offset);  // a frame's offset is that of its length header
    }
    c.bytes += framed(payload);
  }
  return c;
}

}  // namespace

TEST_CASE("length_prefixed: frames cut into any pieces decode identically; bad frames keep their numbers") {
  const auto fmt = frames(256);
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    const frame_case c = random_frames(seed, 200);
    REQUIRE(!c.expected.bad.empty());
    for (const cut_mode mode : all_cut_modes) {
      CAPTURE(seed);
      CAPTURE(static_cast<int>(mode));
      const auto got = feed_pieces(fmt, cut(c.bytes, mode, seed + 17), true);
      CHECK(got.records == c.expected.records);
      CHECK(got.raws == c.expected.raws);
      CHECK(got.offsets == c.expected.offsets);
      CHECK(got.bad == c.expected.bad);
    }
  }
}

TEST_CASE("length_prefixed: an oversized frame is reported and skipped, and the next frame decodes") {
  const auto fmt = frames(8);
  const std::string bytes = framed("first") + framed(std::string(9, 'z')) + framed("next") + framed("") +
                            framed(std::string(1000, 'q')) + framed("last");
  for (const cut_mode mode : all_cut_modes) {
    CAPTURE(static_cast<int>(mode));
    const auto got = feed_pieces(fmt, cut(bytes, mode, 2), true);
    CHECK(got.records == std::vector<frame_rec>{{"first"}, {"next"}, {""}, {"last"}});
    CHECK(got.bad == std::vector<seen_bad>{{2, 9, "frame of 9 bytes exceeds the max record size (8 bytes)"},
                                           {5, 34, "frame of 1000 bytes exceeds the max record size (8 bytes)"}});
  }
}

TEST_CASE("length_prefixed: a decode error is reported with its frame number and offset; decoding goes on") {
  const auto fmt = frames(64);
  const std::string bytes = framed("a") + framed("bb") + framed("!bad") + framed("ccc");
  for (const cut_mode mode : all_cut_modes) {
    CAPTURE(static_cast<int>(mode));
    const auto got = feed_pieces(fmt, cut(bytes, mode, 5), true);
    CHECK(got.records == std::vector<frame_rec>{{"a"}, {"bb"}, {"ccc"}});
    CHECK(got.bad == std::vector<seen_bad>{{3, 11, "payload starts with '!'"}});
  }
}

TEST_CASE("length_prefixed: closing in the middle of a frame (header or payload) is reported once") {
  const auto fmt = frames(64);
  const std::string first = framed("whole");
  const std::string second = framed("cut short");
  for (std::size_t keep = 1; keep < second.size(); ++keep) {
    CAPTURE(keep);
    const std::string bytes = first + second.substr(0, keep);
    const auto got = feed_pieces(fmt, cut(bytes, cut_mode::small, keep), true);
    CHECK(got.records == std::vector<frame_rec>{{"whole"}});
    CHECK(got.bad == std::vector<seen_bad>{{2, first.size(), "input closed in the middle of a frame"}});
  }
  // Ending exactly between frames is clean; ending inside an oversized frame's skipped payload
  // adds nothing to its report.
  CHECK(feed_pieces(fmt, {first + second}, true).bad.empty());
  const auto oversized = feed_pieces(fmt, {first + framed(std::string(100, 'x')).substr(0, 50)}, true);
  CHECK(oversized.bad == std::vector<seen_bad>{{2, first.size(), "frame of 100 bytes exceeds the max record size (64 bytes)"}});
}
