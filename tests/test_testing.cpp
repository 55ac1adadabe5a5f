// sluice/testing.hpp's test_driver on the guide's flows: a windowed aggregate fires when the
// test moves the watermark, late events are listed with their input, allowed lateness fires a
// window again, count windows fire as they fill, the guide's process function (bursts of card
// payments) emits and clears on its timers, processing-time timers follow the clock the test
// sets, an interval join pairs its two sides; and on random input the driver, with only the
// final watermark, gives batch mode's answer.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "sluice/io/memory_source.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/sluice.hpp"
#include "sluice/testing.hpp"

using namespace std::chrono_literals;
using sluice::millis;

namespace {

struct reading {
  millis ts;
  std::string device;
  std::int64_t temp_centi = 0;
};

auto per_minute_count() {
  return sluice::flow<reading>() | sluice::event_time(&reading::ts) | sluice::key_by(&reading::device) |
         sluice::window(sluice::tumbling(1min)) | sluice::aggregate(sluice::count{}, sluice::sum(&reading::temp_centi));
}

millis at_s(std::int64_t seconds) { return millis{seconds * 1000}; }

}  // namespace

TEST_CASE("test_driver: a window fires when the test moves the watermark past its end, once") {
  sluice::test_driver d(per_minute_count());
  d.push({at_s(1), "a", 10});
  d.push({at_s(30), "b", 20});
  d.push({at_s(59), "a", 30});
  d.push({at_s(61), "a", 40});
  d.advance_watermark(at_s(59));
  CHECK(d.rows().empty());
  d.advance_watermark(at_s(60));
  const auto first = d.take_rows();
  REQUIRE(first.size() == 2);  // ordered by key: a before b
  CHECK(first[0].key.key == "a");
  CHECK(first[0].key.window.start == at_s(0));
  CHECK(first[0].value == std::make_tuple(std::int64_t{2}, std::int64_t{40}));
  CHECK(first[1].key.key == "b");
  d.advance_watermark(at_s(60));
  CHECK(d.take_rows().empty());  // exactly once
  d.finish();
  const auto rest = d.take_rows();
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].key.window.start == at_s(60));
  CHECK(d.events() == 4);
  CHECK(d.rows_emitted() == 3);
}

TEST_CASE("test_driver: late events are not added and are listed with their input") {
  sluice::test_driver d(per_minute_count());
  d.push({at_s(10), "a", 1});
  d.advance_watermark(at_s(70));
  d.push_to("tcp 1", {at_s(20), "a", 5});  // its window fired: late
  d.push_to("tcp 2", {at_s(65), "a", 7});  // behind the watermark, but its window is open
  CHECK(d.late_events() == 1);
  REQUIRE(d.late().size() == 1);
  CHECK(d.late()[0].input == "tcp 1");
  CHECK(d.late()[0].event.temp_centi == 5);
  CHECK(d.late()[0].time == at_s(20));
  d.finish();
  REQUIRE(d.rows().size() == 2);
  CHECK(std::get<1>(d.rows()[0].value) == 1);  // the late 5 is in no answer
  CHECK(std::get<1>(d.rows()[1].value) == 7);
}

TEST_CASE("test_driver: with allowed lateness a late event fires its window again, whole") {
  sluice::test_driver d(per_minute_count(), {.allowed_lateness_ms = 30'000});
  d.push({at_s(10), "a", 1});
  d.advance_watermark(at_s(60));
  d.push({at_s(20), "a", 2});  // within the lateness: added
  d.advance_watermark(at_s(75));
  d.push({at_s(30), "a", 4});
  d.advance_watermark(at_s(95));  // the window's lateness has passed
  d.push({at_s(40), "a", 8});     // late for good
  const auto rows = d.take_rows();
  REQUIRE(rows.size() == 3);
  CHECK(std::get<1>(rows[0].value) == 1);
  CHECK(std::get<1>(rows[1].value) == 3);  // the updated whole, to replace the first
  CHECK(std::get<1>(rows[2].value) == 7);
  CHECK(d.late_events() == 1);
}

TEST_CASE("test_driver: a count window fires as it fills, whatever the watermark") {
  const auto threes = sluice::flow<reading>() | sluice::key_by(&reading::device) |
                      sluice::window(sluice::count_of(3)) | sluice::aggregate(sluice::sum(&reading::temp_centi));
  sluice::test_driver d(threes);
  for (std::int64_t i = 1; i <= 7; ++i) {
    d.push({millis{0}, "a", i});
  }
  REQUIRE(d.rows().size() == 2);
  CHECK(d.rows()[0].value == 6);
  CHECK(d.rows()[1].value == 15);
  d.finish();  // the partial window of one
  REQUIRE(d.rows().size() == 3);
  CHECK(d.rows()[2].value == 7);
}

// ---- the guide's process function ------------------------------------------------------------

namespace {
struct txn {
  millis ts;
  std::string card;
  std::string country;
};
struct alert {
  millis time;
  std::string card;
  std::string what;
  friend bool operator==(const alert&, const alert&) = default;
};
struct card_state {
  std::deque<millis> last_minute;
  std::optional<millis> forget_at;
};

auto bursts() {
  return sluice::flow<txn>() | sluice::event_time(&txn::ts) | sluice::key_by(&txn::card) |
         sluice::process<alert, card_state>(
             [](auto& ctx, const txn& t) {
               card_state& s = ctx.state();
               while (!s.last_minute.empty() && s.last_minute.front() <= ctx.time() - 1min) {
                 s.last_minute.pop_front();
               }
               s.last_minute.push_back(ctx.time());
               if (s.last_minute.size() == 6) {
                 ctx.emit(alert{ctx.time(), t.card, "6 payments in a minute"});
               }
               if (s.forget_at) {
                 ctx.cancel_timer(*s.forget_at);
               }
               s.forget_at = ctx.time() + 1min;
               ctx.timer_at(*s.forget_at);
             },
             [](auto& ctx) { ctx.clear(); });
}
}  // namespace

TEST_CASE("test_driver: the guide's burst rule emits once the watermark passes the sixth payment") {
  sluice::test_driver d(bursts());
  for (std::int64_t i = 0; i < 6; ++i) {
    d.push({at_s(i * 5), "card-1", "FR"});
  }
  d.push({at_s(3), "card-2", "DE"});
  d.advance_watermark(at_s(24));
  CHECK(d.rows().empty());  // ordered processing: the 6th payment (at 25 s) is not handled yet
  d.advance_watermark(at_s(26));
  REQUIRE(d.rows().size() == 1);
  CHECK(d.rows()[0] == alert{at_s(25), "card-1", "6 payments in a minute"});
  // A minute of silence clears the card: five more payments make no alert.
  d.advance_watermark(at_s(200));
  for (std::int64_t i = 0; i < 5; ++i) {
    d.push({at_s(300 + i), "card-1", "FR"});
  }
  d.finish();
  CHECK(d.rows().size() == 1);
  CHECK(d.late_events() == 0);
}

namespace {
struct ping {
  millis ts;
  std::string host;
};
struct silence {
  std::string host;
  millis noticed;
  friend bool operator==(const silence&, const silence&) = default;
};
struct person {
  millis ts;
  std::int64_t id = 0;
  std::string name;
};
struct auction {
  millis ts;
  std::int64_t id = 0;
  std::int64_t seller = 0;
};
struct new_seller {
  std::string name;
  std::int64_t auction = 0;
  friend bool operator==(const new_seller&, const new_seller&) = default;
};
}  // namespace

TEST_CASE("test_driver: processing-time timers fire when the test moves the processing clock") {
  const auto watchdog =
      sluice::flow<ping>() | sluice::event_time(&ping::ts) | sluice::key_by(&ping::host) |
      sluice::process<silence, std::optional<millis>>(
          [](auto& ctx, const ping& /*p*/) {
            if (ctx.state()) {
              ctx.cancel_processing_timer(*ctx.state());
            }
            ctx.state() = ctx.processing_time() + 30s;
            ctx.processing_timer_at(*ctx.state());
          },
          [](auto& ctx) { ctx.emit(silence{ctx.key(), ctx.time()}); });
  sluice::test_driver d(watchdog, {.processing_time = millis{1'000'000}});
  d.push({at_s(1), "web-1"});
  d.advance_watermark(at_s(2));  // the ping is handled at processing time 1 000 000
  d.advance_processing_time(millis{1'029'999});
  CHECK(d.rows().empty());
  d.advance_processing_time(millis{1'030'000});
  REQUIRE(d.rows().size() == 1);
  CHECK(d.rows()[0] == silence{"web-1", millis{1'030'000}});
}

TEST_CASE("test_driver: an interval join pairs its two sides pushed as one variant flow") {
  using event = std::variant<person, auction>;
  const auto joined = sluice::flow<event>() | sluice::event_time(sluice::by_type(&person::ts, &auction::ts)) |
                      sluice::key_by(sluice::by_type(&person::id, &auction::seller)) |
                      sluice::interval_join<person, auction>(0ms, 1h, [](const person& p, const auction& a) {
                        return new_seller{p.name, a.id};
                      });
  sluice::test_driver d(joined);
  d.push_to("people", person{at_s(0), 7, "ann"});
  d.push_to("auctions", auction{at_s(600), 100, 7});    // 10 min after: a pair
  d.push_to("auctions", auction{at_s(7200), 101, 7});   // 2 h after: none
  d.push_to("auctions", auction{at_s(60), 102, 8});     // another seller
  d.finish();
  CHECK(d.rows() == std::vector<new_seller>{{"ann", 100}});
}

TEST_CASE("test_driver: on random input with only the final watermark, the batch answer") {
  std::mt19937_64 rng(3);
  std::vector<reading> events;
  for (int i = 0; i < 3000; ++i) {
    events.push_back({millis{static_cast<std::int64_t>(rng() % 600'000)}, "d" + std::to_string(rng() % 7),
                      static_cast<std::int64_t>(rng() % 100)});
  }
  sluice::test_driver d(per_minute_count());
  for (const reading& r : events) {
    d.push(r);
  }
  d.finish();
  std::map<std::pair<std::string, std::int64_t>, std::tuple<std::int64_t, std::int64_t>> driven;
  for (const auto& row : d.rows()) {
    driven[{row.key.key, row.key.window.start.count()}] = row.value;
  }
  std::map<std::pair<std::string, std::int64_t>, std::tuple<std::int64_t, std::int64_t>> batch;
  const auto store = sluice::run_batch(sluice::from_range(events), per_minute_count());
  for (const auto& row : store.scan()) {
    batch[{row.key.key, row.key.window.start.count()}] = row.value;
  }
  CHECK(driven.size() == d.rows().size());  // no (key, window) fired twice
  CHECK(driven == batch);
}
